// Xen's per-VCPU virtual TLB (SHOPT_VIRTUAL_TLB, private.h): a tiny direct-mapped cache of
// guest-virtual page -> guest frame translations filled after successful guest walks and used by
// the emulator's address translation. 13 entries (VTLB_ENTRIES), indexed by page number mod 13;
// flushed on guest invlpg and CR3 writes. An entry remembers the access rights (as a #PF error
// code) the walk allowed; a lookup hits only when those cover the requested ones.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

namespace shadowsim {

class VTlb {
 public:
  static constexpr unsigned kEntries = 13;  // Xen VTLB_ENTRIES

  void insert(uint64_t va, uint64_t gfn, uint32_t pfec);
  // The guest frame of va's page if cached with at least the rights in `pfec`.
  std::optional<uint64_t> lookup(uint64_t va, uint32_t pfec);
  void flush();

  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t flushes = 0;

 private:
  struct Entry {
    uint64_t page = 0;
    uint64_t gfn = 0;
    uint32_t pfec = 0;  // 0: empty (Xen marks empty entries with pfec 0)
  };
  std::array<Entry, kEntries> entries_{};
};

}  // namespace shadowsim
