// The storage of every TLB and paging-structure cache: a set-associative array of entries with
// LRU, tree-PLRU or seeded random replacement; fully associative when ways == entries.
//
// Header-only on purpose: a TLB hit is find() + touch() on a few ways, and both must inline into
// the lookup. No allocation after construction, no virtual calls.
//
// Victim choice: an invalid way is always filled first (the lowest-numbered one), whatever the
// policy; the policy only decides among valid ways. Invalidation leaves replacement state alone.
#pragma once

#include <cstdint>
#include <vector>

#include "common/params.h"
#include "common/rng.h"

namespace shadowsim {

enum class Replacement : uint8_t {
  kLru,       // exact least-recently-used (a use stamp per entry)
  kTreePlru,  // binary tree of ways-1 bits per set, each pointing away from the last use
  kRandom,    // uniform among the ways, from the array's own seeded Rng
};
const char* to_string(Replacement replacement);  // "lru", "plru", "random"

// Geometry, policy and latency of one array. entries == 0 means "no array" where a slot is
// optional (a TLB level's third array, a paging-structure cache a core lacks).
struct TlbArrayParams {
  uint32_t entries = 0;
  uint32_t ways = 1;
  Replacement replacement = Replacement::kLru;
  uint32_t latency = 1;

  template <class V>
  void visit(V& v) {
    v.value("entries", entries, "number of entries (0: no array)", Limits{0, 1 << 20});
    v.value("ways", ways, "associativity (ways == entries: fully associative)",
            Limits{1, 1 << 20});
    v.choice("replacement", replacement, "replacement policy",
             {{"lru", Replacement::kLru}, {"plru", Replacement::kTreePlru},
              {"random", Replacement::kRandom}});
    v.value("latency", latency, "lookup latency", Limits{0, 1000}, "cycles");
  }
  // ways divides entries, the set count is a power of two (the index is the low key bits),
  // tree-PLRU has a power-of-two number of ways up to 64 (one 64-bit tree per set).
  void validate() const;

  uint32_t sets() const { return ways ? entries / ways : 0; }
};

// Entry must have a `bool valid` member; everything else is the caller's.
template <typename Entry>
class SetAssocArray {
 public:
  // Throws ParamError (via validate) on bad geometry, Error on entries == 0.
  SetAssocArray(const TlbArrayParams& params, uint64_t seed);

  uint32_t entries() const { return static_cast<uint32_t>(entries_.size()); }
  uint32_t ways() const { return ways_; }
  uint32_t sets() const { return set_mask_ + 1; }
  uint32_t latency() const { return latency_; }
  Replacement replacement() const { return policy_; }

  // The set a key (e.g. a virtual page number) maps to: its low bits.
  uint32_t set_of(uint64_t key) const { return static_cast<uint32_t>(key) & set_mask_; }

  // The first valid entry of `set` for which match(entry) holds, or nullptr. Replacement state
  // is not changed: a use must be reported with touch(). (A branch-free scan of every way was
  // measured slower than this early exit: bench/bench_tlb.cpp, docs/tlb.md.)
  template <typename Match>
  Entry* find(uint32_t set, Match&& match) {
    Entry* e = &entries_[static_cast<size_t>(set) * ways_];
    for (uint32_t w = 0; w < ways_; ++w) {
      if (e[w].valid & match(e[w])) return e + w;
    }
    return nullptr;
  }

  // Records a use of `e` (an entry of this array) for the replacement policy.
  void touch(const Entry* e) {
    const size_t index = static_cast<size_t>(e - entries_.data());
    switch (policy_) {
      case Replacement::kLru:
        stamps_[index] = ++clock_;
        break;
      case Replacement::kTreePlru:
        plru_touch(index >> way_shift_, static_cast<uint32_t>(index) & (ways_ - 1));
        break;
      case Replacement::kRandom:
        break;
    }
  }

  // The entry to overwrite in `set`: the first invalid way, else the policy's choice. The
  // caller checks `valid` to count an eviction, writes the entry, then touch()es it.
  Entry& victim(uint32_t set) {
    const size_t base = static_cast<size_t>(set) * ways_;
    for (uint32_t w = 0; w < ways_; ++w) {
      if (!entries_[base + w].valid) return entries_[base + w];
    }
    return entries_[base + policy_victim(set)];
  }

  // The way the policy would evict from a full set, without changing anything but the random
  // generator (exposed for tests of the policies).
  uint32_t policy_victim(uint32_t set) {
    const size_t base = static_cast<size_t>(set) * ways_;
    switch (policy_) {
      case Replacement::kLru: {
        uint32_t oldest = 0;
        for (uint32_t w = 1; w < ways_; ++w) {
          if (stamps_[base + w] < stamps_[base + oldest]) oldest = w;
        }
        return oldest;
      }
      case Replacement::kTreePlru:
        return plru_victim(set);
      case Replacement::kRandom:
        return static_cast<uint32_t>(rng_.below(ways_));
    }
    return 0;
  }

  Entry& at(uint32_t set, uint32_t way) { return entries_[static_cast<size_t>(set) * ways_ + way]; }

  // Invalidates every valid entry for which pred(entry) holds; returns how many.
  template <typename Pred>
  uint64_t invalidate_if(Pred&& pred) {
    uint64_t n = 0;
    for (Entry& e : entries_) {
      if (e.valid && pred(e)) {
        e.valid = false;
        ++n;
      }
    }
    return n;
  }

  template <typename Fn>
  void for_each_valid(Fn&& fn) const {
    for (const Entry& e : entries_) {
      if (e.valid) fn(e);
    }
  }

  uint64_t valid_count() const {
    uint64_t n = 0;
    for (const Entry& e : entries_) n += e.valid ? 1 : 0;
    return n;
  }

 private:
  // Tree nodes are numbered heap-style from 1 (root); bit n of the set's word is node n, and
  // 0 sends the victim search left, 1 right.
  void plru_touch(size_t set, uint32_t way) {
    uint64_t& tree = plru_[set];
    uint32_t node = 1;
    for (int level = static_cast<int>(way_shift_) - 1; level >= 0; --level) {
      const uint32_t right = (way >> level) & 1;
      if (right) {
        tree &= ~(1ULL << node);  // used the right half: the victim is on the left
      } else {
        tree |= 1ULL << node;
      }
      node = 2 * node + right;
    }
  }
  uint32_t plru_victim(uint32_t set) const {
    const uint64_t tree = plru_[set];
    uint32_t node = 1;
    uint32_t way = 0;
    for (uint32_t level = 0; level < way_shift_; ++level) {
      const uint32_t right = static_cast<uint32_t>(tree >> node) & 1;
      way = 2 * way + right;
      node = 2 * node + right;
    }
    return way;
  }

  std::vector<Entry> entries_;
  std::vector<uint64_t> stamps_;  // LRU: last use, per entry
  std::vector<uint64_t> plru_;    // tree-PLRU: one tree per set
  uint64_t clock_ = 0;
  uint32_t ways_;
  uint32_t way_shift_ = 0;  // log2(ways) when ways is a power of two
  uint32_t set_mask_;
  uint32_t latency_;
  Replacement policy_;
  Rng rng_;
};

void check_array_params(const TlbArrayParams& params);  // validate() plus entries > 0

template <typename Entry>
SetAssocArray<Entry>::SetAssocArray(const TlbArrayParams& params, uint64_t seed)
    : ways_(params.ways),
      set_mask_(0),
      latency_(params.latency),
      policy_(params.replacement),
      rng_(seed) {
  check_array_params(params);
  set_mask_ = params.sets() - 1;
  while ((1u << way_shift_) < ways_) ++way_shift_;
  entries_.assign(params.entries, Entry{});
  for (Entry& e : entries_) e.valid = false;
  if (policy_ == Replacement::kLru) stamps_.assign(params.entries, 0);
  if (policy_ == Replacement::kTreePlru) plru_.assign(params.sets(), 0);
}

}  // namespace shadowsim
