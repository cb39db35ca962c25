// Guest physical memory, backed by one anonymous host mapping reserved without commitment
// (MAP_NORESERVE): the host kernel supplies zero pages on first touch, so a guest of many GiB
// costs only the frames it writes, and an entry read is a single load at base + pa. Every
// page-table reference of every walk comes through here, so this is deliberately the simplest
// possible structure.
#pragma once

#include <cstdint>
#include <cstring>

#include "paging/paging_types.h"

namespace shadowsim {

class GuestMemory {
 public:
  // Largest supported guest: 64 TiB, so the reservation fits the host's 47-bit user space.
  static constexpr uint64_t kMaxBytes = 1ULL << 46;

  // size_bytes: a non-zero multiple of 4 KiB, at most kMaxBytes.
  explicit GuestMemory(uint64_t size_bytes);
  ~GuestMemory();
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  uint64_t size_bytes() const { return size_bytes_; }
  uint64_t frame_count() const { return size_bytes_ >> kPageShift; }

  // Aligned entry-sized accesses; a misaligned or out-of-range address throws Error.
  uint32_t read32(uint64_t pa) const { return load<uint32_t>(pa); }
  uint64_t read64(uint64_t pa) const { return load<uint64_t>(pa); }
  void write32(uint64_t pa, uint32_t value) { store<uint32_t>(pa, value); }
  void write64(uint64_t pa, uint64_t value) { store<uint64_t>(pa, value); }
  uint64_t read(uint64_t pa, int width) const { return width == 4 ? read32(pa) : read64(pa); }
  void write(uint64_t pa, uint64_t value, int width);

  // Zeroes a frame and gives its host memory back.
  void zero_frame(uint64_t frame);

 private:
  [[noreturn]] void fail(uint64_t pa, unsigned width) const;

  template <typename T>
  T load(uint64_t pa) const {
    if (pa % sizeof(T) != 0 || pa >= size_bytes_) fail(pa, sizeof(T));
    T value;
    std::memcpy(&value, base_ + pa, sizeof(T));
    return value;
  }
  template <typename T>
  void store(uint64_t pa, T value) {
    if (pa % sizeof(T) != 0 || pa >= size_bytes_) fail(pa, sizeof(T));
    std::memcpy(base_ + pa, &value, sizeof(T));
  }

  uint64_t size_bytes_;
  uint8_t* base_;
};

}  // namespace shadowsim
