#include "timed/vcpu.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/error.h"

namespace shadowsim {
namespace {

Access access_of(RefKind kind) {
  switch (kind) {
    case RefKind::kWrite: return Access::write(true);
    case RefKind::kFetch: return Access::fetch(true);
    case RefKind::kRead:
    case RefKind::kEvent: break;
  }
  return Access::read(true);
}

}  // namespace

Vcpu::Vcpu(sc_core::sc_module_name name, int id, double cpi, VcpuWiring wiring)
    : sc_module(name), id_(id), w_(std::move(wiring)),
      cpi_fixed_(static_cast<uint64_t>(cpi * 65536.0 + 0.5)) {
  SC_THREAD(run);
}

uint64_t Vcpu::now_cycles() const {
  return quantum_keeper_.get_current_time().value() + unsynced_cycles_;
}

// Cycles left until the next quantum boundary, from the quantum keeper's current time.
void Vcpu::reset_sync_budget() {
  const uint64_t quantum = tlm_utils::tlm_quantumkeeper::get_global_quantum().value();
  sync_budget_ = quantum - quantum_keeper_.get_current_time().value() % quantum;
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
  reset_sync_budget();
}

// Instructions to cycles at `cpi`, carrying the fraction to the next call (user and kernel work
// alike).
uint64_t Vcpu::instruction_cycles(uint64_t instructions) {
  fractional_cycles_ += cpi_fixed_ * instructions;
  const uint64_t cycles = fractional_cycles_ >> 16;
  fractional_cycles_ &= 0xffff;
  return cycles;
}

uint64_t Vcpu::kernel_cycles(uint64_t instructions) {
  kernel_instructions_ += instructions;
  return instruction_cycles(instructions);
}

uint64_t Vcpu::handle_fault(uint64_t va, const Access& access, const MmuResult& first) {
  if (first.outcome != WalkOutcome::kPageFault) {
    throw Error(fmt::format("vcpu{}: {} of non-canonical address {:#x}", id_,
                            to_string(access.kind), va));
  }
  ++page_faults_;
  w_.mmu->page_fault_invalidate(va, w_.tlb_context, w_.paging.mode());
  enter_kernel();
  const FaultOutcome handled = w_.kernel->page_fault(w_.pid, va, first.error_code);
  const uint64_t kernel = leave_kernel(handled.instructions);
  const MmuResult again = w_.mmu->translate(va, access, w_.paging, w_.tlb_context);
  if (again.outcome != WalkOutcome::kOk) {
    throw Error(fmt::format("vcpu{}: {} of {:#x} still faults ({}) after the guest kernel "
                            "handled it as {}: a model bug", id_, to_string(access.kind), va,
                            describe_error_code(again.error_code), to_string(handled.kind)));
  }
  unsynced_cycles_ += again.cycles;
  return kernel + again.cycles;  // the faulting lookup's cycles are the caller's
}

// A recorded OS event of this VCPU's process, applied to the guest kernel where it stands in the
// stream. Switch events (a recorded schedule) are only counted.
uint64_t Vcpu::os_event(const OsEvent& e) {
  ++os_events_[static_cast<int>(e.kind)];
  if (e.kind == OsEventKind::kCreate) {  // enters the kernel itself (and may wait, for vfork)
    create_child(e.stream, e.how);
    return 0;
  }
  enter_kernel();
  GuestKernel& kernel = *w_.kernel;
  const uint32_t pid = w_.pid;
  uint64_t instructions = 0;
  switch (e.kind) {
    case OsEventKind::kMmap:
      folder_->for_each_piece(e.addr, e.length, [&](uint64_t va, uint64_t n) {
        instructions += kernel.mmap(pid, va, n, e.prot, (e.flags & OsEvent::kMapShared) != 0,
                                    e.file, (e.flags & OsEvent::kMapGrowsDown) != 0);
      });
      break;
    case OsEventKind::kMunmap:
      folder_->for_each_piece(e.addr, e.length, [&](uint64_t va, uint64_t n) {
        instructions += kernel.munmap(pid, va, n);
      });
      break;
    case OsEventKind::kMprotect:
      folder_->for_each_piece(e.addr, e.length, [&](uint64_t va, uint64_t n) {
        instructions += kernel.mprotect(pid, va, n, e.prot);
      });
      break;
    case OsEventKind::kBrk:
      instructions += kernel.brk(pid, folder_->fold(e.addr));
      break;
    case OsEventKind::kMremap:
      instructions += kernel.mremap(pid, folder_->fold(e.addr), e.length,
                                    folder_->fold(e.new_addr), e.new_length);
      break;
    case OsEventKind::kExec:
      instructions += kernel.exec(pid);
      release_vfork_parent();
      // The new image runs on a new page table: MOV to CR3 (PCIDE=0 flushes non-global entries).
      if (!w_.paging.load_cr3(kernel.cr3(pid), w_.mmu->memory())) {
        throw Error(fmt::format("vcpu{}: the new address space's PDPTEs failed to load", id_));
      }
      w_.mmu->flush_non_global(w_.tlb_context);
      folder_ = &w_.folders->of(kernel.mm_of(pid));
      break;
    case OsEventKind::kExit:
      instructions += kernel.exit(pid);
      exited_ = true;
      release_vfork_parent();
      break;
    case OsEventKind::kCreate:  // handled above
    case OsEventKind::kSwitch:  // a recorded schedule: not replayed
      break;
  }
  return leave_kernel(instructions);  // kernel work and this VCPU's share of the flushes
}

uint64_t Vcpu::reference(const TraceRecord& r) {
  const Access access = access_of(r.kind);
  const uint64_t first_page = r.va >> kPageShift;
  const uint64_t last_page = (r.va + (r.size ? r.size - 1 : 0)) >> kPageShift;
  uint64_t cycles = translate_page(folder_->fold(r.va), access);
  for (uint64_t page = first_page + 1; page <= last_page; ++page) {  // page-crossing access
    cycles += translate_page(folder_->fold(page << kPageShift), access);
  }
  page_crossings_ += last_page != first_page;
  return cycles;
}

void Vcpu::add_child(uint32_t stream, StreamOrigin origin, Vcpu* child) {
  children_.push_back(Child{stream, origin, child});
}

void Vcpu::start(uint32_t pid, Vcpu* vfork_parent) {
  w_.pid = pid;
  vfork_parent_ = vfork_parent;
  start_event_.notify(sc_core::SC_ZERO_TIME);
}

void Vcpu::sync_now() {
  quantum_keeper_.inc(sc_core::sc_time::from_value(unsynced_cycles_));
  unsynced_cycles_ = 0;
  quantum_keeper_.sync();
  reset_sync_budget();
}

// Every entry into the guest kernel touches state other VCPUs share (the kernel, page tables,
// their TLBs through shootdowns): sync first, so it happens at global time = this VCPU's time.
void Vcpu::enter_kernel() {
  sync_now();
  w_.shootdown->enter(this);
  w_.port->enter(this);
}

uint64_t Vcpu::leave_kernel(uint64_t instructions) {
  w_.port->leave();  // kunmap_atomic of the slots still mapped
  w_.port->enter(nullptr);
  const uint64_t charged = kernel_cycles(instructions) + w_.shootdown->take_initiator_cycles();
  unsynced_cycles_ += charged;
  const uint64_t accesses = kernel_access_cycles_;  // already in local time
  kernel_access_cycles_ = 0;
  return charged + accesses;
}

// A supervisor access of the kernel through this VCPU's MMU. The kernel's own mappings are
// always present, so a fault here is a model bug (in native mode; a hypervisor will take these
// traps in shadow mode).
uint64_t Vcpu::kernel_translate(uint64_t va, uint64_t expected_pa, const Access& access) {
  const MmuResult r = w_.mmu->translate(va, access, w_.paging, w_.tlb_context);
  if (r.outcome != WalkOutcome::kOk || r.pa != expected_pa) {
    throw Error(fmt::format("vcpu{}: the guest kernel's {} of {:#x} (physical {:#x}) {}: a model "
                            "bug", id_, to_string(access.kind), va, expected_pa,
                            r.outcome == WalkOutcome::kOk
                                ? fmt::format("reached physical {:#x}", r.pa)
                                : "faulted (" + describe_error_code(r.error_code) + ")"));
  }
  return r.cycles;
}

uint64_t Vcpu::kernel_load(uint64_t va, uint64_t expected_pa, int width) {
  const uint64_t cycles = kernel_translate(va, expected_pa, Access::read(false)) +
                          w_.mmu->table_memory().read(w_.mmu->pcpu(), expected_pa);
  unsynced_cycles_ += cycles;
  kernel_access_cycles_ += cycles;
  kernel_access_cycles_total_ += cycles;
  return w_.mmu->table_memory().memory().read(expected_pa, width);
}

bool Vcpu::kernel_store(uint64_t va, uint64_t expected_pa, int width, uint64_t value) {
  const uint64_t cycles = kernel_translate(va, expected_pa, Access::write(false)) +
                          w_.mmu->table_memory().write(w_.mmu->pcpu(), expected_pa);
  unsynced_cycles_ += cycles;
  kernel_access_cycles_ += cycles;
  kernel_access_cycles_total_ += cycles;
  w_.mmu->table_memory().memory().write(expected_pa, value, width);
  return false;
}

void Vcpu::kernel_invlpg(uint64_t va) { w_.mmu->invlpg(va, w_.tlb_context); }

// The parent side of fork, vfork and clone: at this VCPU's time (it syncs first: the child and
// the kernel's state are shared), the kernel creates the process and the child's VCPU starts.
// A vfork parent then waits until the child execs or exits.
void Vcpu::create_child(uint32_t stream, StreamOrigin how) {
  const auto it = std::find_if(children_.begin(), children_.end(), [&](const Child& c) {
    return c.stream == stream && !c.created;
  });
  if (it == children_.end()) {
    ++unknown_children_;
    return;
  }
  it->created = true;
  enter_kernel();
  GuestKernel& kernel = *w_.kernel;
  uint64_t instructions = 0;
  uint32_t pid;
  if (!kernel.alive(w_.pid)) {
    pid = kernel.create_process();  // the parent has exited: the child starts afresh
  } else if (how == StreamOrigin::kThread) {
    pid = kernel.clone_thread(w_.pid);
  } else if (how == StreamOrigin::kVfork) {
    pid = kernel.vfork(w_.pid);
  } else {
    pid = kernel.fork(w_.pid, &instructions);
  }
  if (kernel.alive(w_.pid) && kernel.mm_of(pid) != kernel.mm_of(w_.pid)) {
    // A forked child sees the parent's addresses where the parent saw them.
    w_.folders->copy(kernel.mm_of(w_.pid), kernel.mm_of(pid));
  }
  const bool wait_for_child = how == StreamOrigin::kVfork && kernel.alive(w_.pid);
  it->vcpu->start(pid, wait_for_child ? this : nullptr);
  cycles_ += leave_kernel(instructions);
  if (wait_for_child) {
    waiting_ = true;  // a suspended vfork parent runs no code: no shootdown IPIs reach it
    wait(vfork_done_);
    waiting_ = false;
    sync_now();
  }
}

void Vcpu::release_vfork_parent() {
  if (!vfork_parent_) return;
  sync_now();
  vfork_parent_->vfork_done_.notify(sc_core::SC_ZERO_TIME);
  vfork_parent_ = nullptr;
}

void Vcpu::run() {
  try {
    if (w_.pid == 0) wait(start_event_);
    if (!w_.paging.load_cr3(w_.kernel->cr3(w_.pid), w_.mmu->memory())) {
      throw Error(fmt::format("vcpu{}: the address space's PDPTEs failed to load", id_));
    }
    folder_ = &w_.folders->of(w_.kernel->mm_of(w_.pid));
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
  quantum_keeper_.reset();
  reset_sync_budget();
  std::vector<TraceRecord> batch(kBatch);
  while (!w_.control->stopped()) {
    const size_t n = w_.trace->read(batch.data(), kBatch);
    if (n == 0) break;
    for (size_t i = 0; i < n; ++i) {
      if (w_.control->stopped() || exited_) break;  // the limit, or the process exited
      const TraceRecord& r = batch[i];
      if (interrupt_cycles_) {  // another VCPU's shootdown interrupted this one
        ++interrupts_;
        interrupt_cycles_total_ += interrupt_cycles_;
        cycles_ += interrupt_cycles_;
        unsynced_cycles_ += interrupt_cycles_;
        interrupt_cycles_ = 0;
      }
      // Local time advances as the work is done, so a kernel entry syncs at the right time.
      const uint64_t instructions = instructions_of(r);
      instructions_ += instructions;
      const uint64_t compute = instruction_cycles(instructions);
      cycles_ += compute;
      unsynced_cycles_ += compute;
      if (r.kind == RefKind::kEvent) {  // an OS event: kernel work, not a memory reference
        cycles_ += os_event(w_.trace->events()[r.va]);  // already in local time
        sync_if_quantum_used();
        continue;
      }
      const uint64_t translation = reference(r);  // adds to local time page by page
      ++references_[static_cast<int>(r.kind)];
      translation_cycles_ += translation;
      cycles_ += translation;
      // The reference is complete: count it (a warm-up ending here resets its statistics too),
      // then yield to the kernel if the quantum is used up.
      if (w_.control->count_reference() && !w_.control->handle_event(now_cycles())) break;
      sync_if_quantum_used();
    }
  }
  if (!w_.control->stopped()) {
    for (const Child& c : children_) {  // traces without create events: children start now
      if (!c.created) create_child(c.stream, c.origin);
    }
  }
  release_vfork_parent();  // the stream ended without exec or exit
  sync_now();
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
  g.counter("interrupts", &interrupts_, "interrupts", "TLB shootdown interrupts from other VCPUs");
  g.counter("interrupt_cycles", &interrupt_cycles_total_, "cycles",
            "cycles in shootdown interrupt handlers");
  g.counter("unknown_children", &unknown_children_, "events",
            "create events for streams the manifest does not list (ignored)");
  for (int k = 0; k < kOsEventKinds; ++k) {
    g.counter(std::string("os_events.") + to_string(static_cast<OsEventKind>(k)), &os_events_[k],
              "events", "OS events of the trace replayed by this VCPU");
  }
  g.counter("kernel_instructions", &kernel_instructions_, "instructions",
            "guest kernel work charged to this VCPU (faults, OS events, process creation)");
  g.counter("kernel_access_cycles", &kernel_access_cycles_total_, "cycles",
            "the guest kernel's own page-table loads and stores (translation and memory)");
  g.counter("cycles", &cycles_, "cycles", "cycles spent by this VCPU");
  g.counter("translation_cycles", &translation_cycles_, "cycles",
            "cycles in TLB lookups, walks and page faults (kernel work included)");
  g.formula("translation_share", [this] { return ratio(translation_cycles_, cycles_); }, "ratio",
            "translation_cycles / cycles");
}

}  // namespace shadowsim
