// The shadow hash: (guest frame, shadow type) -> shadow, Xen's common.c shadow_hash_*:
// 251 buckets (SHADOW_HASH_BUCKETS, unchanged in Xen HEAD), singly chained, a hit moved to the
// front of its chain unless a hash walk is in progress. Shadows are named by an id (the pool
// index of their first page); the table keeps the key of each id so it stands alone.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <vector>

#include "shadow/shadow_types.h"

namespace shadowsim {

class ShadowHash {
 public:
  static constexpr uint32_t kBuckets = 251;  // Xen SHADOW_HASH_BUCKETS
  static constexpr uint32_t kNone = ~0u;

  explicit ShadowHash(uint32_t max_ids);

  // Xen sh_hash(): sdbm over the 8 bytes of the frame number, seeded with the type.
  static uint32_t bucket_of(uint64_t gfn, ShadowType type);

  // The id of (gfn, type), or kNone; counts lookups, head hits and misses; `steps` gets the
  // number of chain entries compared.
  uint32_t lookup(uint64_t gfn, ShadowType type, uint32_t* steps = nullptr);
  // The same search without counters or reordering (audits and tests).
  uint32_t find(uint64_t gfn, ShadowType type) const;
  void insert(uint32_t id, uint64_t gfn, ShadowType type);  // at the head of its bucket
  void erase(uint32_t id);
  // Visits every id whose type's bit is in `type_mask` (1 << type), bucket by bucket, chain
  // order; fn returns true to stop. Lookups during the walk do not reorder chains.
  void for_each(uint32_t type_mask, const std::function<bool(uint32_t)>& fn);

  uint64_t gfn_of(uint32_t id) const { return gfn_[id]; }
  ShadowType type_of(uint32_t id) const { return type_[id]; }
  uint32_t chain_length(uint32_t bucket) const;
  uint32_t head(uint32_t bucket) const { return heads_[bucket]; }

  // Xen perf counters.
  uint64_t lookups = 0;      // shadow_hash_lookups
  uint64_t lookup_head = 0;  // shadow_hash_lookup_head
  uint64_t lookup_miss = 0;  // shadow_hash_lookup_miss
  uint64_t inserts = 0;      // shadow_hash_inserts
  uint64_t deletes = 0;      // shadow_hash_deletes

 private:
  std::array<uint32_t, kBuckets> heads_;
  std::vector<uint32_t> next_;
  std::vector<uint64_t> gfn_;
  std::vector<ShadowType> type_;
  bool walking_ = false;
};

}  // namespace shadowsim
