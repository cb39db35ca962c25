#include "mmu/mmu.h"

namespace shadowsim {

Mmu::Mmu(int pcpu, const MmuParams& params, PageTableMemory& memory, uint64_t seed)
    : pcpu_(pcpu), memory_(memory), tlbs_(params.tlb, seed), pscs_(params.psc, seed + 1) {}

MmuResult Mmu::miss(uint64_t va, const Access& access, const PagingState& state,
                    const TlbContext& ctx, const TlbLookup& lookup) {
  if (lookup.result == TlbLookup::Result::kFault) {  // stale entry with fewer rights: no walk
    ++stale_tlb_faults_;
    return {WalkOutcome::kPageFault, lookup.error_code, lookup.cycles, 0};
  }
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

void Mmu::register_stats(StatsGroup g) {
  tlbs_.register_stats(g);
  pscs_.register_stats(g.sub("psc"));
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
