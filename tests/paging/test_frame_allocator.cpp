#include <gtest/gtest.h>

#include <set>

#include "common/error.h"
#include "paging/frame_allocator.h"

namespace shadowsim {
namespace {

TEST(FrameAllocator, LowestFreeFirstAndReusesTheLowestFreedFrame) {
  FrameAllocator a(100, 200);
  EXPECT_EQ(a.allocate(), 100u);
  EXPECT_EQ(a.allocate(), 101u);
  EXPECT_EQ(a.allocate(), 102u);
  a.free(101);
  a.free(100);
  EXPECT_EQ(a.allocate(), 100u);
  EXPECT_EQ(a.allocate(), 101u);
  EXPECT_EQ(a.allocate(), 103u);
  EXPECT_EQ(a.allocated_count(), 4u);
}

TEST(FrameAllocator, ExhaustionAndBadFreesAreErrors) {
  FrameAllocator a(0, 65);  // crosses a bitmap word
  for (int i = 0; i < 65; ++i) EXPECT_EQ(a.allocate(), static_cast<uint64_t>(i));
  EXPECT_THROW(a.allocate(), Error);
  a.free(64);
  EXPECT_EQ(a.allocate(), 64u);
  a.free(3);
  EXPECT_THROW(a.free(3), Error);    // double free
  EXPECT_THROW(a.free(65), Error);   // outside
  EXPECT_FALSE(a.is_allocated(3));
  EXPECT_TRUE(a.is_allocated(4));
}

TEST(FrameAllocator, RandomPlacementIsSeededAndHandsOutEveryFrameOnce) {
  auto draw = [](uint64_t seed) {
    FrameAllocator a(1000, 300, FrameAllocator::Placement::kRandom, seed);
    std::vector<uint64_t> frames;
    for (int i = 0; i < 300; ++i) frames.push_back(a.allocate());
    EXPECT_THROW(a.allocate(), Error);
    return frames;
  };
  const auto first = draw(7);
  EXPECT_EQ(first, draw(7));
  EXPECT_NE(first, draw(8));
  const std::set<uint64_t> distinct(first.begin(), first.end());
  EXPECT_EQ(distinct.size(), 300u);
  EXPECT_EQ(*distinct.begin(), 1000u);
  EXPECT_EQ(*distinct.rbegin(), 1299u);
  // Not simply sequential.
  EXPECT_NE(std::vector<uint64_t>(first.begin(), first.begin() + 3),
            (std::vector<uint64_t>{1000, 1001, 1002}));
}

}  // namespace
}  // namespace shadowsim
