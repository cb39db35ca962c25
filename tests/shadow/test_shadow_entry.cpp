#include <gtest/gtest.h>

#include "shadow/shadow_entry.h"

namespace shadowsim {
namespace {

constexpr uint64_t kFrame = 0x1234000;
constexpr uint64_t kAll = pte::kPresent | pte::kWritable | pte::kUser | pte::kAccessed |
                          pte::kDirty;

TEST(ShadowEntry, NotPresentBecomesMagicOrEmpty) {
  LeafContext ctx;
  EXPECT_EQ(propagate_leaf(kFrame, ctx), sentry::kGuestNotPresent);
  EXPECT_TRUE(sentry::is_magic(propagate_leaf(0, ctx)));
  ctx.magic = false;
  EXPECT_EQ(propagate_leaf(kFrame, ctx), 0u);
}

TEST(ShadowEntry, AccessedAndDirtyAreEmulated) {
  LeafContext ctx;
  EXPECT_EQ(propagate_leaf(kFrame | kAll, ctx), kFrame | kAll);
  EXPECT_EQ(propagate_leaf(kFrame | (kAll & ~pte::kAccessed), ctx), 0u);  // A=0: not present
  EXPECT_EQ(propagate_leaf(kFrame | (kAll & ~pte::kDirty), ctx),
            kFrame | (kAll & ~pte::kDirty & ~pte::kWritable));  // D=0: read-only
}

TEST(ShadowEntry, PageTablesAndBadFramesAreProtected) {
  LeafContext ctx;
  ctx.target_is_page_table = true;
  EXPECT_EQ(propagate_leaf(kFrame | kAll, ctx), kFrame | (kAll & ~pte::kWritable));
  ctx = LeafContext{};
  ctx.target_ram = false;
  EXPECT_EQ(propagate_leaf(kFrame | kAll, ctx), 0u);
  ctx = LeafContext{};
  ctx.guest_reserved = true;
  EXPECT_EQ(propagate_leaf(kFrame | kAll, ctx), 0u);
}

TEST(ShadowEntry, FlagsComeFromTheGuest) {
  LeafContext ctx;
  const uint64_t g = kFrame | kAll | pte::kGlobal | pte::kPat4K | pte::kPcd | pte::kPwt |
                     pte::kExecuteDisable | (1ULL << 9);  // bit 9: software-available
  // G never reaches the shadow (Xen's pass_thru_flags); software bits neither.
  EXPECT_EQ(propagate_leaf(g, ctx), g & ~pte::kGlobal & ~pte::kExecuteDisable & ~(1ULL << 9));
  ctx.guest_nx = true;
  EXPECT_EQ(propagate_leaf(g, ctx), g & ~pte::kGlobal & ~(1ULL << 9));
}

TEST(ShadowEntry, UpperEntriesGetAccessedDirtyAndNeverPs) {
  const uint64_t child = 0x8000000;
  EXPECT_EQ(propagate_upper(kFrame | pte::kPresent | pte::kAccessed | pte::kUser, child, false,
                            false, false),
            child | pte::kPresent | pte::kAccessed | pte::kDirty | pte::kUser);
  EXPECT_EQ(propagate_upper(kFrame | pte::kPresent, child, false, false, false), 0u);  // A=0
  EXPECT_EQ(propagate_upper(kFrame | kAll, 0, false, false, false), 0u);  // no child shadow
  // A PSE PDE without D: read-only; PS is not copied.
  const uint64_t pse = kFrame | pte::kPresent | pte::kWritable | pte::kAccessed | pte::kPageSize;
  EXPECT_EQ(propagate_upper(pse, child, true, false, false),
            child | pte::kPresent | pte::kAccessed | pte::kDirty);
  EXPECT_EQ(propagate_upper(pse | pte::kDirty, child, true, false, false),
            child | pte::kPresent | pte::kAccessed | pte::kDirty | pte::kWritable);
}

TEST(ShadowEntry, SplinteredSuperpages) {
  // PAE/64-bit 2 MiB PDE with PAT (bit 12) and XD.
  const uint64_t pde = 0x40200000ULL | pte::kPresent | pte::kWritable | pte::kAccessed |
                       pte::kPageSize | pte::kPatLarge | pte::kExecuteDisable;
  EXPECT_EQ(superpage_first_gfn(PagingMode::k4Level, pde), 0x40200u);
  EXPECT_EQ(splinter_superpage(PagingMode::k4Level, pde, 3),
            0x40203000ULL | pte::kPresent | pte::kWritable | pte::kAccessed | pte::kPat4K |
                pte::kExecuteDisable);
  // 32-bit 4 MiB PDE with PSE-36: PA bits 35:32 in PDE bits 16:13.
  const uint64_t pde32 = 0x00c00000ULL | (0x3ULL << 13) | pte::kPresent | pte::kPageSize;
  EXPECT_EQ(superpage_first_gfn(PagingMode::k32Bit, pde32), 0x300c00u);
  EXPECT_EQ(splinter_superpage(PagingMode::k32Bit, pde32, 1023), (0x300fffULL << 12) | 1);
}

TEST(ShadowEntry, BoundsCatchExtraRightsAndWrongFrames) {
  const uint64_t g = kFrame | kAll;
  const ShadowBound b = shadow_bound(g, 1, true, false);
  EXPECT_TRUE(within_bound(kFrame | kAll, 1, b));
  EXPECT_FALSE(within_bound((kFrame + 0x1000) | kAll, 1, b));  // another frame
  EXPECT_TRUE(within_bound(sentry::kGuestNotPresent, 1, b));   // magic grants nothing
  const ShadowBound ro = shadow_bound(g & ~pte::kDirty, 1, true, false);
  EXPECT_FALSE(within_bound(kFrame | kAll, 1, ro));  // writable without guest D
  const ShadowBound pt = shadow_bound(g, 1, true, true);
  EXPECT_FALSE(within_bound(kFrame | kAll, 1, pt));  // writable page table
  const ShadowBound nx = shadow_bound(g | pte::kExecuteDisable, 1, true, false);
  EXPECT_FALSE(within_bound(kFrame | kAll, 1, nx));
  EXPECT_TRUE(within_bound(kFrame | kAll | pte::kExecuteDisable, 1, nx));
  const ShadowBound np = shadow_bound(kFrame, 1, true, false);
  EXPECT_FALSE(within_bound(kFrame | pte::kPresent, 1, np));
  const ShadowBound sup = shadow_bound(g & ~pte::kUser, 2, true, false);
  EXPECT_FALSE(within_bound(0x9000 | kAll, 2, sup));
  EXPECT_TRUE(within_bound(0x9000 | (kAll & ~pte::kUser), 2, sup));
}

}  // namespace
}  // namespace shadowsim
