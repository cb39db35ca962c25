// The editor's writes, in order, as Linux 6.1 does them; its frees; and its refusals.
#include <gtest/gtest.h>

#include "common/error.h"
#include "paging/frame_allocator.h"
#include "paging/guest_memory.h"
#include "paging/page_table_editor.h"
#include "paging/paging_state.h"
#include "paging/walker.h"

namespace shadowsim {
namespace {

class Editor : public ::testing::Test {
 protected:
  void SetUp() override { reset(PagingMode::k4Level); }
  void reset(PagingMode mode, PagingControls controls = {}, CpuFeatures features = {}) {
    controls_ = controls;
    features_ = features;
    mem = std::make_unique<GuestMemory>(256ULL << 20);
    frames = std::make_unique<FrameAllocator>(16, 4096);  // frames 16.. (0x10000..)
    store = std::make_unique<DirectPageTableStore>(*mem);
    editor = std::make_unique<PageTableEditor>(mode, controls, features, *frames, *store);
    root = editor->create_address_space();
  }
  WalkResult translate(uint64_t va, Access access = Access::read()) {
    PagingState s(editor->mode(), controls_, features_);
    EXPECT_TRUE(s.load_cr3(root, *mem));
    return walk(*mem, s, va, access);
  }
  size_t writes() const { return store->writes.size(); }

  PagingControls controls_;
  CpuFeatures features_;
  std::unique_ptr<GuestMemory> mem;
  std::unique_ptr<FrameAllocator> frames;
  std::unique_ptr<DirectPageTableStore> store;
  std::unique_ptr<PageTableEditor> editor;
  uint64_t root = 0;
};

PageFlags user_rw() {
  PageFlags f;
  f.user = f.writable = true;
  return f;
}

TEST_F(Editor, FirstMapAllocatesZeroesAndLinksEachLevelTopDownThenWritesTheLeaf) {
  editor->map(root, 0x400000, 0x800000, kPageSize, PageSize::k4K, user_rw());
  ASSERT_EQ(writes(), 4u);
  ASSERT_EQ(store->zeroed_frames.size(), 4u);  // root, PDPT, PD, PT
  const int levels[] = {4, 3, 2, 1};
  for (int i = 0; i < 4; ++i) {
    const EntryWrite& w = store->writes[i];
    EXPECT_EQ(w.level, levels[i]);
    EXPECT_EQ(w.old_value, 0u);
    EXPECT_EQ(w.width, 8);
    if (i < 3) {  // _PAGE_TABLE: P|RW|US|A|D, pointing at the next zeroed frame
      EXPECT_EQ(w.new_value & 0xfff, 0x67u);
      EXPECT_EQ(w.new_value >> kPageShift, store->zeroed_frames[i + 1]);
    }
  }
  EXPECT_EQ(store->writes[3].new_value, 0x800000u | pte::kPresent | pte::kWritable | pte::kUser);
  const WalkResult r = translate(0x400010, Access::write(true));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.translation.pa, 0x800010u);

  editor->map(root, 0x401000, 0x900000, kPageSize, PageSize::k4K, user_rw());
  EXPECT_EQ(writes(), 5u);  // tables exist: just the leaf
}

TEST_F(Editor, KernelTablesAreLinkedWithoutUserAccess) {
  PageFlags kernel;
  kernel.writable = true;
  const uint64_t va = editor->kernel_base() + 0x1000;
  editor->map(root, va, 0x5000, kPageSize, PageSize::k4K, kernel);
  EXPECT_EQ(store->writes[0].new_value & 0xfff, 0x63u);  // _KERNPG_TABLE
  EXPECT_THROW(editor->map(root, va, 0x5000, kPageSize, PageSize::k4K, user_rw()), Error);
}

TEST_F(Editor, UnmapClearsLeavesThenUnlinksEmptyTablesBottomUpAndCallerFreesThem) {
  editor->map(root, 0x400000, 0x800000, 2 * kPageSize, PageSize::k4K, user_rw());
  EXPECT_EQ(frames->allocated_count(), 4u);
  const size_t before = writes();
  const std::vector<uint64_t> detached = editor->unmap(root, 0x400000, 2 * kPageSize);
  ASSERT_EQ(writes() - before, 5u);
  const int levels[] = {1, 1, 2, 3, 4};  // both PTEs, then pmd_clear, pud_clear, p4d/pgd_clear
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(store->writes[before + i].level, levels[i]);
    EXPECT_EQ(store->writes[before + i].new_value, 0u);
  }
  ASSERT_EQ(detached.size(), 3u);  // PT, PD, PDPT
  EXPECT_EQ(detached[0], store->zeroed_frames[3]);
  EXPECT_EQ(detached[2], store->zeroed_frames[1]);
  EXPECT_EQ(frames->allocated_count(), 4u);  // not freed until the caller says so
  editor->release_tables(detached);
  EXPECT_EQ(frames->allocated_count(), 1u);
  EXPECT_EQ(translate(0x400000).stop_level, 4);
}

TEST_F(Editor, UnmapCanKeepEmptyTables) {
  editor->map(root, 0x400000, 0x800000, kPageSize, PageSize::k4K, user_rw());
  EXPECT_TRUE(editor->unmap(root, 0x400000, kPageSize, /*free_empty_tables=*/false).empty());
  EXPECT_EQ(translate(0x400000).stop_level, 1);  // the PT is still linked
}

TEST_F(Editor, PartlyUsedTablesStay) {
  editor->map(root, 0x400000, 0x800000, 2 * kPageSize, PageSize::k4K, user_rw());
  EXPECT_TRUE(editor->unmap(root, 0x400000, kPageSize).empty());
  EXPECT_TRUE(translate(0x401000).ok());
}

TEST_F(Editor, ProtectClearsThenSetsKeepingFrameAccessedAndDirty) {
  PageFlags f = user_rw();
  f.accessed = f.dirty = true;
  editor->map(root, 0x400000, 0x800000, kPageSize, PageSize::k4K, f);
  const uint64_t old = store->writes.back().new_value;
  const size_t before = writes();
  PageFlags ro;
  ro.user = true;
  ro.execute_disable = true;
  editor->protect(root, 0x400000, kPageSize, ro);
  ASSERT_EQ(writes() - before, 2u);
  EXPECT_EQ(store->writes[before].new_value, 0u);
  const uint64_t now = store->writes[before + 1].new_value;
  EXPECT_EQ(now, (old & ~pte::kWritable) | pte::kExecuteDisable);
  EXPECT_EQ(translate(0x400000, Access::write(true)).error_code, 0x7u);
}

TEST_F(Editor, ProtectOfALargePageFirstMakesItNotPresent) {
  PageFlags f;
  f.writable = true;
  editor->map(root, 0x40000000, 0x200000, 2ULL << 20, PageSize::k2M, f);
  const uint64_t old = store->writes.back().new_value;
  const size_t before = writes();
  editor->protect(root, 0x40000000, 2ULL << 20, PageFlags{});
  ASSERT_EQ(writes() - before, 2u);
  EXPECT_EQ(store->writes[before].new_value, old & ~pte::kPresent);
  EXPECT_EQ(store->writes[before + 1].new_value, old & ~pte::kWritable);
}

TEST_F(Editor, PaePtesAreWrittenAsTwoHalvesInLinuxOrder) {
  reset(PagingMode::kPae);
  // create: PDPT + 4 preallocated PDs, PDPTEs with P only.
  ASSERT_EQ(writes(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(store->writes[i].new_value & 0xfff, pte::kPresent);
    EXPECT_EQ(store->writes[i].width, 8);
  }
  EXPECT_EQ(frames->allocated_count(), 5u);

  PageFlags f = user_rw();
  f.execute_disable = true;  // high half non-zero
  size_t before = writes();
  editor->map(root, 0x400000, 0x800000, kPageSize, PageSize::k4K, f);
  ASSERT_EQ(writes() - before, 3u);  // PDE (one 64-bit store), PTE high, PTE low
  EXPECT_EQ(store->writes[before].width, 8);
  const EntryWrite hi = store->writes[before + 1];
  const EntryWrite lo = store->writes[before + 2];
  EXPECT_EQ(hi.width, 4);
  EXPECT_EQ(hi.entry_pa, lo.entry_pa + 4);
  EXPECT_EQ(hi.new_value, 0x80000000u);
  EXPECT_EQ(lo.new_value, 0x800000u | pte::kPresent | pte::kWritable | pte::kUser);

  before = writes();
  editor->protect(root, 0x400000, kPageSize, user_rw());
  ASSERT_EQ(writes() - before, 4u);  // clear low, clear high, set high, set low
  EXPECT_EQ(store->writes[before].entry_pa, lo.entry_pa);
  EXPECT_EQ(store->writes[before + 1].entry_pa, hi.entry_pa);
  EXPECT_EQ(store->writes[before + 2].entry_pa, hi.entry_pa);
  EXPECT_EQ(store->writes[before + 3].entry_pa, lo.entry_pa);
  EXPECT_EQ(store->writes[before + 2].new_value, 0u);  // XD gone

  before = writes();
  const auto detached = editor->unmap(root, 0x400000, kPageSize);
  EXPECT_EQ(store->writes[before].entry_pa, lo.entry_pa);      // clear: low half first
  EXPECT_EQ(store->writes[before + 1].entry_pa, hi.entry_pa);
  EXPECT_EQ(detached.size(), 1u);  // the PT; the PDs are permanent
}

TEST_F(Editor, ThirtyTwoBitFourMegabytePagesAboveFourGigabytesUsePse36) {
  CpuFeatures m40;
  m40.maxphyaddr = 40;
  reset(PagingMode::k32Bit, {}, m40);
  PageFlags f;
  f.writable = true;
  editor->map(root, 0xC0000000, 0x12'00400000ULL, 4ULL << 20, PageSize::k4M, f);
  EXPECT_EQ(store->writes.back().width, 4);
  const WalkResult r = translate(0xC0000010);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.translation.pa, 0x12'00400010ULL);
  EXPECT_THROW(editor->map(root, 0x0, 0x1'00000000ULL, kPageSize, PageSize::k4K, f), Error);
}

TEST_F(Editor, DestroyFreesEveryTableFrame) {
  for (PagingMode mode : {PagingMode::k32Bit, PagingMode::kPae, PagingMode::k4Level,
                          PagingMode::k5Level}) {
    reset(mode);
    editor->map(root, 0x400000, 0x800000, 8 * kPageSize, PageSize::k4K, user_rw());
    editor->map(root, editor->kernel_base(), 0, 1ULL << 22,
                mode == PagingMode::k32Bit ? PageSize::k4M : PageSize::k2M, PageFlags{});
    if (mode == PagingMode::k32Bit || mode == PagingMode::kPae) {
      editor->map(root, 0xC0400000, 0x1000, kPageSize, PageSize::k4K, PageFlags{});
    } else {
      editor->map(root, editor->kernel_base() + (1ULL << 30), 0x1000, kPageSize, PageSize::k4K,
                  PageFlags{});
    }
    editor->destroy_address_space(root);
    EXPECT_EQ(frames->allocated_count(), 0u) << to_string(mode);
  }
}

TEST_F(Editor, SingleLeafOperationsWriteWhatTheKernelWrites) {
  reset(PagingMode::kPae);
  PageFlags f = user_rw();
  f.execute_disable = true;
  editor->map(root, 0x400000, 0x800000, 3 * kPageSize, PageSize::k4K, f);
  const auto l = editor->leaf(root, 0x401000);
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->value & ~0xfffULL & 0xffffffffULL, 0x801000u);
  EXPECT_FALSE(editor->leaf(root, 0x40000000).has_value());  // no page table there

  size_t before = writes();
  editor->clear_leaf_bits(root, 0x401000, pte::kWritable);  // ptep_set_wrprotect
  ASSERT_EQ(writes() - before, 1u);
  EXPECT_EQ(store->writes[before].width, 4);
  EXPECT_EQ(store->writes[before].entry_pa, l->entry_pa);  // the low half
  EXPECT_EQ(translate(0x401000, Access::write(true)).error_code, 0x7u);

  before = writes();
  EXPECT_EQ(editor->clear_leaf(root, 0x402000) >> 63, 1u);  // returns the old value
  ASSERT_EQ(writes() - before, 2u);
  EXPECT_LT(store->writes[before].entry_pa, store->writes[before + 1].entry_pa);  // low, high
  editor->set_leaf(root, 0x402000, editor->leaf_value(0x900000, f));
  EXPECT_GT(store->writes[before + 2].entry_pa, store->writes[before + 3].entry_pa);  // high, low
  EXPECT_EQ(translate(0x402008).translation.pa, 0x900008u);

  std::vector<uint64_t> seen;
  editor->for_each_present_leaf(root, 0x400000, 2ULL << 20,
                                [&](uint64_t va, uint64_t) { seen.push_back(va); });
  EXPECT_EQ(seen, (std::vector<uint64_t>{0x400000, 0x401000, 0x402000}));
  EXPECT_THROW(editor->set_leaf(root, 0x40000000, 1), Error);
}

TEST_F(Editor, ImpossibleRequestsAreRefusedBeforeAnyWrite) {
  editor->map(root, 0x200000, 0x200000, 2ULL << 20, PageSize::k2M, user_rw());
  editor->map(root, 0x400000, 0x800000, kPageSize, PageSize::k4K, user_rw());
  auto refused = [&](auto&& call, const char* needle) {
    const size_t before = writes();
    const uint64_t allocated = frames->allocated_count();
    try {
      call();
      ADD_FAILURE() << "expected an error mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    EXPECT_EQ(writes(), before);
    EXPECT_EQ(frames->allocated_count(), allocated);
  };
  auto f = user_rw();
  refused([&] { editor->map(root, 0x1000, 0x1000, kPageSize, PageSize::k4M, f); }, "4M");
  refused([&] { editor->map(root, 0x1800, 0x1000, kPageSize, PageSize::k4K, f); }, "0x1800");
  refused([&] { editor->map(root, 0x1000, 0x1800, kPageSize, PageSize::k4K, f); }, "0x1800");
  refused([&] { editor->map(root, 0x7ffffffff000ULL, 0, 2 * kPageSize, PageSize::k4K, f); },
          "non-canonical");
  refused([&] { editor->map(root, 0x0, 1ULL << 46, kPageSize, PageSize::k4K, f); }, "2^46");
  // A 4 KiB page inside an existing 2 MiB page; a 2 MiB page over an existing page table.
  refused([&] { editor->map(root, 0x201000, 0, kPageSize, PageSize::k4K, f); }, "larger page");
  refused([&] { editor->map(root, 0x3ff000, 0, 2 * kPageSize, PageSize::k4K, f); },
          "larger page");  // the first page conflicts; the second would have been fine
  refused([&] { editor->map(root, 0x400000, 0, 2ULL << 20, PageSize::k2M, f); }, "page table");
  refused([&] { editor->unmap(root, 0x300000, kPageSize); }, "partly");
  refused([&] { editor->protect(root, 0x1ff000, 2 * kPageSize, f); }, "partly");
  reset(PagingMode::kPae);
  refused([&] { editor->map(root, 0, 0, 1ULL << 30, PageSize::k1G, f); }, "1G");
  reset(PagingMode::k32Bit);
  PageFlags nx;
  nx.execute_disable = true;
  refused([&] { editor->map(root, 0, 0, kPageSize, PageSize::k4K, nx); }, "NXE");
  PagingControls no_pse;
  no_pse.cr4_pse = false;
  reset(PagingMode::k32Bit, no_pse);
  refused([&] { editor->map(root, 0, 0, 4ULL << 20, PageSize::k4M, f); }, "CR4.PSE");
}

}  // namespace
}  // namespace shadowsim
