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

Vcpu::Vcpu(sc_core::sc_module_name name, int id, double cpi, uint32_t fault_cycles,
           VcpuWiring wiring)
    : sc_module(name), id_(id), fault_cycles_(fault_cycles), w_(std::move(wiring)),
      folder_(w_.paging.mode()), cpi_fixed_(static_cast<uint64_t>(cpi * 65536.0 + 0.5)) {
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

uint64_t Vcpu::handle_fault(uint64_t va, const Access& access, const MmuResult& first) {
  if (first.outcome == WalkOutcome::kPageFault && !(first.error_code & pfec::kPresent)) {
    ++first_touch_faults_;
    w_.mapper->map(w_.paging.root_table(), va, access.kind == AccessKind::kWrite);
    const MmuResult again = w_.mmu->translate(va, access, w_.paging, w_.tlb_context);
    if (again.outcome == WalkOutcome::kOk) return first.cycles + fault_cycles_ + again.cycles;
  }
  throw Error(fmt::format("vcpu{}: {} of {:#x} faulted ({}) after demand mapping: the native "
                          "first-touch model maps every page user-writable, so this is a bug",
                          id_, to_string(access.kind), va, describe_error_code(first.error_code)));
}

uint64_t Vcpu::reference(const TraceRecord& r) {
  const Access access = access_of(r.kind);
  const uint64_t first_page = r.va >> kPageShift;
  const uint64_t last_page = (r.va + (r.size ? r.size - 1 : 0)) >> kPageShift;
  uint64_t cycles = translate_page(folder_.fold(r.va), access);
  for (uint64_t page = first_page + 1; page <= last_page; ++page) {  // page-crossing access
    cycles += translate_page(folder_.fold(page << kPageShift), access);
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
  g.counter("first_touch_faults", &first_touch_faults_, "faults",
            "not-present faults resolved by demand mapping");
  g.counter("cycles", &cycles_, "cycles", "cycles spent by this VCPU");
  g.counter("translation_cycles", &translation_cycles_, "cycles",
            "cycles in TLB lookups, walks and first-touch faults");
  g.formula("translation_share", [this] { return ratio(translation_cycles_, cycles_); }, "ratio",
            "translation_cycles / cycles");
}

}  // namespace shadowsim
