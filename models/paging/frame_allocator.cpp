#include "paging/frame_allocator.h"

#include <fmt/format.h>

#include "common/error.h"

namespace shadowsim {

FrameAllocator::FrameAllocator(uint64_t first_frame, uint64_t frame_count, Placement placement,
                               uint64_t seed)
    : first_(first_frame), count_(frame_count), placement_(placement), rng_(seed),
      used_((frame_count + 63) / 64, 0) {
  if (frame_count == 0) throw Error("frame allocator: expected at least one frame to manage");
}

uint64_t FrameAllocator::find_free_from(uint64_t index) const {
  // Word-at-a-time scan; bits past count_ in the last word are treated as used.
  const uint64_t words = used_.size();
  for (uint64_t step = 0; step <= words; ++step) {
    const uint64_t w = (index / 64 + step) % words;
    uint64_t free_bits = ~used_[w];
    if (step == 0) free_bits &= ~0ULL << (index % 64);
    if (w == words - 1 && count_ % 64) free_bits &= (1ULL << (count_ % 64)) - 1;
    if (free_bits) return w * 64 + static_cast<uint64_t>(__builtin_ctzll(free_bits));
  }
  return count_;
}

uint64_t FrameAllocator::allocate() {
  if (allocated_ == count_) {
    throw Error(fmt::format("out of guest frames: all {} frames from {:#x} are allocated", count_,
                            first_));
  }
  uint64_t index;
  if (placement_ == Placement::kRandom) {
    index = find_free_from(rng_.below(count_));
  } else {
    index = find_free_from(lowest_maybe_free_);
    lowest_maybe_free_ = index + 1;
  }
  used_[index / 64] |= 1ULL << (index % 64);
  ++allocated_;
  return first_ + index;
}

void FrameAllocator::free(uint64_t frame) {
  if (frame < first_ || frame - first_ >= count_) {
    throw Error(fmt::format("free of frame {:#x}: outside the allocator's range [{:#x}, {:#x})",
                            frame, first_, first_ + count_));
  }
  const uint64_t index = frame - first_;
  if (!(used_[index / 64] & (1ULL << (index % 64)))) {
    throw Error(fmt::format("free of frame {:#x}: it is not allocated (double free?)", frame));
  }
  used_[index / 64] &= ~(1ULL << (index % 64));
  --allocated_;
  if (index < lowest_maybe_free_) lowest_maybe_free_ = index;
}

bool FrameAllocator::is_allocated(uint64_t frame) const {
  if (frame < first_ || frame - first_ >= count_) return false;
  const uint64_t index = frame - first_;
  return used_[index / 64] & (1ULL << (index % 64));
}

}  // namespace shadowsim
