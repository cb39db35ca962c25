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

// The child of `task` on `stream` whose create event has (or has not yet) been replayed.
GuestTask::Child* find_child(GuestTask& task, uint32_t stream, bool created) {
  for (GuestTask::Child& c : task.children) {
    if (c.stream == stream && c.created == created) return &c;
  }
  return nullptr;
}

}  // namespace

Vcpu::Vcpu(sc_core::sc_module_name name, int id, double cpi, VcpuWiring wiring)
    : sc_module(name), id_(id), w_(std::move(wiring)), hardware_state_(w_.paging),
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
bool Vcpu::sync_if_quantum_used() {
  if (unsynced_cycles_ < sync_budget_) return false;
  quantum_keeper_.inc(sc_core::sc_time::from_value(unsynced_cycles_));
  unsynced_cycles_ = 0;
  if (quantum_keeper_.need_sync()) {
    quantum_keeper_.sync();
    w_.control->at_sync(sc_core::sc_time_stamp().value());
  }
  reset_sync_budget();
  return true;
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
  if (w_.hv) return handle_shadow_fault(va, access, first);
  w_.mmu->page_fault_invalidate(va, w_.tlb_context, w_.paging.mode());
  const uint64_t kernel = guest_page_fault(va, first.error_code);
  const MmuResult again = w_.mmu->translate(va, access, w_.paging, w_.tlb_context);
  if (again.outcome != WalkOutcome::kOk) {
    throw Error(fmt::format("vcpu{}: {} of {:#x} still faults ({}) after the guest kernel "
                            "handled it: a model bug", id_, to_string(access.kind), va,
                            describe_error_code(again.error_code)));
  }
  unsynced_cycles_ += again.cycles;
  return kernel + again.cycles;  // the faulting lookup's cycles are the caller's
}

uint64_t Vcpu::guest_page_fault(uint64_t va, uint32_t error_code) {
  ++page_faults_;
  const uint64_t start = now_cycles();
  enter_kernel(w_.kernel->mm_of(task_->pid));
  const FaultOutcome handled = w_.kernel->page_fault(task_->pid, va, error_code);
  leave_kernel(handled.instructions);
  return now_cycles() - start;
}

// Under shadow paging the hardware walked the shadow tables: the fault exits to the hypervisor,
// which fixes the shadow (the access is retried), or reflects a #PF to the guest kernel (which
// handles it; the retry then faults in the shadows again, and the hypervisor fixes that), until
// the access goes through.
uint64_t Vcpu::handle_shadow_fault(uint64_t va, const Access& access, const MmuResult& first) {
  const uint64_t start = now_cycles();
  const uint64_t preempted = preempted_cycles_;
  MmuResult r = first;
  for (int round = 0; r.outcome != WalkOutcome::kOk; ++round) {
    if (r.outcome != WalkOutcome::kPageFault || round == kMaxFaultRounds) {
      throw Error(fmt::format("vcpu{}: {} of {:#x} still faults ({}) after {} rounds of shadow "
                              "faults: a model bug", id_, to_string(access.kind), va,
                              describe_error_code(r.error_code), round));
    }
    w_.mmu->page_fault_invalidate(va, w_.tlb_context, hardware_->mode());
    const HvFaultResult h = w_.hv->page_fault(*this, va, access, r.error_code, nullptr);
    maybe_yield();  // Xen reschedules on the way back to the guest
    if (h.kind == HvFaultResult::Kind::kInject) guest_page_fault(va, h.error_code);
    r = w_.mmu->translate(va, access, *hardware_, w_.tlb_context);
    unsynced_cycles_ += r.cycles;
  }
  if (w_.audit_tlb) audit_translation(va, access, r.pa);
  // A wait for a PCPU on the way back from an exit is the VCPU's time, not translation's: the
  // caller adds the whole to both, so translation takes it back here (modular arithmetic).
  translation_cycles_ -= preempted_cycles_ - preempted;
  return now_cycles() - start;  // the faulting lookup's cycles are the caller's
}

// A recorded OS event of the running task, applied to the guest kernel where it stands in the
// stream. Switch events (a recorded schedule) are only counted.
uint64_t Vcpu::os_event(GuestTask& task, const OsEvent& e, bool* blocked) {
  ++os_events_[static_cast<int>(e.kind)];
  if (e.kind == OsEventKind::kCreate) {  // enters the kernel itself and counts its cycles
    *blocked = create_child(task, e.stream, e.how);
    return 0;
  }
  const uint64_t start = now_cycles();
  enter_kernel(w_.kernel->mm_of(task.pid));
  GuestKernel& kernel = *w_.kernel;
  const uint32_t pid = task.pid;
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
      release_vfork_parent(task);
      switch_mm(pid);  // the new image runs on a new page table
      break;
    case OsEventKind::kExit:
      instructions += kernel.exit(pid);
      task.exited = true;
      release_vfork_parent(task);
      break;
    case OsEventKind::kWait: {  // wait4: block until the child stream has exited
      instructions += kernel.wait(pid);
      const GuestTask::Child* child = find_child(task, e.stream, /*created=*/true);
      // A child never created, or already gone, does not block (wait4 returns at once).
      if (child && child->task->state != GuestTask::State::kDone) {
        child->task->waiter = &task;
        w_.scheduler->block(&task);
        *blocked = true;
      }
      break;
    }
    case OsEventKind::kCreate:  // handled above
    case OsEventKind::kSwitch:  // a recorded schedule: not replayed
      break;
  }
  leave_kernel(instructions);  // kernel work and this VCPU's share of the flushes
  return now_cycles() - start;
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

void Vcpu::sync_now() {
  quantum_keeper_.inc(sc_core::sc_time::from_value(unsynced_cycles_));
  unsynced_cycles_ = 0;
  quantum_keeper_.sync();
  reset_sync_budget();
  resume_kernel();  // other VCPUs ran meanwhile; inside a kernel operation it is ours again
}

// Every entry into the guest kernel touches state other VCPUs share (the kernel, page tables,
// their TLBs through shootdowns): sync first, so it happens at global time = this VCPU's time.
void Vcpu::enter_kernel(uint32_t mm) {
  sync_now();
  if (w_.mm_locks && mm) {
    const uint64_t preempted = preempted_cycles_;
    const uint64_t waited =
        w_.pcpus ? w_.mm_locks->acquire(mm, id_, mm_lock_wake_, w_.pcpus->params().slice_cycles,
                                        [this] { maybe_yield(); })
                 : w_.mm_locks->acquire(mm, id_, mm_lock_wake_);
    if (waited) {
      trace_wait("waiting: guest mm lock", sc_core::sc_time_stamp().value() - waited);
      const uint64_t counted =
          std::min<uint64_t>(waited, sc_core::sc_time_stamp().value() - roi_start());
      guest_lock_cycles_ += counted - std::min<uint64_t>(counted, preempted_cycles_ - preempted);
      quantum_keeper_.reset();
      reset_sync_budget();
      take_pcpu();  // the lock may have come while this VCPU was descheduled
    }
    locked_mm_ = mm;
  }
  in_kernel_ = true;
  kernel_since_ = now_cycles();
  w_.shootdown->enter(this);
  w_.port->enter(this);
}

void Vcpu::resume_kernel() {
  if (!in_kernel_) return;
  w_.shootdown->enter(this);
  w_.port->resume(this);
}

void Vcpu::leave_kernel(uint64_t instructions) {
  w_.port->leave();  // kunmap_atomic of the slots still mapped
  const uint64_t charged = kernel_cycles(instructions) + w_.shootdown->take_initiator_cycles(*this);
  unsynced_cycles_ += charged;
  in_kernel_ = false;
  if (w_.timeline) {
    // On the VCPU's lane: a kernel operation may be descheduled and resumed on another PCPU.
    w_.timeline->span(Timeline::Lane::kVcpu, id_, "guest kernel", kernel_since_, now_cycles(),
                      id_);
  }
  if (locked_mm_) {
    sync_now();  // the release is seen by the waiters at this VCPU's time
    w_.mm_locks->release(locked_mm_, id_);
    locked_mm_ = 0;
  }
}

uint64_t Vcpu::take_pcpu() {
  if (!w_.pcpus || w_.pcpus->pcpu_of(id_) >= 0) return 0;
  sync_now();
  const uint64_t start = sc_core::sc_time_stamp().value();
  const int pcpu = w_.pcpus->acquire(id_, pcpu_wake_);
  const uint64_t waited = sc_core::sc_time_stamp().value() - std::max(start, roi_start());
  if (sc_core::sc_time_stamp().value() > start) {
    trace_wait("waiting: PCPU", start);
    preempted_cycles_ += waited;
    quantum_keeper_.reset();
    reset_sync_budget();
  }
  Mmu* mmu = w_.pcpu_mmus.at(static_cast<size_t>(pcpu));
  if (w_.tlb_context.vpid == 0) {
    // Without VPIDs the PCPU's entries carry no owner: whatever VCPU ran here last left them
    // (a real CPU without VPID flushes at every VM entry).
    mmu->flush_all();
  } else if (pcpu != last_pcpu_ && last_pcpu_ >= 0) {
    // KVM flushes a VCPU's VPID on the PCPU it migrates to (vmx_vcpu_load): entries it left
    // there earlier may be stale.
    mmu->flush_vpid(w_.tlb_context.vpid);
  }
  w_.mmu = mmu;
  last_pcpu_ = pcpu;
  ++pcpu_switches_;
  const uint64_t switch_cycles = w_.pcpus->params().switch_cycles;
  unsynced_cycles_ += switch_cycles;
  hypervisor_cycles_ += switch_cycles;
  // Shootdown IPIs that arrived while descheduled are handled now (their handler cycles were
  // charged when they were sent); the initiators waiting for the acknowledgement go on.
  for (Vcpu* initiator : ack_requests_) {
    if (--initiator->acks_pending_ == 0) initiator->ack_wake_.notify(sc_core::SC_ZERO_TIME);
  }
  ack_requests_.clear();
  return waited + switch_cycles;
}

void Vcpu::give_pcpu() {
  if (!w_.pcpus || w_.pcpus->pcpu_of(id_) < 0) return;
  sync_now();
  w_.pcpus->release(id_);
}

uint64_t Vcpu::maybe_yield() {
  if (!w_.pcpus) return 0;
  sync_now();
  if (!w_.pcpus->should_yield(id_)) return 0;
  ++preemptions_;
  give_pcpu();
  return take_pcpu();
}

void Vcpu::wait_for_acks(size_t count) {
  acks_pending_ += count;
  const uint64_t start = now_cycles();
  const uint64_t preempted = preempted_cycles_;
  sync_now();
  while (acks_pending_ > 0) {  // spinning in flush_tlb_others: the slice still runs out
    sc_core::wait(sc_core::sc_time::from_value(w_.pcpus->params().slice_cycles), ack_wake_);
    if (acks_pending_ > 0) maybe_yield();
  }
  quantum_keeper_.reset();
  reset_sync_budget();
  resume_kernel();
  trace_wait("waiting: shootdown acks", start);
  const uint64_t waited = now_cycles() - std::max(start, roi_start());
  ack_wait_cycles_ += waited - std::min<uint64_t>(waited, preempted_cycles_ - preempted);
}

void Vcpu::hv_lock_waited(uint64_t elapsed, uint64_t spinning) {
  spin_cycles_ += spinning;
  hypervisor_cycles_ += elapsed - spinning;
  quantum_keeper_.reset();  // global time moved on while this VCPU waited
  reset_sync_budget();
}

// A supervisor access of the kernel through this VCPU's MMU, then the page-table memory model;
// its cycles go to local time now. The kernel's own mappings are always present in the guest,
// so a guest page fault here is a model bug. Under shadow paging the access first syncs (guest
// page tables are shared state), and a fault in the shadow tables exits to the hypervisor: it
// fills the shadow (retry), or emulates the store (done: returns true).
bool Vcpu::kernel_access(uint64_t va, uint64_t expected_pa, const Access& access,
                         const GuestStore* store) {
  if (w_.hv) sync_now();
  for (int round = 0;; ++round) {
    const MmuResult r = w_.mmu->translate(va, access, *hardware_, w_.tlb_context);
    unsynced_cycles_ += r.cycles;
    kernel_access_cycles_total_ += r.cycles;
    if (r.outcome == WalkOutcome::kOk && r.pa == expected_pa) break;
    if (r.outcome == WalkOutcome::kPageFault && w_.hv && round < kMaxFaultRounds) {
      w_.mmu->page_fault_invalidate(va, w_.tlb_context, hardware_->mode());
      const HvFaultResult h = w_.hv->page_fault(*this, va, access, r.error_code, store);
      // Back to the guest kernel, which may hold its own locks; but not between the halves of
      // a PAE PTE, which Xen emulates in one exit.
      if (!w_.hv->emulate_ahead_armed(id_)) maybe_yield();
      resume_kernel();
      if (h.kind == HvFaultResult::Kind::kEmulated) return true;
      if (h.kind == HvFaultResult::Kind::kFixed) continue;
    }
    throw Error(fmt::format("vcpu{}: the guest kernel's {} of {:#x} (physical {:#x}) {}: a model "
                            "bug", id_, to_string(access.kind), va, expected_pa,
                            r.outcome == WalkOutcome::kOk
                                ? fmt::format("reached physical {:#x}", r.pa)
                                : "faulted (" + describe_error_code(r.error_code) + ")"));
  }
  PageTableMemory& memory = w_.mmu->table_memory();
  const uint64_t cycles = access.kind == AccessKind::kWrite
                              ? memory.write(w_.mmu->pcpu(), expected_pa)
                              : memory.read(w_.mmu->pcpu(), expected_pa);
  unsynced_cycles_ += cycles;
  kernel_access_cycles_total_ += cycles;
  return false;
}

uint64_t Vcpu::kernel_load(uint64_t va, uint64_t expected_pa, int width) {
  kernel_access(va, expected_pa, Access::read(false), nullptr);
  return w_.mmu->table_memory().memory().read(expected_pa, width);
}

bool Vcpu::kernel_store(uint64_t va, uint64_t expected_pa, int width, uint64_t value) {
  const GuestStore store{expected_pa, width, value};
  if (kernel_access(va, expected_pa, Access::write(false), &store)) return true;  // emulated
  if (w_.hv) w_.hv->check_direct_store(*this, expected_pa);  // hypervisor.audit only
  w_.mmu->table_memory().memory().write(expected_pa, value, width);
  return false;
}

// The TLB audit: a translation the MMU gave (from the TLB or a walk) must be one the guest's
// tables allow now, to the same frame. The guest kernel flushes before it returns to user code,
// so at a user reference no TLB may hold an entry its tables no longer allow.
void Vcpu::audit_translation(uint64_t va, const Access& access, uint64_t pa) const {
  const WalkResult now = walk(w_.mmu->memory(), w_.paging, va, access);
  if (!now.ok() || now.translation.pa != pa) {
    throw Error(fmt::format("vcpu{}: stale translation: {} of {:#x} by pid {} reached physical "
                            "{:#x}, but the guest's tables now give {}", id_,
                            to_string(access.kind), va, pid(), pa,
                            now.ok() ? fmt::format("{:#x}", now.translation.pa)
                                     : describe_error_code(now.error_code)));
  }
}

void Vcpu::kernel_invlpg(uint64_t va) { guest_invlpg(va); }

void Vcpu::guest_invlpg(uint64_t va) {
  if (!w_.hv) {
    w_.mmu->invlpg(va, w_.tlb_context);
    return;
  }
  w_.hv->invlpg(*this, va);
  maybe_yield();
  resume_kernel();
}

// A full flush of the guest's non-global entries: Linux reloads CR3 (native_flush_tlb_local).
void Vcpu::guest_flush_tlb() {
  if (!w_.hv) {
    w_.mmu->flush_non_global(w_.tlb_context);
    return;
  }
  w_.hv->cr3_write(*this, w_.paging);
  maybe_yield();
  resume_kernel();
}

uint64_t Vcpu::remote_invlpg(uint64_t va) {
  if (!w_.hv) {
    w_.mmu->invlpg(va, w_.tlb_context);
    return 0;
  }
  return w_.hv->remote_invlpg(*this, va);
}

uint64_t Vcpu::remote_flush_tlb() {
  if (!w_.hv) {
    w_.mmu->flush_non_global(w_.tlb_context);
    return 0;
  }
  return w_.hv->remote_cr3_reload(*this);
}

// switch_mm. Without PCIDs a CR3 load flushes every non-global entry; Linux skips the load when
// the mm stays the same. With PCIDs each CPU keeps its last kDynamicAsids mms tagged: switching
// back to one keeps its entries unless the mm was flushed meanwhile (its flush generation moved
// while this CPU was not running it, so no shootdown reached it: Linux compares tlb_gen).
void Vcpu::switch_mm(uint32_t pid) {
  const uint32_t mm = w_.kernel->mm_of(pid);
  const uint64_t generation = w_.shootdown->generation(mm);
  bool flush = false;
  if (w_.paging.controls().cr4_pcide) {
    int slot = -1;
    for (int i = 0; i < kDynamicAsids; ++i) {
      if (asids_[i].mm == mm) slot = i;
    }
    if (slot < 0) {  // the least recently used ASID takes the mm: its old entries go
      slot = 0;
      for (int i = 1; i < kDynamicAsids; ++i) {
        if (asids_[i].last_used < asids_[slot].last_used) slot = i;
      }
      flush = asids_[slot].mm != 0;  // an ASID never used holds nothing
    } else {
      flush = asids_[slot].generation != generation;
    }
    asids_[slot] = Asid{mm, generation, ++asid_clock_};
    asid_ = slot;
    w_.tlb_context.pcid = static_cast<uint16_t>(slot + 1);  // PCID 0 stays the kernel's
  } else {
    flush = asids_[0].mm != 0 && (asids_[0].mm != mm || asids_[0].generation != generation);
    asids_[0] = Asid{mm, generation, ++asid_clock_};
    asid_ = 0;
  }
  const uint64_t root = w_.kernel->cr3(pid);
  const uint64_t cr3 = root | w_.tlb_context.pcid;
  if (w_.hv) {  // the CR3 write exits; the hypervisor loads the shadow root (a full flush)
    w_.mmu->load_guest_cr3(w_.paging, w_.tlb_context, cr3, false);  // the guest's view
    w_.hv->cr3_write(*this, w_.paging);
    maybe_yield();
    resume_kernel();
    ++cr3_flushes_;
  } else {  // native, or nested: the hardware loads the guest's CR3 (PAE: PDPTEs via EPT)
    unsynced_cycles_ += w_.mmu->load_guest_cr3(w_.paging, w_.tlb_context, cr3, flush);
    cr3_flushes_ += flush;
  }
  folder_ = &w_.folders->of(mm);
  w_.kernel->switch_root(loaded_root_, root);  // the old top level may be freed now
  loaded_root_ = root;
}

// The parent side of fork, vfork and clone: at this VCPU's time (it syncs first: the child and
// the kernel's state are shared), the kernel creates the process and the child's task becomes
// runnable. A vfork parent then blocks until the child execs or exits.
bool Vcpu::create_child(GuestTask& task, uint32_t stream, StreamOrigin how) {
  GuestTask::Child* const it = find_child(task, stream, /*created=*/false);
  if (!it) {
    ++unknown_children_;
    return false;
  }
  it->created = true;
  const uint64_t start = now_cycles();
  GuestKernel& kernel = *w_.kernel;
  enter_kernel(kernel.alive(task.pid) ? kernel.mm_of(task.pid) : 0);
  uint64_t instructions = 0;
  uint32_t pid;
  const bool parent_alive = kernel.alive(task.pid);
  if (!parent_alive) {
    pid = kernel.create_process();  // the parent has exited: the child starts afresh
  } else if (how == StreamOrigin::kThread) {
    pid = kernel.clone_thread(task.pid);
  } else if (how == StreamOrigin::kVfork) {
    pid = kernel.vfork(task.pid);
  } else {
    pid = kernel.fork(task.pid, &instructions);
  }
  if (parent_alive && kernel.mm_of(pid) != kernel.mm_of(task.pid)) {
    // A forked child sees the parent's addresses where the parent saw them.
    w_.folders->copy(kernel.mm_of(task.pid), kernel.mm_of(pid));
  }
  const bool wait_for_child = how == StreamOrigin::kVfork && parent_alive;
  GuestTask& child = *it->task;
  child.pid = pid;
  child.vfork_parent = wait_for_child ? &task : nullptr;
  w_.scheduler->wake(&child);
  leave_kernel(instructions);
  cycles_ += now_cycles() - start;
  if (wait_for_child) w_.scheduler->block(&task);
  return wait_for_child;
}

void Vcpu::release_vfork_parent(GuestTask& task) {
  if (!task.vfork_parent) return;
  w_.scheduler->wake(task.vfork_parent);
  task.vfork_parent = nullptr;
}

void Vcpu::run() {
  try {
    quantum_keeper_.reset();
    reset_sync_budget();
    cycles_ += take_pcpu();  // with shared PCPUs a VCPU may wait for one from the start
    uint64_t idle_since = sc_core::sc_time_stamp().value();
    for (;;) {
      const uint64_t preempted = preempted_cycles_;
      uint64_t pcpu_cycles = 0;  // waiting for a PCPU after waking, and the switch
      GuestTask* task = w_.scheduler->next(id_, *w_.control, [this] { give_pcpu(); });
      if (!task) break;
      pcpu_cycles += take_pcpu();  // no-op unless it gave its PCPU up while waiting
      quantum_keeper_.reset();  // the wait for work let global time pass
      reset_sync_budget();
      idle_cycles_ += sc_core::sc_time_stamp().value() - std::max(idle_since, roi_start()) -
                      (preempted_cycles_ - preempted);
      cycles_ += pcpu_cycles;
      task_ = task;
      const bool context_switch = last_task_ && last_task_ != task;
      const uint64_t switch_start = now_cycles();
      if (context_switch) {  // schedule() and switch_to(): kernel work on this VCPU
        ++context_switches_;
        enter_kernel();
      }
      const uint32_t mm = w_.kernel->mm_of(task->pid);
      if (asid_ < 0 || asids_[asid_].mm != mm ||
          asids_[asid_].generation != w_.shootdown->generation(mm)) {
        switch_mm(task->pid);
      }
      if (context_switch) leave_kernel(w_.scheduler->params().context_switch_instructions);
      cycles_ += now_cycles() - switch_start;
      last_task_ = task;
      const Stop stop = run_task(*task);
      if (asid_ >= 0) asids_[asid_].generation = w_.shootdown->generation(asids_[asid_].mm);
      task_ = nullptr;
      sync_now();
      idle_since = sc_core::sc_time_stamp().value();
      if (stop == Stop::kSlice) w_.scheduler->preempt(task);
      if (stop == Stop::kDone) finish_task(*task);
      if (stop == Stop::kLimit) break;
    }
    if (w_.control->stopped()) w_.scheduler->stop_all();
    give_pcpu();
    sync_now();
    finish_cycles_ = sc_core::sc_time_stamp().value();
    w_.control->at_sync(finish_cycles_);
    finished_ = true;
  } catch (const sc_core::sc_unwind_exception&) {
    throw;  // killed by stop_on_error() of another VCPU: let SystemC unwind this thread
  } catch (const Error& e) {
    error_ = e.what();
    stop_on_error();
  } catch (const std::exception& e) {  // a bug: stop the simulation the orderly way
    error_ = fmt::format("vcpu{}: internal error: {}", id_, e.what());
    stop_on_error();
  }
}

// Ends the simulation after this VCPU's error. The other threads are killed first, while the
// simulation still runs, so that their stacks unwind and free what their frames own; deleting
// the simulation context with them suspended would free their stacks without unwinding, a leak
// per failed run in a long-lived process (LeakSanitizer; docs/sanitizers.md).
void Vcpu::stop_on_error() {
  const sc_core::sc_process_handle self = sc_core::sc_get_current_process_handle();
  std::vector<sc_core::sc_object*> pending = sc_core::sc_get_top_level_objects();
  while (!pending.empty()) {
    sc_core::sc_object* object = pending.back();
    pending.pop_back();
    for (sc_core::sc_object* child : object->get_child_objects()) pending.push_back(child);
    sc_core::sc_process_handle process(object);
    if (process.valid() && process.proc_kind() == sc_core::SC_THREAD_PROC_ && process != self &&
        !process.terminated()) {
      process.kill();
    }
  }
  sc_core::sc_stop();
}

// The end of a task's stream (or its exit): children it never created explicitly start now (a
// trace without create events), a vfork parent still waiting is released.
void Vcpu::finish_task(GuestTask& task) {
  task_ = &task;
  if (!w_.control->stopped()) {
    for (const GuestTask::Child& c : task.children) {
      if (!c.created) create_child(task, c.stream, c.origin);
    }
  }
  release_vfork_parent(task);
  if (task.waiter) {  // the parent in wait4 goes on
    w_.scheduler->wake(task.waiter);
    task.waiter = nullptr;
  }
  task_ = nullptr;
  task.trace.reset();  // its file and read-ahead are not needed any more
  std::vector<TraceRecord>().swap(task.batch);  // frees it (`= {}` would keep the capacity)
  w_.scheduler->done(&task);
}

Vcpu::Stop Vcpu::run_task(GuestTask& task) {
  const uint64_t slice_end = now_cycles() + w_.scheduler->params().slice_cycles;
  if (!task.trace && !task.trace_ended) task.trace = open_trace(task.trace_path);
  if (task.batch.empty()) task.batch.resize(kBatch);
  while (!w_.control->stopped()) {
    if (task.next == task.count) {
      if (task.trace_ended || task.exited) return Stop::kDone;
      task.count = task.trace->read(task.batch.data(), kBatch);
      task.next = 0;
      if (task.count == 0) {
        task.trace_ended = true;
        return Stop::kDone;
      }
    }
    const TraceRecord& r = task.batch[task.next++];
    if (interrupt_cycles_ || hv_interrupt_cycles_) {  // another VCPU's IPI interrupted this one
      ++interrupts_;
      interrupt_cycles_total_ += interrupt_cycles_;
      hypervisor_cycles_ += hv_interrupt_cycles_;  // its exits, or a hypervisor flush IPI
      cycles_ += interrupt_cycles_ + hv_interrupt_cycles_;
      unsynced_cycles_ += interrupt_cycles_ + hv_interrupt_cycles_;
      interrupt_cycles_ = 0;
      hv_interrupt_cycles_ = 0;
    }
    // Local time advances as the work is done, so a kernel entry syncs at the right time.
    const uint64_t instructions = instructions_of(r);
    instructions_ += instructions;
    const uint64_t compute = instruction_cycles(instructions);
    cycles_ += compute;
    unsynced_cycles_ += compute;
    if (r.kind == RefKind::kEvent) {  // an OS event: kernel work, not a memory reference
      bool blocked = false;
      cycles_ += os_event(task, task.trace->events()[r.va], &blocked);  // already in local time
      if (task.exited) {
        task.next = task.count;
        return Stop::kDone;
      }
      if (blocked) return Stop::kBlocked;
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
    // The slice is checked at quantum boundaries only: the hit path stays free of time reads.
    if (!sync_if_quantum_used()) continue;
    cycles_ += maybe_yield();  // the PCPU's slice (a timer exit, then rescheduling)
    if (now_cycles() >= slice_end && w_.scheduler->someone_waiting(id_)) return Stop::kSlice;
  }
  return Stop::kLimit;
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
  g.counter("context_switches", &context_switches_, "switches",
            "guest context switches on this VCPU (another task took it)");
  g.counter("cr3_flushes", &cr3_flushes_, "flushes",
            "TLB flushes by address-space switches (CR3 loads without a reusable PCID)");
  g.counter("idle_cycles", &idle_cycles_, "cycles", "cycles with no task to run");
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
  g.counter("hypervisor_cycles", &hypervisor_cycles_, "cycles",
            "in the hypervisor: exits, the shadow fault path, emulation, flush IPIs (shadow "
            "paging; part of cycles)");
  g.counter("spin_cycles", &spin_cycles_, "cycles",
            "spinning on the shadow lock while another VCPU held it (part of cycles)");
  g.counter("preempted_cycles", &preempted_cycles_, "cycles",
            "runnable but waiting for a PCPU (VCPUs outnumber PCPUs; part of cycles)");
  g.counter("ack_wait_cycles", &ack_wait_cycles_, "cycles",
            "waiting for TLB-shootdown acknowledgements of descheduled VCPUs (part of cycles)");
  g.counter("preemptions", &preemptions_, "slices",
            "slices that ended with another VCPU waiting for the PCPU");
  g.counter("pcpu_switches", &pcpu_switches_, "switches", "times this VCPU was put on a PCPU");
  g.counter("guest_lock_cycles", &guest_lock_cycles_, "cycles",
            "waiting for another VCPU's kernel operation on the same address space (part of "
            "cycles)");
  g.formula("guest_cycles",
            [this] {
              return static_cast<double>(cycles_) - static_cast<double>(hypervisor_cycles_) -
                     static_cast<double>(spin_cycles_) - static_cast<double>(preempted_cycles_);
            },
            "cycles", "cycles - hypervisor_cycles - spin_cycles - preempted_cycles");
}

}  // namespace shadowsim
