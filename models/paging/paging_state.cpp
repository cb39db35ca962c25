#include "paging/paging_state.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/error.h"
#include "paging/guest_memory.h"

namespace shadowsim {
namespace {

// Bits hi..lo inclusive; empty when hi < lo.
constexpr uint64_t bits(int hi, int lo) {
  if (hi < lo) return 0;
  const uint64_t upper = hi >= 63 ? ~0ULL : ((1ULL << (hi + 1)) - 1);
  return upper & ~((1ULL << lo) - 1);
}

}  // namespace

PagingState::PagingState(PagingMode mode, PagingControls controls, CpuFeatures features)
    : mode_(mode), controls_(controls), features_(features) {
  const int m = static_cast<int>(features.maxphyaddr);
  if (m < 32 || m > 52) {
    throw Error(fmt::format("maxphyaddr {}: expected 32..52 bits", features.maxphyaddr));
  }
  const bool ia32e = mode == PagingMode::k4Level || mode == PagingMode::k5Level;
  if (controls.cr4_pcide && !ia32e) {
    throw Error(fmt::format("CR4.PCIDE needs IA-32e paging (4level or 5level), not {}",
                            to_string(mode)));
  }
  for (int level = 1; level <= top_level(mode); ++level) {
    shifts_[level] = level_shift(mode, level);
    index_masks_[level] = level_index(mode, level, ~0ULL);
  }
  const uint64_t xd_reserved = controls.efer_nxe ? 0 : pte::kExecuteDisable;
  switch (mode) {
    case PagingMode::k32Bit: {
      // Table 4-4..4-6: only a 4 MiB PDE has reserved bits; PSE-36 gives it min(M,40)-32 high
      // address bits in 20:13 and bit 21 is always reserved.
      const int m40 = std::min(m, 40);
      address_mask_ = bits(31, 12);
      large_ok_[2] = controls.cr4_pse;
      reserved_[2][1] = bits(21, 21) | bits(20, m40 - 19);
      break;
    }
    case PagingMode::kPae:
      // Tables 4-8..4-11.
      address_mask_ = bits(m - 1, 12);
      pdpte_reserved_ = bits(2, 1) | bits(8, 5) | bits(63, m);
      large_ok_[2] = true;
      reserved_[1][0] = bits(62, m) | xd_reserved;
      reserved_[2][0] = bits(62, m) | xd_reserved;
      reserved_[2][1] = reserved_[2][0] | bits(20, 13);
      break;
    case PagingMode::k4Level:
    case PagingMode::k5Level: {
      // Tables 4-14..4-20: bits 62:52 are ignored (protection keys are not modelled).
      address_mask_ = bits(m - 1, 12);
      const uint64_t base = bits(51, m) | xd_reserved;
      for (int level = 1; level <= 5; ++level) reserved_[level][0] = base;
      reserved_[4][0] |= pte::kPageSize;
      reserved_[5][0] |= pte::kPageSize;
      large_ok_[2] = true;
      reserved_[2][1] = base | bits(20, 13);
      large_ok_[3] = features.page_1gb;
      if (features.page_1gb) {
        reserved_[3][1] = base | bits(29, 13);
      } else {
        reserved_[3][0] |= pte::kPageSize;
      }
      break;
    }
  }
}

uint16_t PagingState::pcid() const {
  return controls_.cr4_pcide ? static_cast<uint16_t>(cr3_ & 0xfff) : 0;
}

bool PagingState::pdptes_valid(const std::array<uint64_t, 4>& pdptes, uint64_t reserved) {
  return std::none_of(pdptes.begin(), pdptes.end(), [reserved](uint64_t e) {
    return (e & pte::kPresent) && (e & reserved);
  });
}

bool PagingState::load_cr3(uint64_t cr3, const GuestMemory& memory) {
  const int m = static_cast<int>(features_.maxphyaddr);
  switch (mode_) {
    case PagingMode::k32Bit:
    case PagingMode::kPae:
      if (cr3 >> 32) {
        throw Error(fmt::format("CR3 {:#x}: {} paging takes a 32-bit CR3", cr3, to_string(mode_)));
      }
      break;
    case PagingMode::k4Level:
    case PagingMode::k5Level: {
      const uint64_t must_be_zero = bits(62, m) | (controls_.cr4_pcide ? 0 : bits(63, 63));
      if (cr3 & must_be_zero) {
        throw Error(fmt::format("CR3 {:#x}: bits {:#x} must be zero (MAXPHYADDR is {}{})", cr3,
                                cr3 & must_be_zero, m,
                                controls_.cr4_pcide ? "" : "; bit 63 needs CR4.PCIDE"));
      }
      break;
    }
  }
  if (mode_ != PagingMode::kPae) {
    cr3_ = cr3 & ~(controls_.cr4_pcide ? bits(63, 63) : 0);  // bit 63: "no flush" hint only
    root_ = cr3 & (mode_ == PagingMode::k32Bit ? bits(31, 12) : address_mask_);
    return true;
  }
  const uint64_t pdpt = cr3 & bits(31, 5);
  std::array<uint64_t, 4> loaded;
  for (unsigned i = 0; i < 4; ++i) loaded[i] = memory.read64(pdpt + 8 * i);
  if (!pdptes_valid(loaded, pdpte_reserved_)) return false;
  cr3_ = cr3;
  root_ = pdpt;
  pdptes_ = loaded;
  return true;
}

bool PagingState::reload_pdptes(const GuestMemory& memory) {
  if (mode_ != PagingMode::kPae) return true;
  return load_cr3(cr3_, memory);
}

}  // namespace shadowsim
