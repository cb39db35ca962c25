// The paging state of one (V)CPU: mode, control bits, CR3 and, in PAE mode, the four PDPTE
// registers. Derived per-level masks are computed once here so the walker's loop stays short.
#pragma once

#include <array>
#include <cstdint>

#include "paging/paging_types.h"

namespace shadowsim {

class GuestMemory;

class PagingState {
 public:
  // Throws Error on an impossible combination (MAXPHYADDR outside 32..52, 1 GiB pages or LA57
  // asked of a mode that has none, PCIDE outside IA-32e mode).
  PagingState(PagingMode mode, PagingControls controls = {}, CpuFeatures features = {});

  // MOV to CR3. A CR3 whose table address lies beyond MAXPHYADDR (or above 4 GiB in the 32-bit
  // modes), or with bits set that must be zero, is an API error (Error). In PAE mode this also
  // loads the PDPTE registers (§4.4.1); if a present PDPTE has a reserved bit set the real MOV
  // faults with #GP: load_cr3 then returns false and leaves the state unchanged.
  bool load_cr3(uint64_t cr3, const GuestMemory& memory);
  // PAE: reload the PDPTE registers from the current CR3 (the other events of §4.4.1, e.g. a
  // MOV to CR0/CR4 that changes paging bits). Until then a write to the PDPT is not seen.
  bool reload_pdptes(const GuestMemory& memory);

  PagingMode mode() const { return mode_; }
  const PagingControls& controls() const { return controls_; }
  const CpuFeatures& features() const { return features_; }
  uint64_t cr3() const { return cr3_; }
  uint64_t root_table() const { return root_; }  // PA of the top table (PAE: of the PDPT)
  uint16_t pcid() const;                          // 0 unless CR4.PCIDE
  uint64_t pdpte(unsigned i) const { return pdptes_[i]; }

  // Bits of an entry that hold a table's (or a 4 KiB page's) physical address.
  uint64_t address_mask() const { return address_mask_; }
  // Reserved bits of a present entry at `level`, for a large-page leaf or not (§4.3-4.5 tables).
  uint64_t reserved_mask(int level, bool large) const { return reserved_[level][large]; }
  // Whether PS=1 at `level` makes the entry a large-page leaf.
  bool large_page_level(int level) const { return large_ok_[level]; }
  // level_shift() and the index mask of level_index(), precomputed for the walker's loop.
  int shift(int level) const { return shifts_[level]; }
  uint64_t index_mask(int level) const { return index_masks_[level]; }

 private:
  static bool pdptes_valid(const std::array<uint64_t, 4>& pdptes, uint64_t reserved);

  PagingMode mode_;
  PagingControls controls_;
  CpuFeatures features_;
  uint64_t cr3_ = 0;
  uint64_t root_ = 0;
  std::array<uint64_t, 4> pdptes_{};
  uint64_t address_mask_ = 0;
  uint64_t pdpte_reserved_ = 0;
  std::array<std::array<uint64_t, 2>, 6> reserved_{};
  std::array<bool, 6> large_ok_{};
  std::array<int, 6> shifts_{};
  std::array<uint64_t, 6> index_masks_{};
};

}  // namespace shadowsim
