#include <gtest/gtest.h>

#include "common/error.h"
#include "shadow/shadow_types.h"

namespace shadowsim {
namespace {

TEST(ShadowTypes, ModesFollowGuestPagingModes) {
  EXPECT_EQ(shadow_mode_for(PagingMode::k32Bit), ShadowMode::k2on3);
  EXPECT_EQ(shadow_mode_for(PagingMode::kPae), ShadowMode::k3on3);
  EXPECT_EQ(shadow_mode_for(PagingMode::k4Level), ShadowMode::k4on4);
  EXPECT_THROW(shadow_mode_for(PagingMode::k5Level), Error);
  EXPECT_EQ(shadow_paging_mode(ShadowMode::k2on3), PagingMode::kPae);
  EXPECT_EQ(shadow_paging_mode(ShadowMode::k4on4), PagingMode::k4Level);
}

TEST(ShadowTypes, OrdersAreXens) {
  // Xen common.c type_to_order: 32-bit L1 and FL1 are 8 KiB, 32-bit L2 16 KiB, others 4 KiB.
  EXPECT_EQ(shadow_order(ShadowType::kL1_32), 1);
  EXPECT_EQ(shadow_order(ShadowType::kFl1_32), 1);
  EXPECT_EQ(shadow_order(ShadowType::kL2_32), 2);
  for (ShadowType t : {ShadowType::kL1Pae, ShadowType::kFl1Pae, ShadowType::kL2Pae,
                       ShadowType::kL1_64, ShadowType::kFl1_64, ShadowType::kL2_64,
                       ShadowType::kL3_64, ShadowType::kL4_64}) {
    EXPECT_EQ(shadow_order(t), 0) << to_string(t);
  }
}

TEST(ShadowTypes, LevelsAndTopTypes) {
  EXPECT_EQ(shadow_level(ShadowType::kFl1_64), 1);
  EXPECT_EQ(shadow_level(ShadowType::kL2_32), 2);
  EXPECT_EQ(shadow_level(ShadowType::kL4_64), 4);
  EXPECT_TRUE(is_fl1_type(ShadowType::kFl1Pae));
  EXPECT_FALSE(is_fl1_type(ShadowType::kL1Pae));
  EXPECT_TRUE(is_top_type(ShadowType::kL2Pae));
  EXPECT_FALSE(is_top_type(ShadowType::kL3_64));
  EXPECT_EQ(table_type(ShadowMode::k2on3, 2), ShadowType::kL2_32);
  EXPECT_EQ(table_type(ShadowMode::k3on3, 3), ShadowType::kNone);  // PAE L3 is not shadowed
  EXPECT_EQ(table_type(ShadowMode::k4on4, 3), ShadowType::kL3_64);
  EXPECT_EQ(fl1_type(ShadowMode::k2on3), ShadowType::kFl1_32);
  EXPECT_STREQ(to_string(ShadowType::kFl1Pae), "fl1_pae");
}

TEST(ShadowTypes, WorkAddsUp) {
  ShadowWork a, b;
  a.hash_lookups = 2;
  b.hash_lookups = 3;
  b.flush_needed = true;
  b.heuristic_hit = WriteHeuristic::kH4;
  a.add(b);
  EXPECT_EQ(a.hash_lookups, 5u);
  EXPECT_TRUE(a.flush_needed);
  EXPECT_EQ(a.heuristic_hit, WriteHeuristic::kH4);
}

}  // namespace
}  // namespace shadowsim
