#include <gtest/gtest.h>

#include "guest/first_touch_mapper.h"
#include "paging/guest_memory.h"
#include "paging/paging_state.h"
#include "paging/walker.h"

namespace shadowsim {
namespace {

TEST(FirstTouchMapper, MapsThePageOfTheTouchWithLinuxFlags) {
  GuestMemory mem(1ULL << 30);
  FrameAllocator frames(1, (1ULL << 18) - 1);
  FirstTouchMapper os(PagingMode::k4Level, {}, {}, PageSize::k4K, frames, mem);
  const uint64_t cr3 = os.create_address_space();
  PagingState state(PagingMode::k4Level);
  state.load_cr3(cr3, mem);
  EXPECT_FALSE(walk(mem, state, 0x7ffd0000123ULL, Access::read(true)).ok());
  os.map(cr3, 0x7ffd0000123ULL, /*write=*/false);
  const WalkResult r = walk(mem, state, 0x7ffd0000fffULL, Access::write(true));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.update_count, 1);  // A already set by the mapping; D set by this write
  EXPECT_EQ(r.updates[0].new_value & pte::kDirty, pte::kDirty);
  EXPECT_EQ(os.pages_mapped(), 1u);
}

TEST(FirstTouchMapper, LargePagesGetAlignedContiguousFrames) {
  GuestMemory mem(1ULL << 30);
  FrameAllocator frames(1, (1ULL << 18) - 1);
  FirstTouchMapper os(PagingMode::kPae, {}, {}, PageSize::k2M, frames, mem);
  const uint64_t cr3 = os.create_address_space();
  os.map(cr3, 0x08123456, true);
  PagingState state(PagingMode::kPae);
  state.load_cr3(cr3, mem);
  const WalkResult r = walk(mem, state, 0x08000000, Access::read(true));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.translation.size, PageSize::k2M);
  EXPECT_EQ(r.translation.page_pa % (2ULL << 20), 0u);
  EXPECT_TRUE(frames.is_allocated(r.translation.page_pa >> kPageShift));
  EXPECT_TRUE(frames.is_allocated((r.translation.page_pa >> kPageShift) + 511));
}

}  // namespace
}  // namespace shadowsim
