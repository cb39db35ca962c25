#include "shadow/shadow_hash.h"

#include <fmt/format.h>

#include "common/error.h"

namespace shadowsim {

ShadowHash::ShadowHash(uint32_t max_ids)
    : next_(max_ids, kNone), gfn_(max_ids, 0), type_(max_ids, ShadowType::kNone) {
  heads_.fill(kNone);
}

uint32_t ShadowHash::bucket_of(uint64_t gfn, ShadowType type) {
  uint32_t k = static_cast<uint32_t>(type);
  for (int i = 0; i < 8; ++i) {
    const uint32_t byte = static_cast<uint32_t>((gfn >> (8 * i)) & 0xff);  // little endian
    k = byte + (k << 6) + (k << 16) - k;
  }
  return k % kBuckets;
}

uint32_t ShadowHash::lookup(uint64_t gfn, ShadowType type, uint32_t* steps) {
  ++lookups;
  const uint32_t b = bucket_of(gfn, type);
  uint32_t prev = kNone;
  uint32_t n = 0;
  for (uint32_t id = heads_[b]; id != kNone; prev = id, id = next_[id]) {
    ++n;
    if (gfn_[id] != gfn || type_[id] != type) continue;
    if (steps) *steps += n;
    if (prev == kNone) {
      ++lookup_head;
    } else if (!walking_) {
      next_[prev] = next_[id];  // move to front
      next_[id] = heads_[b];
      heads_[b] = id;
    }
    return id;
  }
  if (steps) *steps += n;
  ++lookup_miss;
  return kNone;
}

uint32_t ShadowHash::find(uint64_t gfn, ShadowType type) const {
  for (uint32_t id = heads_[bucket_of(gfn, type)]; id != kNone; id = next_[id]) {
    if (gfn_[id] == gfn && type_[id] == type) return id;
  }
  return kNone;
}

void ShadowHash::insert(uint32_t id, uint64_t gfn, ShadowType type) {
  if (walking_) throw Error("shadow hash: insert during a hash walk");
  ++inserts;
  const uint32_t b = bucket_of(gfn, type);
  gfn_[id] = gfn;
  type_[id] = type;
  next_[id] = heads_[b];
  heads_[b] = id;
}

void ShadowHash::erase(uint32_t id) {
  if (walking_) throw Error("shadow hash: delete during a hash walk");
  ++deletes;
  const uint32_t b = bucket_of(gfn_[id], type_[id]);
  if (heads_[b] == id) {
    heads_[b] = next_[id];
  } else {
    uint32_t x = heads_[b];
    while (x != kNone && next_[x] != id) x = next_[x];
    if (x == kNone) throw Error(fmt::format("shadow hash: id {} is not in the table", id));
    next_[x] = next_[id];
  }
  next_[id] = kNone;
  type_[id] = ShadowType::kNone;
}

void ShadowHash::for_each(uint32_t type_mask, const std::function<bool(uint32_t)>& fn) {
  walking_ = true;
  bool done = false;
  for (uint32_t b = 0; b < kBuckets && !done; ++b) {
    for (uint32_t id = heads_[b]; id != kNone && !done; id = next_[id]) {
      if (type_mask & (1u << static_cast<unsigned>(type_[id]))) done = fn(id);
    }
  }
  walking_ = false;
}

uint32_t ShadowHash::chain_length(uint32_t bucket) const {
  uint32_t n = 0;
  for (uint32_t id = heads_[bucket]; id != kNone; id = next_[id]) ++n;
  return n;
}

}  // namespace shadowsim
