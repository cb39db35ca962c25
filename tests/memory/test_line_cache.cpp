#include <gtest/gtest.h>

#include "memory/line_cache.h"

namespace shadowsim {
namespace {

// 4 lines of 64 B in 2 ways: 2 sets; lines with the same parity share a set.
CacheParams tiny() { return CacheParams{0, 2, 1}; }

TEST(LineCache, LruEvictsTheLeastRecentlyUsedLineOfTheSet) {
  CacheParams p{1, 2, 1};  // 1 KiB / 64 B = 16 lines, 2 ways: 8 sets
  LineCache c(p, 64);
  EXPECT_FALSE(c.access(0));
  EXPECT_FALSE(c.access(8));   // same set (8 sets)
  EXPECT_TRUE(c.access(0));    // 0 is now most recent
  EXPECT_FALSE(c.access(16));  // evicts 8
  EXPECT_TRUE(c.contains(0));
  EXPECT_FALSE(c.contains(8));
  EXPECT_TRUE(c.contains(16));
  EXPECT_FALSE(c.access(1));   // another set: no effect on set 0
  EXPECT_TRUE(c.access(0));
}

TEST(LineCache, InvalidateFreesTheWay) {
  LineCache c(CacheParams{1, 2, 1}, 64);
  c.access(0);
  c.access(8);
  c.invalidate(0);
  EXPECT_FALSE(c.contains(0));
  EXPECT_FALSE(c.access(16));  // takes the freed way: 8 stays
  EXPECT_TRUE(c.contains(8));
  c.invalidate(12345);  // absent: no effect
  c.clear();
  EXPECT_FALSE(c.contains(8));
}

TEST(LineCache, GeometryMustGivePowerOfTwoSets) {
  EXPECT_THROW(LineCache(CacheParams{3, 1, 1}, 64), ParamError);    // 48 sets
  EXPECT_THROW(LineCache(CacheParams{1, 3, 1}, 64), ParamError);    // 3 does not divide 16
  EXPECT_THROW(LineCache(tiny(), 64), ParamError);                  // no lines at all
  EXPECT_NO_THROW(LineCache(CacheParams{1, 16, 1}, 64));            // fully associative
}

}  // namespace
}  // namespace shadowsim
