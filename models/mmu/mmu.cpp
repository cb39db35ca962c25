#include "mmu/mmu.h"

#include <fmt/format.h>

#include "common/error.h"
#include "nested/nested_host.h"

namespace shadowsim {
namespace {

NestedHost* checked(NestedHost* nested, const PageTableMemory& memory, int pcpu) {
  if (nested && &nested->guest_memory() != &memory.memory()) {
    throw Error(fmt::format("pcpu{}: the nested host was built for another guest memory than "
                            "the MMU's page-table memory holds",
                            pcpu));
  }
  return nested;
}

}  // namespace

Mmu::Mmu(int pcpu, const MmuParams& params, PageTableMemory& memory, uint64_t seed,
         NestedHost* nested)
    : pcpu_(pcpu),
      memory_(memory),
      tlbs_(params.tlb, seed),
      pscs_(params.psc, seed + 1),
      nested_(checked(nested, memory, pcpu)),
      psc_vpid_mask_(params.psc.vpid ? 0xffff : 0),
      psc_pcid_mask_(params.psc.pcid ? kMaxPcid : 0) {
  if (nested_) nested_walker_ = std::make_unique<NestedWalker>(nested_->params().caches, seed + 2);
}

Mmu::~Mmu() = default;

MmuResult Mmu::miss(uint64_t va, const Access& access, const PagingState& state,
                    const TlbContext& ctx, const TlbLookup& lookup) {
  if (lookup.result == TlbLookup::Result::kFault) {  // stale entry with fewer rights: no walk
    ++stale_tlb_faults_;
    return {WalkOutcome::kPageFault, lookup.error_code, lookup.cycles, 0};
  }
  if (nested_walker_) return nested_walk_and_fill(va, access, state, ctx, lookup.cycles);
  return walk_and_fill(va, access, state, ctx, lookup.cycles);
}

MmuResult Mmu::walk_and_fill(uint64_t va, const Access& access, const PagingState& state,
                             const TlbContext& ctx, uint32_t cycles) {
  const WalkStart start = pscs_.lookup(va, ctx, state);
  uint32_t walk_cycles = pscs_.latency(state.mode());
  const WalkResult walk = walk_from(memory_.memory(), state, va, access, start);
  for (uint8_t i = 0; i < walk.ref_count; ++i) {
    walk_cycles += memory_.read(pcpu_, walk.refs[i].entry_pa);
  }
  ++walks_;
  walk_references_ += walk.ref_count;
  pscs_.fill(va, ctx, state, start, walk);
  if (!walk.ok()) {
    ++walk_faults_;
    walk_cycles_.sample(walk_cycles);
    return {walk.outcome, walk.error_code, cycles + walk_cycles, 0};
  }
  for (uint8_t i = 0; i < walk.update_count; ++i) {
    walk_cycles += memory_.write(pcpu_, walk.updates[i].entry_pa);
  }
  ad_updates_ += walk.update_count;
  apply_updates(memory_.memory(), walk);
  tlbs_.fill(va, walk.translation, access, ctx);
  walk_cycles_.sample(walk_cycles);
  return {WalkOutcome::kOk, 0, cycles + walk_cycles, walk.translation.pa};
}

// docs/nested.md "Integration" steps 2 and 3. The guest PSC, host PSC and nested TLB lookups
// replace the native PSC lookup (probed in parallel: the slowest one's latency).
MmuResult Mmu::nested_walk_and_fill(uint64_t va, const Access& access, const PagingState& state,
                                    const TlbContext& ctx, uint32_t cycles) {
  const NestedWalk w =
      nested_walker_->walk(memory_.memory(), state, nested_->tables(), va, access, psc_tag(ctx));
  const uint32_t walk_cycles = nested_walker_->cache_latency(state.mode()) + cost_and_apply(w);
  ++walks_;
  walk_references_ += w.ref_count;
  walk_cycles_.sample(walk_cycles);
  switch (w.outcome) {
    case NestedOutcome::kOk:
      // A TLB entry holds the guest rights only: when the host forbids part of them, a later
      // access must walk again to meet the host check, so nothing is cached.
      if (w.host_covers_guest_rights()) {
        tlbs_.fill(va, w.translation, access, ctx);
      } else {
        ++tlb_fills_withheld_;
      }
      return {WalkOutcome::kOk, 0, cycles + walk_cycles, w.translation.pa};
    case NestedOutcome::kGuestPageFault:
      ++walk_faults_;
      return {WalkOutcome::kPageFault, w.error_code, cycles + walk_cycles, 0};
    case NestedOutcome::kGuestNonCanonical:
      ++walk_faults_;
      return {WalkOutcome::kNonCanonical, 0, cycles + walk_cycles, 0};
    case NestedOutcome::kGuestGp:  // load_guest_cr3 only
    case NestedOutcome::kHostViolation:
    case NestedOutcome::kHostMisconfig:
      break;
  }
  host_fault(va, access, w);
}

uint32_t Mmu::cost_and_apply(const NestedWalk& w) {
  uint32_t cycles = 0;
  for (uint8_t i = 0; i < w.ref_count; ++i) cycles += memory_.read(pcpu_, w.refs[i].hpa);
  for (uint8_t i = 0; i < w.update_count; ++i) cycles += memory_.write(pcpu_, w.updates[i].hpa);
  ad_updates_ += w.update_count;
  // Every outcome: host A/D bits are set as the host walks go, whatever happens after them.
  apply_updates(memory_.memory(), nested_->host_memory(), w);
  return cycles;
}

void Mmu::host_fault(uint64_t va, const Access& access, const NestedWalk& w) const {
  const HostFault& f = w.fault;
  const std::string detail =
      nested_->kind() == HostPagingKind::kEpt
          ? fmt::format("rights granted {:#x}", f.allowed)
          : fmt::format("EXITINFO1 {:#x}", f.npt_exitinfo1());
  throw Error(fmt::format(
      "pcpu{}: {} of guest-linear {:#x}: {} at guest-physical {:#x} ({}, guest level {}, host "
      "level {}, {} access, {}); the hypervisor maps all guest RAM up front, so this is a model "
      "bug",
      pcpu_, to_string(access.kind), va, to_string(w.outcome), f.gpa,
      f.final_access ? "the final access" : "a guest page-table access", f.guest_level,
      f.host_level, to_string(f.kind), detail));
}

uint64_t Mmu::load_guest_cr3(PagingState& state, const TlbContext& ctx, uint64_t cr3,
                             bool flush) {
  uint64_t cycles = 0;
  if (!nested_walker_) {
    if (!state.load_cr3(cr3, memory_.memory())) {
      throw Error(fmt::format("pcpu{}: MOV to CR3 {:#x}: a PAE PDPTE has a reserved bit set "
                              "(#GP)",
                              pcpu_, cr3));
    }
  } else {
    const NestedWalk w =
        nested_walker_->load_guest_cr3(state, memory_.memory(), nested_->tables(), cr3);
    cycles = cost_and_apply(w);
    ++cr3_loads_;
    cr3_load_refs_ += w.ref_count;
    if (w.outcome == NestedOutcome::kGuestGp) {
      throw Error(fmt::format("pcpu{}: MOV to CR3 {:#x}: a PAE PDPTE has a reserved bit set "
                              "(#GP)",
                              pcpu_, cr3));
    }
    if (!w.ok()) {
      throw Error(fmt::format("pcpu{}: MOV to CR3 {:#x}: {} loading the PAE PDPTEs at "
                              "guest-physical {:#x}; the hypervisor maps all guest RAM up front, "
                              "so this is a model bug",
                              pcpu_, cr3, to_string(w.outcome), w.fault.gpa));
    }
  }
  if (flush) flush_non_global(ctx);
  return cycles;
}

void Mmu::register_stats(StatsGroup g) {
  tlbs_.register_stats(g);
  if (nested_walker_) {
    const StatsGroup n = g.sub("nested");
    nested_walker_->register_stats(n);
    n.counter("cr3_loads", &cr3_loads_, "loads", "guest MOV to CR3 (PDPTE loads through EPT)");
    n.counter("cr3_load_refs", &cr3_load_refs_, "references",
              "page-table references of guest CR3 loads (PAE PDPTEs under EPT)");
    n.counter("tlb_fills_withheld", &tlb_fills_withheld_, "walks",
              "successful 2-D walks not cached in the TLB: the host grants less than the guest");
  } else {
    pscs_.register_stats(g.sub("psc"));
  }
  StatsGroup w = g.sub("walker");
  w.counter("walks", &walks_, "walks", "page walks started (TLB misses and dirty re-walks)");
  w.counter("references", &walk_references_, "references",
            "page-table entries read by walks (after paging-structure-cache skips)");
  w.counter("faults", &walk_faults_, "walks", "walks that ended in a page fault");
  w.counter("ad_updates", &ad_updates_, "writes", "Accessed/Dirty updates written by walks");
  w.counter("stale_tlb_faults", &stale_tlb_faults_, "faults",
            "faults raised from a TLB entry's cached rights without a walk");
  w.histogram("cycles", &walk_cycles_, "cycles", "cycles of one walk, PSC lookup included");
  w.formula("references_per_walk", [this] { return ratio(walk_references_, walks_); },
            "references", "page-table references per walk");
}

}  // namespace shadowsim
