// The host table builder (host_table_builder.h): entry values per format, tables created on
// demand, refusals before any write, overwrite, unmap and protect with straddle checks.
#include <gtest/gtest.h>

#include "common/error.h"
#include "nested/host_table_builder.h"
#include "paging/frame_allocator.h"
#include "paging/guest_memory.h"

namespace shadowsim {
namespace {

struct Host {
  explicit Host(HostPagingKind kind)
      : mem(64ULL << 20), frames(1, (64ULL << 20) / kPageSize - 1), builder(mem, frames, [&] {
          HostPagingParams p;
          p.kind = kind;
          return p;
        }()) {}
  GuestMemory mem;
  FrameAllocator frames;
  HostTableBuilder builder;
};

TEST(HostTableBuilder, EptEntriesHoldRightsMemoryTypeAndLargePageBit) {
  Host h(HostPagingKind::kEpt);
  EXPECT_EQ(h.builder.table_frames(), 1u);
  h.builder.map(0x1000, 0x7000000, kPageSize, PageSize::k4K, ept::kRead | ept::kExecute);
  EXPECT_EQ(h.builder.table_frames(), 4u);  // root + PDPT + PD + PT
  EXPECT_EQ(h.mem.read64(*h.builder.entry_hpa(0x1000, 1)),
            0x7000000u | ept::kRead | ept::kExecute | (6u << 3));
  EXPECT_EQ(h.mem.read64(*h.builder.entry_hpa(0x1000, 2)) & 0xfff, ept::kRwx);
  h.builder.map(0x400000, 0x8000000, 2ULL << 20, PageSize::k2M, ept::kRwx, 0);
  EXPECT_EQ(h.mem.read64(*h.builder.entry_hpa(0x400000, 2)),
            0x8000000u | ept::kRwx | ept::kLargePage);
  EXPECT_FALSE(h.builder.entry_hpa(0x400000, 1).has_value());  // a large page: no PT
}

TEST(HostTableBuilder, NptEntriesAreUserLongModeEntries) {
  Host h(HostPagingKind::kNpt);
  h.builder.map(0x1000, 0x7000000, kPageSize, PageSize::k4K, ept::kRead);
  EXPECT_EQ(h.mem.read64(*h.builder.entry_hpa(0x1000, 1)),
            0x7000000u | pte::kPresent | pte::kUser | pte::kExecuteDisable);
  EXPECT_EQ(h.mem.read64(*h.builder.entry_hpa(0x1000, 4)) & 0xfff,
            pte::kPresent | pte::kWritable | pte::kUser);
  EXPECT_THROW(h.builder.map(0x2000, 0, kPageSize, PageSize::k4K, ept::kExecute), Error);
}

TEST(HostTableBuilder, RefusesBadRequestsBeforeWriting) {
  Host h(HostPagingKind::kEpt);
  h.builder.map(0x200000, 0x200000, 2ULL << 20, PageSize::k2M);
  const uint64_t frames = h.builder.table_frames();
  EXPECT_THROW(h.builder.map(0x1000, 0x2000, 0x1800, PageSize::k4K), Error);   // unaligned
  EXPECT_THROW(h.builder.map(0, 0, 4ULL << 20, PageSize::k4M), Error);         // no 4 MiB
  EXPECT_THROW(h.builder.map(0, 0, kPageSize, PageSize::k4K, ept::kWrite), Error);
  EXPECT_THROW(h.builder.map(0, 0, kPageSize, PageSize::k4K, ept::kRwx, 2), Error);
  EXPECT_THROW(h.builder.map(0, 1ULL << 46, kPageSize, PageSize::k4K), Error);  // > MAXPHYADDR
  EXPECT_THROW(h.builder.map(1ULL << 48, 0, kPageSize, PageSize::k4K), Error);
  // 4 KiB pages inside a 2 MiB page, and a 2 MiB page over 4 KiB pages.
  EXPECT_THROW(h.builder.map(0x0, 0x0, 0x400000, PageSize::k4K), Error);
  h.builder.map(0x600000, 0x600000, kPageSize, PageSize::k4K);
  EXPECT_THROW(h.builder.map(0x600000, 0x600000, 2ULL << 20, PageSize::k2M), Error);
  EXPECT_EQ(h.builder.table_frames(), frames + 1);  // only the successful 4 KiB map's PT
  // Nothing written at 0: no page table for [0, 2 MiB), its directory entry still zero.
  EXPECT_FALSE(h.builder.entry_hpa(0x1000, 1).has_value());
  EXPECT_EQ(h.mem.read64(h.builder.entry_hpa(0x0, 2).value()), 0u);
}

TEST(HostTableBuilder, OverwriteUnmapAndProtect) {
  Host h(HostPagingKind::kEpt);
  h.builder.identity_map(0, 4ULL << 20, PageSize::k4K);
  h.builder.map(0x3000, 0x9000, kPageSize, PageSize::k4K);  // same size: overwritten
  const HostPageTables t = h.builder.tables();
  EXPECT_EQ(t.translate(0x3004, AccessKind::kRead).hpa, 0x9004u);
  h.builder.unmap(0x1000, 0x2000);
  EXPECT_EQ(t.translate(0x1000, AccessKind::kRead).outcome, HostOutcome::kViolation);
  EXPECT_EQ(t.translate(0x2000, AccessKind::kRead).outcome, HostOutcome::kViolation);
  EXPECT_TRUE(t.translate(0x3000, AccessKind::kRead).ok());
  h.builder.protect(0x3000, kPageSize, ept::kRead);
  EXPECT_EQ(t.translate(0x3000, AccessKind::kWrite).outcome, HostOutcome::kViolation);
  EXPECT_EQ(h.mem.read64(*h.builder.entry_hpa(0x3000, 1)) & (7u << 3), 6u << 3);  // type kept
  // A large page straddling the range is refused.
  h.builder.map(0x400000, 0x400000, 2ULL << 20, PageSize::k2M);
  EXPECT_THROW(h.builder.unmap(0x400000, kPageSize), Error);
  EXPECT_THROW(h.builder.protect(0x500000, 2ULL << 20, ept::kRead), Error);
  EXPECT_TRUE(t.translate(0x400000, AccessKind::kWrite).ok());
}

}  // namespace
}  // namespace shadowsim
