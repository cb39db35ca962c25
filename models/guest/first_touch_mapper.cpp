#include "guest/first_touch_mapper.h"

namespace shadowsim {

FirstTouchMapper::FirstTouchMapper(PagingMode mode, PagingControls controls, CpuFeatures features,
                                   PageSize page_size, FrameAllocator& frames, GuestMemory& memory)
    : page_size_(page_size), frames_(frames), store_(memory),
      editor_(mode, controls, features, frames, store_) {}

uint64_t FirstTouchMapper::create_address_space() { return editor_.create_address_space(); }

void FirstTouchMapper::map(uint64_t root, uint64_t va, bool write) {
  const uint64_t bytes = page_bytes(page_size_);
  const uint64_t frames = bytes / kPageSize;
  const uint64_t frame = frames == 1 ? frames_.allocate() : frames_.allocate_contiguous(frames, frames);
  PageFlags flags;
  flags.user = flags.writable = flags.accessed = true;
  flags.dirty = write;
  editor_.map(root, va & ~(bytes - 1), frame << kPageShift, bytes, page_size_, flags);
  ++pages_mapped_;
  store_.writes.clear();  // the log is not needed here; keep memory flat on long runs
  store_.zeroed_frames.clear();
}

void FirstTouchMapper::register_stats(StatsGroup g) {
  g.counter("pages_mapped", &pages_mapped_, "pages", "pages mapped on first touch");
}

}  // namespace shadowsim
