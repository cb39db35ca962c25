// The caches of a 2-D walk on their own (nested_caches.h): the nested TLB's multi-size lookup,
// rights and dirty checks, tags and invalidation, replacement; host PSC deepest hit and fill;
// guest PSC tags and flushes; parameter lists and validation.
#include <gtest/gtest.h>

#include <algorithm>

#include "../tlb/param_visitors.h"
#include "nested/host_table_builder.h"
#include "nested/nested_caches.h"
#include "nested/nested_walker.h"
#include "paging/frame_allocator.h"
#include "paging/guest_memory.h"

namespace shadowsim {
namespace {

HostTranslation leaf(uint64_t page_hpa, int level, HostRwx rwx, bool dirty) {
  HostTranslation t;
  t.stop_level = static_cast<int8_t>(level);
  t.page_hpa = page_hpa;
  t.rwx = rwx;
  t.dirty = dirty;
  return t;
}

TEST(NestedTlb, HoldsPagesOfEverySizeAndChecksRightsAndDirty) {
  NestedTlb tlb(TlbArrayParams{8, 8, Replacement::kLru, 1}, 1);
  tlb.fill(0x1000, 0x5000, leaf(0x7000000, 1, ept::kRead, false));
  tlb.fill(0x1000, 0x400000, leaf(0x8000000, 2, ept::kRwx, true));
  tlb.fill(0x1000, 1ULL << 30, leaf(3ULL << 30, 3, ept::kRwx, true));
  const NestedTlb::Entry* e = tlb.lookup(0x1000, 0x5abc, AccessKind::kRead);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->hpa(0x5abc), 0x7000abcu);
  EXPECT_EQ(tlb.lookup(0x1000, 0x5abc, AccessKind::kWrite), nullptr);  // no W: re-walk
  ASSERT_NE(tlb.lookup(0x1000, 0x5bcdef, AccessKind::kWrite), nullptr);
  EXPECT_EQ(tlb.lookup(0x1000, 0x5bcdef, AccessKind::kWrite)->hpa(0x5bcdef), 0x81bcdefu);
  EXPECT_EQ(tlb.lookup(0x1000, (1ULL << 30) + 0x123, AccessKind::kFetch)->leaf_level, 3);
  EXPECT_EQ(tlb.lookup(0x2000, 0x5abc, AccessKind::kRead), nullptr);  // another EPTP
  EXPECT_EQ(tlb.hits(), 4u);
  EXPECT_EQ(tlb.misses(), 2u);
  // A clean entry serves reads but not writes (the walk must set the host D bit).
  tlb.fill(0x1000, 0x9000, leaf(0x9000000, 1, ept::kRwx, false));
  EXPECT_NE(tlb.lookup(0x1000, 0x9000, AccessKind::kRead), nullptr);
  EXPECT_EQ(tlb.lookup(0x1000, 0x9000, AccessKind::kWrite), nullptr);
  tlb.fill(0x1000, 0x9000, leaf(0x9000000, 1, ept::kRwx, true));  // refilled in place
  EXPECT_EQ(tlb.valid_count(), 4u);
  tlb.invalidate(0x2000);
  EXPECT_EQ(tlb.valid_count(), 4u);
  tlb.invalidate(0x1000);
  EXPECT_EQ(tlb.valid_count(), 0u);
}

TEST(NestedTlb, EvictsTheLeastRecentlyUsedEntry) {
  NestedTlb tlb(TlbArrayParams{2, 2, Replacement::kLru, 1}, 1);
  tlb.fill(0, 0x1000, leaf(0x11000, 1, ept::kRwx, true));
  tlb.fill(0, 0x2000, leaf(0x12000, 1, ept::kRwx, true));
  ASSERT_NE(tlb.lookup(0, 0x1000, AccessKind::kRead), nullptr);  // 0x2000 is now the LRU
  tlb.fill(0, 0x3000, leaf(0x13000, 1, ept::kRwx, true));
  EXPECT_NE(tlb.lookup(0, 0x1000, AccessKind::kRead), nullptr);
  EXPECT_EQ(tlb.lookup(0, 0x2000, AccessKind::kRead), nullptr);
  NestedTlb none(TlbArrayParams{0, 1, Replacement::kLru, 1}, 1);
  EXPECT_FALSE(none.enabled());
  EXPECT_EQ(none.lookup(0, 0x1000, AccessKind::kRead), nullptr);
}

TEST(HostPsc, CachesNonLeafEntriesAndReturnsTheDeepestStart) {
  GuestMemory mem(16ULL << 20);
  FrameAllocator frames(1, 4095);
  HostTableBuilder builder(mem, frames, HostPagingParams{});
  builder.map(0x1000, 0x7000000, kPageSize, PageSize::k4K);
  builder.map(0x400000, 0x8000000, 2ULL << 20, PageSize::k2M);
  const HostPageTables host = builder.tables();
  HostPsc psc(HostPscParams{}, 1);
  HostStart s = psc.lookup(host, 0x1000);
  EXPECT_EQ(s.level, 4);
  const HostTranslation t = host.translate_from(0x1000, AccessKind::kRead, s);
  psc.fill(host, 0x1000, s, t);
  EXPECT_EQ(psc.valid_count(4) + psc.valid_count(3) + psc.valid_count(2), 3u);
  s = psc.lookup(host, 0x1fff);
  EXPECT_EQ(s.level, 1);
  EXPECT_EQ(s.table_hpa, *builder.entry_hpa(0x1000, 1) & ~0xfffULL);
  EXPECT_EQ(psc.hits(2), 1u);
  s = psc.lookup(host, 0x400000);  // same PDPT, another PD entry: the PDPTE cache
  EXPECT_EQ(s.level, 2);
  const HostTranslation big = host.translate_from(0x400000, AccessKind::kRead, s);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big.ref_count, 1);
  psc.fill(host, 0x400000, s, big);  // a 2 MiB leaf: nothing new to cache
  EXPECT_EQ(psc.valid_count(2), 1u);
  psc.invalidate(host.root());
  EXPECT_EQ(psc.lookup(host, 0x1000).level, 4);
}

TEST(GuestPsc, EntriesAreTaggedByHostRootVpidPcidAndMode) {
  GuestPsc psc(GuestPscParams{}, 1);
  PagingState state(PagingMode::k4Level);
  const TlbContext ctx{1, 2};
  psc.insert(0x400000, ctx, state, 0x1000, 2, 0x4000, 0x40004000, Rights{}, 19);
  GuestStart s = psc.lookup(0x400abc, ctx, state, 0x1000, 4);
  ASSERT_TRUE(s.cached);
  EXPECT_EQ(s.walk.level, 1);
  EXPECT_EQ(s.walk.table_pa, 0x4000u);
  EXPECT_EQ(s.table_hpa, 0x40004000u);
  EXPECT_EQ(s.cold_refs, 19);
  EXPECT_FALSE(psc.lookup(0x400abc, ctx, state, 0x2000, 4).cached);            // other EPTP
  EXPECT_FALSE(psc.lookup(0x400abc, TlbContext{1, 3}, state, 0x1000, 4).cached);  // other PCID
  EXPECT_FALSE(psc.lookup(0x400abc, ctx, state, 0x1000, 1).cached);  // level 2 not probed
  PagingState pae(PagingMode::kPae);
  EXPECT_FALSE(psc.lookup(0x400abc, ctx, pae, 0x1000, 2).cached);  // other mode
  psc.flush_pcid(TlbContext{1, 3});
  EXPECT_TRUE(psc.lookup(0x400abc, ctx, state, 0x1000, 4).cached);
  psc.flush_vpid(1);
  EXPECT_FALSE(psc.lookup(0x400abc, ctx, state, 0x1000, 4).cached);
}

TEST(NestedParams, EveryFieldIsListedAndBadGeometryNamesTheField) {
  NestedParams p;
  test::RecordingVisitor v;
  p.visit(v);
  EXPECT_EQ(v.names.size(), 4u * (1 + 3 + 4));
  EXPECT_NE(std::find(v.names.begin(), v.names.end(), "guest_psc.pde.entries"), v.names.end());
  p.host_psc.pde.ways = 3;
  try {
    p.validate();
    FAIL() << "expected ParamError";
  } catch (const ParamError& e) {
    EXPECT_EQ(e.field(), "host_psc.pde.ways");
  }
  EXPECT_THROW(NestedWalker(p, 1), ParamError);
  HostPagingParams h;
  test::RecordingVisitor hv;
  h.visit(hv);
  EXPECT_EQ(hv.names.size(), 6u);
}

}  // namespace
}  // namespace shadowsim
