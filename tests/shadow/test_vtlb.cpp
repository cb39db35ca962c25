#include <gtest/gtest.h>

#include "paging/paging_types.h"
#include "shadow/vtlb.h"

namespace shadowsim {
namespace {

TEST(VTlb, HitsNeedTheRights) {
  VTlb t;
  t.insert(0x7000123, 0x42, pfec::kPresent | pfec::kUser);
  EXPECT_EQ(t.lookup(0x7000fff, pfec::kUser), std::optional<uint64_t>(0x42));
  EXPECT_FALSE(t.lookup(0x7000000, pfec::kUser | pfec::kWrite));  // walked for a read
  EXPECT_FALSE(t.lookup(0x7001000, 0));
  EXPECT_EQ(t.hits, 1u);
  EXPECT_EQ(t.misses, 2u);
}

TEST(VTlb, ThirteenEntriesIndexedByPageNumber) {
  VTlb t;
  for (uint64_t p = 0; p < VTlb::kEntries; ++p) t.insert(p << 12, 100 + p, pfec::kWrite);
  for (uint64_t p = 0; p < VTlb::kEntries; ++p) {
    EXPECT_EQ(t.lookup(p << 12, pfec::kWrite), std::optional<uint64_t>(100 + p));
  }
  t.insert(13ULL << 12, 999, pfec::kWrite);  // page 13 evicts page 0 (13 mod 13 == 0)
  EXPECT_FALSE(t.lookup(0, 0));
  EXPECT_EQ(t.lookup(13ULL << 12, 0), std::optional<uint64_t>(999));
  EXPECT_TRUE(t.lookup(1ULL << 12, 0));
  t.flush();
  EXPECT_FALSE(t.lookup(1ULL << 12, 0));
  EXPECT_EQ(t.flushes, 1u);
}

}  // namespace
}  // namespace shadowsim
