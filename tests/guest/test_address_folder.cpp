#include <gtest/gtest.h>

#include "common/error.h"
#include "guest/address_folder.h"

namespace shadowsim {
namespace {

TEST(AddressFolder, IA32eModesKeepAddresses) {
  AddressFolder f(PagingMode::k4Level);
  EXPECT_EQ(f.fold(0x7ffd12345678ULL), 0x7ffd12345678ULL);
  EXPECT_THROW(f.fold(0x0100000000000000ULL), Error);
  AddressFolder f5(PagingMode::k5Level);
  EXPECT_EQ(f5.fold(0x00ff000000001000ULL), 0x00ff000000001000ULL);
}

TEST(AddressFolder, ThirtyTwoBitModesGiveRegionsSlotsInFirstTouchOrder) {
  AddressFolder f(PagingMode::kPae);
  EXPECT_EQ(f.fold(0x555555554123ULL), 0x05554123ULL);          // region 0x55555 -> slot 0
  EXPECT_EQ(f.fold(0x7ffd12345678ULL), 0x12345678ULL);          // region 0x7ffd1 -> slot 1
  EXPECT_EQ(f.fold(0x555555559000ULL), 0x05559000ULL);          // back to slot 0
  EXPECT_EQ(f.regions_used(), 2);
}

TEST(AddressFolder, MoreRegionsThanTheUserSpaceHoldsIsAnError) {
  AddressFolder f(PagingMode::k32Bit);
  for (uint64_t r = 0; r < AddressFolder::kSlots; ++r) f.fold(r << 40);
  try {
    f.fold(1ULL << 45);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("0x200000000000"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("4level"), std::string::npos);
  }
}

}  // namespace
}  // namespace shadowsim
