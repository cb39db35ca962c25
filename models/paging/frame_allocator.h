// Allocator of guest physical frames for page tables and data. Placement is deterministic:
// `kLowestFree` always returns the lowest-numbered free frame (easy to reason about in tests and
// examples); `kRandom` starts at a seeded random frame and takes the first free one from there,
// which spreads tables over memory as a long-running kernel's allocator does (cache-set conflicts
// in the page-table memory model then look realistic). Same seed, same frames.
#pragma once

#include <cstdint>
#include <vector>

#include "common/rng.h"
#include "common/sparse_frame_array.h"

namespace shadowsim {

class FrameAllocator {
 public:
  enum class Placement { kLowestFree, kRandom };

  // Manages frames [first_frame, first_frame + frame_count).
  FrameAllocator(uint64_t first_frame, uint64_t frame_count,
                 Placement placement = Placement::kLowestFree, uint64_t seed = 1);

  uint64_t allocate();               // throws Error when every frame is in use
  // A frame below `frame_limit` (e.g. 4 GiB for what a 32-bit entry or CR3 must reach), by the
  // same placement rule. Throws Error when none is free there.
  uint64_t allocate_below(uint64_t frame_limit);
  // A frame at or above `preferred_first` if one is free there (Linux's highmem zone first for
  // __GFP_HIGHMEM allocations), else any frame.
  uint64_t allocate_preferring(uint64_t preferred_first);
  // `count` free frames in a row, the first a multiple of `align` (frames): backing for a large
  // page. Same placement rule as allocate(). Throws Error when no such run is free.
  uint64_t allocate_contiguous(uint64_t count, uint64_t align);
  void free(uint64_t frame);         // throws Error on a frame outside the range or not allocated
  bool is_allocated(uint64_t frame) const;
  uint64_t allocated_count() const { return allocated_; }
  uint64_t capacity() const { return count_; }
  uint64_t end_frame() const { return first_ + count_; }  // one past the last managed frame

 private:
  uint64_t find_free_from(uint64_t index) const;  // first free index at or after, wrapping
  bool run_free(uint64_t index, uint64_t count) const;
  void mark(uint64_t index, bool used);

  uint64_t first_;
  uint64_t count_;
  Placement placement_;
  Rng rng_;
  // One bit per frame; 32 KiB chunks (1 GiB of frames) allocated when first marked, so a large
  // guest costs host memory for the part a run uses.
  SparseFrameArray<uint64_t> used_;
  uint64_t lowest_maybe_free_ = 0;
  uint64_t allocated_ = 0;
};

}  // namespace shadowsim
