// What the hypervisor needs from the VCPU it runs on (models/timed/vcpu.h implements it). The
// hypervisor runs on the faulting VCPU's SystemC thread, "to completion" (no guest scheduling
// inside it), and moves that VCPU's time: work it does is added to the VCPU's local time, and
// before every step on shared state it syncs the VCPU with global time (docs/architecture.md,
// "sync before touching shared state").
#pragma once

#include <cstdint>

namespace shadowsim {

class Mmu;
class PagingState;
struct TlbContext;

class HvCpu {
 public:
  virtual ~HvCpu() = default;
  virtual int vcpu_index() const = 0;
  virtual int pcpu_index() const = 0;
  virtual Mmu& mmu() = 0;
  virtual const TlbContext& tlb_context() const = 0;
  // Global time = this VCPU's time (SystemC waits while the VCPU has run ahead).
  virtual void hv_sync() = 0;
  // This VCPU's time now (global time plus what it has run ahead).
  virtual uint64_t hv_now() const = 0;
  // Hypervisor work on this VCPU: added to its local time, counted as hypervisor time.
  virtual void hv_spend(uint64_t cycles) = 0;
  // The shadow lock's acquire returned after `elapsed` cycles of SystemC time (already passed),
  // of which `spinning` were spent waiting for another holder.
  virtual void hv_lock_waited(uint64_t elapsed, uint64_t spinning) = 0;
  // Another PCPU's flush IPI: its handler's cycles, charged to this VCPU before its next record.
  virtual void hv_interrupt(uint64_t cycles) = 0;
  // The paging state the hardware walks from now on (shadow mode: this VCPU's shadow root).
  virtual void load_hardware_state(const PagingState& state) = 0;
};

}  // namespace shadowsim
