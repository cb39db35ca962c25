// Physical CPUs and the VCPUs that run on them (issue 5 §2). With at least as many PCPUs as
// VCPUs each VCPU is pinned to its own PCPU and never waits (or, not pinned, takes any free one
// when it wakes from idle). With fewer, VCPUs share the PCPUs
// round robin (Xen's credit scheduler with equal weights, reduced to its time slice): a VCPU
// holds a PCPU until it blocks (no guest task to run) or has used its slice while another VCPU
// waits, and then goes to the back of the queue. Hypervisor code runs to completion: a VCPU is
// descheduled only on its way back to the guest (models/timed/vcpu.cpp decides where), so a
// guest spinlock holder or a VCPU that owes a TLB-shootdown acknowledgement can be left waiting
// for a PCPU -- the costs of overcommit emerge from that, none is scripted.
//
// Called from VCPU threads at their synchronised time. A freed PCPU goes to the VCPU at the head
// of the queue, which resumes one delta later.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include <systemc>

#include "common/params.h"
#include "common/stats.h"

namespace shadowsim {

struct PcpuSchedulerParams {
  // Xen's credit scheduler gives a VCPU 30 ms (sched_credit.c, CSCHED_DEFAULT_TSLICE_MS); at
  // the model's nominal 2.5 GHz that is 75 M cycles. Short traces need shorter slices to show
  // any time-slicing at all: a sweep parameter.
  uint64_t slice_cycles = 75000000;
  // Switching the PCPU to another VCPU: saving and loading the VCPU state and VMCS (VMPTRLD),
  // the scheduler's own work. Assumption: ~1 us.
  uint32_t switch_cycles = 2500;
  // With as many PCPUs as VCPUs: each VCPU keeps its own PCPU (true), or VCPUs take whichever
  // PCPU is free when they wake from idle and may migrate (false; Xen's default placement).
  bool pinned = true;

  template <class V>
  void visit(V& v) {
    v.value("pinned", pinned,
            "with at least as many PCPUs as VCPUs, VCPU i stays on PCPU i (false: any free "
            "PCPU, migrations flush the VCPU's TLB entries there)");
    v.value("slice_cycles", slice_cycles,
            "time slice of a VCPU on a PCPU when VCPUs outnumber PCPUs", Limits{1000, 1e15},
            "cycles");
    v.value("switch_cycles", switch_cycles, "switching a PCPU from one VCPU to another",
            Limits{0, 1e9}, "cycles");
  }
};

class PcpuScheduler {
 public:
  PcpuScheduler(unsigned pcpus, unsigned vcpus, const PcpuSchedulerParams& params);

  // Blocks the calling VCPU until it holds a PCPU and returns it: when pinned the one it ran on
  // last if that is free, else the lowest free one. `wake` is the VCPU's own event.
  int acquire(int vcpu, sc_core::sc_event& wake);
  void release(int vcpu);
  // The VCPU has used its slice and another VCPU is waiting for a PCPU.
  bool should_yield(int vcpu) const;
  int pcpu_of(int vcpu) const { return vcpus_.at(static_cast<size_t>(vcpu)).pcpu; }
  unsigned pcpus() const { return static_cast<unsigned>(holder_.size()); }
  bool overcommitted() const { return vcpus_.size() > holder_.size(); }
  const PcpuSchedulerParams& params() const { return params_; }

  void register_stats(StatsGroup g);

 private:
  struct VcpuState {
    int pcpu = -1;       // held now
    int last_pcpu = -1;
    uint64_t since = 0;  // when it got the PCPU (its slice started)
    sc_core::sc_event* wake = nullptr;
  };
  void grant(int vcpu, int pcpu);

  PcpuSchedulerParams params_;
  std::vector<int> holder_;  // per PCPU: the VCPU on it, -1 when free
  std::vector<VcpuState> vcpus_;
  std::deque<int> waiting_;  // VCPUs waiting for a PCPU, in arrival order

  uint64_t grants_ = 0;
  uint64_t waits_ = 0;
  uint64_t migrations_ = 0;
};

}  // namespace shadowsim
