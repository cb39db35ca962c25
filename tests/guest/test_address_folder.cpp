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
  EXPECT_EQ(f.fold(0x555555554123ULL), 0x15554123ULL);          // region 0x55555 -> slot 0
  EXPECT_EQ(f.fold(0x7ffd12345678ULL), 0x22345678ULL);          // region 0x7ffd1 -> slot 1
  EXPECT_EQ(f.fold(0x555555559000ULL), 0x15559000ULL);          // back to slot 0
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

namespace shadowsim {
namespace {

TEST(AddressFolder, RangesArePlacedRegionByRegion) {
  AddressFolder f(PagingMode::k32Bit);
  std::vector<std::pair<uint64_t, uint64_t>> pieces;
  f.for_each_piece(0x7f000ffff000ULL, 0x3000, [&](uint64_t va, uint64_t n) { pieces.push_back({va, n}); });
  ASSERT_EQ(pieces.size(), 2u);  // crosses a 256 MiB boundary: two slots
  EXPECT_EQ(pieces[0], (std::pair<uint64_t, uint64_t>{0x1ffff000, 0x1000}));
  EXPECT_EQ(pieces[1], (std::pair<uint64_t, uint64_t>{0x20000000, 0x2000}));
  AddressFolder wide(PagingMode::k4Level);
  pieces.clear();
  wide.for_each_piece(0x7f000ffff000ULL, 0x3000, [&](uint64_t va, uint64_t n) { pieces.push_back({va, n}); });
  EXPECT_EQ(pieces, (std::vector<std::pair<uint64_t, uint64_t>>{{0x7f000ffff000ULL, 0x3000}}));
  AddressFolders per_mm(PagingMode::kPae);
  EXPECT_EQ(&per_mm.of(3), &per_mm.of(3));
  EXPECT_NE(&per_mm.of(3), &per_mm.of(4));
}

}  // namespace
}  // namespace shadowsim
