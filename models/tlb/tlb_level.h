// One TLB level (an L1 ITLB, an L1 DTLB or the STLB): a few set-associative arrays, each holding
// one or more page sizes. Intel's L1 DTLBs have one array per size; Skylake's STLB keeps 4 KiB
// and 2 MiB pages in one shared array plus a small 1 GiB array. A lookup probes, for each page
// size that can exist in the paging mode, the array holding it, with that size's page number.
//
// Fracturing: a page whose size no array of the level holds is cached as the piece of the
// largest smaller size the level does hold that covers the accessed address (a 1 GiB page in
// Skylake's ITLB becomes a 2 MiB entry; physical base adjusted to the piece). A 1 GiB page never
// becomes 4 MiB pieces (no mode has both sizes); a 4 MiB page may become 2 MiB ones. Every level
// holds 4 KiB pages, so every page can be cached. The entry remembers the size it came from, so
// INVLPG of any address in the original page removes all its pieces (§4.10.4.1 asks INVLPG to
// invalidate the whole page, not just the piece the address falls in).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "common/params.h"
#include "common/rng.h"
#include "common/stats.h"
#include "paging/paging_types.h"
#include "tlb/set_assoc_array.h"
#include "tlb/tlb_context.h"

namespace shadowsim {

constexpr int kPageSizeCount = 4;  // PageSize values: 4K, 2M, 4M, 1G
inline int size_index(PageSize size) { return static_cast<int>(size); }
inline int page_shift(PageSize size) {
  constexpr int kShift[kPageSizeCount] = {12, 21, 22, 30};
  return kShift[size_index(size)];
}
inline uint64_t page_offset_mask(PageSize size) { return (1ULL << page_shift(size)) - 1; }
const char* stats_name(PageSize size);  // "4k", "2m", "4m", "1g"

// One cached translation (§4.10.2.2: the page frame, the effective rights, the dirty state and
// the memory type of the leaf), tagged by VPID, PCID and page number. Laid out for the hit path:
// a match is one compare of (key, tag) under a mask that drops the PCID of a global entry.
struct TlbEntry {
  uint64_t key = 0;      // vpn << 2 | size index
  uint64_t page_pa = 0;  // physical base of the (piece of) page this entry maps
  uint32_t asid = 0;     // vpid << 16 | pcid
  uint32_t asid_mask = ~0u;  // 0xffff0000 for a global entry: any PCID of its VPID matches
  PageSize source_size = PageSize::k4K;  // the translation's page size (larger when fractured)
  bool valid = false;
  bool dirty = false;  // D of the leaf when cached: a write through a clean entry re-walks
  uint8_t pat_index = 0;
  Rights rights;

  static uint64_t make_key(uint64_t vpn, PageSize size) { return vpn << 2 | size_index(size); }
  static uint32_t make_asid(const TlbContext& tag) {
    return static_cast<uint32_t>(tag.vpid) << 16 | tag.pcid;
  }

  uint64_t vpn() const { return key >> 2; }  // linear address >> page_shift(size())
  PageSize size() const { return static_cast<PageSize>(key & 3); }
  uint16_t vpid() const { return static_cast<uint16_t>(asid >> 16); }
  uint16_t pcid() const { return static_cast<uint16_t>(asid); }
  bool global() const { return asid_mask != ~0u; }
  void set_tags(const TlbContext& tag, bool is_global) {
    asid = make_asid(tag);
    asid_mask = is_global ? 0xffff0000u : ~0u;
  }
  // Whether a lookup in context `asid` (make_asid) may use this entry (§4.10.2.4: same VPID,
  // and same PCID or global).
  bool matches(uint32_t lookup_asid) const { return ((asid ^ lookup_asid) & asid_mask) == 0; }
};

// One array of a level and the page sizes it holds.
struct TlbLevelArrayParams : TlbArrayParams {
  bool page_4k = false;
  bool page_2m = false;
  bool page_4m = false;
  bool page_1g = false;

  template <class V>
  void visit(V& v) {
    TlbArrayParams::visit(v);
    v.value("page_4k", page_4k, "holds 4 KiB pages");
    v.value("page_2m", page_2m, "holds 2 MiB pages (PAE, IA-32e)");
    v.value("page_4m", page_4m, "holds 4 MiB pages (32-bit paging)");
    v.value("page_1g", page_1g, "holds 1 GiB pages");
  }
  void validate() const;  // the array's geometry; a present array holds at least one size

  bool holds(PageSize size) const;
  // A present array of entries x ways holding `sizes`.
  static TlbLevelArrayParams make(uint32_t entries, uint32_t ways, uint32_t latency,
                                  std::initializer_list<PageSize> sizes,
                                  Replacement replacement = Replacement::kLru);
};

struct TlbLevelParams {
  static constexpr int kMaxArrays = 3;  // enough for 4K / 2M+4M / 1G, the most Intel uses
  std::array<TlbLevelArrayParams, kMaxArrays> arrays{};  // entries == 0: slot unused

  template <class V>
  void visit(V& v) {
    v.group("array0", arrays[0], "first array of the level");
    v.group("array1", arrays[1], "second array (entries 0: none)");
    v.group("array2", arrays[2], "third array (entries 0: none)");
  }
  // Each array valid; no page size in two arrays; a level with any array holds 4 KiB pages
  // (so every page can be cached, fractured if need be).
  void validate() const;
  bool enabled() const;  // has at least one array
};

class TlbLevel {
 public:
  // Random-replacement arrays draw their seeds from `seeds`, in array order.
  TlbLevel(const TlbLevelParams& params, Rng& seeds);
  TlbLevel(const TlbLevel&) = delete;
  TlbLevel& operator=(const TlbLevel&) = delete;
  TlbLevel(TlbLevel&&) = default;
  TlbLevel& operator=(TlbLevel&&) = default;

  bool enabled() const { return !arrays_.empty(); }
  // The arrays are probed in parallel: the level costs its slowest array.
  uint32_t latency() const { return latency_; }
  bool holds(PageSize size) const { return array_of_[size_index(size)] >= 0; }
  // The size a page of `size` is cached as here: itself, or the piece it fractures into.
  PageSize stored_size(PageSize size) const;

  // The entry translating `va` for a lookup tag `asid` (TlbEntry::make_asid), or nullptr; a hit
  // updates replacement state.
  TlbEntry* find(uint64_t va, uint32_t asid, PagingMode mode) {
    const Probe& probe = probes_[static_cast<int>(mode)];
    for (uint8_t i = 0; i < probe.count; ++i) {
      const ProbeStep& step = probe.steps[i];
      Array& array = *step.array;
      const uint64_t vpn = va >> step.shift;
      const uint64_t key = vpn << 2 | step.size;
      TlbEntry* e = array.find(array.set_of(vpn), [key, asid](const TlbEntry& x) {
        return ((x.key ^ key) | ((x.asid ^ asid) & x.asid_mask)) == 0;
      });
      if (e) {
        array.touch(e);
        return e;
      }
    }
    return nullptr;
  }

  // Caches the part of `page` covering `va`: `page` describes a translation of page.size()
  // (key, page_pa, tags, rights...). An entry a lookup of `va` in the same context would find
  // is overwritten in place (so a dirty re-walk replaces the clean entry); otherwise a victim.
  void fill(uint64_t va, const TlbEntry& page);

  // Removes the entries for `va`'s page in VPID tag.vpid: with `globals`, those a lookup in
  // `tag` would use (INVLPG: this PCID's and global ones); without, only this PCID's
  // non-global ones (INVPCID type 0). Fractured pieces of the page go too.
  void invalidate_address(uint64_t va, const TlbContext& tag, bool globals);
  template <typename Pred>
  void invalidate_if(Pred&& pred) {
    for (Array& a : arrays_) invalidations_ += a.invalidate_if(pred);
    if (valid_count() == 0) fractured_present_ = false;
  }
  uint64_t valid_count() const;

  // Counters the hierarchy updates (it decides what a hit is: a found entry can still fault or
  // need a dirty re-walk).
  void record_hit(PageSize size) { ++by_size_[size_index(size)].hits; }
  void record_miss() { ++misses_; }

  // <g>.hits, .misses, .miss_rate, .fractured_fills, .invalidations and, per page size held,
  // <g>.<size>.hits / .fills / .evictions.
  void register_stats(StatsGroup g);

  uint64_t hits(PageSize size) const { return by_size_[size_index(size)].hits; }
  uint64_t fills(PageSize size) const { return by_size_[size_index(size)].fills; }
  uint64_t evictions(PageSize size) const { return by_size_[size_index(size)].evictions; }
  uint64_t misses() const { return misses_; }
  uint64_t fractured_fills() const { return fractured_fills_; }
  uint64_t invalidations() const { return invalidations_; }

 private:
  using Array = SetAssocArray<TlbEntry>;
  struct ProbeStep {
    Array* array;   // into arrays_, whose buffer moves with the level (copies are deleted)
    uint8_t shift;  // page_shift of the size
    uint8_t size;   // size index
  };
  struct Probe {  // page sizes to probe in one paging mode, smallest first
    std::array<ProbeStep, kPageSizeCount> steps{};
    uint8_t count = 0;
  };
  struct SizeCounters {
    uint64_t hits = 0;
    uint64_t fills = 0;
    uint64_t evictions = 0;
  };

  std::vector<Array> arrays_;
  std::array<int8_t, kPageSizeCount> array_of_{};  // array holding each size, or -1
  std::array<Probe, 4> probes_{};                   // per PagingMode
  uint32_t latency_ = 0;
  bool fractured_present_ = false;  // some entry may be a piece of a larger page
  std::array<SizeCounters, kPageSizeCount> by_size_{};
  uint64_t misses_ = 0;
  uint64_t fractured_fills_ = 0;
  uint64_t invalidations_ = 0;
};

}  // namespace shadowsim
