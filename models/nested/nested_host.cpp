#include "nested/nested_host.h"

#include <fmt/format.h>

#include "common/error.h"

namespace shadowsim {
namespace {

constexpr uint64_t kGiB = 1ULL << 30;

uint64_t ceil_div(uint64_t n, uint64_t d) { return (n + d - 1) / d; }
uint64_t round_up(uint64_t n, uint64_t align) { return ceil_div(n, align) * align; }

// Host page-table frames that mapping [0, ram) with pages of at most `size` can need (an upper
// bound: the root, one PDPT per 512 GiB, one PD per GiB, and page tables for 4 KiB pages —
// all of RAM with 4 KiB pages, else at most one for a tail below 2 MiB).
uint64_t table_frames_needed(uint64_t ram, PageSize size) {
  const uint64_t pts = size == PageSize::k4K ? ceil_div(ram, 2ULL << 20) : 1;
  return 1 + ceil_div(ram, 512 * kGiB) + ceil_div(ram, kGiB) + pts;
}

const NestedHostParams& validated(const NestedHostParams& params) {
  params.validate();
  return params;
}

// Where the host tables start: above guest RAM, on a 1 GiB boundary. Error when RAM and tables
// do not fit below the host MAXPHYADDR.
uint64_t table_base_for(const GuestMemory& guest, const NestedHostParams& params) {
  const uint64_t ram = guest.size_bytes();
  const uint64_t base = round_up(ram, kGiB);
  const uint64_t end = base + table_frames_needed(ram, params.page_size) * kPageSize;
  if (end > (1ULL << params.maxphyaddr)) {
    throw Error(fmt::format("nested host: guest RAM of {:#x} bytes and its host tables need "
                            "host-physical addresses up to {:#x}, beyond host maxphyaddr {}",
                            ram, end, params.maxphyaddr));
  }
  return base;
}

}  // namespace

void NestedHostParams::validate() const {
  if (page_size == PageSize::k4M) {
    throw ParamError("page_size", "host tables have no 4 MiB pages (expected 4k, 2m or 1g)");
  }
  host_paging().validate();
  try {
    caches.validate();
  } catch (const ParamError& e) {
    throw ParamError("caches." + e.field(), e.what());
  }
}

HostPagingParams NestedHostParams::host_paging() const {
  HostPagingParams p;
  p.kind = kind;
  p.maxphyaddr = maxphyaddr;
  p.page_1gb = true;
  p.ept_ad = kind == HostPagingKind::kEpt && ept_ad;
  return p;
}

NestedHost::NestedHost(const GuestMemory& guest, const NestedHostParams& params)
    : guest_(guest),
      params_(validated(params)),
      table_base_(table_base_for(guest, params)),
      host_memory_(table_base_ +
                   table_frames_needed(guest.size_bytes(), params.page_size) * kPageSize),
      host_frames_(table_base_ >> kPageShift,
                   table_frames_needed(guest.size_bytes(), params.page_size)),
      builder_(host_memory_, host_frames_, params.host_paging()),
      tables_(builder_.tables()) {
  map_guest_ram();
}

// Largest pages first, then smaller ones for the tail: RAM is a multiple of 4 KiB.
void NestedHost::map_guest_ram() {
  const uint64_t ram = guest_.size_bytes();
  uint64_t mapped = 0;
  for (PageSize size : {PageSize::k1G, PageSize::k2M, PageSize::k4K}) {
    if (page_bytes(size) > page_bytes(params_.page_size)) continue;
    const uint64_t end = ram & ~(page_bytes(size) - 1);
    if (end > mapped) {
      builder_.identity_map(mapped, end - mapped, size, ept::kRwx);
      mapped = end;
    }
  }
}

}  // namespace shadowsim
