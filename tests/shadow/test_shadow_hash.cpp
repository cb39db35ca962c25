#include <vector>

#include <gtest/gtest.h>

#include "shadow/shadow_hash.h"

namespace shadowsim {
namespace {

// Three frames whose L1 shadows land in the same bucket.
std::vector<uint64_t> colliding(ShadowType type, size_t n) {
  std::vector<uint64_t> gfns;
  const uint32_t bucket = ShadowHash::bucket_of(1, type);
  for (uint64_t g = 1; gfns.size() < n; ++g) {
    if (ShadowHash::bucket_of(g, type) == bucket) gfns.push_back(g);
  }
  return gfns;
}

TEST(ShadowHash, BucketIsXensSdbmHash) {
  // sh_hash(n, t): k = t; per byte k = byte + (k << 6) + (k << 16) - k; k % 251.
  uint32_t k = 8;
  for (uint64_t b : {0x34ULL, 0x12ULL, 0ULL, 0ULL, 0ULL, 0ULL, 0ULL, 0ULL}) {
    k = static_cast<uint32_t>(b) + (k << 6) + (k << 16) - k;
  }
  EXPECT_EQ(ShadowHash::bucket_of(0x1234, ShadowType::kL1_64), k % 251);
  EXPECT_NE(ShadowHash::bucket_of(0x1234, ShadowType::kL1_64),
            ShadowHash::bucket_of(0x1234, ShadowType::kL2_64));
}

TEST(ShadowHash, HitMovesToFrontAndCountersMatchXen) {
  ShadowHash h(16);
  const auto g = colliding(ShadowType::kL1_64, 3);
  for (uint32_t id = 0; id < 3; ++id) h.insert(id, g[id], ShadowType::kL1_64);
  const uint32_t b = ShadowHash::bucket_of(g[0], ShadowType::kL1_64);
  EXPECT_EQ(h.chain_length(b), 3u);
  EXPECT_EQ(h.head(b), 2u);  // inserted at the head
  uint32_t steps = 0;
  EXPECT_EQ(h.lookup(g[0], ShadowType::kL1_64, &steps), 0u);
  EXPECT_EQ(steps, 3u);
  EXPECT_EQ(h.head(b), 0u);  // moved to front
  EXPECT_EQ(h.lookup(g[0], ShadowType::kL1_64), 0u);
  EXPECT_EQ(h.lookup_head, 1u);
  EXPECT_EQ(h.lookup(g[0], ShadowType::kL2_64), ShadowHash::kNone);
  EXPECT_EQ(h.lookups, 3u);
  EXPECT_EQ(h.lookup_miss, 1u);
  EXPECT_EQ(h.inserts, 3u);
  EXPECT_EQ(h.find(g[2], ShadowType::kL1_64), 2u);  // no counters, no reordering
  EXPECT_EQ(h.lookups, 3u);
  EXPECT_EQ(h.head(b), 0u);
  h.erase(1);
  EXPECT_EQ(h.deletes, 1u);
  EXPECT_EQ(h.chain_length(b), 2u);
  EXPECT_EQ(h.lookup(g[1], ShadowType::kL1_64), ShadowHash::kNone);
}

TEST(ShadowHash, WalksDoNotReorderAndFilterByType) {
  ShadowHash h(16);
  const auto g = colliding(ShadowType::kL1Pae, 3);
  for (uint32_t id = 0; id < 3; ++id) h.insert(id, g[id], ShadowType::kL1Pae);
  h.insert(5, 77, ShadowType::kL2Pae);
  const uint32_t b = ShadowHash::bucket_of(g[0], ShadowType::kL1Pae);
  std::vector<uint32_t> seen;
  h.for_each(1u << static_cast<unsigned>(ShadowType::kL1Pae), [&](uint32_t id) {
    seen.push_back(id);
    h.lookup(g[0], ShadowType::kL1Pae);  // no move-to-front during a walk
    return false;
  });
  EXPECT_EQ(seen, (std::vector<uint32_t>{2, 1, 0}));
  EXPECT_EQ(h.head(b), 2u);
  seen.clear();
  h.for_each(~0u, [&](uint32_t id) {
    seen.push_back(id);
    return id == 5;  // stop
  });
  EXPECT_EQ(seen.back(), 5u);
}

}  // namespace
}  // namespace shadowsim
