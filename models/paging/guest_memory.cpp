#include "paging/guest_memory.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/error.h"

namespace shadowsim {

GuestMemory::GuestMemory(uint64_t size_bytes) : size_bytes_(size_bytes), base_(nullptr) {
  if (size_bytes == 0 || size_bytes % kPageSize != 0 || size_bytes > kMaxBytes) {
    throw Error(fmt::format("guest memory size {:#x} bytes: expected a non-zero multiple of 4 KiB, "
                            "at most {:#x} (64 TiB)", size_bytes, kMaxBytes));
  }
  void* p = mmap(nullptr, size_bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    throw Error(fmt::format("guest memory of {:#x} bytes: the host refused to reserve it ({})",
                            size_bytes, std::strerror(errno)));
  }
  base_ = static_cast<uint8_t*>(p);
}

GuestMemory::~GuestMemory() { munmap(base_, size_bytes_); }

void GuestMemory::fail(uint64_t pa, unsigned width) const {
  if (pa % width != 0) {
    throw Error(fmt::format("guest physical access at {:#x}: a {}-byte access must be {}-byte "
                            "aligned", pa, width, width));
  }
  throw Error(fmt::format("guest physical address {:#x} is beyond guest memory ({:#x} bytes)", pa,
                          size_bytes_));
}

void GuestMemory::write(uint64_t pa, uint64_t value, int width) {
  if (width == 4) {
    if (value >> 32) {
      throw Error(fmt::format("32-bit write of {:#x} at {:#x}: value does not fit", value, pa));
    }
    write32(pa, static_cast<uint32_t>(value));
  } else if (width == 8) {
    write64(pa, value);
  } else {
    throw Error(fmt::format("write of width {} at {:#x}: expected 4 or 8", width, pa));
  }
}

void GuestMemory::zero_frame(uint64_t frame) {
  if (frame >= frame_count()) fail(frame << kPageShift, 1);
  // Private anonymous memory reads as zero again after MADV_DONTNEED and costs nothing.
  madvise(base_ + (frame << kPageShift), kPageSize, MADV_DONTNEED);
}

}  // namespace shadowsim
