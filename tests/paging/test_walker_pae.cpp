// PAE paging (SDM §4.4) on hand-built tables: PDPT at 0x1000 (32-byte aligned), PD at 0x2000,
// PT at 0x3000.
#include <gtest/gtest.h>

#include "common/error.h"
#include "paging/guest_memory.h"
#include "paging/paging_state.h"
#include "paging/walker.h"

namespace shadowsim {
namespace {

constexpr uint64_t kPdpt = 0x1000;
constexpr uint64_t kPd = 0x2000;
constexpr uint64_t kPt = 0x3000;
constexpr uint64_t kUserTable = pte::kPresent | pte::kWritable | pte::kUser;

class WalkerPae : public ::testing::Test {
 protected:
  WalkerPae() : mem(64ULL << 20) {
    mem.write64(kPdpt + 8 * 0, kPd | pte::kPresent);
    mem.write64(kPd + 8 * 2, kPt | kUserTable);                 // 0x00400000 -> PT
    mem.write64(kPt + 8 * 0, 0x5000 | kUserTable);              // user RW
    mem.write64(kPt + 8 * 1, 0x6000 | kUserTable | pte::kExecuteDisable);
    mem.write64(kPd + 8 * 3, 0x00a00000 | pte::kPresent | pte::kWritable | pte::kPageSize);
  }
  PagingState state(PagingControls controls = {}, CpuFeatures features = {}) {
    PagingState s(PagingMode::kPae, controls, features);
    EXPECT_TRUE(s.load_cr3(kPdpt, mem));
    return s;
  }
  GuestMemory mem;
};

TEST_F(WalkerPae, PdptesComeFromRegistersSoAWalkReadsTwoEntries) {
  const WalkResult r = walk(mem, state(), 0x00400123, Access::read(true));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.translation.pa, 0x5123u);
  ASSERT_EQ(r.ref_count, 2);
  EXPECT_EQ(r.refs[0].entry_pa, kPd + 16);
  EXPECT_EQ(r.refs[0].width, 8);
  EXPECT_EQ(r.refs[1].entry_pa, kPt);
  EXPECT_EQ(r.update_count, 2);  // A on PDE and PTE; PDPTEs have no A bit
}

TEST_F(WalkerPae, TwoMegabytePages) {
  const WalkResult r = walk(mem, state(), 0x006abcde, Access::write());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.translation.size, PageSize::k2M);
  EXPECT_EQ(r.translation.pa, 0x00aabcdeu);
  EXPECT_EQ(r.ref_count, 1);
  ASSERT_EQ(r.update_count, 1);
  EXPECT_EQ(r.updates[0].new_value & (pte::kAccessed | pte::kDirty),
            pte::kAccessed | pte::kDirty);
}

TEST_F(WalkerPae, NotPresentPdpteFaultsWithoutAMemoryReference) {
  const WalkResult r = walk(mem, state(), 0x40000000, Access::read(true));
  EXPECT_EQ(r.error_code, pfec::kUser);
  EXPECT_EQ(r.stop_level, 3);
  EXPECT_EQ(r.ref_count, 0);
}

TEST_F(WalkerPae, PdptWritesAreInvisibleUntilThePdptesAreReloaded) {
  PagingState s = state();
  mem.write64(kPdpt, 0);  // remove the first GiB from the PDPT in memory
  EXPECT_TRUE(walk(mem, s, 0x00400000, Access::read(true)).ok());  // cached PDPTE still used
  ASSERT_TRUE(s.reload_pdptes(mem));
  EXPECT_EQ(walk(mem, s, 0x00400000, Access::read(true)).stop_level, 3);
}

TEST_F(WalkerPae, ReservedBitsInAPdpteMakeTheCr3LoadFailAndChangeNothing) {
  PagingState s = state();
  mem.write64(0x4000, kPd | pte::kPresent | pte::kWritable);  // R/W is reserved in a PDPTE
  EXPECT_FALSE(s.load_cr3(0x4000, mem));
  EXPECT_EQ(s.cr3(), kPdpt);
  EXPECT_TRUE(walk(mem, s, 0x00400000, Access::read(true)).ok());
  mem.write64(0x4000, kPd);  // not present: its other bits are not checked
  EXPECT_TRUE(s.load_cr3(0x4000, mem));
}

TEST_F(WalkerPae, ExecuteDisableWithAndWithoutNxe) {
  const WalkResult nx = walk(mem, state(), 0x00401000, Access::fetch(true));
  EXPECT_EQ(nx.error_code, pfec::kPresent | pfec::kUser | pfec::kFetch);
  EXPECT_TRUE(walk(mem, state(), 0x00401000, Access::read(true)).ok());
  EXPECT_TRUE(walk(mem, state(), 0x00401000, Access::read(true)).translation.rights.execute_disable);

  PagingControls no_nxe;
  no_nxe.efer_nxe = false;  // bit 63 becomes reserved; I/D is no longer reported
  const WalkResult rsvd = walk(mem, state(no_nxe), 0x00401000, Access::read(true));
  EXPECT_EQ(rsvd.error_code, pfec::kPresent | pfec::kReserved | pfec::kUser);
  EXPECT_EQ(rsvd.stop_level, 1);
  EXPECT_EQ(walk(mem, state(no_nxe), 0x00400000, Access::fetch(true)).error_code, 0u);
}

TEST_F(WalkerPae, NotPresentFetchReportsInstructionFetchWithNxe) {
  EXPECT_EQ(walk(mem, state(), 0x00800000, Access::fetch(true)).error_code,
            pfec::kUser | pfec::kFetch);
}

TEST_F(WalkerPae, ReservedPhysicalAddressBits) {
  CpuFeatures m36;
  m36.maxphyaddr = 36;
  mem.write64(kPt + 8 * 2, (1ULL << 36) | 0x7000 | kUserTable);
  EXPECT_EQ(walk(mem, state({}, m36), 0x00402000, Access::read()).error_code,
            pfec::kPresent | pfec::kReserved);
  CpuFeatures m40;
  m40.maxphyaddr = 40;
  const WalkResult r = walk(mem, state({}, m40), 0x00402000, Access::read());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.translation.pa, (1ULL << 36) | 0x7000);
  // A 2 MiB PDE with bit 13 set: bits 20:13 are reserved.
  mem.write64(kPd + 8 * 4, 0x00c00000 | (1ULL << 13) | pte::kPresent | pte::kPageSize);
  EXPECT_EQ(walk(mem, state(), 0x00800000, Access::read()).error_code,
            pfec::kPresent | pfec::kReserved);
}

TEST_F(WalkerPae, Cr3IsThirtyTwoBitsAndPointsAt32ByteAlignedPdpt) {
  PagingState s(PagingMode::kPae);
  EXPECT_THROW(s.load_cr3(1ULL << 32, mem), Error);
  mem.write64(0x4020, kPd | pte::kPresent);
  ASSERT_TRUE(s.load_cr3(0x4020, mem));
  EXPECT_EQ(s.root_table(), 0x4020u);
  EXPECT_EQ(s.pdpte(0), kPd | pte::kPresent);
}

}  // namespace
}  // namespace shadowsim
