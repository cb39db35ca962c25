// The MMU of one PCPU: steps 2 and 3 of the path of a guest access (docs/architecture.md).
// A reference first looks up the TLBs (a plain function call: a hit costs the TLB latency and
// returns); on a miss the paging-structure caches say how much of the walk can be skipped, the
// walker walks the rest, and each remaining page-table reference costs what the page-table
// memory's cache model says. A/D updates are locked read-modify-writes of the entry's line.
#pragma once

#include <cstdint>

#include "common/stats.h"
#include "memory/page_table_memory.h"
#include "paging/paging_state.h"
#include "paging/walker.h"
#include "tlb/paging_structure_cache.h"
#include "tlb/tlb_hierarchy.h"

namespace shadowsim {

// The config lists these under machine.tlb and machine.psc (sim/config.h).
struct MmuParams {
  TlbHierarchyParams tlb;
  PscParams psc;
};

struct MmuResult {
  WalkOutcome outcome;  // kOk, kPageFault (error_code) or kNonCanonical
  uint32_t error_code;
  uint32_t cycles;      // TLB lookups + walk
  uint64_t pa;
};

class Mmu {
 public:
  Mmu(int pcpu, const MmuParams& params, PageTableMemory& memory, uint64_t seed);

  // Inline: the TLB-hit path runs for every simulated reference.
  MmuResult translate(uint64_t va, const Access& access, const PagingState& state,
                      const TlbContext& ctx) {
    const TlbLookup hit = tlbs_.lookup(va, access, ctx, state.controls(), state.mode());
    if (hit.result == TlbLookup::Result::kHit) return {WalkOutcome::kOk, 0, hit.cycles, hit.pa};
    return miss(va, access, state, ctx, hit);
  }

  // Delivering a #PF invalidates the page's TLB entries and the PSC entries its walk would use.
  void page_fault_invalidate(uint64_t va, const TlbContext& ctx, PagingMode mode) {
    tlbs_.page_fault_invalidate(va, ctx);
    pscs_.page_fault_invalidate(va, ctx, mode);
  }
  // What the guest's INVLPG and MOV to CR3 do to this PCPU's structures.
  void invlpg(uint64_t va, const TlbContext& ctx) {
    tlbs_.invlpg(va, ctx);
    pscs_.invlpg(va, ctx);
  }
  void flush_non_global(const TlbContext& ctx) {
    tlbs_.flush_non_global(ctx);
    pscs_.flush_non_global(ctx);
  }

  TlbHierarchy& tlbs() { return tlbs_; }
  const GuestMemory& memory() const { return memory_.memory(); }
  PageTableMemory& table_memory() { return memory_; }
  int pcpu() const { return pcpu_; }
  PagingStructureCaches& pscs() { return pscs_; }
  void register_stats(StatsGroup g);

 private:
  MmuResult miss(uint64_t va, const Access& access, const PagingState& state,
                 const TlbContext& ctx, const TlbLookup& lookup);
  MmuResult walk_and_fill(uint64_t va, const Access& access, const PagingState& state,
                          const TlbContext& ctx, uint32_t cycles);

  int pcpu_;
  PageTableMemory& memory_;
  TlbHierarchy tlbs_;
  PagingStructureCaches pscs_;

  uint64_t walks_ = 0;
  uint64_t walk_references_ = 0;
  uint64_t walk_faults_ = 0;
  uint64_t ad_updates_ = 0;
  uint64_t stale_tlb_faults_ = 0;
  Histogram walk_cycles_;
};

}  // namespace shadowsim
