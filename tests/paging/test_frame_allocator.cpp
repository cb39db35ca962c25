#include <gtest/gtest.h>

#include <set>

#include "common/error.h"
#include "common/sparse_frame_array.h"
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

namespace shadowsim {
namespace {

TEST(FrameAllocator, ContiguousRunsAreAlignedFreeAndAccounted) {
  FrameAllocator a(3, 2000);  // frames 3..2002
  EXPECT_EQ(a.allocate(), 3u);
  const uint64_t run = a.allocate_contiguous(512, 512);
  EXPECT_EQ(run, 512u);  // first 512-aligned frame with 512 free after it
  EXPECT_EQ(a.allocated_count(), 513u);
  EXPECT_TRUE(a.is_allocated(1023));
  EXPECT_FALSE(a.is_allocated(1024));
  EXPECT_EQ(a.allocate_contiguous(512, 512), 1024u);
  EXPECT_THROW(a.allocate_contiguous(512, 512), Error);  // 1536..2047 does not fit below 2003
  EXPECT_EQ(a.allocate(), 4u);  // single frames still come from the bottom
  for (uint64_t f = 512; f < 1024; ++f) a.free(f);
  EXPECT_EQ(a.allocate_contiguous(512, 512), 512u);
}

TEST(FrameAllocator, RandomContiguousPlacementIsSeeded) {
  auto place = [](uint64_t seed) {
    FrameAllocator a(0, 1 << 16, FrameAllocator::Placement::kRandom, seed);
    std::vector<uint64_t> runs;
    for (int i = 0; i < 8; ++i) runs.push_back(a.allocate_contiguous(512, 512));
    return runs;
  };
  EXPECT_EQ(place(5), place(5));
  EXPECT_NE(place(5), place(6));
  for (uint64_t r : place(5)) EXPECT_EQ(r % 512, 0u);
}

}  // namespace
}  // namespace shadowsim

namespace shadowsim {
namespace {

TEST(FrameAllocator, AllocateBelowALimitByBothPlacements) {
  FrameAllocator lowest(10, 100);
  EXPECT_EQ(lowest.allocate_below(12), 10u);
  EXPECT_EQ(lowest.allocate_below(12), 11u);
  EXPECT_THROW(lowest.allocate_below(12), Error);  // nothing free below frame 12
  EXPECT_EQ(lowest.allocate_below(1000), 12u);     // a limit past the range: any frame
  FrameAllocator random(0, 1 << 16, FrameAllocator::Placement::kRandom, 3);
  for (int i = 0; i < 500; ++i) EXPECT_LT(random.allocate_below(1000), 1000u);
  for (int i = 0; i < 500; ++i) random.allocate_below(1000);
  EXPECT_THROW(random.allocate_below(1000), Error);  // all 1000 taken
}

// Per-frame state is allocated a chunk at a time (docs/performance.md, "Memory"): a read of an
// untouched frame allocates nothing and reads the default; a write allocates one chunk.
TEST(SparseFrameArray, AllocatesOnlyTheChunksThatAreWritten) {
  SparseFrameArray<uint32_t> a(1ull << 34);  // 64 TiB of 4 KiB frames
  EXPECT_EQ(a.size(), 1ull << 34);
  EXPECT_EQ(a.get(123456789), 0u);
  EXPECT_EQ(a.allocated_bytes(), 0u);
  a[123456789] = 7;
  a[123456790] = 8;  // the same chunk
  EXPECT_EQ(a.allocated_bytes(), SparseFrameArray<uint32_t>::kChunkFrames * sizeof(uint32_t));
  EXPECT_EQ(a.get(123456789), 7u);
  EXPECT_EQ(a.get(123456790), 8u);
  EXPECT_EQ(a.get(123456791), 0u);  // a default element of an allocated chunk
  a.at((1ull << 34) - 1) = 9;
  EXPECT_EQ(a.allocated_bytes(), 2 * SparseFrameArray<uint32_t>::kChunkFrames * sizeof(uint32_t));
  EXPECT_THROW(a.at(1ull << 34), std::out_of_range);
}

// A 16 TiB guest's allocator behaves as a small one (its bitmap would be 512 MiB dense).
TEST(FrameAllocator, AHugeRangeAllocatesFreesAndWrapsLikeASmallOne) {
  const uint64_t frames = 1ull << 32;
  FrameAllocator lowest(256, frames);
  EXPECT_EQ(lowest.allocate(), 256u);
  EXPECT_EQ(lowest.allocate(), 257u);
  lowest.free(256);
  EXPECT_EQ(lowest.allocate(), 256u);
  EXPECT_EQ(lowest.allocate_contiguous(512, 512), 512u);
  FrameAllocator random(0, frames, FrameAllocator::Placement::kRandom, 5);
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t f = random.allocate();
    EXPECT_LT(f, frames);
    EXPECT_TRUE(random.is_allocated(f));
    seen.insert(f);
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_GT(*seen.rbegin() - *seen.begin(), frames / 2);  // spread over the whole range
}

}  // namespace
}  // namespace shadowsim
