// Paging-structure caches (Intel SDM vol. 3A §4.10.3): per-level caches of non-leaf entries
// that let a walk after a TLB miss skip the upper levels. One cache per level: PML5E (5-level
// paging), PML4E, PDPTE (IA-32e) and PDE (every mode; PAE's PDPTEs are registers, so PAE and
// 32-bit paging have only the PDE cache). An entry is keyed by the linear-address bits that
// select that level's entry (e.g. bits 47:21 for an IA-32e PDE) and holds the physical address
// of the next table and the rights accumulated from the top down to it (R/W and U/S ANDed, XD
// ORed), which is exactly what walk_from() takes. Entries are tagged by VPID and PCID, never
// global (§4.10.3.1: the G bit lives only in leaves).
//
// lookup() probes every cache of the mode (in parallel, as hardware does) and uses the deepest
// hit; only that entry's replacement state is updated. fill() caches, for each non-leaf entry
// the walk read, present and free of reserved bits:
//   - after a successful walk: every such entry (the walk's A updates, which the caller applies,
//     set their A bits);
//   - after a walk that faulted: the entries above the faulting one, top down, as long as their
//     A bit was already set in memory. The SDM lets a processor cache upper entries of a walk
//     that faults (§4.10.3.1: an entry may exist "even if there are no translations"), but never
//     one whose A bit is 0 in memory; our walker sets no A bit on a faulting walk, so an entry
//     with A = 0 (and everything below it) is not cached.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "common/params.h"
#include "common/stats.h"
#include "paging/paging_state.h"
#include "paging/paging_types.h"
#include "paging/walker.h"
#include "tlb/set_assoc_array.h"
#include "tlb/tlb_context.h"

namespace shadowsim {

// Defaults: an Intel core of the Skylake generation. Intel publishes no sizes; see the notes in
// docs/tlb.md. entries == 0 disables a cache.
struct PscParams {
  // assumption: the PML5E cache is sized like the PML4E cache (Skylake has no 5-level paging).
  TlbArrayParams pml5e{2, 2, Replacement::kLru, 1};
  // assumption: 2 / 4 / 32 fully associative entries, the sizes commonly assumed for Intel's
  // PML4E / PDPTE / PDE caches in the MMU-cache literature; 1-cycle lookup.
  TlbArrayParams pml4e{2, 2, Replacement::kLru, 1};
  TlbArrayParams pdpte{4, 4, Replacement::kLru, 1};
  TlbArrayParams pde{32, 32, Replacement::kLru, 1};
  bool vpid = true;  // entries carry the VPID tag; without, every VPID reads as 0
  bool pcid = true;  // entries carry the PCID tag; without, every PCID reads as 0

  template <class V>
  void visit(V& v) {
    v.group("pml5e", pml5e, "PML5E cache (5-level paging)");
    v.group("pml4e", pml4e, "PML4E cache (IA-32e paging)");
    v.group("pdpte", pdpte, "PDPTE cache (IA-32e paging)");
    v.group("pde", pde, "PDE cache (every mode)");
    v.value("vpid", vpid, "entries are tagged with the VPID (VMX VPID support)");
    v.value("pcid", pcid, "entries are tagged with the PCID (CR4.PCIDE support)");
  }
  void validate() const;  // each cache's geometry (field prefixed with the cache's name)

  static PscParams skylake();  // == the defaults
  static PscParams core2();    // Core 2 (Penryn, 2008): no PML5E cache, no VPID, no PCID
};

class PagingStructureCaches {
 public:
  PagingStructureCaches(const PscParams& params, uint64_t seed);

  // The deepest cached level for `va` in context `ctx`, as a start for walk_from(); on a complete
  // miss the top-level start from state.root_table(). Throws Error on a PCID above 4095.
  WalkStart lookup(uint64_t va, const TlbContext& ctx, const PagingState& state);
  // Caches the walk's non-leaf entries (rules above). `start` is the WalkStart the walk began
  // from (its rights are those accumulated above the first reference); Error when the walk's
  // first reference does not belong to that start.
  void fill(uint64_t va, const TlbContext& ctx, const PagingState& state, const WalkStart& start,
            const WalkResult& walk);
  // The same for a walk begun at the top (walk()).
  void fill(uint64_t va, const TlbContext& ctx, const PagingState& state,
            const WalkResult& walk);

  // Lookup latency in `mode`: the caches are probed in parallel, so the slowest one the mode
  // uses (0 when the mode has none).
  uint32_t latency(PagingMode mode) const;
  bool has_cache(int level) const { return level >= 2 && level <= 5 && caches_[level]; }

  // Invalidation (§4.10.4.1): the PSCs hold no global entries, so every TLB-invalidating
  // operation that targets a PCID removes all of that PCID's entries.
  void flush_all();                              // every VPID and PCID
  void flush_vpid(uint16_t vpid);                // INVVPID single-context; INVPCID types 2 and 3
  void flush_pcid(const TlbContext& ctx);        // ctx.vpid's entries for ctx.pcid
  void flush_non_global(const TlbContext& ctx) { flush_pcid(ctx); }  // MOV to CR3
  void invlpg(uint64_t va, const TlbContext& ctx);  // every entry of ctx.pcid, any address
  // Delivering a #PF for va invalidates the entries of the current PCID "that would be used for
  // that linear address" (SDM vol. 3A §4.10.4.1); not counted as a flush.
  void page_fault_invalidate(uint64_t va, const TlbContext& ctx, PagingMode mode);
  void invpcid(int type, uint64_t va, const TlbContext& ctx);  // 0,1: ctx.pcid; 2,3: ctx.vpid

  // <g>.lookups, <g>.misses, <g>.<pml5e|pml4e|pdpte|pde>.{hits,fills,evictions},
  // <g>.flushes.{all,vpid,pcid} (the caches present only). Registers pointers: call it once
  // the object has its final address.
  void register_stats(StatsGroup g);

  uint64_t lookups() const { return lookups_; }
  uint64_t misses() const { return misses_; }
  uint64_t hits(int level) const { return counters_[level].hits; }
  uint64_t fills(int level) const { return counters_[level].fills; }
  uint64_t valid_count(int level) const;

  TlbContext tag(const TlbContext& ctx) const;

 private:
  struct PscEntry {
    uint64_t key = 0;       // linear-address bits above this level's index shift
    uint64_t table_pa = 0;  // the next level's table
    uint16_t vpid = 0;
    uint16_t pcid = 0;
    PagingMode mode = PagingMode::k4Level;  // keys of different modes must never meet
    bool valid = false;
    Rights rights;  // accumulated from the top down to and including this entry
  };
  using Cache = SetAssocArray<PscEntry>;
  struct Counters {
    uint64_t hits = 0;
    uint64_t fills = 0;
    uint64_t evictions = 0;
  };

  void insert(Cache& cache, int level, const PscEntry& entry);
  template <typename Pred>
  void invalidate_if(Pred&& pred);

  std::array<std::optional<Cache>, 6> caches_;  // by level; 2..5 used
  std::array<Counters, 6> counters_{};
  uint16_t vpid_mask_;
  uint16_t pcid_mask_;
  uint64_t lookups_ = 0;
  uint64_t misses_ = 0;
  uint64_t flushes_all_ = 0;
  uint64_t flushes_vpid_ = 0;
  uint64_t flushes_pcid_ = 0;
};

}  // namespace shadowsim
