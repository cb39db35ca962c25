// Deterministic pseudo-random numbers. The standard distributions are implementation-defined, so
// results would differ between standard libraries; these generators are specified here, bit for
// bit, so the same seed gives the same run everywhere.
#pragma once

#include <cstdint>

namespace shadowsim {

// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, passes BigCrush; good for simulation choices.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // Uniform in [0, n) for n > 0 (Lemire's multiply-shift; bias below 2^-64 * n, irrelevant here).
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }

  bool chance(double p) { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }

 private:
  uint64_t state_;
};

}  // namespace shadowsim
