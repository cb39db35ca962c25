#include <gtest/gtest.h>

#include "common/error.h"
#include "paging/paging_types.h"

namespace shadowsim {
namespace {

const PagingControls kDefault{};

TEST(PagingTypes, ModeNamesRoundTripAndUnknownNameListsChoices) {
  for (PagingMode m : {PagingMode::k32Bit, PagingMode::kPae, PagingMode::k4Level,
                       PagingMode::k5Level}) {
    EXPECT_EQ(paging_mode_from_string(to_string(m)), m);
  }
  try {
    paging_mode_from_string("64bit");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'64bit'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("4level"), std::string::npos);
  }
}

TEST(PagingTypes, CanonicalAddresses) {
  EXPECT_TRUE(is_canonical(PagingMode::k4Level, 0x00007fffffffffffULL));
  EXPECT_FALSE(is_canonical(PagingMode::k4Level, 0x0000800000000000ULL));
  EXPECT_TRUE(is_canonical(PagingMode::k4Level, 0xffff800000000000ULL));
  EXPECT_TRUE(is_canonical(PagingMode::k5Level, 0x0000800000000000ULL));
  EXPECT_FALSE(is_canonical(PagingMode::k5Level, 0x0100000000000000ULL));
  EXPECT_TRUE(is_canonical(PagingMode::k5Level, 0xff00000000000000ULL));
  EXPECT_TRUE(is_canonical(PagingMode::k32Bit, 0xffffffffULL));
  EXPECT_FALSE(is_canonical(PagingMode::kPae, 0x100000000ULL));
}

TEST(PagingTypes, LevelIndexUsesTheModesWidths) {
  EXPECT_EQ(level_index(PagingMode::k32Bit, 2, 0xC0400000), 0x301u);
  EXPECT_EQ(level_index(PagingMode::k32Bit, 1, 0x00403000), 3u);
  EXPECT_EQ(level_index(PagingMode::kPae, 3, 0xC0000000), 3u);
  EXPECT_EQ(level_index(PagingMode::kPae, 2, 0xC0200000), 1u);
  EXPECT_EQ(level_index(PagingMode::k4Level, 4, 0xffff888000000000ULL), 0x111u);
  EXPECT_EQ(level_index(PagingMode::k5Level, 5, 0xff11000000000000ULL), 0x111u);
}

TEST(AccessCheck, UserNeedsUserPagesWritesNeedWritableFetchesNeedNoXd) {
  const Rights user_ro{false, true, false};
  const Rights user_rw_xd{true, true, true};
  const Rights kernel_rw{true, false, false};
  const auto m = PagingMode::k4Level;
  EXPECT_EQ(check_access(user_ro, Access::read(true), kDefault, m), 0u);
  EXPECT_EQ(check_access(user_ro, Access::write(true), kDefault, m),
            pfec::kPresent | pfec::kWrite | pfec::kUser);
  EXPECT_EQ(check_access(user_rw_xd, Access::fetch(true), kDefault, m),
            pfec::kPresent | pfec::kUser | pfec::kFetch);
  EXPECT_EQ(check_access(kernel_rw, Access::read(true), kDefault, m),
            pfec::kPresent | pfec::kUser);
}

TEST(AccessCheck, SupervisorWritesToReadOnlyPagesDependOnWp) {
  const Rights ro{false, false, false};
  PagingControls wp_off;
  wp_off.cr0_wp = false;
  EXPECT_EQ(check_access(ro, Access::write(), kDefault, PagingMode::k4Level),
            pfec::kPresent | pfec::kWrite);
  EXPECT_EQ(check_access(ro, Access::write(), wp_off, PagingMode::k4Level), 0u);
  const Rights user_ro{false, true, false};
  EXPECT_EQ(check_access(user_ro, Access::write(), wp_off, PagingMode::k4Level), 0u);
}

TEST(AccessCheck, SmepBlocksSupervisorFetchesFromUserPages) {
  const Rights user{true, true, false};
  PagingControls smep;
  smep.cr4_smep = true;
  EXPECT_EQ(check_access(user, Access::fetch(), kDefault, PagingMode::k32Bit), 0u);
  EXPECT_EQ(check_access(user, Access::fetch(), smep, PagingMode::k32Bit),
            pfec::kPresent | pfec::kFetch);  // SMEP reports I/D even in 32-bit paging
}

TEST(AccessCheck, SmapBlocksSupervisorDataAccessUnlessAcForExplicitAccesses) {
  const Rights user{true, true, false};
  PagingControls smap;
  smap.cr4_smap = true;
  Access explicit_ac = Access::read();
  explicit_ac.eflags_ac = true;
  Access implicit_ac = explicit_ac;
  implicit_ac.implicit = true;
  EXPECT_EQ(check_access(user, Access::read(), smap, PagingMode::k4Level), pfec::kPresent);
  EXPECT_EQ(check_access(user, explicit_ac, smap, PagingMode::k4Level), 0u);
  EXPECT_EQ(check_access(user, implicit_ac, smap, PagingMode::k4Level), pfec::kPresent);
  EXPECT_EQ(check_access(user, Access::fetch(), smap, PagingMode::k4Level), 0u);  // SMAP: data only
}

TEST(AccessCheck, InstructionFetchBitNeedsNxeOutside32BitPagingOrSmep) {
  PagingControls no_nxe;
  no_nxe.efer_nxe = false;
  EXPECT_EQ(access_error_bits(Access::fetch(), kDefault, PagingMode::k32Bit), 0u);
  EXPECT_EQ(access_error_bits(Access::fetch(), kDefault, PagingMode::kPae), pfec::kFetch);
  EXPECT_EQ(access_error_bits(Access::fetch(), no_nxe, PagingMode::k4Level), 0u);
  EXPECT_EQ(access_error_bits(Access::write(true), kDefault, PagingMode::k4Level),
            pfec::kWrite | pfec::kUser);
}

TEST(AccessCheck, DescribeErrorCode) {
  EXPECT_EQ(describe_error_code(0x7), "P|W|U");
  EXPECT_EQ(describe_error_code(0x14), "NP|U|I");
  EXPECT_EQ(describe_error_code(0x9), "P|RSVD");
}

}  // namespace
}  // namespace shadowsim
