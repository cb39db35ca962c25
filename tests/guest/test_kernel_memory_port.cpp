// The one door: every page-table access of the guest kernel becomes a kernel load or store of
// the right width at the table's kernel virtual address (direct map, or a kmap slot mapped and
// unmapped around it), made by the CPU in the kernel.
#include <gtest/gtest.h>

#include "guest/guest_kernel.h"
#include "guest/kernel_memory_port.h"
#include "paging/guest_memory.h"

namespace shadowsim {
namespace {

struct NullSink : TlbShootdownSink {
  void flush_pages(uint32_t, const std::vector<uint64_t>&) override {}
  void flush_mm(uint32_t) override {}
};

// Records every access; stores are performed on memory; the first `traps` stores trap.
struct FakeCpu : KernelCpu {
  explicit FakeCpu(GuestMemory& m) : mem(m) {}
  struct Op {
    char kind;  // 'L', 'S', 'I'
    uint64_t va, pa, value;
    int width;
  };
  int cpu_index() const override { return 1; }
  uint64_t kernel_load(uint64_t va, uint64_t pa, int width) override {
    ops.push_back({'L', va, pa, 0, width});
    return mem.read(pa, width);
  }
  bool kernel_store(uint64_t va, uint64_t pa, int width, uint64_t value) override {
    ops.push_back({'S', va, pa, value, width});
    mem.write(pa, value, width);
    if (traps == 0) return false;
    --traps;
    return true;
  }
  void kernel_invlpg(uint64_t va) override { ops.push_back({'I', va, 0, 0, 0}); }
  GuestMemory& mem;
  std::vector<Op> ops;
  int traps = 0;
};

struct Rig {
  Rig(PagingMode mode, uint64_t ram_mib, bool highpte = false)
      : mem(ram_mib << 20), frames(256, (ram_mib << 20) / kPageSize - 256),
        port(mem, mode, true), cpu(mem) {
    GuestKernelParams params;
    params.layout.highpte = highpte;
    kernel = std::make_unique<GuestKernel>(mode, PagingControls{}, CpuFeatures{}, params, frames,
                                           port, sink);
    port.attach(kernel.get());
  }
  GuestMemory mem;
  FrameAllocator frames;
  KernelMemoryPort port;
  FakeCpu cpu;
  NullSink sink;
  std::unique_ptr<GuestKernel> kernel;
};

TEST(KernelMemoryPort, EntryWritesAreStoresOfTheirWidthThroughTheDirectMap) {
  Rig r(PagingMode::k4Level, 256);
  r.port.enter(&r.cpu);
  const uint64_t table = 0x123000;
  r.port.write_entry(EntryWrite{table + 0x18, 0, 0xabc067, 1, 8});
  ASSERT_EQ(r.cpu.ops.size(), 1u);
  EXPECT_EQ(r.cpu.ops[0].kind, 'S');
  EXPECT_EQ(r.cpu.ops[0].va, 0xffff888000000000ULL + table + 0x18);
  EXPECT_EQ(r.cpu.ops[0].width, 8);
  EXPECT_EQ(r.mem.read64(table + 0x18), 0xabc067u);
  EXPECT_EQ(r.port.read_entry(table + 0x18, 8), 0xabc067u);
  EXPECT_EQ(r.cpu.ops[1].kind, 'L');
  r.port.leave();
  EXPECT_EQ(r.cpu.ops.size(), 2u);  // no kmap on 64-bit: nothing to undo
}

TEST(KernelMemoryPort, WithoutACpuInTheKernelAccessesGoStraightToMemory) {
  Rig r(PagingMode::k4Level, 256);
  r.port.write_entry(EntryWrite{0x5000, 0, 7, 1, 8});
  EXPECT_EQ(r.mem.read64(0x5000), 7u);
  EXPECT_TRUE(r.cpu.ops.empty());
}

// A PAE kernel with HIGHPTE reaches a high-memory PTE page through its KM_PTE0 slot: the slot's
// fixmap PTE is set (high half, then low) before the access, and cleared (low, then high) and
// INVLPGed when the kernel operation ends.
TEST(KernelMemoryPort, HighMemoryTablesAreReachedThroughAKmapSlot) {
  Rig r(PagingMode::kPae, 2048, /*highpte=*/true);
  const KernelLayout& layout = r.kernel->layout();
  const uint64_t slot = layout.kmap_slot(1, KernelLayout::KmapType::kPte0);
  const uint64_t slot_pte = r.kernel->kmap_pte_address(slot);
  const uint64_t high_table = 1200ULL << 20;  // above 896 MiB
  r.port.enter(&r.cpu);
  r.port.write_entry(EntryWrite{high_table + 8, 0, 0x1234, 1, 4});
  ASSERT_EQ(r.cpu.ops.size(), 3u);
  EXPECT_EQ(r.cpu.ops[0].pa, slot_pte + 4);  // set_pte: high half first
  EXPECT_EQ(r.cpu.ops[1].pa, slot_pte);
  EXPECT_EQ(r.cpu.ops[1].value & 0xfffff000u, high_table & 0xfffff000u);
  EXPECT_EQ(r.cpu.ops[2].va, slot + 8);
  EXPECT_EQ(r.cpu.ops[2].pa, high_table + 8);
  r.port.write_entry(EntryWrite{high_table + 16, 0, 0x5678, 1, 4});  // same frame: no remap
  EXPECT_EQ(r.cpu.ops.size(), 4u);
  r.port.leave();
  ASSERT_EQ(r.cpu.ops.size(), 7u);
  EXPECT_EQ(r.cpu.ops[4].pa, slot_pte);  // clear: low half first
  EXPECT_EQ(r.cpu.ops[5].pa, slot_pte + 4);
  EXPECT_EQ(r.cpu.ops[6].kind, 'I');
  EXPECT_EQ(r.cpu.ops[6].va, slot);
  EXPECT_EQ(r.mem.read64(slot_pte), 0u);
}

// clear_page: a frame still shadowed traps; stores continue one by one until one goes through,
// then the rest of the page is cleared at once.
TEST(KernelMemoryPort, ClearPageStoresUntilAStoreGoesThrough) {
  Rig r(PagingMode::k4Level, 256);
  r.mem.write64(0x7000 + 0x800, 99);
  r.port.enter(&r.cpu);
  r.cpu.traps = 2;
  r.port.zero_frame(7);
  ASSERT_EQ(r.cpu.ops.size(), 3u);
  EXPECT_EQ(r.cpu.ops[2].va, 0xffff888000000000ULL + 0x7000 + 16);
  EXPECT_EQ(r.mem.read64(0x7000 + 0x800), 0u);
  r.cpu.ops.clear();
  r.port.zero_frame(8);
  EXPECT_EQ(r.cpu.ops.size(), 1u);
}

}  // namespace
}  // namespace shadowsim
