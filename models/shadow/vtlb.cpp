#include "shadow/vtlb.h"

#include "paging/paging_types.h"

namespace shadowsim {

void VTlb::insert(uint64_t va, uint64_t gfn, uint32_t pfec) {
  const uint64_t page = va >> kPageShift;
  // A stored pfec of 0 would read as empty; P is always part of a successful walk's rights.
  entries_[page % kEntries] = Entry{page, gfn, pfec | pfec::kPresent};
}

std::optional<uint64_t> VTlb::lookup(uint64_t va, uint32_t pfec) {
  const uint64_t page = va >> kPageShift;
  const Entry& e = entries_[page % kEntries];
  if (e.pfec != 0 && e.page == page && (e.pfec & pfec) == pfec) {
    ++hits;
    return e.gfn;
  }
  ++misses;
  return std::nullopt;
}

void VTlb::flush() {
  entries_.fill(Entry{});
  ++flushes;
}

}  // namespace shadowsim
