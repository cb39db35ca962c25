#include "timed/vcpu.h"

#include <fmt/format.h>

#include "common/error.h"

namespace shadowsim {
namespace {

Access access_of(RefKind kind) {
  switch (kind) {
    case RefKind::kWrite: return Access::write(true);
    case RefKind::kFetch: return Access::fetch(true);
    case RefKind::kRead: break;
  }
  return Access::read(true);
}

}  // namespace

Vcpu::Vcpu(sc_core::sc_module_name name, int id, double cpi, VcpuWiring wiring)
    : sc_module(name), id_(id), w_(std::move(wiring)), cpi_fixed_(static_cast<uint64_t>(cpi * 65536.0 + 0.5)) {
  SC_THREAD(run);
}

uint64_t Vcpu::now_cycles() const {
  return quantum_keeper_.get_current_time().value() + unsynced_cycles_;
}

// Hands local time to the quantum keeper only at quantum boundaries (see the header).
void Vcpu::sync_if_quantum_used() {
  if (unsynced_cycles_ < sync_budget_) return;
  quantum_keeper_.inc(sc_core::sc_time::from_value(unsynced_cycles_));
  unsynced_cycles_ = 0;
  if (quantum_keeper_.need_sync()) {
    quantum_keeper_.sync();
    w_.control->at_sync(sc_core::sc_time_stamp().value());
  }
  const uint64_t quantum = tlm_utils::tlm_quantumkeeper::get_global_quantum().value();
  sync_budget_ = quantum - quantum_keeper_.get_current_time().value() % quantum;
}

// Kernel work runs at the same CPI as user code.
uint64_t Vcpu::kernel_cycles(uint64_t instructions) {
  kernel_instructions_ += instructions;
  fractional_cycles_ += cpi_fixed_ * instructions;
  const uint64_t cycles = fractional_cycles_ >> 16;
  fractional_cycles_ &= 0xffff;
  return cycles;
}

uint64_t Vcpu::handle_fault(uint64_t va, const Access& access, const MmuResult& first) {
  if (first.outcome != WalkOutcome::kPageFault) {
    throw Error(fmt::format("vcpu{}: {} of non-canonical address {:#x}", id_,
                            to_string(access.kind), va));
  }
  ++page_faults_;
  w_.mmu->page_fault_invalidate(va, w_.tlb_context, w_.paging.mode());
  const FaultOutcome handled = w_.kernel->page_fault(w_.pid, va, first.error_code);
  const uint64_t kernel = kernel_cycles(handled.instructions);
  const MmuResult again = w_.mmu->translate(va, access, w_.paging, w_.tlb_context);
  if (again.outcome != WalkOutcome::kOk) {
    throw Error(fmt::format("vcpu{}: {} of {:#x} still faults ({}) after the guest kernel "
                            "handled it as {}: a model bug", id_, to_string(access.kind), va,
                            describe_error_code(again.error_code), to_string(handled.kind)));
  }
  return first.cycles + kernel + again.cycles;
}

uint64_t Vcpu::reference(const TraceRecord& r) {
  const Access access = access_of(r.kind);
  const uint64_t first_page = r.va >> kPageShift;
  const uint64_t last_page = (r.va + (r.size ? r.size - 1 : 0)) >> kPageShift;
  uint64_t cycles = translate_page(w_.folder->fold(r.va), access);
  for (uint64_t page = first_page + 1; page <= last_page; ++page) {  // page-crossing access
    cycles += translate_page(w_.folder->fold(page << kPageShift), access);
  }
  page_crossings_ += last_page != first_page;
  return cycles;
}

void Vcpu::run() {
  try {
    replay();
  } catch (const Error& e) {
    error_ = e.what();
    sc_core::sc_stop();
  } catch (const std::exception& e) {  // a bug, but report it the same orderly way
    error_ = fmt::format("vcpu{}: internal error: {}", id_, e.what());
    sc_core::sc_stop();
  }
}

void Vcpu::replay() {
  const uint64_t quantum = tlm_utils::tlm_quantumkeeper::get_global_quantum().value();
  quantum_keeper_.reset();
  sync_budget_ = quantum;
  std::vector<TraceRecord> batch(kBatch);
  while (!w_.control->stopped()) {
    const size_t n = w_.trace->read(batch.data(), kBatch);
    if (n == 0) break;
    for (size_t i = 0; i < n; ++i) {
      if (w_.control->stopped()) break;  // another VCPU reached the reference limit
      const TraceRecord& r = batch[i];
      const uint64_t instructions = instructions_of(r);
      instructions_ += instructions;
      fractional_cycles_ += cpi_fixed_ * instructions;
      const uint64_t compute = fractional_cycles_ >> 16;
      fractional_cycles_ &= 0xffff;
      const uint64_t translation = reference(r);
      ++references_[static_cast<int>(r.kind)];
      translation_cycles_ += translation;
      cycles_ += compute + translation;
      unsynced_cycles_ += compute + translation;
      // The reference is complete: count it (a warm-up ending here resets its statistics too),
      // then yield to the kernel if the quantum is used up.
      if (w_.control->count_reference() && !w_.control->handle_event(now_cycles())) break;
      sync_if_quantum_used();
    }
  }
  quantum_keeper_.inc(sc_core::sc_time::from_value(unsynced_cycles_));
  unsynced_cycles_ = 0;
  quantum_keeper_.sync();
  finish_cycles_ = sc_core::sc_time_stamp().value();
  w_.control->at_sync(finish_cycles_);
  finished_ = true;
}

void Vcpu::register_stats(StatsGroup g) {
  g.counter("instructions", &instructions_, "instructions", "instructions replayed");
  g.counter("references.read", &references_[0], "references", "data reads replayed");
  g.counter("references.write", &references_[1], "references", "data writes replayed");
  g.counter("references.fetch", &references_[2], "references", "instruction fetches replayed");
  g.counter("page_crossings", &page_crossings_, "references",
            "references that touch two pages (each page is translated)");
  g.counter("page_faults", &page_faults_, "faults", "page faults delivered to the guest kernel");
  g.counter("kernel_instructions", &kernel_instructions_, "instructions",
            "guest kernel work charged to this VCPU (fault handling)");
  g.counter("cycles", &cycles_, "cycles", "cycles spent by this VCPU");
  g.counter("translation_cycles", &translation_cycles_, "cycles",
            "cycles in TLB lookups, walks and page faults (kernel work included)");
  g.formula("translation_share", [this] { return ratio(translation_cycles_, cycles_); }, "ratio",
            "translation_cycles / cycles");
}

}  // namespace shadowsim
