// Demand mapping for native trace replay until the guest OS model exists: the first touch of a
// page maps it (user, writable, executable; A set, D set when the touch is a write, as Linux's
// PAGE_* protections and do_anonymous_page do), at a cost in cycles. Tables are built with the
// page-table editor, so the walker sees real, Linux-shaped tables.
#pragma once

#include <cstdint>

#include "common/stats.h"
#include "paging/frame_allocator.h"
#include "paging/page_table_editor.h"

namespace shadowsim {

class FirstTouchMapper {
 public:
  FirstTouchMapper(PagingMode mode, PagingControls controls, CpuFeatures features,
                   PageSize page_size, FrameAllocator& frames, GuestMemory& memory);

  uint64_t create_address_space();  // returns the CR3 value
  // Maps the page of `page_size` containing `va` in the address space rooted at `root`.
  void map(uint64_t root, uint64_t va, bool write);

  uint64_t pages_mapped() const { return pages_mapped_; }
  void register_stats(StatsGroup g);

 private:
  PageSize page_size_;
  FrameAllocator& frames_;
  DirectPageTableStore store_;
  PageTableEditor editor_;
  uint64_t pages_mapped_ = 0;
};

}  // namespace shadowsim
