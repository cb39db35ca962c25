// SparseFrameArray<T>: one T per guest frame, allocated a chunk at a time on first access.
//
// Per-frame state (Xen's page_info for shadowing) is indexed by guest frame number, but a run
// touches a small part of a large guest: a dense array for a 1 TiB guest is 268 M entries
// (2 GiB at 8 bytes) before the first reference. Chunks of 4096 frames (16 MiB of guest RAM)
// keep memory proportional to the guest memory a run touches (docs/performance.md, "Memory").
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <vector>

namespace shadowsim {

template <typename T>
class SparseFrameArray {
 public:
  static constexpr unsigned kChunkShift = 12;
  static constexpr uint64_t kChunkFrames = 1ull << kChunkShift;

  explicit SparseFrameArray(uint64_t frames)
      : frames_(frames), chunks_((frames + kChunkFrames - 1) >> kChunkShift) {}

  uint64_t size() const { return frames_; }

  // The frame's state, its chunk allocated (default-constructed Ts) if this is the first touch.
  T& operator[](uint64_t frame) {
    std::unique_ptr<T[]>& chunk = chunks_[frame >> kChunkShift];
    if (!chunk) {
      chunk = std::make_unique<T[]>(kChunkFrames);
      ++allocated_chunks_;
    }
    return chunk[frame & (kChunkFrames - 1)];
  }
  T& at(uint64_t frame) {
    if (frame >= frames_) throw std::out_of_range("SparseFrameArray: frame beyond the array");
    return (*this)[frame];
  }
  // A read that allocates nothing: an untouched frame reads as a default T.
  T get(uint64_t frame) const {
    const std::unique_ptr<T[]>& chunk = chunks_[frame >> kChunkShift];
    return chunk ? chunk[frame & (kChunkFrames - 1)] : T{};
  }

  // Host memory held by the chunks (for tests and the memory benchmark).
  size_t allocated_bytes() const { return allocated_chunks_ * kChunkFrames * sizeof(T); }

 private:
  uint64_t frames_;
  std::vector<std::unique_ptr<T[]>> chunks_;
  size_t allocated_chunks_ = 0;
};

}  // namespace shadowsim
