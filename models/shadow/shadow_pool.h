// The shadow page pool: a fixed range of machine frames handed out in chunks of order 0..2
// (1, 2 or 4 pages) by a buddy allocator with one free list per order, as Xen's
// shadow_alloc/shadow_free (common.c). Allocation never reclaims: the caller checks
// space_is_available() first and reclaims shadows itself (shadow_prealloc), exactly because
// freeing shadows here could free tables the caller is working on.
#pragma once

#include <array>
#include <cstdint>
#include <set>

namespace shadowsim {

class ShadowPool {
 public:
  static constexpr int kMaxOrder = 2;  // Xen SHADOW_MAX_ORDER (mm.h, 2008)

  // Frames [first_frame, first_frame + pages). Xen takes its pool from the heap in four-page
  // units (common.c comment on shadow allocation), so both must be multiples of 4 (Error).
  ShadowPool(uint64_t first_frame, uint64_t pages);

  // Xen space_is_available(): `count` chunks of `order` can be carved from the free lists
  // (a chunk of order o+1 counts as two of order o).
  bool space_is_available(int order, uint64_t count) const;
  // Lowest free chunk of the smallest order that fits, split down. Error when none is free
  // (a caller that skipped the prealloc check).
  uint64_t alloc(int order);
  // Gives a chunk back, merging it with its free buddy up to kMaxOrder.
  void free(uint64_t frame, int order);

  bool contains(uint64_t frame) const { return frame >= first_ && frame < first_ + pages_; }
  uint64_t first_frame() const { return first_; }
  uint64_t total_pages() const { return pages_; }
  uint64_t free_pages() const { return free_pages_; }
  uint64_t used_pages() const { return pages_ - free_pages_; }
  uint64_t peak_used_pages() const { return peak_used_; }
  uint64_t free_chunks(int order) const { return free_[order].size(); }

 private:
  uint64_t first_;
  uint64_t pages_;
  uint64_t free_pages_;
  uint64_t peak_used_ = 0;
  std::array<std::set<uint64_t>, kMaxOrder + 1> free_;  // ordered: lowest chunk first
};

}  // namespace shadowsim
