// The guest kernel's memory management against Linux's behaviour (docs/guest.md), on its own
// (no SystemC): demand paging, fault-around, COW, vfork/exec/exit, munmap/mprotect/brk, the TLB
// flushes it asks for, and whole-system invariants after random operation sequences.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "common/error.h"
#include "common/rng.h"
#include "guest/guest_kernel.h"
#include "paging/guest_memory.h"
#include "paging/paging_state.h"
#include "paging/walker.h"

namespace shadowsim {
namespace {

struct RecordingSink : TlbShootdownSink {
  void flush_pages(uint32_t mm, const std::vector<uint64_t>& pages) override {
    page_flushes.push_back({mm, pages});
  }
  void flush_mm(uint32_t mm) override { full_flushes.push_back(mm); }
  std::vector<std::pair<uint32_t, std::vector<uint64_t>>> page_flushes;
  std::vector<uint32_t> full_flushes;
};

class Kernel : public ::testing::TestWithParam<PagingMode> {
 protected:
  void SetUp() override { reset(GetParam()); }
  void reset(PagingMode mode, GuestKernelParams params = {}) {
    mode_ = mode;
    mem = std::make_unique<GuestMemory>(256ULL << 20);
    frames = std::make_unique<FrameAllocator>(256, (256ULL << 20) / kPageSize - 256);
    store = std::make_unique<DirectPageTableStore>(*mem);
    sink = std::make_unique<RecordingSink>();
    kernel = std::make_unique<GuestKernel>(mode, PagingControls{}, CpuFeatures{}, params,
                                           *frames, *store, *sink);
  }
  WalkResult touch(uint32_t pid, uint64_t va, Access access) {
    PagingState s(mode_);
    EXPECT_TRUE(s.load_cr3(kernel->cr3(pid), *mem));
    return walk(*mem, s, va, access);
  }
  // Access as a CPU would: walk, and on a fault let the kernel handle it, then walk again.
  WalkResult access(uint32_t pid, uint64_t va, Access a, FaultKind* kind = nullptr) {
    WalkResult r = touch(pid, va, a);
    if (r.ok()) return r;
    const FaultOutcome f = kernel->page_fault(pid, va, r.error_code);
    if (kind) *kind = f.kind;
    r = touch(pid, va, a);
    EXPECT_TRUE(r.ok()) << std::hex << va << " still faults after " << to_string(f.kind);
    apply_updates(*mem, r);
    return r;
  }
  uint64_t frame_of(uint32_t pid, uint64_t va) {
    return touch(pid, va, Access::read(true)).translation.page_pa >> kPageShift;
  }

  PagingMode mode_;
  std::unique_ptr<GuestMemory> mem;
  std::unique_ptr<FrameAllocator> frames;
  std::unique_ptr<DirectPageTableStore> store;
  std::unique_ptr<RecordingSink> sink;
  std::unique_ptr<GuestKernel> kernel;
};

constexpr uint8_t kRw = prot::kRead | prot::kWrite;
constexpr uint64_t kHeap = 0x10000000;
constexpr uint64_t kText = 0x00400000;

TEST_P(Kernel, AnonymousReadMapsTheZeroPageAndAWriteThenCopiesIt) {
  const uint32_t p = kernel->create_process();
  kernel->mmap(p, kHeap, 16 * kPageSize, kRw, false, false);
  FaultKind kind;
  const WalkResult read = access(p, kHeap + 8, Access::read(true), &kind);
  EXPECT_EQ(kind, FaultKind::kZeroPage);
  EXPECT_EQ(read.translation.page_pa >> kPageShift, kernel->zero_page_frame());
  EXPECT_FALSE(read.translation.rights.writable);
  EXPECT_EQ(touch(p, kHeap, Access::write(true)).error_code, 0x7u);
  sink->page_flushes.clear();
  const WalkResult write = access(p, kHeap, Access::write(true), &kind);
  EXPECT_EQ(kind, FaultKind::kCowCopy);
  EXPECT_NE(write.translation.page_pa >> kPageShift, kernel->zero_page_frame());
  EXPECT_TRUE(write.translation.rights.writable);
  ASSERT_EQ(sink->page_flushes.size(), 1u);  // ptep_clear_flush of the zero-page entry
  EXPECT_EQ(sink->page_flushes[0].second, std::vector<uint64_t>{kHeap});
}

TEST_P(Kernel, AnonymousWriteMapsANewDirtyWritablePage) {
  const uint32_t p = kernel->create_process();
  kernel->mmap(p, kHeap, kPageSize, kRw, false, false);
  FaultKind kind;
  const WalkResult w = access(p, kHeap, Access::write(true), &kind);
  EXPECT_EQ(kind, FaultKind::kAnonymous);
  EXPECT_TRUE(w.translation.rights.writable);
  EXPECT_TRUE(w.translation.dirty);
  EXPECT_EQ(kernel->mapcount(w.translation.page_pa >> kPageShift), 1u);
  EXPECT_TRUE(sink->page_flushes.empty());  // the entry was not present: nothing to flush
}

TEST_P(Kernel, FileReadFaultsMapAroundInsideTheVmaAndThePageTable) {
  const uint32_t p = kernel->create_process();
  kernel->mmap(p, kText + 3 * kPageSize, 40 * kPageSize, prot::kRead | prot::kExec, false, true);
  FaultKind kind;
  access(p, kText + 5 * kPageSize, Access::fetch(true), &kind);
  EXPECT_EQ(kind, FaultKind::kFileAround);
  // do_fault_around: the 64 KiB-aligned window start clipped to the VMA start (page 3), then
  // 16 pages from there: pages 3..18.
  for (int i = 3; i < 19; ++i) {
    EXPECT_TRUE(touch(p, kText + i * kPageSize, Access::read(true)).ok()) << i;
  }
  EXPECT_FALSE(touch(p, kText + 19 * kPageSize, Access::read(true)).ok());
  EXPECT_EQ(touch(p, kText + 5 * kPageSize, Access::write(true)).error_code, 0x7u);
}

TEST_P(Kernel, ForkWriteProtectsBothSidesAndCowGivesEachItsOwnFrame) {
  const uint32_t parent = kernel->create_process();
  kernel->mmap(parent, kHeap, 4 * kPageSize, kRw, false, false);
  access(parent, kHeap, Access::write(true));
  const uint64_t original = frame_of(parent, kHeap);
  const size_t flushes = sink->full_flushes.size();
  const uint32_t child = kernel->fork(parent);
  EXPECT_EQ(sink->full_flushes.size(), flushes + 1);  // flush_tlb_mm(parent)
  EXPECT_EQ(sink->full_flushes.back(), kernel->mm_of(parent));
  EXPECT_EQ(frame_of(child, kHeap), original);
  EXPECT_EQ(kernel->mapcount(original), 2u);
  EXPECT_EQ(touch(parent, kHeap, Access::write(true)).error_code, 0x7u);
  EXPECT_EQ(touch(child, kHeap, Access::write(true)).error_code, 0x7u);

  FaultKind kind;
  access(child, kHeap, Access::write(true), &kind);
  EXPECT_EQ(kind, FaultKind::kCowCopy);
  EXPECT_NE(frame_of(child, kHeap), original);
  access(parent, kHeap, Access::write(true), &kind);
  EXPECT_EQ(kind, FaultKind::kCowReuse);  // the parent is now the only user: no copy
  EXPECT_EQ(frame_of(parent, kHeap), original);
  // VMAs without anonymous pages are not copied: the child faults them in itself.
  kernel->mmap(parent, kText, kPageSize, prot::kRead | prot::kExec, false, true);
  access(parent, kText, Access::fetch(true));
  const uint32_t child2 = kernel->fork(parent);
  EXPECT_FALSE(touch(child2, kText, Access::fetch(true)).ok());
}

TEST_P(Kernel, SharedMappingsAreShmemLikeFilesAndWriteFaultsMapOnePage) {
  const uint32_t p = kernel->create_process();
  kernel->mmap(p, kHeap, 16 * kPageSize, kRw, /*shared=*/true, /*file=*/false);
  FaultKind kind;
  const WalkResult r = access(p, kHeap, Access::read(true), &kind);
  EXPECT_EQ(kind, FaultKind::kFileAround);  // shmem: no zero page
  EXPECT_NE(r.translation.page_pa >> kPageShift, kernel->zero_page_frame());
  access(p, kHeap, Access::write(true), &kind);
  EXPECT_EQ(kind, FaultKind::kSharedWrite);
  kernel->mmap(p, kText, 4 * kPageSize, kRw, true, true);
  access(p, kText, Access::write(true), &kind);
  EXPECT_EQ(kind, FaultKind::kSharedWrite);  // do_shared_fault: this page only
  EXPECT_FALSE(touch(p, kText + kPageSize, Access::read(true)).ok());
}

TEST_P(Kernel, VforkSharesTheAddressSpaceUntilExec) {
  const uint32_t parent = kernel->create_process();
  kernel->mmap(parent, kHeap, kPageSize, kRw, false, false);
  access(parent, kHeap, Access::write(true));
  const uint32_t child = kernel->vfork(parent);
  EXPECT_EQ(kernel->cr3(child), kernel->cr3(parent));
  EXPECT_TRUE(touch(child, kHeap, Access::write(true)).ok());
  kernel->exec(child);
  EXPECT_NE(kernel->cr3(child), kernel->cr3(parent));
  EXPECT_FALSE(touch(child, kHeap, Access::read(true)).ok());
  EXPECT_TRUE(touch(parent, kHeap, Access::write(true)).ok());  // the parent's mm lives on
}

TEST_P(Kernel, MunmapClearsFlushesThenFreesTablesAndFrames) {
  const uint32_t p = kernel->create_process();
  const uint64_t base_frames = frames->allocated_count();
  kernel->mmap(p, kHeap, 64 * kPageSize, kRw, false, false);
  for (int i = 0; i < 40; ++i) access(p, kHeap + i * kPageSize, Access::write(true));
  kernel->munmap(p, kHeap, 2 * kPageSize);
  ASSERT_FALSE(sink->page_flushes.empty());
  EXPECT_EQ(sink->page_flushes.back().second, (std::vector<uint64_t>{kHeap, kHeap + kPageSize}));
  EXPECT_FALSE(touch(p, kHeap, Access::read(true)).ok());
  const size_t full = sink->full_flushes.size();
  kernel->munmap(p, kHeap, 64 * kPageSize);  // 38 pages left: above the 33-page ceiling
  EXPECT_EQ(sink->full_flushes.size(), full + 1);
  EXPECT_EQ(frames->allocated_count(), base_frames);  // data frames and tables all freed
  EXPECT_TRUE(kernel->vmas(p).empty());
}

TEST_P(Kernel, MprotectRewritesPresentEntriesAndFlushes) {
  const uint32_t p = kernel->create_process();
  kernel->mmap(p, kHeap, 4 * kPageSize, kRw, false, false);
  access(p, kHeap, Access::write(true));
  access(p, kHeap + kPageSize, Access::read(true));  // zero page
  kernel->mprotect(p, kHeap, 4 * kPageSize, prot::kRead);
  EXPECT_EQ(touch(p, kHeap, Access::write(true)).error_code, 0x7u);
  // Only the writable page lost a right (pte_needs_flush); the zero-page entry was read-only.
  EXPECT_EQ(sink->page_flushes.back().second, std::vector<uint64_t>{kHeap});
  EXPECT_THROW(kernel->page_fault(p, kHeap, 0x7), Error);  // the VMA forbids writes now
  kernel->mprotect(p, kHeap, 4 * kPageSize, kRw);
  EXPECT_TRUE(touch(p, kHeap, Access::write(true)).ok());  // exclusive anonymous: writable again
  EXPECT_FALSE(touch(p, kHeap + kPageSize, Access::write(true)).ok());  // the zero page is not
  EXPECT_EQ(kernel->vmas(p).size(), 1u);  // split and merged back? (same flags: one VMA)
}

TEST_P(Kernel, BrkGrowsAndShrinksTheHeap) {
  GuestKernelParams strict;
  strict.implicit_vmas = false;  // so that a touch above the break is a segmentation fault
  reset(GetParam(), strict);
  const uint32_t p = kernel->create_process();
  kernel->brk(p, kHeap);  // the initial break
  kernel->brk(p, kHeap + 3 * kPageSize + 100);
  access(p, kHeap + 3 * kPageSize + 50, Access::write(true));
  kernel->brk(p, kHeap + kPageSize);
  EXPECT_FALSE(touch(p, kHeap + 3 * kPageSize, Access::read(true)).ok());
  EXPECT_THROW(kernel->page_fault(p, kHeap + 3 * kPageSize, 0x6), Error);
}

TEST_P(Kernel, SegmentationFaultsAreErrorsNamingTheAccess) {
  GuestKernelParams strict;
  strict.implicit_vmas = false;
  reset(GetParam(), strict);
  const uint32_t p = kernel->create_process();
  kernel->mmap(p, kText, kPageSize, prot::kRead, false, true);
  try {
    kernel->page_fault(p, kText, 0x6);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("write"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("not allowed by its VMA"), std::string::npos);
  }
  EXPECT_THROW(kernel->page_fault(p, kHeap, 0x4), Error);
}

TEST_P(Kernel, ImplicitVmasCoverTracesWithoutMemoryEvents) {
  const uint32_t p = kernel->create_process();
  FaultKind kind;
  access(p, kHeap + 0x123, Access::write(true), &kind);
  access(p, kHeap + 0x10000, Access::fetch(true));
  ASSERT_EQ(kernel->vmas(p).size(), 1u);  // two 64 KiB regions, merged
  EXPECT_EQ(kernel->vmas(p)[0].end - kernel->vmas(p)[0].start, 0x20000u);
}

TEST_P(Kernel, ExitLeavesOnlyTheZeroPage) {
  const uint32_t a = kernel->create_process();
  kernel->mmap(a, kText, 32 * kPageSize, prot::kRead | prot::kExec, false, true);
  kernel->mmap(a, kHeap, 64 * kPageSize, kRw, false, false);
  access(a, kText, Access::fetch(true));
  for (int i = 0; i < 64; i += 3) access(a, kHeap + i * kPageSize, Access::write(true));
  const uint32_t b = kernel->fork(a);
  access(b, kHeap, Access::write(true));
  const uint32_t c = kernel->vfork(b);
  kernel->exit(c);
  kernel->exit(a);
  kernel->exit(b);
  // The zero page and the kernel's own (shared) tables.
  EXPECT_EQ(frames->allocated_count(), 1 + kernel->kernel_table_pages());
  StatsRegistry registry;
  kernel->register_stats(StatsGroup(registry, "guest"));
  const Histogram& per_mm = *registry.find("guest.table_pages_per_mm")->histogram;
  EXPECT_EQ(per_mm.count(), 2u);  // a and b (c shared b's mm)
  EXPECT_GE(per_mm.min(), GetParam() == PagingMode::kPae ? 4u : 1u);
  EXPECT_EQ(kernel->live_table_pages(), 0u);
}


// After random operation sequences: every present user leaf lies in a VMA that allows it,
// mapcounts equal the PTEs that map each frame, and every allocated frame is accounted for.
TEST_P(Kernel, InvariantsHoldOverRandomOperationSequences) {
  Rng rng(11);
  std::vector<uint32_t> pids{kernel->create_process()};
  for (int step = 0; step < 1500; ++step) {
    const uint32_t pid = pids[rng.below(pids.size())];
    const uint64_t page = kHeap + rng.below(96) * kPageSize;
    const uint64_t dice = rng.below(100);
    if (dice < 50) {
      const Access a = rng.chance(0.5) ? Access::write(true) : Access::read(true);
      WalkResult r = touch(pid, page, a);
      if (!r.ok()) {
        try {
          kernel->page_fault(pid, page, r.error_code);
        } catch (const Error&) {
          continue;  // a segmentation fault: the VMA forbids it
        }
        r = touch(pid, page, a);
        ASSERT_TRUE(r.ok()) << step;
      }
    } else if (dice < 60) {
      kernel->mmap(pid, page, (1 + rng.below(8)) * kPageSize, rng.chance(0.8) ? kRw : prot::kRead,
                   false, rng.chance(0.3));
    } else if (dice < 68) {
      kernel->munmap(pid, page, (1 + rng.below(16)) * kPageSize);
    } else if (dice < 76) {
      kernel->mprotect(pid, page, (1 + rng.below(16)) * kPageSize, rng.chance(0.5) ? kRw : prot::kRead);
    } else if (dice < 82 && pids.size() < 6) {
      pids.push_back(kernel->fork(pid));
    } else if (dice < 85 && pids.size() < 6) {
      pids.push_back(kernel->vfork(pid));
    } else if (dice < 90 && pids.size() > 1) {
      kernel->exit(pid);
      pids.erase(std::find(pids.begin(), pids.end(), pid));
    } else if (dice < 92) {
      kernel->exec(pid);
    }
  }
  // Invariants.
  std::map<uint64_t, uint32_t> ptes_per_frame;
  std::set<uint64_t> roots;
  for (uint32_t pid : pids) {
    if (!roots.insert(kernel->cr3(pid)).second) continue;  // shared mm: count once
    const std::vector<Vma> vmas = kernel->vmas(pid);
    for (uint64_t page = kHeap; page < kHeap + 120 * kPageSize; page += kPageSize) {
      const WalkResult r = touch(pid, page, Access::read(true));
      if (!r.ok()) continue;
      const auto vma = std::find_if(vmas.begin(), vmas.end(),
                                    [&](const Vma& v) { return page >= v.start && page < v.end; });
      ASSERT_NE(vma, vmas.end()) << std::hex << page << " mapped outside every VMA";
      if (r.translation.rights.writable) {
        ASSERT_TRUE(vma->prot & prot::kWrite) << std::hex << page;
      }
      const uint64_t frame = r.translation.page_pa >> kPageShift;
      if (frame != kernel->zero_page_frame()) ++ptes_per_frame[frame];
    }
  }
  for (const auto& [frame, n] : ptes_per_frame) ASSERT_EQ(kernel->mapcount(frame), n) << frame;
  EXPECT_EQ(frames->allocated_count(), 1 + ptes_per_frame.size() + kernel->live_table_pages() +
                                           kernel->kernel_table_pages());
  for (uint32_t pid : pids) kernel->exit(pid);
  EXPECT_EQ(frames->allocated_count(), 1 + kernel->kernel_table_pages());
}

INSTANTIATE_TEST_SUITE_P(Modes, Kernel,
                         ::testing::Values(PagingMode::k32Bit, PagingMode::kPae,
                                           PagingMode::k4Level, PagingMode::k5Level),
                         [](const ::testing::TestParamInfo<PagingMode>& info) {
                           return std::string(to_string(info.param));
                         });

}  // namespace
}  // namespace shadowsim

namespace shadowsim {
namespace {

TEST_P(Kernel, MremapMovesPagesWithTheirFramesAndResizesInPlace) {
  const uint32_t p = kernel->create_process();
  kernel->mmap(p, kHeap, 4 * kPageSize, kRw, false, false);
  access(p, kHeap, Access::write(true));
  access(p, kHeap + 2 * kPageSize, Access::write(true));
  const uint64_t frame = frame_of(p, kHeap + 2 * kPageSize);
  const uint64_t target = kHeap + 0x100000;
  kernel->mremap(p, kHeap, 4 * kPageSize, target, 8 * kPageSize);
  EXPECT_FALSE(touch(p, kHeap, Access::read(true)).ok());
  EXPECT_EQ(frame_of(p, target + 2 * kPageSize), frame);
  EXPECT_EQ(kernel->mapcount(frame), 1u);
  EXPECT_TRUE(touch(p, target, Access::write(true)).ok());
  access(p, target + 7 * kPageSize, Access::write(true));  // the grown part is mapped
  kernel->mremap(p, target, 8 * kPageSize, target, 2 * kPageSize);  // shrink in place
  EXPECT_FALSE(touch(p, target + 7 * kPageSize, Access::read(true)).ok());
  ASSERT_EQ(kernel->vmas(p).size(), 1u);
  EXPECT_EQ(kernel->vmas(p)[0].end, target + 2 * kPageSize);
}

}  // namespace
}  // namespace shadowsim

namespace shadowsim {
namespace {

class PaeKernel : public Kernel {};

TEST_P(PaeKernel, PtesAreTwoHalfWritesFromTheFaultPath) {
  const uint32_t p = kernel->create_process();
  kernel->mmap(p, kHeap, kPageSize, kRw, false, false);
  const size_t before = store->writes.size();
  access(p, kHeap, Access::write(true));
  ASSERT_GE(store->writes.size() - before, 2u);
  const EntryWrite& high = store->writes[store->writes.size() - 2];
  const EntryWrite& low = store->writes.back();
  EXPECT_EQ(high.width, 4);
  EXPECT_EQ(low.width, 4);
  EXPECT_EQ(high.entry_pa, low.entry_pa + 4);
}

INSTANTIATE_TEST_SUITE_P(Pae, PaeKernel, ::testing::Values(PagingMode::kPae),
                         [](const ::testing::TestParamInfo<PagingMode>&) { return std::string("pae"); });

}  // namespace
}  // namespace shadowsim
