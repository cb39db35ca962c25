#include <gtest/gtest.h>

#include "common/error.h"
#include "shadow/shadow_pool.h"

namespace shadowsim {
namespace {

TEST(ShadowPool, RefusesUnalignedPools) {
  EXPECT_THROW(ShadowPool(0x1000, 6), Error);
  EXPECT_THROW(ShadowPool(0x1002, 8), Error);
  EXPECT_THROW(ShadowPool(0x1000, 0), Error);
}

TEST(ShadowPool, SplitsAndMergesBuddies) {
  ShadowPool pool(0x1000, 8);
  EXPECT_EQ(pool.free_chunks(2), 2u);
  const uint64_t a = pool.alloc(0);
  EXPECT_EQ(a, 0x1000u);  // lowest chunk, lower half kept
  EXPECT_EQ(pool.free_chunks(0), 1u);  // 0x1001
  EXPECT_EQ(pool.free_chunks(1), 1u);  // 0x1002
  EXPECT_EQ(pool.free_chunks(2), 1u);  // 0x1004
  const uint64_t b = pool.alloc(1);
  EXPECT_EQ(b, 0x1002u);
  const uint64_t c = pool.alloc(2);
  EXPECT_EQ(c, 0x1004u);
  EXPECT_EQ(pool.used_pages(), 7u);
  EXPECT_EQ(pool.peak_used_pages(), 7u);
  EXPECT_THROW(pool.alloc(1), Error);  // only one page left
  pool.free(a, 0);
  EXPECT_EQ(pool.free_chunks(1), 1u);  // 0x1000 + 0x1001 merged
  pool.free(b, 1);
  EXPECT_EQ(pool.free_chunks(2), 1u);  // all of 0x1000..0x1003
  pool.free(c, 2);
  EXPECT_EQ(pool.free_chunks(2), 2u);
  EXPECT_EQ(pool.free_pages(), 8u);
  EXPECT_EQ(pool.peak_used_pages(), 7u);
  EXPECT_THROW(pool.free(0x1001, 1), Error);  // misaligned
}

TEST(ShadowPool, SpaceIsAvailableCountsLargerChunksTwice) {
  ShadowPool pool(0, 4);
  EXPECT_TRUE(pool.space_is_available(0, 4));
  EXPECT_FALSE(pool.space_is_available(0, 5));
  EXPECT_TRUE(pool.space_is_available(2, 1));
  pool.alloc(0);
  EXPECT_FALSE(pool.space_is_available(2, 1));
  EXPECT_TRUE(pool.space_is_available(1, 1));
  EXPECT_TRUE(pool.space_is_available(0, 3));
  EXPECT_FALSE(pool.space_is_available(1, 2));
}

}  // namespace
}  // namespace shadowsim
