#include "paging/frame_allocator.h"

#include <fmt/format.h>

#include "common/error.h"

namespace shadowsim {

FrameAllocator::FrameAllocator(uint64_t first_frame, uint64_t frame_count, Placement placement,
                               uint64_t seed)
    : first_(first_frame), count_(frame_count), placement_(placement), rng_(seed),
      used_((frame_count + 63) / 64) {
  if (frame_count == 0) throw Error("frame allocator: expected at least one frame to manage");
}

uint64_t FrameAllocator::find_free_from(uint64_t index) const {
  // Word-at-a-time scan; bits past count_ in the last word are treated as used.
  const uint64_t words = used_.size();
  for (uint64_t step = 0; step <= words; ++step) {
    const uint64_t w = (index / 64 + step) % words;
    uint64_t free_bits = ~used_.get(w);
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

uint64_t FrameAllocator::allocate_below(uint64_t frame_limit) {
  if (frame_limit >= first_ + count_) return allocate();
  const uint64_t limit = frame_limit > first_ ? frame_limit - first_ : 0;
  const bool lowest = placement_ == Placement::kLowestFree;
  uint64_t index = find_free_from(lowest ? lowest_maybe_free_ : (limit ? rng_.below(limit) : 0));
  if (index >= limit) index = find_free_from(0);  // the search wrapped past the limit
  if (allocated_ == count_ || index >= limit) {
    throw Error(fmt::format("out of guest frames below frame {:#x} ({:#x} bytes)", frame_limit,
                            frame_limit << 12));
  }
  if (lowest) lowest_maybe_free_ = index + 1;
  mark(index, true);
  ++allocated_;
  return first_ + index;
}

uint64_t FrameAllocator::allocate_preferring(uint64_t preferred_first) {
  if (preferred_first <= first_ || preferred_first >= first_ + count_) return allocate();
  if (allocated_ == count_) throw Error("out of guest frames");
  const uint64_t from = preferred_first - first_;
  const uint64_t start = placement_ == Placement::kLowestFree ? from
                                                              : from + rng_.below(count_ - from);
  const uint64_t index = find_free_from(start);  // wraps to the low frames when none is above
  mark(index, true);
  ++allocated_;
  return first_ + index;
}

bool FrameAllocator::run_free(uint64_t index, uint64_t count) const {
  for (uint64_t i = index; i < index + count; ++i) {
    if (used_.get(i / 64) & (1ULL << (i % 64))) return false;
  }
  return true;
}

void FrameAllocator::mark(uint64_t index, bool used) {
  if (used) {
    used_[index / 64] |= 1ULL << (index % 64);
  } else {
    used_[index / 64] &= ~(1ULL << (index % 64));
  }
}

uint64_t FrameAllocator::allocate_contiguous(uint64_t count, uint64_t align) {
  if (count == 0 || align == 0) {
    throw Error("contiguous frame allocation: expected a non-zero count and alignment");
  }
  // Candidate starts are the aligned frame numbers inside the range; placement picks where the
  // search begins, then it proceeds upwards and wraps once.
  const uint64_t first_aligned = (first_ + align - 1) / align * align - first_;
  if (first_aligned + count > count_) {
    throw Error(fmt::format("out of guest frames: no {}-frame run aligned to {} frames fits in "
                            "{} frames from {:#x}", count, align, count_, first_));
  }
  const uint64_t candidates = (count_ - first_aligned - count) / align + 1;
  const uint64_t start = placement_ == Placement::kRandom ? rng_.below(candidates) : 0;
  for (uint64_t step = 0; step < candidates; ++step) {
    const uint64_t index = first_aligned + ((start + step) % candidates) * align;
    if (!run_free(index, count)) continue;
    for (uint64_t i = index; i < index + count; ++i) mark(i, true);
    allocated_ += count;
    return first_ + index;
  }
  throw Error(fmt::format("out of guest frames: no free {}-frame run aligned to {} frames "
                          "({} of {} frames in use)", count, align, allocated_, count_));
}

void FrameAllocator::free(uint64_t frame) {
  if (frame < first_ || frame - first_ >= count_) {
    throw Error(fmt::format("free of frame {:#x}: outside the allocator's range [{:#x}, {:#x})",
                            frame, first_, first_ + count_));
  }
  const uint64_t index = frame - first_;
  if (!(used_.get(index / 64) & (1ULL << (index % 64)))) {
    throw Error(fmt::format("free of frame {:#x}: it is not allocated (double free?)", frame));
  }
  used_[index / 64] &= ~(1ULL << (index % 64));
  --allocated_;
  if (index < lowest_maybe_free_) lowest_maybe_free_ = index;
}

bool FrameAllocator::is_allocated(uint64_t frame) const {
  if (frame < first_ || frame - first_ >= count_) return false;
  const uint64_t index = frame - first_;
  return used_.get(index / 64) & (1ULL << (index % 64));
}

}  // namespace shadowsim
