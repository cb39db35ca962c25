// The guest kernel's own address space: its direct map reaches every page-table page from every
// process, it is shared (not copied per process, never freed with one), and each layout puts it
// where its Linux version does (docs/guest.md).
#include <gtest/gtest.h>

#include <set>

#include "common/error.h"
#include "guest/guest_kernel.h"
#include "paging/guest_memory.h"
#include "paging/walker.h"

namespace shadowsim {
namespace {

struct NullSink : TlbShootdownSink {
  void flush_pages(uint32_t, const std::vector<uint64_t>&) override {}
  void flush_mm(uint32_t) override {}
};

// A guest kernel on its own memory, written directly (no VCPU).
struct Guest {
  Guest(PagingMode mode, uint64_t ram_mib, KernelLayoutParams layout = {},
        CpuFeatures features = {})
      : mode(mode), mem(ram_mib << 20), frames(256, (ram_mib << 20) / kPageSize - 256),
        store(mem) {
    GuestKernelParams params;
    params.layout = layout;
    kernel = std::make_unique<GuestKernel>(mode, PagingControls{}, features, params, frames,
                                           store, sink);
  }
  WalkResult kernel_walk(uint32_t pid, uint64_t va, Access access) {
    PagingState s(mode);
    EXPECT_TRUE(s.load_cr3(kernel->cr3(pid), mem));
    return walk(mem, s, va, access);
  }
  // Touches `pages` heap pages with writes so the process owns some page tables.
  void populate(uint32_t pid, uint64_t base, int pages) {
    kernel->mmap(pid, base, static_cast<uint64_t>(pages) * kPageSize,
                 prot::kRead | prot::kWrite, false, false);
    for (int i = 0; i < pages; ++i) {
      const uint64_t va = base + static_cast<uint64_t>(i) * kPageSize;
      PagingState s(mode);
      s.load_cr3(kernel->cr3(pid), mem);
      const WalkResult r = walk(mem, s, va, Access::write(true));
      if (!r.ok()) kernel->page_fault(pid, va, r.error_code);
    }
  }
  // The table frames the walk of `heap` reads.
  std::set<uint64_t> user_table_frames(uint32_t pid, uint64_t heap) {
    std::set<uint64_t> tables;
    PagingState s(mode);
    s.load_cr3(kernel->cr3(pid), mem);
    const WalkResult r = walk(mem, s, heap, Access::read(true));
    for (int i = 0; i < r.ref_count; ++i) tables.insert(r.refs[i].entry_pa >> kPageShift);
    return tables;
  }

  PagingMode mode;
  GuestMemory mem;
  FrameAllocator frames;
  DirectPageTableStore store;
  NullSink sink;
  std::unique_ptr<GuestKernel> kernel;
};

constexpr uint64_t kHeap = 0x10000000;

class Layout : public ::testing::TestWithParam<PagingMode> {};

// Every page-table page of a process (and the kernel's) is reachable through the direct map
// with a supervisor write, from any process: the one door for page-table writes.
TEST_P(Layout, DirectMapReachesEveryTableFrameWritablyFromEveryProcess) {
  Guest g(GetParam(), 512);
  const uint32_t a = g.kernel->create_process();
  const uint32_t b = g.kernel->create_process();
  g.populate(a, kHeap, 3);
  const KernelLayout& layout = g.kernel->layout();
  for (uint64_t frame : g.user_table_frames(a, kHeap)) {
    const uint64_t pa = frame << kPageShift;
    ASSERT_LT(pa, layout.lowmem_bytes());
    for (uint32_t pid : {a, b}) {
      const WalkResult r =
          g.kernel_walk(pid, layout.direct_map_address(pa) + 0x18, Access::write(false));
      ASSERT_TRUE(r.ok()) << std::hex << pa;
      EXPECT_EQ(r.translation.pa, pa + 0x18);
      EXPECT_FALSE(r.translation.rights.user);
      EXPECT_TRUE(r.translation.global);
      // The kernel part is not user-accessible.
      EXPECT_FALSE(g.kernel_walk(pid, layout.direct_map_address(pa), Access::read(true)).ok());
    }
  }
}

// The kernel's tables are shared: a process adds only its own tables, and exit frees only them.
TEST_P(Layout, KernelTablesAreSharedAndOutliveEveryProcess) {
  Guest g(GetParam(), 512);
  const uint64_t boot = g.frames.allocated_count();  // kernel tables and the zero page
  EXPECT_EQ(boot, 1 + g.kernel->kernel_table_pages());
  const uint32_t a = g.kernel->create_process();
  const uint64_t per_process = GetParam() == PagingMode::kPae ? 4u : 1u;  // PDPT + 3 user PDs
  EXPECT_EQ(g.frames.allocated_count(), boot + per_process);
  g.populate(a, kHeap, 2);
  g.kernel->exit(a);
  EXPECT_EQ(g.frames.allocated_count(), boot);
  const uint32_t b = g.kernel->create_process();
  const WalkResult r = g.kernel_walk(b, g.kernel->layout().direct_map_address(0x200000),
                                     Access::read(false));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.translation.pa, 0x200000u);
}

INSTANTIATE_TEST_SUITE_P(Modes, Layout,
                         ::testing::Values(PagingMode::k32Bit, PagingMode::kPae,
                                           PagingMode::k4Level, PagingMode::k5Level),
                         [](const auto& info) { return std::string(to_string(info.param)); });

TEST(KernelLayout, EachLinuxVersionPutsTheDirectMapWhereItDid) {
  const PagingControls c;
  const CpuFeatures f;
  KernelLayoutParams p61;
  KernelLayoutParams p26;
  p26.kind = LayoutKind::kLinux26;
  const uint64_t ram = 4ULL << 30;
  const KernelLayout l61(PagingMode::k4Level, c, f, p61, ram);
  const KernelLayout l26(PagingMode::k4Level, c, f, p26, ram);
  EXPECT_EQ(l61.direct_map_base(), 0xffff888000000000ULL);
  EXPECT_EQ(l61.direct_map_page(), PageSize::k1G);
  EXPECT_EQ(l26.direct_map_base(), 0xffff810000000000ULL);
  EXPECT_EQ(l26.direct_map_page(), PageSize::k2M);
  EXPECT_EQ(l26.lowmem_bytes(), ram);
  CpuFeatures no_gb;
  no_gb.page_1gb = false;
  EXPECT_EQ(KernelLayout(PagingMode::k4Level, c, no_gb, p61, ram).direct_map_page(),
            PageSize::k2M);
  const KernelLayout l32(PagingMode::k32Bit, c, f, p26, ram);
  EXPECT_EQ(l32.direct_map_base(), 0xc0000000ULL);
  EXPECT_EQ(l32.lowmem_bytes(), 896ULL << 20);
  EXPECT_EQ(l32.direct_map_page(), PageSize::k4M);
  EXPECT_EQ(l32.direct_map_address(0x1000), 0xc0001000ULL);
  EXPECT_EQ(l32.direct_map_address(900ULL << 20), ~0ULL);  // high memory
  EXPECT_EQ(KernelLayout(PagingMode::kPae, c, f, p61, ram).direct_map_page(), PageSize::k2M);
  PagingControls no_pse;
  no_pse.cr4_pse = false;
  EXPECT_EQ(KernelLayout(PagingMode::k32Bit, no_pse, f, p61, ram).direct_map_page(),
            PageSize::k4K);
}

TEST(KernelLayout, TheDirectMapUsesSmallerPagesForTheTail) {
  KernelLayoutParams p;
  const KernelLayout l(PagingMode::k4Level, PagingControls{}, CpuFeatures{}, p,
                       (1ULL << 30) + (3ULL << 20));  // 1 GiB + 3 MiB
  const auto pieces = l.direct_map_pieces();
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0].size, PageSize::k1G);
  EXPECT_EQ(pieces[1].size, PageSize::k2M);
  EXPECT_EQ(pieces[1].pa, 1ULL << 30);
  EXPECT_EQ(pieces[2].size, PageSize::k4K);
  EXPECT_EQ(pieces[2].bytes, 1ULL << 20);
}

TEST(KernelLayout, HighpteExistsOnlyFor32BitKernels) {
  KernelLayoutParams p;
  p.highpte = true;
  EXPECT_THROW(KernelLayout(PagingMode::k4Level, PagingControls{}, CpuFeatures{}, p, 1ULL << 30),
               ParamError);
  const KernelLayout l(PagingMode::kPae, PagingControls{}, CpuFeatures{}, p, 2ULL << 30);
  EXPECT_EQ(l.table_frame_limit(2), (896ULL << 20) >> kPageShift);  // directories: lowmem
  EXPECT_EQ(l.table_frame_limit(1), ~0ULL);                         // PTE pages: anywhere
  EXPECT_NE(l.kmap_slot(0, KernelLayout::KmapType::kPte0),
            l.kmap_slot(1, KernelLayout::KmapType::kPte0));
}

// HIGHPTE on a 2 GiB 32-bit guest: PTE pages come from high memory (no direct-map address), and
// every process sees the kmap slots' page table, so the kernel can map them in.
TEST(KernelLayout, HighptePutsPteTablesInHighMemoryBehindKmapSlots) {
  KernelLayoutParams p;
  p.highpte = true;
  Guest g(PagingMode::kPae, 2048, p);
  const uint32_t a = g.kernel->create_process();
  g.populate(a, kHeap, 1);
  PagingState s(PagingMode::kPae);
  ASSERT_TRUE(s.load_cr3(g.kernel->cr3(a), g.mem));
  const WalkResult r = walk(g.mem, s, kHeap, Access::read(true));
  ASSERT_TRUE(r.ok());
  const uint64_t pte_table = r.refs[r.ref_count - 1].entry_pa & ~(kPageSize - 1);
  EXPECT_GE(pte_table, 896ULL << 20);
  EXPECT_LT(r.refs[0].entry_pa, 896ULL << 20);  // the page directory stays in lowmem
  const uint64_t slot = g.kernel->layout().kmap_slot(0, KernelLayout::KmapType::kPte0);
  const uint64_t slot_pte = g.kernel->kmap_pte_address(slot);
  EXPECT_LT(slot_pte, 896ULL << 20);
  EXPECT_EQ(g.mem.read64(slot_pte), 0u);  // unmapped until kmap_atomic
}

}  // namespace
}  // namespace shadowsim
