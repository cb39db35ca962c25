// The caches of a 2-D walk, each optional (entries = 0 disables it):
//   - NestedTlb: guest-physical page -> host-physical page translations, for guest table frames
//     and final pages alike: AMD's "nested TLB" (Bhargava, Serebrin, Spadini, Manne, "Accelerating
//     two-dimensional page walks for virtualized systems", ASPLOS 2008), Intel's cached
//     "guest-physical mappings" (SDM vol. 3C §28.4.1). A hit replaces a whole host walk.
//   - HostPsc: paging-structure caches of the host (nested) walk, keyed by guest-physical bits:
//     a hit starts the host walk below the cached level.
//   - GuestPsc: paging-structure caches of the guest walk that hold the *host*-physical address
//     of the next guest table (and its guest-physical address), so a hit skips guest levels and
//     the host walks of their tables (Bhargava et al.'s 2-D "page walk cache" entries; Intel's
//     paging-structure caches under EPT, tagged by EP4TA, VPID and PCID, §28.4.1).
// Every entry is tagged by the host root (EPTP/nCR3), so tables of different VMs never meet;
// guest PSC entries also by VPID, PCID and guest paging mode.
//
// Entries remember how many references the part of the walk they replace costs without any
// cache ("cold"), so a walk can report exactly what each cache saved.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "common/params.h"
#include "common/stats.h"
#include "nested/host_paging.h"
#include "paging/paging_state.h"
#include "paging/walker.h"
#include "tlb/set_assoc_array.h"
#include "tlb/tlb_context.h"

namespace shadowsim {

struct HostPscParams {
  // assumption: sized like the native PML4E / PDPTE / PDE caches (docs/tlb.md), whose sizes are
  // themselves assumptions; fully associative, 1-cycle lookup.
  TlbArrayParams pml4e{2, 2, Replacement::kLru, 1};
  TlbArrayParams pdpte{4, 4, Replacement::kLru, 1};
  TlbArrayParams pde{32, 32, Replacement::kLru, 1};

  template <class V>
  void visit(V& v) {
    v.group("pml4e", pml4e, "host PML4E cache (nested walk)");
    v.group("pdpte", pdpte, "host PDPTE cache (nested walk)");
    v.group("pde", pde, "host PDE cache (nested walk)");
  }
  void validate() const;
};

struct GuestPscParams {
  // assumption: the native PSC sizes (docs/tlb.md), holding host-physical table addresses.
  TlbArrayParams pml5e{2, 2, Replacement::kLru, 1};
  TlbArrayParams pml4e{2, 2, Replacement::kLru, 1};
  TlbArrayParams pdpte{4, 4, Replacement::kLru, 1};
  TlbArrayParams pde{32, 32, Replacement::kLru, 1};

  template <class V>
  void visit(V& v) {
    v.group("pml5e", pml5e, "guest PML5E cache (5-level guests)");
    v.group("pml4e", pml4e, "guest PML4E cache (IA-32e guests)");
    v.group("pdpte", pdpte, "guest PDPTE cache (IA-32e guests; PAE guests under NPT)");
    v.group("pde", pde, "guest PDE cache (every guest mode)");
  }
  void validate() const;
};

class NestedTlb {
 public:
  struct Entry {
    uint64_t key = 0;       // gpa >> shift
    uint64_t root = 0;      // host root the entry came from
    uint64_t page_hpa = 0;  // host page base
    uint8_t shift = 12;     // host page size: 12, 21, 30
    HostRwx rwx = 0;
    uint8_t memory_type = 0;
    bool dirty = false;     // host leaf D (always true when the format has no D to set)
    int8_t leaf_level = 1;  // host leaf level: a miss would cost 5 - leaf_level references
    bool valid = false;

    uint64_t hpa(uint64_t gpa) const { return page_hpa | (gpa & ((1ULL << shift) - 1)); }
  };

  NestedTlb(const TlbArrayParams& params, uint64_t seed);
  bool enabled() const { return array_.has_value(); }
  uint32_t latency() const { return array_ ? array_->latency() : 0; }

  // The entry translating `gpa` under `root` that allows `kind` (a write also needs D set), or
  // nullptr. Counts a hit or a miss; an entry that does not allow the access counts as a miss
  // and the walk that follows refills it in place.
  const Entry* lookup(uint64_t root, uint64_t gpa, AccessKind kind);
  // Caches a successful host translation (the host page it found, whatever its size).
  void fill(uint64_t root, uint64_t gpa, const HostTranslation& translation);

  void flush_all();               // INVEPT all-context
  void invalidate(uint64_t root);  // INVEPT single-context for that EPTP / nCR3
  uint64_t valid_count() const { return array_ ? array_->valid_count() : 0; }

  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }
  // <g>.hits, .misses, .fills, .evictions, .invalidations
  void register_stats(StatsGroup g);

 private:
  Entry* find(uint64_t root, uint64_t gpa);

  std::optional<SetAssocArray<Entry>> array_;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
  uint64_t fills_ = 0;
  uint64_t evictions_ = 0;
  uint64_t invalidations_ = 0;
};

class HostPsc {
 public:
  HostPsc(const HostPscParams& params, uint64_t seed);
  bool enabled() const;
  uint32_t latency() const;  // the caches are probed in parallel: the slowest

  // The deepest cached start for `gpa` in `host`, or host.top().
  HostStart lookup(const HostPageTables& host, uint64_t gpa);
  // Caches the non-leaf entries of a successful translation that began at `start`.
  void fill(const HostPageTables& host, uint64_t gpa, const HostStart& start,
            const HostTranslation& translation);

  void flush_all();
  void invalidate(uint64_t root);
  uint64_t hits(int level) const { return hits_[level]; }
  uint64_t valid_count(int level) const;
  // <g>.lookups, .misses, <g>.<pml4e|pdpte|pde>.{hits,fills,evictions}
  void register_stats(StatsGroup g);

 private:
  struct Entry {
    uint64_t key = 0;  // gpa >> shift of the entry's level
    uint64_t root = 0;
    HostStart next;    // the start below the cached entry
    bool valid = false;
  };
  std::array<std::optional<SetAssocArray<Entry>>, 5> caches_;  // by level 2..4
  std::array<uint64_t, 5> hits_{};
  std::array<uint64_t, 5> fills_{};
  std::array<uint64_t, 5> evictions_{};
  uint64_t lookups_ = 0;
  uint64_t misses_ = 0;
};

// Where a guest walk starts after a guest PSC lookup.
struct GuestStart {
  WalkStart walk;          // for walk_from(): level, guest-physical table, rights above
  uint64_t table_hpa = 0;  // host-physical address of that table (valid when cached)
  bool cached = false;     // a hit: the table's host translation is known
  uint16_t cold_refs = 0;  // references the skipped part costs without any cache
};

class GuestPsc {
 public:
  GuestPsc(const GuestPscParams& params, uint64_t seed);
  bool enabled() const;
  uint32_t latency(PagingMode mode) const;
  bool has_cache(int level) const { return level >= 2 && level <= 5 && caches_[level]; }

  // Probes levels 2..max_level (the highest guest level whose entries live in memory) and
  // returns the deepest hit, or the top-level start from state.root_table().
  GuestStart lookup(uint64_t va, const TlbContext& ctx, const PagingState& state,
                    uint64_t host_root, int max_level);
  // Caches the guest entry at `level` for `va`: the next table (guest- and host-physical), the
  // rights accumulated down to and including the entry, and the cold cost of the prefix.
  void insert(uint64_t va, const TlbContext& ctx, const PagingState& state, uint64_t host_root,
              int level, uint64_t next_table_gpa, uint64_t next_table_hpa, const Rights& rights,
              uint16_t cold_refs);

  void flush_all();                           // every tag
  void flush_vpid(uint16_t vpid);             // INVVPID single-context
  void flush_pcid(const TlbContext& ctx);     // guest MOV to CR3, INVLPG, INVPCID
  void invalidate_root(uint64_t host_root);   // INVEPT single-context
  uint64_t hits(int level) const { return hits_[level]; }
  uint64_t valid_count(int level) const;
  // <g>.lookups, .misses, <g>.<pml5e|pml4e|pdpte|pde>.{hits,fills,evictions}
  void register_stats(StatsGroup g);

 private:
  struct Entry {
    uint64_t key = 0;  // linear bits >> level shift
    uint64_t root = 0;
    uint64_t table_gpa = 0;
    uint64_t table_hpa = 0;
    uint16_t vpid = 0;
    uint16_t pcid = 0;
    PagingMode mode = PagingMode::k4Level;
    uint16_t cold_refs = 0;
    Rights rights;
    bool valid = false;
  };
  template <typename Pred>
  void invalidate_if(Pred&& pred);

  std::array<std::optional<SetAssocArray<Entry>>, 6> caches_;  // by level 2..5
  std::array<uint64_t, 6> hits_{};
  std::array<uint64_t, 6> fills_{};
  std::array<uint64_t, 6> evictions_{};
  uint64_t lookups_ = 0;
  uint64_t misses_ = 0;
};

}  // namespace shadowsim
