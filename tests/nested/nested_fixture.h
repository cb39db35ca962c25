// Shared set-up of the nested-paging tests: hand-built guest tables per paging mode in a guest
// memory, and host tables (EPT or NPT) mapping all of guest memory at kHostOffset.
//
// Guest tables (gPA): 4-level / 5-level: PML5 0x8000 -> PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000
// -> PT 0x4000; PAE: PDPT 0x1000 (registers under EPT) -> PD 0x3000 -> PT 0x4000; 32-bit:
// PD 0x3000 -> PT 0x4000. kVa maps data page 0x200000, kVa2 (same page table) 0x201000.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "nested/host_paging.h"
#include "nested/host_table_builder.h"
#include "nested/nested_walker.h"
#include "paging/frame_allocator.h"
#include "paging/guest_memory.h"
#include "paging/paging_state.h"
#include "paging/walker.h"

namespace shadowsim::test {

constexpr uint64_t kGuestBytes = 32ULL << 20;
constexpr uint64_t kHostOffset = 1ULL << 30;  // gPA x lives at hPA x + 1 GiB
constexpr uint64_t kPml5 = 0x8000;
constexpr uint64_t kPml4 = 0x1000;
constexpr uint64_t kPdpt = 0x2000;
constexpr uint64_t kPaePdpt = 0x1000;
constexpr uint64_t kPd = 0x3000;
constexpr uint64_t kPt = 0x4000;
constexpr uint64_t kData = 0x200000;
constexpr uint64_t kData2 = 0x201000;
constexpr uint64_t kVa = 0x400123;
constexpr uint64_t kVa2 = 0x401123;
constexpr uint64_t kUserTable = pte::kPresent | pte::kWritable | pte::kUser;

// Writes the guest tables of `mode` into `mem`; returns the CR3 to load.
inline uint64_t build_guest_tables(GuestMemory& mem, PagingMode mode, uint64_t leaf_flags) {
  const bool wide = mode != PagingMode::k32Bit;
  auto put = [&](uint64_t pa, uint64_t v) {
    if (wide) {
      mem.write64(pa, v);
    } else {
      mem.write32(pa, static_cast<uint32_t>(v));
    }
  };
  const int w = wide ? 8 : 4;
  put(kPt + 0 * w, kData | leaf_flags);
  put(kPt + 1 * w, kData2 | leaf_flags);
  switch (mode) {
    case PagingMode::k32Bit:
      put(kPd + 1 * w, kPt | kUserTable);  // va 0x400000 is PD index 1 (4 MiB per entry)
      return kPd;
    case PagingMode::kPae:
      put(kPd + 2 * w, kPt | kUserTable);
      put(kPaePdpt, kPd | pte::kPresent);  // PAE PDPTEs carry no rights
      return kPaePdpt;
    case PagingMode::k4Level:
    case PagingMode::k5Level:
      put(kPd + 2 * w, kPt | kUserTable);
      put(kPdpt, kPd | kUserTable);
      put(kPml4, kPdpt | kUserTable);
      put(kPml5, kPml4 | kUserTable);
      return mode == PagingMode::k5Level ? kPml5 : kPml4;
  }
  return 0;
}

// Guest and host memories, host tables mapping [0, kGuestBytes) at kHostOffset with pages of
// `host_page`, and a guest paging state with CR3 loaded (PAE under EPT: through the walker's
// load_guest_cr3 by the caller if it wants the references; here directly).
struct NestedSystem {
  NestedSystem(PagingMode mode, HostPagingParams host_params,
               PageSize host_page = PageSize::k4K,
               uint64_t leaf_flags = kUserTable, PagingControls controls = {})
      : guest_mem(kGuestBytes),
        host_mem(256ULL << 20),
        host_frames(1, (256ULL << 20) / kPageSize - 1),
        builder(host_mem, host_frames, host_params),
        state(mode, controls, CpuFeatures{}) {
    cr3 = build_guest_tables(guest_mem, mode, leaf_flags);
    builder.map(0, kHostOffset, host_page == PageSize::k1G ? (1ULL << 30) : kGuestBytes,
                host_page, ept::kRwx);
    EXPECT_TRUE(state.load_cr3(cr3, guest_mem));
  }
  HostPageTables host() const { return builder.tables(); }

  GuestMemory guest_mem;
  GuestMemory host_mem;
  FrameAllocator host_frames;
  HostTableBuilder builder;
  PagingState state;
  uint64_t cr3 = 0;
};

inline HostPagingParams ept_params(bool ad = false) {
  HostPagingParams p;
  p.kind = HostPagingKind::kEpt;
  p.ept_ad = ad;
  return p;
}
inline HostPagingParams npt_params() {
  HostPagingParams p;
  p.kind = HostPagingKind::kNpt;
  return p;
}

}  // namespace shadowsim::test
