#include "hv/pcpu_scheduler.h"

#include <fmt/format.h>

#include "common/error.h"

namespace shadowsim {

PcpuScheduler::PcpuScheduler(unsigned pcpus, unsigned vcpus, const PcpuSchedulerParams& params)
    : params_(params), holder_(pcpus, -1), vcpus_(vcpus) {
  if (pcpus == 0) throw Error("machine.pcpus: a machine needs at least one PCPU");
  // Pinned placement when every VCPU has a PCPU of its own: VCPU i prefers PCPU i.
  for (unsigned v = 0; v < vcpus; ++v) vcpus_[v].last_pcpu = static_cast<int>(v % pcpus);
}

void PcpuScheduler::grant(int vcpu, int pcpu) {
  VcpuState& v = vcpus_.at(static_cast<size_t>(vcpu));
  holder_.at(static_cast<size_t>(pcpu)) = vcpu;
  if (v.last_pcpu != pcpu) ++migrations_;
  v.pcpu = pcpu;
  v.last_pcpu = pcpu;
  v.since = sc_core::sc_time_stamp().value();
  ++grants_;
}

int PcpuScheduler::acquire(int vcpu, sc_core::sc_event& wake) {
  VcpuState& v = vcpus_.at(static_cast<size_t>(vcpu));
  if (v.pcpu >= 0) return v.pcpu;
  if (waiting_.empty()) {  // a free PCPU: the last one first if pinned, else the lowest
    int pcpu = -1;
    if (params_.pinned && v.last_pcpu >= 0 && holder_[static_cast<size_t>(v.last_pcpu)] < 0) {
      pcpu = v.last_pcpu;
    }
    for (size_t p = 0; pcpu < 0 && p < holder_.size(); ++p) {
      if (holder_[p] < 0) pcpu = static_cast<int>(p);
    }
    if (pcpu >= 0) {
      grant(vcpu, pcpu);
      return pcpu;
    }
  }
  ++waits_;
  v.wake = &wake;
  waiting_.push_back(vcpu);
  while (v.pcpu < 0) sc_core::wait(wake);
  return v.pcpu;
}

void PcpuScheduler::release(int vcpu) {
  VcpuState& v = vcpus_.at(static_cast<size_t>(vcpu));
  if (v.pcpu < 0) return;
  const int pcpu = v.pcpu;
  holder_[static_cast<size_t>(pcpu)] = -1;
  v.pcpu = -1;
  if (waiting_.empty()) return;
  const int next = waiting_.front();
  waiting_.pop_front();
  grant(next, pcpu);
  vcpus_[static_cast<size_t>(next)].wake->notify(sc_core::SC_ZERO_TIME);
}

bool PcpuScheduler::should_yield(int vcpu) const {
  if (waiting_.empty()) return false;
  const VcpuState& v = vcpus_.at(static_cast<size_t>(vcpu));
  return v.pcpu >= 0 && sc_core::sc_time_stamp().value() - v.since >= params_.slice_cycles;
}

void PcpuScheduler::register_stats(StatsGroup g) {
  g.counter("grants", &grants_, "grants", "PCPUs given to VCPUs");
  g.counter("waits", &waits_, "waits", "times a VCPU had to wait for a PCPU");
  g.counter("migrations", &migrations_, "grants", "grants of another PCPU than the last one");
}

}  // namespace shadowsim
