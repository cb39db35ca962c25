// The TLB hierarchy: tags and the invalidation instructions (SDM vol. 3A §4.10.4), cached
// rights and the dirty-bit re-walk, fracturing, the STLB, the Core 2 variant, parameters,
// presets and statistics. Translations are hand-made except where the walker is the point.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/rng.h"
#include "common/stats.h"
#include "paging/frame_allocator.h"
#include "paging/guest_memory.h"
#include "paging/page_table_editor.h"
#include "paging/paging_state.h"
#include "paging/walker.h"
#include "param_visitors.h"
#include "tlb/tlb_hierarchy.h"

namespace shadowsim {
namespace {

// Latencies of the default (Skylake) L1 TLBs and STLB, from the parameters themselves.
const uint32_t kL1 = TlbHierarchy(TlbHierarchyParams{}, 1).dtlb().latency();
const uint32_t kStlb = TlbHierarchy(TlbHierarchyParams{}, 1).stlb().latency();

using Result = TlbLookup::Result;
constexpr PagingMode k4L = PagingMode::k4Level;

Translation page(uint64_t va, uint64_t page_pa, PageSize size = PageSize::k4K) {
  Translation t{};
  t.page_va = va & ~(page_bytes(size) - 1);
  t.page_pa = page_pa;
  t.pa = page_pa | (va & (page_bytes(size) - 1));
  t.size = size;
  t.rights = Rights{};  // writable, user, executable
  t.global = false;
  t.dirty = true;
  t.pat_index = 0;
  return t;
}
Translation global_page(uint64_t va, uint64_t page_pa) {
  Translation t = page(va, page_pa);
  t.global = true;
  return t;
}

class Hierarchy : public ::testing::Test {
 protected:
  Hierarchy() : tlb(TlbHierarchyParams::skylake(), 1) {}
  TlbLookup read(uint64_t va, TlbContext ctx = {}, PagingMode mode = k4L) {
    return tlb.lookup(va, Access::read(true), ctx, controls, mode);
  }
  TlbLookup write(uint64_t va, TlbContext ctx = {}) {
    return tlb.lookup(va, Access::write(true), ctx, controls, k4L);
  }
  TlbLookup fetch(uint64_t va, TlbContext ctx = {}) {
    return tlb.lookup(va, Access::fetch(true), ctx, controls, k4L);
  }
  void fill(uint64_t va, const Translation& t, TlbContext ctx = {},
            Access access = Access::read(true)) {
    tlb.fill(va, t, access, ctx);
  }
  bool hits(uint64_t va, TlbContext ctx) { return read(va, ctx).result == Result::kHit; }

  PagingControls controls;
  TlbHierarchy tlb;
};

TEST_F(Hierarchy, MissThenFillThenL1Hit) {
  const TlbLookup miss = read(0x7f0000401234);
  EXPECT_EQ(miss.result, Result::kMiss);
  EXPECT_EQ(miss.level, 0);
  EXPECT_FALSE(miss.dirty_rewalk);
  EXPECT_EQ(miss.cycles, kL1 + kStlb);  // L1 and STLB probed
  fill(0x7f0000401234, page(0x7f0000401234, 0x5000));
  const TlbLookup hit = read(0x7f0000401ffc);
  EXPECT_EQ(hit.result, Result::kHit);
  EXPECT_EQ(hit.level, 1);
  EXPECT_EQ(hit.cycles, kL1);
  EXPECT_EQ(hit.pa, 0x5ffcu);
  EXPECT_EQ(hit.size, PageSize::k4K);
  EXPECT_EQ(read(0x7f0000402000).result, Result::kMiss);  // the next page
  EXPECT_EQ(tlb.dtlb().hits(PageSize::k4K), 1u);
  EXPECT_EQ(tlb.dtlb().misses(), 2u);
  EXPECT_EQ(tlb.stlb().misses(), 2u);
}

TEST_F(Hierarchy, AnStlbPieceOfAFourMegabytePageRefillsTheL1WithTheWholePage) {
  // 32-bit paging: the Skylake STLB has no 4M array and keeps 2M pieces; the ITLB holds 4M.
  const Translation t = page(0xC0000000, 0x00800000, PageSize::k4M);
  tlb.fill(0xC0123456, t, Access::read(), TlbContext{});
  const TlbLookup first = tlb.lookup(0xC0123456, Access::fetch(), {}, controls, PagingMode::k32Bit);
  ASSERT_EQ(first.result, Result::kHit);
  EXPECT_EQ(first.level, 2);
  EXPECT_EQ(first.pa, 0x00923456u);
  const TlbLookup again = tlb.lookup(0xC0323456, Access::fetch(), {}, controls, PagingMode::k32Bit);
  ASSERT_EQ(again.result, Result::kHit);
  EXPECT_EQ(again.level, 1) << "the ITLB got the whole 4M page, not the STLB's 2M piece";
  EXPECT_EQ(again.size, PageSize::k4M);
  EXPECT_EQ(again.pa, 0x00b23456u);
}

TEST_F(Hierarchy, APageFaultInvalidatesThePagesNonGlobalEntriesWithoutCountingAFlush) {
  fill(0x7f0000401000, page(0x7f0000401000, 0x5000));
  fill(0x7f0000402000, page(0x7f0000402000, 0x6000));
  tlb.page_fault_invalidate(0x7f0000401abc, TlbContext{});
  EXPECT_EQ(read(0x7f0000401000).result, Result::kMiss);
  EXPECT_EQ(read(0x7f0000402000).result, Result::kHit);
  EXPECT_EQ(tlb.dirty_rewalks(), 0u);
}

TEST_F(Hierarchy, APageFaultInvalidatesAGlobalEntryOfThePageToo) {
  fill(0xffff888000185000, global_page(0xffff888000185000, 0x185000));
  fill(0xffff888000186000, global_page(0xffff888000186000, 0x186000));
  tlb.page_fault_invalidate(0xffff888000185ff0, TlbContext{});
  EXPECT_EQ(read(0xffff888000185000).result, Result::kMiss)
      << "a stale global entry would make the fault recur after the tables allow the access";
  EXPECT_EQ(read(0xffff888000186000).result, Result::kHit);
}

TEST_F(Hierarchy, FetchesUseTheItlbAndAnStlbHitRefillsTheL1) {
  fill(0x400000, page(0x400000, 0x9000));  // a read: DTLB and STLB
  const TlbLookup f = fetch(0x400010);
  EXPECT_EQ(f.result, Result::kHit);
  EXPECT_EQ(f.level, 2);  // the ITLB missed, the unified STLB hit
  EXPECT_EQ(f.cycles, kL1 + kStlb);
  EXPECT_EQ(f.pa, 0x9010u);
  EXPECT_EQ(tlb.itlb().fills(PageSize::k4K), 1u);  // copied into the ITLB
  const TlbLookup again = fetch(0x400020);
  EXPECT_EQ(again.level, 1);
  EXPECT_EQ(again.cycles, kL1);
  EXPECT_EQ(tlb.stlb().hits(PageSize::k4K), 1u);
  EXPECT_EQ(tlb.itlb().hits(PageSize::k4K), 1u);
}

TEST_F(Hierarchy, EntriesMatchTheirVpidAndPcidOrAreGlobalWithinTheirVpid) {
  const TlbContext a{1, 5};
  fill(0x1000, page(0x1000, 0xa000), a);
  fill(0x2000, global_page(0x2000, 0xb000), a);
  EXPECT_TRUE(hits(0x1000, a));
  EXPECT_FALSE(hits(0x1000, {1, 6}));  // another PCID
  EXPECT_FALSE(hits(0x1000, {2, 5}));  // another VPID
  EXPECT_TRUE(hits(0x2000, {1, 6}));   // global: any PCID ...
  EXPECT_FALSE(hits(0x2000, {2, 5}));  // ... of the same VPID only
  EXPECT_THROW(read(0x1000, {1, 0x1000}), Error);  // PCIDs have 12 bits
}

TEST_F(Hierarchy, FillReplacesWhatTheLookupWouldFindInsteadOfDuplicating) {
  const TlbContext a{1, 5};
  fill(0x1000, global_page(0x1000, 0xa000), {1, 7});
  fill(0x1000, page(0x1000, 0xc000), a);  // the global entry would have served PCID 5
  EXPECT_EQ(read(0x1000, {1, 7}).result, Result::kMiss) << "the global entry was replaced";
  EXPECT_EQ(read(0x1000, a).pa, 0xc000u);
  EXPECT_EQ(tlb.dtlb().valid_count(), 1u);
}

// A fixture of one VPID with entries for two addresses in PCIDs 1 and 2 plus global ones.
class Invalidation : public Hierarchy {
 protected:
  static constexpr uint64_t kX = 0x10000;
  static constexpr uint64_t kY = 0x20000;
  static constexpr uint64_t kG = 0x30000;
  void SetUp() override {
    for (const TlbContext& c : {p1, p2, other_vpid}) {
      fill(kX, page(kX, 0x100000 + c.pcid * 0x10000 + c.vpid * 0x1000), c);
      fill(kY, page(kY, 0x200000 + c.pcid * 0x10000 + c.vpid * 0x1000), c);
    }
    fill(kG, global_page(kG, 0x300000), p2);
    fill(kG, global_page(kG, 0x310000), other_vpid);
  }
  const TlbContext p1{1, 1};
  const TlbContext p2{1, 2};
  const TlbContext other_vpid{2, 1};
};

TEST_F(Invalidation, MovToCr3DropsOnlyThisPcidsNonGlobalEntries) {
  tlb.flush_non_global(p1);
  EXPECT_FALSE(hits(kX, p1));
  EXPECT_FALSE(hits(kY, p1));
  EXPECT_TRUE(hits(kG, p1));  // global survives
  EXPECT_TRUE(hits(kX, p2));
  EXPECT_TRUE(hits(kX, other_vpid));
}

TEST_F(Invalidation, InvlpgDropsThisPcidsAndGlobalEntriesForTheAddress) {
  tlb.invlpg(kX, p1);
  EXPECT_FALSE(hits(kX, p1));
  EXPECT_TRUE(hits(kY, p1));
  EXPECT_TRUE(hits(kX, p2)) << "another PCID's non-global entry stays";
  EXPECT_TRUE(hits(kX, other_vpid));
  tlb.invlpg(kG, p1);  // the global entry was filled under PCID 2: still removed
  EXPECT_FALSE(hits(kG, p2));
  EXPECT_TRUE(hits(kG, other_vpid)) << "another VPID's global entry stays";
}

TEST_F(Invalidation, InvpcidIndividualAddressKeepsGlobalEntries) {
  tlb.invpcid(0, kX, p1);
  EXPECT_FALSE(hits(kX, p1));
  EXPECT_TRUE(hits(kY, p1));
  EXPECT_TRUE(hits(kX, p2));
  tlb.invpcid(0, kG, p2);
  EXPECT_TRUE(hits(kG, p2)) << "type 0 leaves global translations";
}

TEST_F(Invalidation, InvpcidSingleContextKeepsGlobalEntriesAndOtherPcids) {
  tlb.invpcid(1, 0, p2);
  EXPECT_FALSE(hits(kX, p2));
  EXPECT_FALSE(hits(kY, p2));
  EXPECT_TRUE(hits(kG, p2));
  EXPECT_TRUE(hits(kX, p1));
  EXPECT_TRUE(hits(kX, other_vpid));
}

TEST_F(Invalidation, InvpcidAllContextsWithGlobalsEmptiesTheVpid) {
  tlb.invpcid(2, 0, p1);
  for (uint64_t va : {kX, kY, kG}) {
    EXPECT_FALSE(hits(va, p1));
    EXPECT_FALSE(hits(va, p2));
    EXPECT_TRUE(hits(va, other_vpid));
  }
}

TEST_F(Invalidation, InvpcidAllContextsKeepsOnlyGlobals) {
  tlb.invpcid(3, 0, p1);
  EXPECT_FALSE(hits(kX, p1));
  EXPECT_FALSE(hits(kY, p2));
  EXPECT_TRUE(hits(kG, p1));
  EXPECT_TRUE(hits(kX, other_vpid));
}

TEST_F(Invalidation, OtherInvpcidTypesAreErrors) {
  EXPECT_THROW(tlb.invpcid(4, 0, p1), Error);
  EXPECT_THROW(tlb.invpcid(-1, 0, p1), Error);
  EXPECT_TRUE(hits(kX, p1));
}

TEST_F(Invalidation, FlushVpidAndFlushAll) {
  tlb.flush_vpid(1);
  EXPECT_FALSE(hits(kX, p1));
  EXPECT_FALSE(hits(kG, p2));
  EXPECT_TRUE(hits(kX, other_vpid));
  EXPECT_TRUE(hits(kG, other_vpid));
  tlb.flush_all();
  EXPECT_FALSE(hits(kX, other_vpid));
  EXPECT_FALSE(hits(kG, other_vpid));
  EXPECT_EQ(tlb.dtlb().valid_count() + tlb.stlb().valid_count() + tlb.itlb().valid_count(), 0u);
}

TEST_F(Hierarchy, ACachedEntryWithFewerRightsFaultsWithoutAWalk) {
  Translation ro = page(0x5000, 0x8000);
  ro.rights.writable = false;
  fill(0x5000, ro);
  const TlbLookup w = write(0x5008);
  EXPECT_EQ(w.result, Result::kFault);
  EXPECT_EQ(w.level, 1);
  EXPECT_EQ(w.error_code, pfec::kPresent | pfec::kWrite | pfec::kUser);
  EXPECT_EQ(tlb.rights_faults(), 1u);
  // Supervisor write with CR0.WP=0 passes the same cached rights.
  controls.cr0_wp = false;
  EXPECT_EQ(tlb.lookup(0x5008, Access::write(false), {}, controls, k4L).result, Result::kHit);
  // An execute-disabled page, filled by a read, faults a fetch at the STLB (unified) with I/D.
  Translation xd = page(0x6000, 0x9000);
  xd.rights.execute_disable = true;
  fill(0x6000, xd);
  const TlbLookup f = fetch(0x6000);
  EXPECT_EQ(f.result, Result::kFault);
  EXPECT_EQ(f.level, 2);
  EXPECT_EQ(f.error_code, pfec::kPresent | pfec::kUser | pfec::kFetch);
  EXPECT_EQ(tlb.itlb().fills(PageSize::k4K), 0u) << "a faulting STLB entry is not copied";
}

TEST_F(Hierarchy, AWriteThroughACleanEntryReWalksAndTheFillReplacesTheEntry) {
  Translation clean = page(0x7000, 0xa000);
  clean.dirty = false;
  fill(0x7000, clean);
  EXPECT_EQ(read(0x7000).result, Result::kHit);
  const TlbLookup w = write(0x7000);
  EXPECT_EQ(w.result, Result::kMiss);
  EXPECT_TRUE(w.dirty_rewalk);
  EXPECT_EQ(w.level, 0);
  EXPECT_EQ(tlb.dirty_rewalks(), 1u);
  fill(0x7000, page(0x7000, 0xa000), {}, Access::write(true));  // the re-walk set D
  EXPECT_EQ(write(0x7000).result, Result::kHit);
  EXPECT_EQ(tlb.dtlb().valid_count(), 1u) << "replaced in place, not duplicated";
  EXPECT_EQ(tlb.stlb().valid_count(), 1u);
}

// The same with the real walker: the TLB must re-walk exactly once to get D into memory.
TEST(HierarchyWithWalker, DirtyReWalkSetsDInThePageTable) {
  GuestMemory mem(64ULL << 20);
  FrameAllocator frames(16, 4096);
  DirectPageTableStore store(mem);
  PageTableEditor editor(k4L, {}, {}, frames, store);
  const uint64_t root = editor.create_address_space();
  PageFlags flags;
  flags.user = flags.writable = flags.accessed = true;  // D clear
  editor.map(root, 0x600000, 0x1200000, kPageSize, PageSize::k4K, flags);
  PagingState state(k4L);
  ASSERT_TRUE(state.load_cr3(root, mem));
  TlbHierarchy tlb(TlbHierarchyParams::skylake(), 3);
  const uint64_t va = 0x600010;
  int walks = 0;
  const auto access = [&](Access a) {
    TlbLookup r = tlb.lookup(va, a, {}, state.controls(), k4L);
    if (r.result != Result::kMiss) return r;
    const WalkResult w = walk(mem, state, va, a);
    ++walks;
    EXPECT_TRUE(w.ok());
    apply_updates(mem, w);
    tlb.fill(va, w.translation, a, {});
    return r;
  };
  access(Access::read(true));
  EXPECT_EQ(access(Access::read(true)).result, Result::kHit);
  EXPECT_TRUE(access(Access::write(true)).dirty_rewalk);
  EXPECT_EQ(walks, 2);
  EXPECT_EQ(access(Access::write(true)).result, Result::kHit);
  EXPECT_EQ(walks, 2);
  const uint64_t pte = walk(mem, state, va, Access::read(true)).refs[3].value;
  EXPECT_TRUE(pte & pte::kDirty);
}

// A level holding only 4K pages caches a 2M page as the 4K piece covering the address.
TEST(Fracturing, LargePagesBecomePiecesAndInvlpgRemovesEveryPiece) {
  TlbHierarchyParams p;
  p.dtlb = TlbLevelParams{};
  p.dtlb.arrays[0] = TlbLevelArrayParams::make(64, 4, 1, {PageSize::k4K});
  TlbHierarchy tlb(p, 1);
  const PagingControls c;
  const uint64_t base = 0x40200000;  // a 2M page at PA 0x80000000
  tlb.fill(base + 0x3456, page(base + 0x3456, 0x80000000, PageSize::k2M), Access::read(), {});
  const TlbLookup hit = tlb.lookup(base + 0x3abc, Access::read(), {}, c, k4L);
  EXPECT_EQ(hit.level, 1);
  EXPECT_EQ(hit.size, PageSize::k4K);
  EXPECT_EQ(hit.pa, 0x80003abcu);
  // Another 4K piece: L1 miss, the STLB holds the whole 2M page, the L1 gets another piece.
  const TlbLookup other = tlb.lookup(base + 0x1f0008, Access::read(), {}, c, k4L);
  EXPECT_EQ(other.level, 2);
  EXPECT_EQ(other.size, PageSize::k2M);
  EXPECT_EQ(other.pa, 0x801f0008u);
  EXPECT_EQ(tlb.dtlb().fractured_fills(), 2u);
  EXPECT_EQ(tlb.dtlb().valid_count(), 2u);
  EXPECT_EQ(tlb.lookup(base + 0x1f0010, Access::read(), {}, c, k4L).level, 1);
  // An unrelated 4K page survives an INVLPG of a third piece; both pieces do not.
  tlb.fill(0x1000, page(0x1000, 0x2000), Access::read(), {});
  tlb.invlpg(base + 0x100000, {});
  EXPECT_EQ(tlb.dtlb().valid_count(), 1u);
  EXPECT_EQ(tlb.stlb().valid_count(), 1u);
  EXPECT_EQ(tlb.lookup(base + 0x3456, Access::read(), {}, c, k4L).result, Result::kMiss);
  EXPECT_EQ(tlb.lookup(0x1000, Access::read(), {}, c, k4L).level, 1);
}

TEST(Fracturing, SkylakeItlbHoldsA1GPageAs2MPieces) {
  TlbHierarchy tlb(TlbHierarchyParams::skylake(), 1);
  const PagingControls c;
  const uint64_t va = 0x40000000 + 0x12345678;
  tlb.fill(va, page(va, 0x80000000, PageSize::k1G), Access::fetch(), {});
  EXPECT_EQ(tlb.itlb().fills(PageSize::k2M), 1u);
  EXPECT_EQ(tlb.stlb().fills(PageSize::k1G), 1u);
  const TlbLookup same_piece = tlb.lookup(va + 0x1000, Access::fetch(), {}, c, k4L);
  EXPECT_EQ(same_piece.level, 1);
  EXPECT_EQ(same_piece.size, PageSize::k2M);
  EXPECT_EQ(same_piece.pa, 0x80000000u + 0x12346678u);
  const TlbLookup other_piece = tlb.lookup(0x40000000 + 0x3fe00000, Access::fetch(), {}, c, k4L);
  EXPECT_EQ(other_piece.level, 2);
  EXPECT_EQ(other_piece.pa, 0x80000000u + 0x3fe00000u);
  EXPECT_EQ(tlb.itlb().fills(PageSize::k2M), 2u);
  EXPECT_FALSE(tlb.itlb().holds(PageSize::k1G));
}

TEST(Fracturing, A4MPageIn32BitPagingUsesTheStlbs2MArray) {
  TlbHierarchyParams p;
  p.dtlb = TlbLevelParams{};
  p.dtlb.arrays[0] = TlbLevelArrayParams::make(64, 4, 1, {PageSize::k4K});
  TlbHierarchy tlb(p, 1);  // Skylake STLB: 4K+2M shared, 1G; no 4M
  const PagingControls c;
  const PagingMode m = PagingMode::k32Bit;
  const uint64_t base = 0x00c00000;  // a 4M page at PA 0x01000000: 2M pieces at +0 and +2M
  tlb.fill(base + 0x10, page(base + 0x10, 0x01000000, PageSize::k4M), Access::read(), {});
  EXPECT_EQ(tlb.stlb().fills(PageSize::k2M), 1u);
  const TlbLookup r = tlb.lookup(base + 0x1234, Access::read(), {}, c, m);
  EXPECT_EQ(r.level, 2) << "32-bit lookups probe the 2M pieces of 4M pages";
  EXPECT_EQ(r.size, PageSize::k2M);
  EXPECT_EQ(r.pa, 0x01001234u);
  EXPECT_EQ(tlb.lookup(base + 0x200000, Access::read(), {}, c, m).result, Result::kMiss);
  tlb.fill(base + 0x200000, page(base + 0x200000, 0x01000000, PageSize::k4M), Access::read(), {});
  EXPECT_EQ(tlb.lookup(base + 0x3ffffc, Access::read(), {}, c, m).pa, 0x013ffffcu);
  EXPECT_EQ(tlb.stlb().valid_count(), 2u);
  tlb.invlpg(base + 0x5, {});  // the whole 4M page goes: both 2M pieces, all 4K pieces
  EXPECT_EQ(tlb.stlb().valid_count(), 0u);
  EXPECT_EQ(tlb.dtlb().valid_count(), 0u);
}

TEST(Core2, StoresSkipTheL1DtlbAndFetchesSkipTheDataOnlyDtlb1) {
  TlbHierarchy tlb(TlbHierarchyParams::core2(), 1);
  const PagingControls c;
  const TlbLookup w = tlb.lookup(0x1000, Access::write(), {}, c, PagingMode::kPae);
  EXPECT_EQ(w.cycles, 2u) << "only DTLB1 is probed by a store";
  tlb.fill(0x1000, page(0x1000, 0x5000), Access::write(), {});
  EXPECT_EQ(tlb.dtlb().valid_count(), 0u);
  EXPECT_EQ(tlb.stlb().valid_count(), 1u);
  EXPECT_EQ(tlb.lookup(0x1000, Access::write(), {}, c, PagingMode::kPae).level, 2);
  const TlbLookup r = tlb.lookup(0x1000, Access::read(), {}, c, PagingMode::kPae);
  EXPECT_EQ(r.level, 2);
  EXPECT_EQ(r.cycles, kL1 + 2u);
  EXPECT_EQ(tlb.lookup(0x1000, Access::read(), {}, c, PagingMode::kPae).level, 1);  // DTLB0 filled

  const TlbLookup f = tlb.lookup(0x9000, Access::fetch(), {}, c, PagingMode::kPae);
  EXPECT_EQ(f.cycles, kL1) << "an ITLB miss goes straight to the walk";
  tlb.fill(0x9000, page(0x9000, 0x6000), Access::fetch(), {});
  EXPECT_EQ(tlb.stlb().valid_count(), 1u);
  EXPECT_EQ(tlb.itlb().valid_count(), 1u);
}

TEST(Core2, WithoutVpidAndPcidEveryContextSharesTheEntries) {
  TlbHierarchy tlb(TlbHierarchyParams::core2(), 1);
  const PagingControls c;
  tlb.fill(0x1000, page(0x1000, 0x5000), Access::read(), {3, 7});
  EXPECT_EQ(tlb.lookup(0x1000, Access::read(), {0, 0}, c, PagingMode::kPae).result, Result::kHit)
      << "no tags: the hypervisor must flush on every VM entry and exit";
  tlb.flush_vpid(9);  // every VPID reads as 0, so this empties the TLB
  EXPECT_EQ(tlb.lookup(0x1000, Access::read(), {3, 7}, c, PagingMode::kPae).result,
            Result::kMiss);
}

TEST(StlbDisabled, MissesCostOnlyTheL1AndFillOnlyTheL1) {
  TlbHierarchyParams p;
  p.stlb_enabled = false;
  TlbHierarchy tlb(p, 1);
  const PagingControls c;
  EXPECT_EQ(tlb.lookup(0x1000, Access::read(), {}, c, k4L).cycles, kL1);
  tlb.fill(0x1000, page(0x1000, 0x5000), Access::read(), {});
  EXPECT_EQ(tlb.stlb().valid_count(), 0u);
  EXPECT_EQ(tlb.dtlb().valid_count(), 1u);
  EXPECT_EQ(tlb.lookup(0x1000, Access::fetch(), {}, c, k4L).result, Result::kMiss);
  StatsRegistry registry;
  tlb.register_stats(StatsGroup(registry, "pcpu0"));
  EXPECT_EQ(registry.find("pcpu0.stlb.misses"), nullptr);
  EXPECT_NE(registry.find("pcpu0.dtlb.misses"), nullptr);
}

TEST_F(Hierarchy, EvictionsAreCountedBySizeOfTheEntryEvicted) {
  // The Skylake DTLB 4K array has 16 sets of 4 ways: pages 16 apart share a set.
  for (uint64_t i = 0; i < 5; ++i) {
    const uint64_t va = i * 16 * kPageSize;
    fill(va, page(va, 0x100000 + i * kPageSize));
  }
  EXPECT_EQ(tlb.dtlb().evictions(PageSize::k4K), 1u);
  EXPECT_EQ(read(0).level, 2) << "LRU evicted the first page from the L1; the STLB has it";
  EXPECT_EQ(tlb.stlb().evictions(PageSize::k4K), 0u);
  EXPECT_EQ(tlb.dtlb().evictions(PageSize::k4K), 2u) << "refilling it evicted the next oldest";
}

TEST(HierarchyMove, AMovedHierarchyKeepsWorking) {
  std::vector<TlbHierarchy> pcpus;
  for (uint64_t i = 0; i < 3; ++i) {
    TlbHierarchy tlb(TlbHierarchyParams::skylake(), i);
    tlb.fill(0x1000, page(0x1000, 0x5000 + i * 0x1000), Access::read(), {});
    pcpus.push_back(std::move(tlb));  // and the vector reallocates, moving the others
  }
  for (uint64_t i = 0; i < 3; ++i) {
    const TlbLookup r = pcpus[i].lookup(0x1000, Access::read(), {}, PagingControls{}, k4L);
    EXPECT_EQ(r.level, 1);
    EXPECT_EQ(r.pa, 0x5000 + i * 0x1000);
    pcpus[i].fill(0x2000, page(0x2000, 0x9000), Access::read(), {});
    EXPECT_EQ(pcpus[i].lookup(0x2000, Access::read(), {}, PagingControls{}, k4L).level, 1);
  }
}

TEST_F(Hierarchy, FillOutsideTheTranslationsPageIsAnError) {
  EXPECT_THROW(fill(0x3000, page(0x1000, 0x5000)), Error);
}

TEST_F(Hierarchy, StatisticsAreRegisteredWithDottedNamesAndCount) {
  StatsRegistry registry;
  tlb.register_stats(StatsGroup(registry, "pcpu0"));
  fill(0x1000, page(0x1000, 0x5000));
  read(0x1000);
  read(0x2000);
  tlb.invlpg(0x1000, {});
  tlb.invpcid(3, 0, {});
  const auto counter = [&](const std::string& name) -> uint64_t {
    const StatsRegistry::Entry* e = registry.find(name);
    EXPECT_NE(e, nullptr) << name;
    return e && e->counter ? *e->counter : ~0ULL;
  };
  EXPECT_EQ(counter("pcpu0.dtlb.4k.hits"), 1u);
  EXPECT_EQ(counter("pcpu0.dtlb.4k.fills"), 1u);
  EXPECT_EQ(counter("pcpu0.dtlb.misses"), 1u);
  EXPECT_EQ(counter("pcpu0.stlb.4k.fills"), 1u);
  EXPECT_EQ(counter("pcpu0.stlb.2m.fills"), 0u);
  EXPECT_EQ(counter("pcpu0.flushes.invlpg"), 1u);
  EXPECT_EQ(counter("pcpu0.flushes.invpcid3"), 1u);
  EXPECT_EQ(counter("pcpu0.dtlb.invalidations"), 1u);
  EXPECT_EQ(counter("pcpu0.dirty_rewalks"), 0u);
  EXPECT_NE(registry.find("pcpu0.dtlb.1g.evictions"), nullptr);
  EXPECT_EQ(registry.find("pcpu0.itlb.1g.hits"), nullptr) << "the ITLB holds no 1G pages";
  const StatsRegistry::Entry* rate = registry.find("pcpu0.dtlb.miss_rate");
  ASSERT_NE(rate, nullptr);
  EXPECT_DOUBLE_EQ(rate->formula(), 0.5);
}

TEST(HierarchyDeterminism, RandomReplacementGivesTheSameRunForTheSameSeed) {
  TlbHierarchyParams p;
  for (TlbLevelParams* l : {&p.itlb, &p.dtlb, &p.stlb}) {
    for (TlbLevelArrayParams& a : l->arrays) a.replacement = Replacement::kRandom;
  }
  const auto run = [&](uint64_t seed) {
    TlbHierarchy tlb(p, seed);
    Rng rng(5);
    std::vector<int> outcomes;
    for (int i = 0; i < 20000; ++i) {
      const uint64_t va = rng.below(4096) * kPageSize;
      const TlbLookup r = tlb.lookup(va, Access::read(), {}, PagingControls{}, k4L);
      outcomes.push_back(r.level);
      if (r.result == Result::kMiss) tlb.fill(va, page(va, va + 0x100000), Access::read(), {});
    }
    return outcomes;
  };
  const std::vector<int> a = run(11);
  EXPECT_EQ(a, run(11));
  EXPECT_NE(a, run(12));
  EXPECT_GT(std::count(a.begin(), a.end(), 2), 0);
  EXPECT_GT(std::count(a.begin(), a.end(), 0), 0);
}

std::string param_error_field(const TlbHierarchyParams& p) {
  try {
    TlbHierarchy tlb(p, 1);
  } catch (const ParamError& e) {
    return e.field();
  }
  return "";
}

TEST(HierarchyParams, PresetsAreValidAndDiffer) {
  EXPECT_EQ(param_error_field(TlbHierarchyParams::skylake()), "");
  EXPECT_EQ(param_error_field(TlbHierarchyParams::core2()), "");
  const TlbHierarchyParams sk = TlbHierarchyParams::skylake();
  EXPECT_EQ(sk.dtlb.arrays[0].entries, TlbHierarchyParams{}.dtlb.arrays[0].entries);
  EXPECT_EQ(sk.stlb.arrays[0].entries, 1536u);
  EXPECT_EQ(sk.stlb.arrays[0].ways, 12u);
  EXPECT_TRUE(sk.stlb.arrays[0].page_2m);
  const TlbHierarchyParams c2 = TlbHierarchyParams::core2();
  EXPECT_FALSE(c2.vpid);
  EXPECT_FALSE(c2.pcid);
  EXPECT_FALSE(c2.dtlb_writes);
  EXPECT_FALSE(c2.stlb_fetches);
  EXPECT_EQ(c2.stlb.arrays[0].entries, 256u);
  TlbHierarchy core2(c2, 1);
  EXPECT_FALSE(core2.dtlb().holds(PageSize::k1G));
  EXPECT_EQ(core2.stlb().latency(), 2u);
}

TEST(HierarchyParams, BadParametersNameTheirField) {
  TlbHierarchyParams p;
  p.dtlb.arrays[0].ways = 3;
  EXPECT_EQ(param_error_field(p), "dtlb.array0.ways");
  p = TlbHierarchyParams{};
  p.stlb.arrays[1].page_2m = true;  // already held by array0
  EXPECT_EQ(param_error_field(p), "stlb.array1.page_2m");
  p = TlbHierarchyParams{};
  p.itlb.arrays[0].page_4k = false;
  p.itlb.arrays[0].page_1g = true;
  EXPECT_EQ(param_error_field(p), "itlb.array0.page_4k");  // a level must hold 4K pages
  p = TlbHierarchyParams{};
  p.itlb.arrays[2].entries = 8;  // present but holds nothing
  p.itlb.arrays[2].ways = 8;
  EXPECT_EQ(param_error_field(p), "itlb.array2.page_4k");
  p = TlbHierarchyParams{};
  p.stlb = TlbLevelParams{};
  EXPECT_EQ(param_error_field(p), "stlb.array0.entries");
  p.stlb_enabled = false;
  EXPECT_EQ(param_error_field(p), "");
  p = TlbHierarchyParams{};
  p.dtlb = TlbLevelParams{};
  EXPECT_EQ(param_error_field(p), "dtlb.array0.entries");
}

TEST(HierarchyParams, VisitListsEveryFieldAndBindsIt) {
  const std::vector<std::string> names = test::field_names(TlbHierarchyParams{});
  for (const char* name : {"itlb.array0.entries", "itlb.array2.page_1g", "dtlb.array1.ways",
                           "stlb.array0.replacement", "stlb.array1.latency", "stlb_enabled",
                           "stlb_fetches", "dtlb_writes", "vpid", "pcid"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  }
  EXPECT_EQ(names.size(), 3u * 3u * 8u + 5u);
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size());
  TlbHierarchyParams p = test::with_field(TlbHierarchyParams{}, "dtlb.array0.entries", 128);
  EXPECT_EQ(p.dtlb.arrays[0].entries, 128u);
  p = test::with_field(p, "stlb.array0.replacement", 2);
  EXPECT_EQ(p.stlb.arrays[0].replacement, Replacement::kRandom);
  p = test::with_field(p, "pcid", 0);
  EXPECT_FALSE(p.pcid);
  TlbHierarchy tlb(p, 1);
  EXPECT_EQ(tlb.params().dtlb.arrays[0].entries, 128u);
}

}  // namespace
}  // namespace shadowsim
