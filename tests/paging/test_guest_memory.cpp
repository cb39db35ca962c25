#include <gtest/gtest.h>

#include "common/error.h"
#include "paging/guest_memory.h"

namespace shadowsim {
namespace {

TEST(GuestMemory, UnwrittenMemoryReadsZero) {
  GuestMemory mem(GuestMemory::kMaxBytes);
  EXPECT_EQ(mem.read64(0x12345000), 0u);
  EXPECT_EQ(mem.read32(GuestMemory::kMaxBytes - 4), 0u);
  mem.write64(GuestMemory::kMaxBytes - 8, 42);
  EXPECT_EQ(mem.read64(GuestMemory::kMaxBytes - 8), 42u);
}

TEST(GuestMemory, WritesAreReadBackAtBothWidthsLittleEndian) {
  GuestMemory mem(1ULL << 30);
  mem.write64(0x3008, 0x1122334455667788ULL);
  EXPECT_EQ(mem.read64(0x3008), 0x1122334455667788ULL);
  EXPECT_EQ(mem.read32(0x3008), 0x55667788u);
  EXPECT_EQ(mem.read32(0x300c), 0x11223344u);
  mem.write32(0x300c, 0xdeadbeef);
  EXPECT_EQ(mem.read64(0x3008), 0xdeadbeef55667788ULL);
}

TEST(GuestMemory, ZeroFrameClearsOnlyThatFrame) {
  GuestMemory mem(1ULL << 20);
  mem.write64(0x1ff8, 1);
  mem.write64(0x2000, 2);
  mem.zero_frame(1);
  EXPECT_EQ(mem.read64(0x1ff8), 0u);
  EXPECT_EQ(mem.read64(0x2000), 2u);
  mem.write64(0x1000, 3);  // usable again after zeroing
  EXPECT_EQ(mem.read64(0x1000), 3u);
  EXPECT_THROW(mem.zero_frame(256), Error);
}

TEST(GuestMemory, MisalignedAndOutOfRangeAccessesNameTheAddress) {
  GuestMemory mem(1ULL << 20);
  try {
    mem.read64(0x1004);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("0x1004"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("aligned"), std::string::npos);
  }
  try {
    mem.write32(1ULL << 20, 5);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("0x100000"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("beyond"), std::string::npos);
  }
  EXPECT_THROW(mem.write(0x10, 1ULL << 32, 4), Error);
  EXPECT_THROW(mem.write(0x10, 1, 2), Error);
}

TEST(GuestMemory, ImpossibleSizesAreRejected) {
  EXPECT_THROW(GuestMemory(0), Error);
  EXPECT_THROW(GuestMemory(4097), Error);
  EXPECT_THROW(GuestMemory(GuestMemory::kMaxBytes + 4096), Error);
}

}  // namespace
}  // namespace shadowsim
