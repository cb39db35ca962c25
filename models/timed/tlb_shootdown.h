// The guest kernel's TLB invalidations, carried out on the VCPUs (models/guest/guest_kernel.h asks
// for them at the point Linux does). The VCPU that entered the kernel (the initiator) flushes its
// own PCPU's TLB and paging-structure caches and pays for it; every other VCPU whose process runs
// the same mm gets an IPI: its TLB is flushed at the initiator's time and it is charged the
// interrupt handler, while the initiator pays for sending the IPIs and waiting for every
// acknowledgement. The initiator has synchronised with the kernel before entering it, so the
// flush happens at global time = its time (docs/architecture.md, ordering rule).
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "common/params.h"
#include "common/stats.h"
#include "guest/guest_kernel.h"

namespace shadowsim {

class Vcpu;

// Assumptions (orders of magnitude): INVLPG ~200 cycles and a non-global flush by MOV to CR3
// ~300 cycles on recent Intel cores (plus the refills, which the model charges as they happen);
// a TLB shootdown costs the initiator a few microseconds (Amit et al., "Optimizing the TLB
// shootdown algorithm with page access tracking", USENIX ATC 2017, measure several us on x86);
// the remote handler (interrupt entry, flush, ack, exit) ~0.5 us.
struct ShootdownParams {
  uint32_t invlpg_cycles = 200;
  uint32_t flush_cycles = 300;
  uint32_t ipi_cycles = 6000;            // initiator: send the IPIs, wait for the acknowledgements
  uint32_t remote_handler_cycles = 1500; // each remote VCPU interrupted

  template <class V>
  void visit(V& v) {
    v.value("invlpg_cycles", invlpg_cycles, "one INVLPG", Limits{0, 1e9}, "cycles");
    v.value("flush_cycles", flush_cycles, "one non-global TLB flush (MOV to CR3)", Limits{0, 1e9},
            "cycles");
    v.value("ipi_cycles", ipi_cycles,
            "initiator of a shootdown: sending the IPIs and waiting for every acknowledgement",
            Limits{0, 1e9}, "cycles");
    v.value("remote_handler_cycles", remote_handler_cycles,
            "each remote VCPU: the shootdown interrupt handler", Limits{0, 1e9}, "cycles");
  }
};

class TlbShootdown : public TlbShootdownSink {
 public:
  explicit TlbShootdown(const ShootdownParams& params) : params_(params) {}
  void attach(const GuestKernel* kernel, std::vector<std::unique_ptr<Vcpu>>* vcpus) {
    kernel_ = kernel;
    vcpus_ = vcpus;
  }

  // The VCPU in the kernel from now on (entering it, or resuming its kernel operation after a
  // wait in the hypervisor, during which other VCPUs may have entered); its flush costs are
  // kept apart from other VCPUs' until it collects them.
  void enter(Vcpu* initiator);
  uint64_t take_initiator_cycles(const Vcpu& vcpu);

  // How many flushes of `mm` were asked for so far (Linux's mm tlb_gen): a CPU that switches an
  // mm in compares it with the generation its entries reflect.
  uint64_t generation(uint32_t mm) const {
    const auto it = generations_.find(mm);
    return it == generations_.end() ? 0 : it->second;
  }

  void flush_pages(uint32_t mm, const std::vector<uint64_t>& pages) override;
  void flush_mm(uint32_t mm) override;
  void register_stats(StatsGroup g);

 private:
  template <typename Flush>
  void shootdown(uint32_t mm, uint64_t local_cycles, Flush&& flush);
  bool runs(const Vcpu& vcpu, const Vcpu* initiator, uint32_t mm) const;

  ShootdownParams params_;
  const GuestKernel* kernel_ = nullptr;
  std::vector<std::unique_ptr<Vcpu>>* vcpus_ = nullptr;
  Vcpu* initiator_ = nullptr;
  std::unordered_map<const Vcpu*, uint64_t> initiator_cycles_;
  std::unordered_map<uint32_t, uint64_t> generations_;

  uint64_t local_flushes_ = 0;
  uint64_t shootdowns_ = 0;       // flushes that needed IPIs
  uint64_t remote_flushes_ = 0;   // VCPUs interrupted
  uint64_t pages_flushed_ = 0;
  uint64_t full_flushes_ = 0;
};

}  // namespace shadowsim
