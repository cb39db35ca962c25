// 32-bit paging (SDM §4.3) on hand-built tables: PD at 0x1000, PT at 0x2000.
#include <gtest/gtest.h>

#include "common/error.h"
#include "paging/guest_memory.h"
#include "paging/paging_state.h"
#include "paging/walker.h"

namespace shadowsim {
namespace {

constexpr uint64_t kPd = 0x1000;
constexpr uint64_t kPt = 0x2000;
constexpr uint32_t kTable = pte::kPresent | pte::kWritable | pte::kUser;  // A clear

class Walker32 : public ::testing::Test {
 protected:
  Walker32() : mem(64ULL << 20) {
    // 0x00400000..: PDE[1] -> PT; PTE[0] user RW page at 0x5000; PTE[1] user RO; PTE[2] kernel.
    mem.write32(kPd + 4 * 1, kPt | kTable);
    mem.write32(kPt + 4 * 0, 0x5000 | pte::kPresent | pte::kWritable | pte::kUser);
    mem.write32(kPt + 4 * 1, 0x6000 | pte::kPresent | pte::kUser);
    mem.write32(kPt + 4 * 2, 0x7000 | pte::kPresent | pte::kWritable | pte::kGlobal);
  }
  PagingState state(PagingControls controls = {}, CpuFeatures features = {}) {
    PagingState s(PagingMode::k32Bit, controls, features);
    EXPECT_TRUE(s.load_cr3(kPd, mem));
    return s;
  }
  GuestMemory mem;
};

TEST_F(Walker32, FourKilobytePageWalkReadsPdeThenPteAndSetsAccessedAndDirty) {
  const WalkResult r = walk(mem, state(), 0x00400abc, Access::write(true));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.translation.pa, 0x5abcu);
  EXPECT_EQ(r.translation.size, PageSize::k4K);
  EXPECT_EQ(r.translation.page_va, 0x00400000u);
  EXPECT_TRUE(r.translation.dirty);
  ASSERT_EQ(r.ref_count, 2);
  EXPECT_EQ(r.refs[0].entry_pa, kPd + 4);
  EXPECT_EQ(r.refs[0].level, 2);
  EXPECT_EQ(r.refs[0].width, 4);
  EXPECT_EQ(r.refs[1].entry_pa, kPt);
  EXPECT_EQ(r.refs[1].level, 1);
  ASSERT_EQ(r.update_count, 2);
  EXPECT_EQ(r.updates[0].new_value, r.refs[0].value | pte::kAccessed);
  EXPECT_EQ(r.updates[1].new_value, r.refs[1].value | pte::kAccessed | pte::kDirty);
  EXPECT_EQ(r.updates[1].width, 4);

  apply_updates(mem, r);
  const WalkResult again = walk(mem, state(), 0x00400abc, Access::write(true));
  EXPECT_EQ(again.update_count, 0);  // A and D already set: nothing to write
}

TEST_F(Walker32, ReadSetsOnlyAccessedAndReportsCleanPage) {
  const WalkResult r = walk(mem, state(), 0x00400000, Access::read(true));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.translation.dirty);
  ASSERT_EQ(r.update_count, 2);
  EXPECT_EQ(r.updates[1].new_value & pte::kDirty, 0u);
}

TEST_F(Walker32, NotPresentFaultsStopAtTheirLevelAndSetNoBits) {
  WalkResult r = walk(mem, state(), 0x00800000, Access::read(true));  // PDE[2] empty
  EXPECT_EQ(r.outcome, WalkOutcome::kPageFault);
  EXPECT_EQ(r.error_code, pfec::kUser);
  EXPECT_EQ(r.stop_level, 2);
  EXPECT_EQ(r.ref_count, 1);
  EXPECT_EQ(r.update_count, 0);

  r = walk(mem, state(), 0x00403000, Access::write(false));  // PTE[3] empty
  EXPECT_EQ(r.error_code, pfec::kWrite);
  EXPECT_EQ(r.stop_level, 1);
  EXPECT_EQ(r.ref_count, 2);
  EXPECT_EQ(r.update_count, 0);
}

TEST_F(Walker32, ProtectionFaultsCarryTheExactErrorCode) {
  EXPECT_EQ(walk(mem, state(), 0x00401000, Access::write(true)).error_code, 0x7u);  // RO, user
  EXPECT_EQ(walk(mem, state(), 0x00402000, Access::read(true)).error_code, 0x5u);   // kernel page
  EXPECT_EQ(walk(mem, state(), 0x00401000, Access::write(false)).error_code, 0x3u); // WP=1
  PagingControls wp_off;
  wp_off.cr0_wp = false;
  EXPECT_TRUE(walk(mem, state(wp_off), 0x00401000, Access::write(false)).ok());
  // A protection fault sets no A bits either.
  EXPECT_EQ(walk(mem, state(), 0x00401000, Access::write(true)).update_count, 0);
}

TEST_F(Walker32, RightsAreTheAndOfBothLevels) {
  mem.write32(kPd + 4, kPt | pte::kPresent | pte::kUser);  // PDE read-only
  const WalkResult r = walk(mem, state(), 0x00400000, Access::write(true));
  EXPECT_EQ(r.error_code, 0x7u);
  const WalkResult ok = walk(mem, state(), 0x00400000, Access::read(true));
  ASSERT_TRUE(ok.ok());
  EXPECT_FALSE(ok.translation.rights.writable);
}

TEST_F(Walker32, NoExecuteDisableInThirtyTwoBitPagingButSmepApplies) {
  const WalkResult fetch = walk(mem, state(), 0x00400000, Access::fetch(true));
  EXPECT_TRUE(fetch.ok());
  PagingControls smep;
  smep.cr4_smep = true;
  const WalkResult r = walk(mem, state(smep), 0x00400000, Access::fetch(false));
  EXPECT_EQ(r.error_code, pfec::kPresent | pfec::kFetch);
  // Without SMEP a not-present fetch does not report I/D in 32-bit paging.
  EXPECT_EQ(walk(mem, state(), 0x00800000, Access::fetch(false)).error_code, 0u);
}

TEST_F(Walker32, SmapBlocksSupervisorReadsOfUserPages) {
  PagingControls smap;
  smap.cr4_smap = true;
  EXPECT_EQ(walk(mem, state(smap), 0x00400000, Access::read(false)).error_code, pfec::kPresent);
  Access with_ac = Access::read(false);
  with_ac.eflags_ac = true;
  EXPECT_TRUE(walk(mem, state(smap), 0x00400000, with_ac).ok());
  EXPECT_TRUE(walk(mem, state(smap), 0x00402000, Access::read(false)).ok());  // kernel page
}

TEST_F(Walker32, GlobalNeedsPge) {
  EXPECT_TRUE(walk(mem, state(), 0x00402000, Access::read()).translation.global);
  PagingControls no_pge;
  no_pge.cr4_pge = false;
  EXPECT_FALSE(walk(mem, state(no_pge), 0x00402000, Access::read()).translation.global);
  EXPECT_FALSE(walk(mem, state(), 0x00400000, Access::read()).translation.global);
}

TEST_F(Walker32, FourMegabytePagesNeedPse) {
  // PDE[0x300] (0xC0000000) is a 4 MiB page at 0x00800000 with PAT set (bit 12) and PCD.
  mem.write32(kPd + 4 * 0x300, 0x00800000 | pte::kPresent | pte::kWritable | pte::kPageSize |
                                   pte::kPatLarge | pte::kPcd);
  const WalkResult r = walk(mem, state(), 0xC0123456, Access::read());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.translation.size, PageSize::k4M);
  EXPECT_EQ(r.translation.pa, 0x00923456u);
  EXPECT_EQ(r.translation.pat_index, 6);
  EXPECT_EQ(r.ref_count, 1);

  PagingControls no_pse;
  no_pse.cr4_pse = false;  // PS is ignored: the PDE points to a "page table" at 0x00800000
  const WalkResult t = walk(mem, state(no_pse), 0xC0123456, Access::read());
  EXPECT_EQ(t.ref_count, 2);
  EXPECT_EQ(t.refs[1].entry_pa, 0x00801000u + 4 * 0x123);  // bit 12 (PAT) is now address
  EXPECT_EQ(t.error_code, 0u);  // that table is empty: not-present at level 1
  EXPECT_EQ(t.stop_level, 1);
}

TEST_F(Walker32, Pse36HighAddressBitsAndTheirReservedBits) {
  // PA bits 39:32 = 0x12 in PDE bits 20:13.
  mem.write32(kPd + 4 * 0x301, 0x00c00000 | (0x12u << 13) | pte::kPresent | pte::kPageSize);
  CpuFeatures m40;
  m40.maxphyaddr = 40;
  const WalkResult r = walk(mem, state({}, m40), 0xC0400010, Access::read());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.translation.pa, 0x12'00c00010ULL);

  CpuFeatures m36;  // only bits 16:13 hold address bits; 0x12 sets bit 17: reserved
  m36.maxphyaddr = 36;
  const WalkResult rsvd = walk(mem, state({}, m36), 0xC0400010, Access::read());
  EXPECT_EQ(rsvd.error_code, pfec::kPresent | pfec::kReserved);
  EXPECT_EQ(rsvd.stop_level, 2);

  mem.write32(kPd + 4 * 0x302, 0x01000000 | (1u << 21) | pte::kPresent | pte::kPageSize);
  EXPECT_EQ(walk(mem, state({}, m40), 0xC0800000, Access::write(true)).error_code,
            pfec::kPresent | pfec::kReserved | pfec::kWrite | pfec::kUser);  // bit 21 reserved
}

TEST_F(Walker32, PatIndexOfA4KPageUsesBit7) {
  mem.write32(kPt + 4 * 5, 0x9000 | pte::kPresent | pte::kPat4K | pte::kPwt);
  EXPECT_EQ(walk(mem, state(), 0x00405000, Access::read()).translation.pat_index, 5);
}

TEST_F(Walker32, WideAddressesAndCr3AreApiErrors) {
  EXPECT_THROW(walk(mem, state(), 0x100000000ULL, Access::read()), Error);
  PagingState s(PagingMode::k32Bit);
  EXPECT_THROW(s.load_cr3(0x100001000ULL, mem), Error);
  PagingControls pcide;
  pcide.cr4_pcide = true;
  EXPECT_THROW(PagingState(PagingMode::k32Bit, pcide), Error);
}

}  // namespace
}  // namespace shadowsim
