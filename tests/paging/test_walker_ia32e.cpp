// 4-level and 5-level paging (SDM §4.5) on hand-built tables:
// PML5 0x8000 -> PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000.
#include <gtest/gtest.h>

#include "common/error.h"
#include "paging/guest_memory.h"
#include "paging/paging_state.h"
#include "paging/walker.h"

namespace shadowsim {
namespace {

constexpr uint64_t kPml5 = 0x8000;
constexpr uint64_t kPml4 = 0x1000;
constexpr uint64_t kPdpt = 0x2000;
constexpr uint64_t kPd = 0x3000;
constexpr uint64_t kPt = 0x4000;
constexpr uint64_t kUserTable = pte::kPresent | pte::kWritable | pte::kUser;
constexpr uint64_t kVa = 0x0000000000400123ULL;  // PML4[0] PDPT[0] PD[2] PT[0]

class WalkerIa32e : public ::testing::Test {
 protected:
  WalkerIa32e() : mem(64ULL << 20) {
    mem.write64(kPml5, kPml4 | kUserTable);
    mem.write64(kPml4, kPdpt | kUserTable);
    mem.write64(kPdpt, kPd | kUserTable);
    mem.write64(kPd + 8 * 2, kPt | kUserTable);
    mem.write64(kPt, 0x5000 | kUserTable);
  }
  PagingState state(PagingMode mode = PagingMode::k4Level, PagingControls controls = {},
                    CpuFeatures features = {}) {
    PagingState s(mode, controls, features);
    EXPECT_TRUE(s.load_cr3(mode == PagingMode::k5Level ? kPml5 : kPml4, mem));
    return s;
  }
  GuestMemory mem;
};

TEST_F(WalkerIa32e, ColdFourLevelWalkMakesFourReferencesInOrderAndSetsAOnEach) {
  const WalkResult r = walk(mem, state(), kVa, Access::write(true));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.translation.pa, 0x5123u);
  ASSERT_EQ(r.ref_count, 4);
  const uint64_t expected[] = {kPml4, kPdpt, kPd + 16, kPt};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(r.refs[i].entry_pa, expected[i]);
    EXPECT_EQ(r.refs[i].level, 4 - i);
    EXPECT_EQ(r.updates[i].entry_pa, expected[i]);
    EXPECT_EQ(r.updates[i].new_value & pte::kAccessed, pte::kAccessed);
    EXPECT_EQ((r.updates[i].new_value & pte::kDirty) != 0, i == 3);  // D only on the leaf
  }
}

TEST_F(WalkerIa32e, FiveLevelWalkAddsThePml5Reference) {
  const WalkResult r = walk(mem, state(PagingMode::k5Level), kVa, Access::read());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.ref_count, 5);
  EXPECT_EQ(r.refs[0].entry_pa, kPml5);
  EXPECT_EQ(r.refs[0].level, 5);
}

TEST_F(WalkerIa32e, NonCanonicalAddressesAreGeneralProtectionNotPageFaults) {
  const WalkResult r = walk(mem, state(), 0x0000800000000000ULL, Access::read());
  EXPECT_EQ(r.outcome, WalkOutcome::kNonCanonical);
  EXPECT_EQ(r.ref_count, 0);
  // Canonical in 5-level paging: walks (and misses at PML5[1]).
  const WalkResult r5 = walk(mem, state(PagingMode::k5Level), 0x0000800000000000ULL,
                             Access::read());
  EXPECT_EQ(r5.outcome, WalkOutcome::kPageFault);
  EXPECT_EQ(r5.stop_level, 4);
}

TEST_F(WalkerIa32e, OneGigabyteAndTwoMegabytePages) {
  mem.write64(kPdpt + 8 * 1, 0x40000000 | pte::kPresent | pte::kWritable | pte::kPageSize);
  mem.write64(kPd + 8 * 5, 0x00e00000 | pte::kPresent | pte::kPageSize | pte::kGlobal);
  const WalkResult g = walk(mem, state(), 0x40000000 + 0x12345678, Access::read());
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g.translation.size, PageSize::k1G);
  EXPECT_EQ(g.translation.pa, 0x52345678u);
  EXPECT_EQ(g.ref_count, 2);
  const WalkResult m = walk(mem, state(), 0x00a00010, Access::read());
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m.translation.size, PageSize::k2M);
  EXPECT_EQ(m.translation.pa, 0x00e00010u);
  EXPECT_TRUE(m.translation.global);

  CpuFeatures no_1g;
  no_1g.page_1gb = false;  // PS in a PDPTE is then reserved
  const WalkResult r = walk(mem, state(PagingMode::k4Level, {}, no_1g), 0x40000000,
                            Access::read());
  EXPECT_EQ(r.error_code, pfec::kPresent | pfec::kReserved);
  EXPECT_EQ(r.stop_level, 3);
}

TEST_F(WalkerIa32e, ReservedBitsPerLevel) {
  // PS in a PML4E is reserved.
  mem.write64(kPml4 + 8, kPdpt | kUserTable | pte::kPageSize);
  EXPECT_EQ(walk(mem, state(), 0x0000008000000000ULL, Access::read()).error_code,
            pfec::kPresent | pfec::kReserved);
  // Bits 29:13 of a 1 GiB PDPTE.
  mem.write64(kPdpt + 8 * 2, 0x80000000 | (1ULL << 20) | pte::kPresent | pte::kPageSize);
  EXPECT_EQ(walk(mem, state(), 0x80000000, Access::read()).stop_level, 3);
  EXPECT_EQ(walk(mem, state(), 0x80000000, Access::read()).error_code,
            pfec::kPresent | pfec::kReserved);
  // Address bits at or above MAXPHYADDR, in a non-leaf entry.
  CpuFeatures m39;
  m39.maxphyaddr = 39;
  mem.write64(kPd + 8 * 2, (1ULL << 40) | kPt | kUserTable);
  const WalkResult r = walk(mem, state(PagingMode::k4Level, {}, m39), kVa, Access::fetch(true));
  EXPECT_EQ(r.error_code, pfec::kPresent | pfec::kReserved | pfec::kUser | pfec::kFetch);
  EXPECT_EQ(r.stop_level, 2);
  EXPECT_EQ(r.update_count, 0);
}

TEST_F(WalkerIa32e, RightsCombineOverAllFourLevels) {
  mem.write64(kPdpt, kPd | pte::kPresent | pte::kWritable);  // no U/S at the PDPTE
  EXPECT_EQ(walk(mem, state(), kVa, Access::read(true)).error_code, 0x5u);
  mem.write64(kPdpt, kPd | pte::kPresent | pte::kUser);  // no R/W at the PDPTE
  EXPECT_EQ(walk(mem, state(), kVa, Access::write(true)).error_code, 0x7u);
  mem.write64(kPdpt, kPd | kUserTable);
  mem.write64(kPml4, kPdpt | kUserTable | pte::kExecuteDisable);  // XD high up
  const WalkResult r = walk(mem, state(), kVa, Access::fetch(true));
  EXPECT_EQ(r.error_code, pfec::kPresent | pfec::kUser | pfec::kFetch);
  EXPECT_TRUE(walk(mem, state(), kVa, Access::read(true)).translation.rights.execute_disable);
}

TEST_F(WalkerIa32e, SupervisorAccessesToUserPagesUnderWpSmepSmap) {
  PagingControls c;
  c.cr4_smep = true;
  c.cr4_smap = true;
  EXPECT_EQ(walk(mem, state(PagingMode::k4Level, c), kVa, Access::fetch()).error_code,
            pfec::kPresent | pfec::kFetch);
  EXPECT_EQ(walk(mem, state(PagingMode::k4Level, c), kVa, Access::write()).error_code,
            pfec::kPresent | pfec::kWrite);
  mem.write64(kPt, 0x5000 | pte::kPresent | pte::kUser);  // user read-only
  PagingControls wp_off;
  wp_off.cr0_wp = false;
  EXPECT_TRUE(walk(mem, state(PagingMode::k4Level, wp_off), kVa, Access::write()).ok());
  EXPECT_EQ(walk(mem, state(), kVa, Access::write()).error_code, pfec::kPresent | pfec::kWrite);
}

TEST_F(WalkerIa32e, WalkFromALowerLevelSkipsTheCachedLevels) {
  const WalkStart from_pd{2, kPd, Rights{}};
  const WalkResult r = walk_from(mem, state(), kVa, Access::read(), from_pd);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.ref_count, 2);
  EXPECT_EQ(r.refs[0].entry_pa, kPd + 16);
  const WalkStart not_user{2, kPd, Rights{true, false, false}};  // U/S=0 above, from the cache
  EXPECT_EQ(walk_from(mem, state(), kVa, Access::read(true), not_user).error_code, 0x5u);
  EXPECT_THROW(walk_from(mem, state(), kVa, Access::read(), WalkStart{5, kPd, Rights{}}), Error);
}

TEST_F(WalkerIa32e, Cr3ValidationAndPcid) {
  PagingState s(PagingMode::k4Level);
  EXPECT_THROW(s.load_cr3(1ULL << 46, mem), Error);  // beyond MAXPHYADDR 46
  EXPECT_THROW(s.load_cr3(kPml4 | (1ULL << 63), mem), Error);  // no-flush bit without PCIDE
  PagingControls pcide;
  pcide.cr4_pcide = true;
  PagingState p(PagingMode::k4Level, pcide);
  ASSERT_TRUE(p.load_cr3(kPml4 | 0x2a | (1ULL << 63), mem));
  EXPECT_EQ(p.pcid(), 0x2a);
  EXPECT_EQ(p.root_table(), kPml4);
  EXPECT_TRUE(walk(mem, p, kVa, Access::read()).ok());
  EXPECT_EQ(s.pcid(), 0);
  CpuFeatures bad;
  bad.maxphyaddr = 53;
  EXPECT_THROW(PagingState(PagingMode::k4Level, {}, bad), Error);
}

}  // namespace
}  // namespace shadowsim
