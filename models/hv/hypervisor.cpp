#include "hv/hypervisor.h"

#include <fmt/format.h>
#include <systemc>

#include "common/error.h"
#include "mmu/mmu.h"
#include "paging/guest_memory.h"
#include "shadow/shadow_entry.h"

namespace shadowsim {

const char* to_string(Virtualization v) {
  switch (v) {
    case Virtualization::kNative: return "native";
    case Virtualization::kShadow: return "shadow";
    case Virtualization::kNested: return "nested";
  }
  return "?";
}

const char* to_string(StrategyKind kind) {
  switch (kind) {
    case StrategyKind::kLocked: return "locked";
    case StrategyKind::kUnlocked: return "unlocked";
    case StrategyKind::kUnlockedRewalk: return "unlocked-rewalk";
    case StrategyKind::kUnlockedCompare: return "unlocked-compare";
    case StrategyKind::kAutoUp: return "auto-up";
    case StrategyKind::kUnlockedNocheck: return "unlocked-nocheck";
    case StrategyKind::kUnlockedRw: return "unlocked-rw";
  }
  return "?";
}

namespace {

uint64_t now_cycles() { return sc_core::sc_time_stamp().value(); }

}  // namespace

Hypervisor::Hypervisor(GuestMemory& memory, uint64_t guest_frames, uint64_t pool_first_frame,
                       uint64_t pool_pages, PagingMode guest_mode, unsigned vcpus,
                       const HypervisorParams& params, uint64_t seed)
    : memory_(memory),
      params_(params),
      shadows_(memory, guest_frames, pool_first_frame, pool_pages, guest_mode, vcpus,
               params.shadow),
      lock_(make_spin_lock("shadow_lock", params.lock, seed)),
      strategy_(make_walk_strategy(params.strategy, vcpus)),
      vcpus_(vcpus) {
  if (params.audit) auditor_ = std::make_unique<ShadowAuditor>(shadows_, params.audit_history);
}

Hypervisor::~Hypervisor() = default;

void Hypervisor::attach(HvCpu* cpu) { vcpus_.at(static_cast<size_t>(cpu->vcpu_index())).cpu = cpu; }

// ---------------------------------------------------------------------------------------------
// Costs, exits, flushes

void Hypervisor::charge(HvCpu& cpu, const ShadowWork& w) {
  const HvCosts& c = params_.costs;
  const uint64_t cycles =
      uint64_t{w.hash_lookups} * c.hash_lookup_cycles +
      uint64_t{w.hash_chain_steps} * c.hash_chain_step_cycles +
      uint64_t{w.hash_inserts + w.hash_deletes} * c.hash_update_cycles +
      uint64_t{w.p2m_lookups} * c.p2m_lookup_cycles +
      uint64_t{w.guest_entries_read} * c.guest_entry_read_cycles +
      uint64_t{w.guest_entries_written} * c.guest_entry_cmpxchg_cycles +
      uint64_t{w.shadow_entries_read} * c.shadow_entry_read_cycles +
      uint64_t{w.shadow_entries_written} * c.shadow_entry_write_cycles +
      uint64_t{w.pages_allocated} * c.page_alloc_cycles +
      uint64_t{w.pages_freed} * c.page_free_cycles +
      uint64_t{w.shadows_created} * c.shadow_create_cycles +
      uint64_t{w.shadows_destroyed} * c.shadow_destroy_cycles +
      uint64_t{w.promotions + w.demotions} * c.promotion_cycles +
      uint64_t{w.heuristic_probes} * c.heuristic_probe_cycles +
      uint64_t{w.bf_shadows_scanned} * c.brute_force_shadow_cycles +
      uint64_t{w.bf_entries_scanned} * c.brute_force_entry_cycles +
      uint64_t{w.write_mappings_removed} * c.write_mapping_removed_cycles +
      uint64_t{w.validations} * c.validation_cycles;
  cpu.hv_spend(cycles);
}

void Hypervisor::flush_pcpu_tlb(HvCpu& cpu) { cpu.mmu().flush_all(); }

// Without VPID the TLB cannot tell guest from host entries: every exit and entry flushes it.
void Hypervisor::vm_exit(HvCpu& cpu, ExitReason reason) {
  ++stats_.exits[static_cast<int>(reason)];
  cpu.hv_spend(params_.costs.vmexit_cycles + params_.costs.exit_dispatch_cycles);
  if (!params_.vpid) flush_pcpu_tlb(cpu);
}

void Hypervisor::vm_entry(HvCpu& cpu) { cpu.hv_spend(params_.costs.vmentry_cycles); }

uint64_t Hypervisor::remote_exit(HvCpu& cpu, ExitReason reason) {
  ++stats_.exits[static_cast<int>(reason)];
  if (!params_.vpid) flush_pcpu_tlb(cpu);
  return exit_round_trip();
}

// flush_tlb_mask(domain_dirty_cpumask): every PCPU that ran a VCPU of the domain (here: every
// VCPU's PCPU) loses its TLB entries, at the initiator's time; the others run an IPI handler.
void Hypervisor::flush_domain(HvCpu& cpu) {
  ++stats_.domain_flushes;
  bool remote = false;
  for (VcpuState& v : vcpus_) {
    if (!v.cpu) continue;
    flush_pcpu_tlb(*v.cpu);
    if (v.cpu == &cpu) continue;
    v.cpu->hv_interrupt(params_.costs.flush_handler_cycles);
    remote = true;
  }
  cpu.hv_spend(params_.costs.local_flush_cycles + (remote ? params_.costs.flush_ipi_cycles : 0));
}

void Hypervisor::bump(HvCpu& cpu, BumpCause cause) {
  ++version_;
  bumps_[version_ % kBumpLog] = Bump{cause, static_cast<unsigned>(cpu.vcpu_index())};
  ++stats_.version_bumps[static_cast<int>(cause)];
  cpu.hv_spend(params_.costs.version_bump_cycles);
  note(cpu, fmt::format("version -> {} ({})", version_,
                        cause == BumpCause::kEmulatedWrite ? "emulated write"
                                                           : "write access removed"));
}

uint32_t Hypervisor::access_pfec(const Access& access) const {
  uint32_t pfec = 0;
  if (access.kind == AccessKind::kWrite) pfec |= pfec::kWrite;
  if (access.kind == AccessKind::kFetch) pfec |= pfec::kFetch;
  if (access.user) pfec |= pfec::kUser;
  return pfec;
}

void Hypervisor::note(HvCpu& cpu, const std::string& what) {
  if (auditor_) auditor_->note(now_cycles(), cpu.vcpu_index(), what);
}

void Hypervisor::audit_frames(HvCpu& cpu, const std::vector<uint64_t>& gfns, const char* when) {
  if (!auditor_) return;
  auditor_->check_frames(gfns, fmt::format("checked by vcpu{} at t={} after {}",
                                           cpu.vcpu_index(), now_cycles(), when));
}

// The frames a fault's commit touched: the walk's tables, a superpage's FL1, the target.
void Hypervisor::audit_commit(ShadowFault& f, const char* when) {
  if (!auditor_) return;
  std::vector<uint64_t> frames;
  for (int level = 1; level <= 4; ++level) {
    if (f.walk.levels[level].valid) frames.push_back(f.walk.levels[level].table_gfn);
  }
  if (f.walk.pse) {
    frames.push_back(superpage_first_gfn(shadows_.guest_state(f.vcpu).mode(),
                                         f.walk.levels[2].value));
  }
  frames.push_back(f.walk.gfn);
  audit_frames(f.cpu, frames, when);
}

void Hypervisor::audit_all() {
  if (auditor_) auditor_->check_all("full audit");
}

void Hypervisor::check_direct_store(HvCpu& cpu, uint64_t pa) {
  if (!auditor_ || !shadows_.is_page_table(pa >> kPageShift)) return;
  throw Error(fmt::format("shadow audit: vcpu{}'s store to guest page table {:#x} went through "
                          "without trapping at t={}: a writable mapping of a shadowed table "
                          "survived (a missing flush?)", cpu.vcpu_index(), pa, now_cycles()));
}

// ---------------------------------------------------------------------------------------------
// Steps the strategies call

void Hypervisor::lock(HvCpu& cpu, LockMode mode) {
  cpu.hv_sync();
  const uint64_t start = cpu.hv_now();
  const uint64_t elapsed = lock_->acquire({cpu.vcpu_index(), cpu.pcpu_index()}, mode);
  const uint64_t uncontended = params_.lock.atomic_cycles + params_.lock.transfer_cycles;
  const uint64_t spinning = elapsed > uncontended ? elapsed - uncontended : 0;
  cpu.hv_lock_waited(elapsed, spinning);
  if (spinning) trace(cpu, "spin: shadow lock", start);
  vcpus_.at(static_cast<size_t>(cpu.vcpu_index())).lock_since = cpu.hv_now();
  note(cpu, "lock");
}

void Hypervisor::unlock(HvCpu& cpu) {
  cpu.hv_sync();
  trace(cpu, "hold: shadow lock", vcpus_.at(static_cast<size_t>(cpu.vcpu_index())).lock_since);
  note(cpu, "unlock");
  cpu.hv_spend(lock_->release({cpu.vcpu_index(), cpu.pcpu_index()}));
}

uint64_t Hypervisor::read_version(ShadowFault& f) {
  f.cpu.hv_sync();
  f.cpu.hv_spend(params_.costs.version_read_cycles);
  return version_;
}

void Hypervisor::guest_walk(ShadowFault& f) {
  f.cpu.hv_sync();
  ShadowWork w;
  f.walk = shadows_.guest_walk(f.vcpu, f.va, f.access, w);
  if (f.walk.ok()) shadows_.apply_walk_ad(f.walk, w);
  charge(f.cpu, w);
  note(f.cpu, f.walk.ok() ? fmt::format("guest walk {:#x}: frame {:#x}, leaf {:#x}", f.va,
                                        f.walk.gfn, f.walk.l1e)
                          : fmt::format("guest walk {:#x}: #PF {}", f.va,
                                        describe_error_code(f.walk.result.error_code)));
}

bool Hypervisor::remove_write_accesses(ShadowFault& f) {
  f.cpu.hv_sync();
  ShadowWork w;
  const bool removed = shadows_.gw_remove_write_accesses(f.walk, w);
  charge(f.cpu, w);
  if (!removed) return false;
  ++stats_.rm_write_flush_tlb;
  note(f.cpu, "write access removed from the walk's tables");
  if (strategy_->uses_version() && params_.bump.write_access_removal) {
    bump(f.cpu, BumpCause::kWriteAccessRemoval);
  }
  flush_domain(f.cpu);
  return true;
}

// Modelled as: find where the walk goes now (not charged: it is the same reads), protect those
// tables top-down, then do the walk; a store that landed before a table was protected may have
// moved the path to a table not yet protected, so repeat until the walk stays on protected
// tables (stores to those now trap, and their emulation waits for the lock this VCPU holds).
void Hypervisor::protect_and_walk(ShadowFault& f) {
  const ShadowMode mode = shadows_.mode();
  for (int round = 0; round < 16; ++round) {
    f.cpu.hv_sync();
    const WalkResult path = walk(memory_, shadows_.guest_state(f.vcpu), f.va, f.access);
    for (uint8_t i = 0; i < path.ref_count; ++i) {
      const int level = path.refs[i].level;
      if (level == 4 || (level == 3 && mode != ShadowMode::k4on4) ||
          (level == 2 && mode == ShadowMode::k2on3)) {
        continue;  // the top level: protected when CR3 was loaded
      }
      const uint64_t table = path.refs[i].entry_pa >> kPageShift;
      f.cpu.hv_sync();
      ShadowWork w;
      const bool removed = shadows_.remove_write_access(f.vcpu, table, level, f.va, w);
      charge(f.cpu, w);
      if (!removed) continue;
      ++stats_.rm_write_flush_tlb;
      note(f.cpu, fmt::format("write access removed from L{} table {:#x}", level, table));
      flush_domain(f.cpu);
    }
    guest_walk(f);
    bool same = f.walk.result.ref_count == path.ref_count;
    for (uint8_t i = 0; same && i < path.ref_count; ++i) {
      same = f.walk.result.refs[i].entry_pa == path.refs[i].entry_pa;
    }
    if (same) return;
  }
  throw Error(fmt::format("vcpu{}: the guest walk of {:#x} kept moving to unprotected tables",
                          f.vcpu, f.va));
}

bool Hypervisor::check_walk(ShadowFault& f, uint64_t since) {
  f.cpu.hv_sync();
  if (since != ~0ULL) {  // which bumps the window saw, each cause counted once
    if (version_ - since > kBumpLog) {
      ++stats_.recheck_unknown_cause;
    } else {
      bool seen[2][2] = {{false, false}, {false, false}};
      for (uint64_t n = since + 1; n <= version_; ++n) {
        const Bump& b = bumps_[n % kBumpLog];
        seen[static_cast<int>(b.cause)][b.vcpu != f.vcpu ? 1 : 0] = true;
      }
      for (int c = 0; c < 2; ++c) {
        for (int o = 0; o < 2; ++o) stats_.recheck_cause[c][o] += seen[c][o];
      }
    }
  }
  ShadowWork w;
  const bool same = shadows_.check_gwalk(f.walk, w);
  charge(f.cpu, w);
  note(f.cpu, same ? "re-check: walk still good" : "re-check: walk changed");
  return same;
}

void Hypervisor::record_walk(ShadowFault& f) {
  if (!shadows_.gfn_is_ram(f.walk.gfn)) {  // step A7: the model's guests touch RAM only
    throw Error(fmt::format("vcpu{}: guest walk of {:#x} reached frame {:#x} beyond guest RAM",
                            f.vcpu, f.va, f.walk.gfn));
  }
  shadows_.vtlb(f.vcpu).insert(f.va, f.walk.gfn, access_pfec(f.access));
  f.cpu.hv_spend(params_.costs.p2m_lookup_cycles + params_.costs.vtlb_cycles);
}

// ---------------------------------------------------------------------------------------------
// The shadow #PF (research §2)

HvFaultResult Hypervisor::page_fault(HvCpu& cpu, uint64_t va, const Access& access,
                                     uint32_t error_code, const GuestStore* store) {
  const uint64_t start = cpu.hv_now();  // the VCPU's clock: it may have run ahead of SystemC's
  const unsigned v = static_cast<unsigned>(cpu.vcpu_index());
  VcpuState& state = vcpus_.at(v);
  const uint64_t ahead_pa = state.emulate_ahead_pa;
  state.emulate_ahead_pa = kNoAhead;
  if (store && ahead_pa != kNoAhead && (store->pa ^ ahead_pa) == 4) {
    // PAE emulate-ahead (research §1.6): the emulator went on past the first half of a PTE
    // and emulated this second half in the same exit: no exit, no fault path of its own.
    ++stats_.emulate_ahead;
    cpu.hv_sync();
    emulate(cpu, va, *store);
    state.emulate_ahead_pa = kNoAhead;  // Xen stops after the second page-table write
    cpu.hv_sync();
    return {HvFaultResult::Kind::kEmulated};
  }
  ++stats_.shadow_fault;
  vm_exit(cpu, ExitReason::kPageFault);
  cpu.hv_sync();  // the fast-emulation check reads shared state (the shadow-freed generation)
  HvFaultResult result{HvFaultResult::Kind::kFixed};

  const bool same_frame = state.emulated_valid && state.emulated_page == va >> kPageShift &&
                          state.emulated_generation == shadows_.shadow_freed_generation();
  if (same_frame && error_code != (pfec::kPresent | pfec::kWrite)) {
    state.emulated_valid = false;  // Xen: another kind of fault on that frame ends it
  }
  if (store && same_frame && error_code == (pfec::kPresent | pfec::kWrite)) {
    ++stats_.fast_emulate;  // A1: the frame written last time: straight to the emulator
    emulate(cpu, va, *store);
    result.kind = HvFaultResult::Kind::kEmulated;
  } else if ((error_code & pfec::kReserved) && shadows_.magic_enabled()) {
    result = fast_not_present(cpu, va, access, error_code);  // A2
  } else {
    ShadowFault f{cpu, v, va, access, {}};
    const WalkVerdict verdict = strategy_->walk(*this, f);
    if (verdict == WalkVerdict::kInject) {
      ++stats_.bail_real_fault;
      shadows_.reset_early_unshadow(v);  // Xen: sh_reset_early_unshadow on the bail path
      result = {HvFaultResult::Kind::kInject, f.walk.result.error_code};
    } else if (verdict == WalkVerdict::kRetry) {
      ++stats_.refaults;
    } else if (verdict == WalkVerdict::kProceedShared) {
      result = fix_shared(f);
    } else {
      result = fix(f, store);
    }
  }
  vm_entry(cpu);
  cpu.hv_sync();
  fault_cycles_.sample(cpu.hv_now() - start);
  if (timeline_) {
    trace(cpu, "hypervisor: #PF", start,
          fmt::format("{:#x} {} -> {}", va, describe_error_code(error_code),
                      result.kind == HvFaultResult::Kind::kFixed     ? "fixed"
                      : result.kind == HvFaultResult::Kind::kInject ? "reflected"
                                                                     : "emulated"));
  }
  if (auditor_ && stats_.shadow_fault % kFullAuditEvery == 0) {
    auditor_->check_all(fmt::format("periodic full audit after {} shadow faults",
                                    stats_.shadow_fault));
  }
  return result;
}

// A2: a magic guest-not-present shadow L1 entry: reflect the fault to the guest without the
// lock, or, if the entry is no longer magic (another VCPU fixed it), let the guest retry.
HvFaultResult Hypervisor::fast_not_present(HvCpu& cpu, uint64_t va, const Access& access,
                                           uint32_t error_code) {
  cpu.hv_sync();
  const unsigned v = static_cast<unsigned>(cpu.vcpu_index());
  const WalkResult now = walk(memory_, shadows_.shadow_state(v), va, access);
  cpu.hv_spend(uint64_t{now.ref_count} * params_.costs.shadow_entry_read_cycles);
  const bool magic = now.ref_count > 0 && now.refs[now.ref_count - 1].level == 1 &&
                     sentry::is_magic(now.refs[now.ref_count - 1].value);
  if (!magic) {
    ++stats_.fast_fail;
    return {HvFaultResult::Kind::kFixed};
  }
  ++stats_.fast_gnp;
  shadows_.reset_early_unshadow(v);
  note(cpu, fmt::format("fast path: {:#x} not present in the guest", va));
  return {HvFaultResult::Kind::kInject, error_code & ~(pfec::kReserved | pfec::kPresent)};
}

// Steps A9-A14 / B12-B17 with the lock held; releases it.
HvFaultResult Hypervisor::fix(ShadowFault& f, const GuestStore* store) {
  HvCpu& cpu = f.cpu;
  cpu.hv_sync();
  ShadowWork w;
  const ShadowMode mode = shadows_.mode();
  shadows_.prealloc(l1_type(mode), mode == ShadowMode::k4on4 ? 3 : 1, w);
  const ShadowL1Slot slot = shadows_.get_and_create_l1e(f.walk, w);
  const bool changed = shadows_.set_l1e(slot, shadows_.propagate_l1e(f.walk, w), w);
  shadows_.prefetch(slot, f.walk, w);
  charge(cpu, w);
  if (w.flush_all_pcpus || changed || w.flush_needed) flush_domain(cpu);  // one flush
  note(cpu, fmt::format("shadow of {:#x} set", f.va));
  audit_commit(f, "a shadow fault's commit");

  if (f.access.kind == AccessKind::kWrite && shadows_.is_page_table(f.walk.gfn)) {  // A12
    ++stats_.fault_emulate_write;
    if (f.access.user) {  // A14: a user-mode write to a page table: unshadow it, retry
      ++stats_.user_unshadow;
      ShadowWork u;
      const RemoveShadowsResult r = shadows_.remove_shadows(f.walk.gfn, false, u);
      charge(cpu, u);
      if (r.flush_needed) flush_domain(cpu);
      unlock(cpu);
      return {HvFaultResult::Kind::kFixed};
    }
    unlock(cpu);
    if (!store) {
      throw Error(fmt::format("vcpu{}: a supervisor write to page table {:#x} at {:#x} faulted "
                              "without a store to emulate: a model bug", f.vcpu, f.walk.gfn,
                              f.va));
    }
    emulate(cpu, f.va, *store);
    return {HvFaultResult::Kind::kEmulated};
  }
  shadows_.reset_early_unshadow(f.vcpu);
  ++stats_.fault_fixed;
  unlock(cpu);
  return {HvFaultResult::Kind::kFixed};
}

// Under the read lock only the L1 entry may change: every shadow the walk needs must exist
// already (nothing to allocate, nothing to promote, no write access to remove).
bool Hypervisor::can_fix_shared(ShadowFault& f) {
  f.cpu.hv_sync();
  const ShadowMode mode = shadows_.mode();
  const auto& l = f.walk.levels;
  uint32_t lookups = 0;
  auto shadowed = [&](uint64_t gfn, ShadowType type) {
    ++lookups;
    return shadows_.find_shadow(gfn, type).has_value();
  };
  bool ok = true;
  if (mode == ShadowMode::k4on4) {
    ok = ok && l[3].valid && shadowed(l[3].table_gfn, table_type(mode, 3));
    ok = ok && l[2].valid && shadowed(l[2].table_gfn, table_type(mode, 2));
  }
  if (ok) {
    ok = f.walk.pse ? shadowed(superpage_first_gfn(shadows_.guest_state(f.vcpu).mode(),
                                                   l[2].value), fl1_type(mode))
                    : l[1].valid && shadowed(l[1].table_gfn, l1_type(mode));
  }
  f.cpu.hv_spend(uint64_t{lookups} * params_.costs.hash_lookup_cycles);
  // A write to a page table is emulated (A12) or unshadows the table (A14): shadows change, so
  // the exclusive tail (fix) does it. Readers exclude promotions, so this cannot change before
  // the fault's commit.
  return ok && !(f.access.kind == AccessKind::kWrite && shadows_.is_page_table(f.walk.gfn));
}

// The read-lock tail: the slot is read, the new entry computed, and it is installed only if the
// slot still holds what was read (a compare-and-swap): another VCPU that filled or changed it
// meanwhile makes this fault return to the guest, which faults again if it still must.
HvFaultResult Hypervisor::fix_shared(ShadowFault& f) {
  HvCpu& cpu = f.cpu;
  cpu.hv_sync();
  ShadowWork w;
  const ShadowL1Slot slot = shadows_.get_and_create_l1e(f.walk, w);  // links only
  if (w.shadows_created) {
    throw Error(fmt::format("vcpu{}: a fault under the read lock created a shadow: a model bug",
                            f.vcpu));
  }
  const uint64_t seen = memory_.read64(slot.entry_pa);
  const uint64_t value = shadows_.propagate_l1e(f.walk, w);
  charge(cpu, w);
  cpu.hv_sync();
  if (memory_.read64(slot.entry_pa) != seen) {
    ++stats_.cas_failures;
    note(cpu, fmt::format("cmpxchg of the shadow of {:#x} failed", f.va));
    unlock(cpu);
    return {HvFaultResult::Kind::kFixed};
  }
  ShadowWork s;
  const bool changed = shadows_.set_l1e(slot, value, s);
  charge(cpu, s);
  cpu.hv_spend(params_.costs.guest_entry_cmpxchg_cycles);  // the cmpxchg itself
  if (changed || s.flush_needed) flush_domain(cpu);
  ++stats_.shared_fixes;
  note(cpu, fmt::format("shadow of {:#x} set under the read lock", f.va));
  audit_commit(f, "a shadow fault's commit under the read lock");
  unlock(cpu);
  shadows_.reset_early_unshadow(f.vcpu);
  ++stats_.fault_fixed;
  return {HvFaultResult::Kind::kFixed};
}

// An emulated guest page-table write (research §1.6): translate the destination (vTLB, else a
// guest walk), then under the lock write guest memory, re-validate every shadow of the frame
// and bump the version (site 2: every emulated write).
void Hypervisor::emulate(HvCpu& cpu, uint64_t va, const GuestStore& store) {
  const unsigned v = static_cast<unsigned>(cpu.vcpu_index());
  cpu.hv_sync();
  cpu.hv_spend(params_.costs.emulation_cycles + params_.costs.vtlb_cycles);
  const Access access = Access::write(false);
  uint64_t gfn;
  if (const auto hit = shadows_.vtlb(v).lookup(va, access_pfec(access))) {
    gfn = *hit;
  } else {
    ShadowWork w;
    const GuestWalk gw = shadows_.guest_walk(v, va, access, w);  // sh_gva_to_gfn
    charge(cpu, w);
    if (!gw.ok()) {
      throw Error(fmt::format("vcpu{}: the emulator's walk of the guest kernel's store to {:#x} "
                              "faulted ({}): a model bug", v, va,
                              describe_error_code(gw.result.error_code)));
    }
    gfn = gw.gfn;
    shadows_.vtlb(v).insert(va, gfn, access_pfec(access));
  }
  if (gfn != store.pa >> kPageShift) {
    throw Error(fmt::format("vcpu{}: the guest kernel's store to {:#x} should reach physical "
                            "{:#x}, the guest's tables give frame {:#x}: a model bug", v, va,
                            store.pa, gfn));
  }
  const uint64_t offset = store.pa & (kPageSize - 1);
  const bool aligned = (store.width == 4 || store.width == 8) && offset % store.width == 0;
  lock(cpu);
  cpu.hv_sync();
  ShadowWork w;
  bool flush = false;
  if (aligned) {
    const uint64_t old = memory_.read(store.pa, store.width);
    memory_.write(store.pa, store.value, store.width);
    flush = shadows_.validate_guest_write(v, gfn, offset, store.width, old, w).flush_needed;
  } else {  // Xen unshadows instead of validating a misaligned write (best effort)
    ++stats_.misaligned_unshadow;
    flush = shadows_.remove_shadows(gfn, false, w).flush_needed;
    memory_.write(store.pa, store.value, store.width);
  }
  charge(cpu, w);
  note(cpu, fmt::format("emulated write of {:#x} to {:#x}", store.value, store.pa));
  if (params_.bump.emulated_write && strategy_->uses_version()) {
    bump(cpu, BumpCause::kEmulatedWrite);
  }
  if (flush || w.flush_needed) flush_domain(cpu);
  audit_frames(cpu, {gfn}, "an emulated write");
  unlock(cpu);
  ++stats_.emulate_write;
  // Xen remembers the frame for fast emulation only while it is still a page table (the write
  // may have unshadowed it: early unshadow, a misaligned write); otherwise it forgets it, and
  // the next store faults its way to a writable mapping.
  VcpuState& state = vcpus_.at(v);
  state.emulated_valid = shadows_.is_page_table(gfn);
  state.emulated_page = va >> kPageShift;
  state.emulated_generation = shadows_.shadow_freed_generation();
  // A 4-byte write of a PAE guest is half a PTE: Xen emulates up to four more instructions
  // hoping to catch the other half (the guest's next store, here).
  if (shadows_.guest_state(v).mode() == PagingMode::kPae && store.width == 4) {
    state.emulate_ahead_pa = store.pa;
  }
}

// ---------------------------------------------------------------------------------------------
// CR3 and INVLPG

void Hypervisor::cr3_write(HvCpu& cpu, const PagingState& guest) {
  const uint64_t trace_start = cpu.hv_now();
  ++stats_.cr3_writes;
  vm_exit(cpu, ExitReason::kCr3Write);
  const unsigned v = static_cast<unsigned>(cpu.vcpu_index());
  lock(cpu);
  cpu.hv_sync();
  cpu.hv_spend(params_.costs.cr3_update_cycles);
  ShadowWork w;
  const Cr3Result r = shadows_.update_cr3(v, guest, w);
  charge(cpu, w);
  if (r.flush_needed || w.flush_all_pcpus) flush_domain(cpu);
  cpu.load_hardware_state(shadows_.shadow_state(v));
  cpu.mmu().flush_non_global(cpu.tlb_context());  // the hardware CR3 load
  forget_emulation(v);
  note(cpu, fmt::format("CR3 {:#x} -> shadow {:#x}", guest.cr3(), r.shadow_cr3));
  unlock(cpu);
  vm_entry(cpu);
  trace(cpu, "hypervisor: CR3 write", trace_start);
}

void Hypervisor::invlpg(HvCpu& cpu, uint64_t va) {
  const uint64_t trace_start = cpu.hv_now();
  ++stats_.invlpgs;
  vm_exit(cpu, ExitReason::kInvlpg);
  cpu.hv_sync();
  const unsigned v = static_cast<unsigned>(cpu.vcpu_index());
  ShadowWork w;
  const InvlpgResult r = shadows_.invlpg(v, va, w);
  charge(cpu, w);
  cpu.hv_spend(params_.costs.invlpg_cycles);
  if (r.hardware_invlpg) cpu.mmu().invlpg(va, cpu.tlb_context());
  if (r.local_flush) flush_pcpu_tlb(cpu);
  forget_emulation(v);
  vm_entry(cpu);
  trace(cpu, "hypervisor: INVLPG", trace_start);
}

uint64_t Hypervisor::remote_invlpg(HvCpu& cpu, uint64_t va) {
  ++stats_.invlpgs;
  const unsigned v = static_cast<unsigned>(cpu.vcpu_index());
  ShadowWork w;
  const InvlpgResult r = shadows_.invlpg(v, va, w);
  if (r.hardware_invlpg) cpu.mmu().invlpg(va, cpu.tlb_context());
  if (r.local_flush) flush_pcpu_tlb(cpu);
  forget_emulation(v);
  // The handler's own shadow work is small (a few entry reads); charged as the fixed part.
  return remote_exit(cpu, ExitReason::kInvlpg) + params_.costs.invlpg_cycles +
         uint64_t{w.shadow_entries_read} * params_.costs.shadow_entry_read_cycles;
}

uint64_t Hypervisor::remote_cr3_reload(HvCpu& cpu) {
  ++stats_.cr3_writes;
  const unsigned v = static_cast<unsigned>(cpu.vcpu_index());
  shadows_.vtlb(v).flush();
  cpu.mmu().flush_non_global(cpu.tlb_context());
  forget_emulation(v);
  return remote_exit(cpu, ExitReason::kCr3Write) + params_.costs.cr3_update_cycles;
}

// ---------------------------------------------------------------------------------------------
// Statistics

void Hypervisor::register_stats(StatsGroup g) {
  Stats& s = stats_;
  g.counter("shadow_fault", &s.shadow_fault, "faults", "shadow page faults (exits on #PF)");
  g.counter("fast_gnp", &s.fast_gnp, "faults",
            "magic not-present entries reflected to the guest without the lock");
  g.counter("fast_mmio", &s.fast_mmio, "faults", "magic MMIO entries (the model has no MMIO)");
  g.counter("fast_emulate", &s.fast_emulate, "faults",
            "writes sent straight to the emulator (same frame as the last emulation)");
  g.counter("fast_fail", &s.fast_fail, "faults",
            "magic-entry faults whose entry another VCPU had fixed meanwhile");
  g.counter("bail_real_fault", &s.bail_real_fault, "faults",
            "guest walks that faulted: #PF reflected to the guest");
  g.counter("fault_fixed", &s.fault_fixed, "faults", "faults fixed by a new shadow entry");
  g.counter("fault_emulate_write", &s.fault_emulate_write, "faults",
            "write faults on a page table (emulated, or unshadowed if from user mode)");
  g.counter("refaults", &s.refaults, "faults",
            "inconsistent walks returned to the guest to fault again");
  g.counter("rewalks", &s.rewalks, "walks", "inconsistent walks re-done inside the handler");
  g.counter("shared_fixes", &s.shared_fixes, "faults",
            "unlocked-rw: faults fixed under the read lock");
  g.counter("cas_failures", &s.cas_failures, "faults",
            "unlocked-rw: installs whose compare-and-swap lost to another VCPU (refault)");
  g.counter("emulate_write", &s.emulate_write, "writes", "emulated guest page-table writes");
  g.counter("emulate_ahead", &s.emulate_ahead, "writes",
            "second halves of PAE PTE writes emulated without an exit of their own "
            "(Xen shadow_em_ex_pt)");
  g.counter("user_unshadow", &s.user_unshadow, "faults",
            "user-mode writes to a page table (the frame was unshadowed)");
  g.counter("misaligned_unshadow", &s.misaligned_unshadow, "writes",
            "misaligned emulated writes (the frame was unshadowed)");
  g.counter("rm_write_flush_tlb", &s.rm_write_flush_tlb, "removals",
            "write-access removals on the fault path that needed a TLB flush");
  g.counter("domain_flushes", &s.domain_flushes, "flushes",
            "flushes of every PCPU of the domain (flush_tlb_mask)");
  g.counter("version_bumps.write_access_removal", &s.version_bumps[0], "bumps",
            "version bumps by write-access removal (site 1)");
  g.counter("version_bumps.emulated_write", &s.version_bumps[1], "bumps",
            "version bumps by emulated writes (site 2)");
  g.counter("recheck_cause.write_access_removal.self", &s.recheck_cause[0][0], "re-checks",
            "re-checks whose window saw this VCPU remove write access");
  g.counter("recheck_cause.write_access_removal.other", &s.recheck_cause[0][1], "re-checks",
            "re-checks whose window saw another VCPU remove write access");
  g.counter("recheck_cause.emulated_write.self", &s.recheck_cause[1][0], "re-checks",
            "re-checks whose window saw an emulated write by this VCPU");
  g.counter("recheck_cause.emulated_write.other", &s.recheck_cause[1][1], "re-checks",
            "re-checks whose window saw an emulated write by another VCPU");
  g.counter("recheck_cause.unknown", &s.recheck_unknown_cause, "re-checks",
            "re-checks whose window outgrew the bump log");
  g.counter("exits.page_fault", &s.exits[0], "exits", "VM exits on #PF");
  g.counter("exits.cr3_write", &s.exits[1], "exits", "VM exits on guest CR3 writes");
  g.counter("exits.invlpg", &s.exits[2], "exits", "VM exits on guest INVLPG");
  g.counter("exits.ipi", &s.exits[3], "exits",
            "VM exits to send or take a guest IPI (hypervisor.ipi_exits)");
  g.counter("cr3_writes", &s.cr3_writes, "writes", "guest CR3 writes (shadow root loads)");
  g.counter("invlpgs", &s.invlpgs, "invalidations", "guest INVLPGs handled");
  g.histogram("fault_cycles", &fault_cycles_, "cycles",
              "one shadow fault from exit to entry, lock waits included");
  g.formula("recheck_rate",
            [this] { return ratio(shadows_.stats().check_gwalk, shadows_.stats().guest_walk); },
            "ratio", "re-checks per guest walk (Xen's denominator: shadow_guest_walk)");
  shadows_.register_stats(g.sub("shadow"));
  lock_->register_stats(g.sub("lock"));
}

}  // namespace shadowsim
