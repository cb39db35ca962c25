#include "guest/address_folder.h"

#include <fmt/format.h>

#include "common/error.h"

namespace shadowsim {

uint64_t AddressFolder::slot_of(uint64_t region, uint64_t va) {
  for (int i = 0; i < used_; ++i) {
    if (regions_[static_cast<size_t>(i)] == region) return static_cast<uint64_t>(i);
  }
  if (used_ == kSlots) {
    throw Error(fmt::format("trace address {:#x} lies in a {}th distinct 256 MiB region; a {} "
                            "guest's user space above 256 MiB holds {} (set "
                            "machine.paging_mode to 4level or 5level for this trace)", va,
                            kSlots + 1, to_string(mode_), kSlots));
  }
  regions_[static_cast<size_t>(used_)] = region;
  return static_cast<uint64_t>(used_++);
}

void AddressFolder::unplaceable(uint64_t va) const {
  throw Error(fmt::format("trace address {:#x} is not canonical in {} paging (set "
                          "machine.paging_mode to 5level for 57-bit traces)", va,
                          to_string(mode_)));
}

}  // namespace shadowsim
