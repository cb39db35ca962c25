// Fits a trace's linear addresses into the simulated paging mode. The config's mode wins over the
// mode a trace was recorded in, so a 64-bit program's trace must be laid out again for a 32-bit
// guest: each 256 MiB region the trace touches gets the next free 256 MiB slot of the 3 GiB user
// space above the first 256 MiB (kept free, as address 0 and its neighbourhood are in a real
// process), in order of first touch. Offsets inside a region are kept, so page-table sharing and
// locality inside a region are those of the recorded program. IA-32e modes keep addresses as
// they are (a 57-bit address in a 4-level guest is refused).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <memory>

#include "paging/paging_types.h"

namespace shadowsim {

class AddressFolder {
 public:
  static constexpr int kRegionShift = 28;  // 256 MiB
  static constexpr int kSlots = 11;        // [256 MiB, 3 GiB) of user space (Linux 3G/1G split)

  explicit AddressFolder(PagingMode mode) : mode_(mode) {}

  // Throws Error when the address cannot be placed (the message names it and why).
  uint64_t fold(uint64_t va) {
    if (mode_ == PagingMode::k4Level || mode_ == PagingMode::k5Level) {
      if (!is_canonical(mode_, va)) unplaceable(va);
      return va;
    }
    const uint64_t region = va >> kRegionShift;
    if (region != last_region_) last_slot_ = slot_of(region, va);
    last_region_ = region;
    return ((last_slot_ + 1) << kRegionShift) | (va & ((1ULL << kRegionShift) - 1));
  }
  int regions_used() const { return used_; }

  // Calls fn(folded_start, bytes) for each piece of [va, va + bytes) that stays inside one
  // region (one piece in IA-32e modes): a range placed region by region.
  template <typename Fn>
  void for_each_piece(uint64_t va, uint64_t bytes, Fn&& fn) {
    const bool ia32e = mode_ == PagingMode::k4Level || mode_ == PagingMode::k5Level;
    while (bytes) {
      const uint64_t region_end = ia32e ? va + bytes : ((va >> kRegionShift) + 1) << kRegionShift;
      const uint64_t piece = std::min(bytes, region_end - va);
      fn(fold(va), piece);
      va += piece;
      bytes -= piece;
    }
  }

 private:
  uint64_t slot_of(uint64_t region, uint64_t va);
  [[noreturn]] void unplaceable(uint64_t va) const;

  PagingMode mode_;
  std::array<uint64_t, kSlots> regions_{};
  int used_ = 0;
  uint64_t last_region_ = ~0ULL;
  uint64_t last_slot_ = 0;
};

// One folder per address space, shared by the VCPUs whose processes use it (threads, vfork).
class AddressFolders {
 public:
  explicit AddressFolders(PagingMode mode) : mode_(mode) {}
  AddressFolder& of(uint32_t mm) {
    std::unique_ptr<AddressFolder>& f = folders_[mm];
    if (!f) f = std::make_unique<AddressFolder>(mode_);
    return *f;
  }
  // fork: the child's address space starts with the parent's layout.
  void copy(uint32_t from_mm, uint32_t to_mm) {
    folders_[to_mm] = std::make_unique<AddressFolder>(of(from_mm));
  }

 private:
  PagingMode mode_;
  std::map<uint32_t, std::unique_ptr<AddressFolder>> folders_;
};

}  // namespace shadowsim
