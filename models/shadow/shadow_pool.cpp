#include "shadow/shadow_pool.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/error.h"

namespace shadowsim {

ShadowPool::ShadowPool(uint64_t first_frame, uint64_t pages)
    : first_(first_frame), pages_(pages), free_pages_(pages) {
  if (pages == 0 || pages % 4 != 0 || first_frame % 4 != 0) {
    throw Error(fmt::format("shadow pool of {} pages at frame {:#x}: expected a non-zero "
                            "multiple of 4 pages starting at a multiple of 4", pages,
                            first_frame));
  }
  for (uint64_t f = first_frame; f < first_frame + pages; f += 4) free_[kMaxOrder].insert(f);
}

bool ShadowPool::space_is_available(int order, uint64_t count) const {
  for (; order <= kMaxOrder; ++order) {
    if (free_[order].size() >= count) return true;
    count -= free_[order].size();
    count = (count + 1) / 2;
  }
  return false;
}

uint64_t ShadowPool::alloc(int order) {
  int i = order;
  while (i <= kMaxOrder && free_[i].empty()) ++i;
  if (i > kMaxOrder) {
    throw Error(fmt::format("shadow pool of {} pages has no free chunk of order {} ({} pages "
                            "free): shadow_prealloc was not called first", pages_, order,
                            free_pages_));
  }
  const uint64_t frame = *free_[i].begin();
  free_[i].erase(free_[i].begin());
  // Halve the chunk, keeping the lower half and freeing the upper one.
  while (i != order) {
    --i;
    free_[i].insert(frame + (1ULL << i));
  }
  free_pages_ -= 1ULL << order;
  peak_used_ = std::max(peak_used_, used_pages());
  return frame;
}

void ShadowPool::free(uint64_t frame, int order) {
  if (!contains(frame) || (frame - first_) % (1ULL << order) != 0) {
    throw Error(fmt::format("shadow pool: free of frame {:#x} order {} outside the pool or "
                            "misaligned", frame, order));
  }
  free_pages_ += 1ULL << order;
  while (order < kMaxOrder) {
    const uint64_t buddy = first_ + ((frame - first_) ^ (1ULL << order));
    auto it = free_[order].find(buddy);
    if (it == free_[order].end()) break;
    free_[order].erase(it);
    frame = std::min(frame, buddy);
    ++order;
  }
  free_[order].insert(frame);
}

}  // namespace shadowsim
