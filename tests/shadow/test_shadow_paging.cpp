// The shadow core driven through its steps, per shadow mode, checked with the paging core's
// walker over the shadow tables.
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "common/error.h"
#include "common/rng.h"
#include "shadow_test_util.h"

namespace shadowsim {
namespace {

using test::Machine;
using test::rw_flags;
using Result = Machine::Result;

constexpr uint64_t kUserBase = 0x10000000;

uint64_t kernel_map_base(PagingMode mode) {
  return mode == PagingMode::k4Level ? 0xffff888000000000ULL : 0xC0000000ULL;
}

PageSize large_page(PagingMode mode) {
  return mode == PagingMode::k32Bit ? PageSize::k4M : PageSize::k2M;
}

// Guest frame of the page table holding va's level-`level` entry.
uint64_t table_frame(const Machine& m, uint64_t va, int level, uint64_t cr3) {
  const WalkResult r = m.guest_walk(va, Access::read(true), cr3);
  for (uint8_t i = 0; i < r.ref_count; ++i) {
    if (r.refs[i].level == level) return r.refs[i].entry_pa >> kPageShift;
  }
  ADD_FAILURE() << "no level " << level << " table for " << std::hex << va;
  return 0;
}

class ShadowModes : public ::testing::TestWithParam<PagingMode> {};

// Random guest tables with 4 KiB pages (random rights, A/D, some pointing at page tables) and
// superpages; every page faulted in; then the shadow walk must give the guest's frame with no
// more rights, page tables and D=0 pages read-only, and guest faults must reach the guest.
TEST_P(ShadowModes, FaultEveryPageInAndCompareWalks) {
  const PagingMode mode = GetParam();
  Machine m(mode);
  Rng rng(7 + static_cast<uint64_t>(mode));
  const bool nx = mode != PagingMode::k32Bit;
  // Kernel direct map of all guest RAM with large pages (Linux maps it so).
  const uint64_t lp = page_bytes(large_page(mode));
  m.editor.map(m.root, kernel_map_base(mode), 0, test::kGuestFrames << kPageShift, large_page(mode),
               rw_flags(false));
  std::map<uint64_t, uint64_t> pages;  // va -> guest frame (4 KiB user pages)
  for (int i = 0; i < 400; ++i) {
    const uint64_t va = kUserBase + (rng.next() % 0x8000) * kPageSize;
    if (pages.count(va)) continue;
    PageFlags f;
    f.user = true;
    f.writable = rng.next() % 4 != 0;
    f.accessed = rng.next() % 5 != 0;
    f.dirty = rng.next() % 2 == 0;
    f.execute_disable = nx && rng.next() % 3 == 0;
    f.global = rng.next() % 4 == 0;
    f.pat_index = static_cast<uint8_t>(rng.next() % 8);
    uint64_t frame = 0x1000 + rng.next() % (test::kGuestFrames - 0x1000);
    if (rng.next() % 16 == 0) frame = test::kTableFirst + rng.next() % 8;  // a page table
    m.editor.map(m.root, va, frame << kPageShift, kPageSize, PageSize::k4K, f);
    pages[va] = frame;
  }
  const uint64_t big_va = kUserBase + 0x40000000ULL - 2 * lp;  // two user superpages
  m.editor.map(m.root, big_va, lp * 3, 2 * lp, large_page(mode), rw_flags(true));
  m.load_cr3();

  int emulated = 0, guest_faults = 0;
  for (const auto& [va, frame] : pages) {
    const WalkResult g = m.guest_walk(va, Access::read(true), m.root);
    ASSERT_TRUE(g.ok());
    EXPECT_EQ(m.access(0, va, Access::read(true)).result, Result::kOk);
    const WalkResult gw = m.guest_walk(va, Access::write(true), m.root);
    const Machine::Fault f = m.access(0, va, Access::write(true));
    if (!gw.ok()) {
      EXPECT_EQ(f.result, Result::kGuestFault);
      EXPECT_EQ(f.error_code, gw.error_code);
      ++guest_faults;
    } else if (m.shadow.is_page_table(frame)) {
      EXPECT_EQ(f.result, Result::kEmulate);
      ++emulated;
    } else {
      EXPECT_EQ(f.result, Result::kOk);
    }
    if (nx) {
      const WalkResult gx = m.guest_walk(va, Access::fetch(true), m.root);
      const Machine::Fault fx = m.access(0, va, Access::fetch(true));
      EXPECT_EQ(fx.result, gx.ok() ? Result::kOk : Result::kGuestFault);
    }
  }
  EXPECT_GT(emulated, 0);
  EXPECT_GT(guest_faults, 0);
  for (uint64_t va = big_va; va < big_va + 2 * lp; va += 0x81000) {
    EXPECT_EQ(m.access(0, va, Access::write(true)).result, Result::kOk);
  }
  // Final comparison of every page.
  for (const auto& [va, frame] : pages) {
    const WalkResult g = m.guest_walk(va, Access::read(true), m.root);
    const WalkResult s = m.shadow_walk(va, Access::read(true));
    ASSERT_TRUE(s.ok()) << std::hex << va;
    EXPECT_EQ(s.translation.pa, g.translation.pa);
    EXPECT_EQ(s.translation.size, PageSize::k4K);
    const Rights& sr = s.translation.rights;
    const Rights& gr = g.translation.rights;
    EXPECT_TRUE(!sr.writable || gr.writable);
    EXPECT_TRUE(!sr.user || gr.user);
    EXPECT_TRUE(sr.execute_disable || !gr.execute_disable);
    const auto leaf = m.editor.leaf(m.root, va);
    ASSERT_TRUE(leaf);
    if (sr.writable) {  // and so: a page table or a clean page is never writable
      EXPECT_TRUE(leaf->value & pte::kDirty);
      EXPECT_FALSE(m.shadow.is_page_table(frame));
    }
    EXPECT_EQ(s.translation.pat_index, g.translation.pat_index);
    EXPECT_FALSE(s.translation.global) << "G never reaches a shadow (Xen's pass_thru_flags)";
  }
  // Unmapped neighbours in faulted-in tables: prefetched magic entries fault with RSVD, and the
  // fast path reflects what the guest's own walk reports.
  int magic = 0;
  for (const auto& [va, frame] : pages) {
    const uint64_t next = va + kPageSize;
    if (pages.count(next) || ((next ^ va) >> 21) != 0) continue;
    const WalkResult s = m.shadow_walk(next, Access::read(true));
    const WalkResult g = m.guest_walk(next, Access::read(true), m.root);
    ASSERT_FALSE(g.ok());
    if (!s.ok() && (s.error_code & pfec::kReserved)) {
      ++magic;
      const Machine::Fault f = m.access(0, next, Access::read(true));
      EXPECT_EQ(f.result, Result::kGuestFault);
      EXPECT_EQ(f.error_code, g.error_code);
      EXPECT_EQ(s.error_code, g.error_code | pfec::kPresent | pfec::kReserved);
    }
  }
  EXPECT_GT(magic, 0);
  // No promoted frame has a writable shadow mapping.
  for (uint64_t gfn = 0; gfn < test::kGuestFrames; ++gfn) {
    const FrameState fs = m.shadow.frame_state(gfn);
    if (fs.promoted()) {
      EXPECT_EQ(fs.writable_count, 0u) << gfn;
    }
  }
  // Kernel accesses through the direct map: table frames are write-protected inside their
  // superpage (FL1), the other frames of that superpage stay writable.
  const uint64_t l1_table = table_frame(m, pages.begin()->first, 1, m.root);
  ASSERT_TRUE(m.shadow.is_page_table(l1_table));
  const uint64_t dm = kernel_map_base(mode) + (l1_table << kPageShift);
  EXPECT_EQ(m.access(0, dm, Access::write(false)).result, Result::kEmulate);
  uint64_t neighbour = l1_table + 1;
  while (m.shadow.is_page_table(neighbour)) ++neighbour;
  EXPECT_EQ(m.access(0, kernel_map_base(mode) + (neighbour << kPageShift), Access::write(false))
                .result,
            Result::kOk);
  EXPECT_TRUE(m.shadow.find_shadow((l1_table << kPageShift & ~(lp - 1)) >> kPageShift,
                                   fl1_type(m.shadow.mode())));
}

// A=0 pages fault once for A; D=0 pages are read-only until a write fault sets D.
TEST_P(ShadowModes, AccessedAndDirtyEmulation) {
  Machine m(GetParam());
  PageFlags f = rw_flags(true);
  f.accessed = false;
  f.dirty = false;
  m.editor.map(m.root, kUserBase, 0x2000000, kPageSize, PageSize::k4K, f);
  m.load_cr3();
  Machine::Fault r = m.access(0, kUserBase, Access::read(true));
  EXPECT_EQ(r.result, Result::kOk);
  EXPECT_EQ(r.faults, 1);
  uint64_t leaf = m.editor.leaf(m.root, kUserBase)->value;
  EXPECT_TRUE(leaf & pte::kAccessed);
  EXPECT_FALSE(leaf & pte::kDirty);
  EXPECT_FALSE(m.shadow_walk(kUserBase, Access::write(true)).ok());  // read-only until D
  r = m.access(0, kUserBase, Access::write(true));
  EXPECT_EQ(r.result, Result::kOk);
  EXPECT_EQ(r.faults, 1);
  EXPECT_TRUE(m.editor.leaf(m.root, kUserBase)->value & pte::kDirty);
  EXPECT_TRUE(m.shadow_walk(kUserBase, Access::write(true)).ok());
}

INSTANTIATE_TEST_SUITE_P(Modes, ShadowModes,
                         ::testing::Values(PagingMode::k32Bit, PagingMode::kPae,
                                           PagingMode::k4Level),
                         [](const auto& info) { return std::string(to_string(info.param)); });

TEST(ShadowPaging, RefusesFiveLevelGuestsAndSmallPools) {
  GuestMemory mem(8ULL << 20);
  EXPECT_THROW(ShadowPaging(mem, 1024, 1024, 1024, PagingMode::k5Level, 1), Error);
  EXPECT_EQ(ShadowPaging::min_pool_pages(PagingMode::k4Level, 2), 256u);
  EXPECT_EQ(ShadowPaging::min_pool_pages(PagingMode::kPae, 1), 132u);
  try {
    ShadowPaging s(mem, 1024, 1024, 124, PagingMode::k4Level, 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("pool of 124 pages"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ShadowPaging(mem, 1024, 512, 1024, PagingMode::k4Level, 1), Error);  // overlap
}

TEST(ShadowPaging, OneGigabyteGuestPagesAreRefused) {
  Machine m(PagingMode::k4Level);
  // A guest PDPTE with PS set, as if the guest believed in 1 GiB pages.
  PagingState g(PagingMode::k4Level, test::guest_controls(), CpuFeatures{});
  ASSERT_TRUE(g.load_cr3(m.root, m.memory));
  m.editor.map(m.root, kUserBase, 0x2000000, kPageSize, PageSize::k4K, rw_flags());
  const uint64_t l3 = table_frame(m, kUserBase, 3, m.root);
  m.memory.write64((l3 << kPageShift) + 8, 0x40000000ULL | 0xe7);  // 1 GiB at 0x40000000
  ShadowWork w;
  m.shadow.update_cr3(0, g, w);
  EXPECT_THROW(m.shadow.guest_walk(0, 0x40000000, Access::read(false), w), Error);
}

// The work record of one first fault in 4-on-4 is what the steps did, to the unit.
TEST(ShadowPaging, WorkOfOneFaultIsExact) {
  ShadowParams p;
  p.prefetch = false;
  Machine m(PagingMode::k4Level, 4096, 1, p);
  m.editor.map(m.root, kUserBase, 0x2000000, kPageSize, PageSize::k4K, rw_flags());
  m.load_cr3();
  const Machine::Fault f = m.access(0, kUserBase, Access::write(true));
  ASSERT_EQ(f.result, Result::kOk);
  ASSERT_EQ(f.faults, 1);
  const ShadowWork& w = f.work;
  EXPECT_EQ(w.guest_entries_read, 8u);     // walk 4 + re-check 4
  EXPECT_EQ(w.guest_entries_written, 0u);  // A and D already set
  EXPECT_EQ(w.p2m_lookups, 5u);            // L3, L2, L1 tables, target; propagate
  EXPECT_EQ(w.hash_lookups, 3u);           // l3, l2, l1 shadows: all misses
  EXPECT_EQ(w.hash_inserts, 3u);
  EXPECT_EQ(w.shadows_created, 3u);
  EXPECT_EQ(w.pages_allocated, 3u);
  EXPECT_EQ(w.promotions, 3u);
  EXPECT_EQ(w.shadow_entries_read, 7u);     // L4, L3, L2 entries + their old values, L1 old
  EXPECT_EQ(w.shadow_entries_written, 4u);  // L4, L3, L2 links and the L1 entry
  EXPECT_EQ(w.heuristic_probes, 0u);        // early exits: no writable mappings
  EXPECT_FALSE(w.flush_needed);
  EXPECT_FALSE(w.reclaimed);
  EXPECT_EQ(m.shadow.pool().used_pages(), 4u);
  EXPECT_EQ(m.shadow.hash().lookups, 4u);  // + the L4 at CR3 load
}

// Guest tables or pages outside guest RAM: the walk stops (Xen: no RAM behind the gfn), a leaf
// there gets an empty shadow entry and the handler's bad-gfn check sends the fault to the guest.
TEST(ShadowPaging, FramesOutsideGuestRam) {
  Machine m(PagingMode::k4Level);
  m.editor.map(m.root, kUserBase, 0x2000000, kPageSize, PageSize::k4K, rw_flags());
  m.editor.map(m.root, kUserBase + kPageSize, (test::kGuestFrames + 3) << kPageShift, kPageSize,
               PageSize::k4K, rw_flags());
  m.load_cr3();
  ShadowWork w;
  const GuestWalk leaf = m.shadow.guest_walk(0, kUserBase + kPageSize, Access::read(true), w);
  ASSERT_TRUE(leaf.ok());
  EXPECT_FALSE(m.shadow.gfn_is_ram(leaf.gfn));
  EXPECT_EQ(m.shadow.propagate_l1e(leaf, w), 0u);
  EXPECT_EQ(m.access(0, kUserBase + kPageSize, Access::read(true)).result, Result::kGuestFault);
  // An L2 entry pointing at a "table" in the shadow pool's frames.
  const uint64_t l2 = table_frame(m, kUserBase, 2, m.root);
  const uint64_t index = (kUserBase >> 21) & 511;
  m.memory.write64((l2 << kPageShift) + 8 * index,
                   ((test::kGuestFrames + 1) << kPageShift) | 0x67);
  const GuestWalk gw = m.shadow.guest_walk(0, kUserBase, Access::read(true), w);
  ASSERT_FALSE(gw.ok());
  EXPECT_EQ(gw.result.error_code, pfec::kUser);  // not present
  EXPECT_EQ(gw.result.stop_level, 2);
  EXPECT_FALSE(gw.levels[1].valid);
}

// 2-on-3: a guest L1 (4 MiB) has an 8 KiB shadow, a guest L2 a 16 KiB one; the PDPT's four
// entries point at the four pages of the L2 shadow.
TEST(ShadowPaging, TwoOnThreeOrders) {
  Machine m(PagingMode::k32Bit);
  m.editor.map(m.root, 0x00400000, 0x2000000, kPageSize, PageSize::k4K, rw_flags());
  m.editor.map(m.root, 0x00600000, 0x2001000, kPageSize, PageSize::k4K, rw_flags());
  m.load_cr3();
  EXPECT_EQ(m.shadow.pool().used_pages(), 1u + 4u);  // PDPT page + l2_32
  EXPECT_EQ(m.access(0, 0x00400000, Access::read(true)).result, Result::kOk);
  EXPECT_EQ(m.shadow.pool().used_pages(), 1u + 4u + 2u);  // + l1_32
  EXPECT_EQ(m.access(0, 0x00600000, Access::read(true)).result, Result::kOk);
  EXPECT_EQ(m.shadow.pool().used_pages(), 7u);  // same guest L1: same shadow, second page
  const uint64_t gl1 = table_frame(m, 0x00400000, 1, m.root);
  const auto sl1 = m.shadow.find_shadow(gl1, ShadowType::kL1_32);
  ASSERT_TRUE(sl1);
  const WalkResult a = m.shadow_walk(0x00400000, Access::read(true));
  const WalkResult b = m.shadow_walk(0x00600000, Access::read(true));
  EXPECT_EQ(a.refs[a.ref_count - 1].entry_pa >> kPageShift, *sl1);
  EXPECT_EQ(b.refs[b.ref_count - 1].entry_pa >> kPageShift, *sl1 + 1);
  const auto sl2 = m.shadow.find_shadow(m.root >> kPageShift, ShadowType::kL2_32);
  ASSERT_TRUE(sl2);
  const PagingState s = m.shadow.shadow_state(0);
  for (unsigned i = 0; i < 4; ++i) EXPECT_EQ(s.pdpte(i), ((*sl2 + i) << kPageShift) | 1);
  int l1_shadows = 0;
  m.shadow.for_each_shadow([&](const ShadowInfo& info) {
    if (info.type == ShadowType::kL1_32) ++l1_shadows;
  });
  EXPECT_EQ(l1_shadows, 1);
}

TEST(ShadowPaging, PaeTopLevelIsSnapshotAndPerSlotShadows) {
  Machine m(PagingMode::kPae);
  const Cr3Result c = m.load_cr3();
  EXPECT_FALSE(c.flush_needed);
  int l2 = 0;
  m.shadow.for_each_shadow([&](const ShadowInfo& info) {
    EXPECT_EQ(info.type, ShadowType::kL2Pae);
    EXPECT_TRUE(info.pinned);
    ++l2;
  });
  EXPECT_EQ(l2, 4);  // the editor pre-populates all four page directories
  EXPECT_EQ(c.shadow_cr3 & 0xfff, 0u);
  // The guest PDPT itself is not shadowed and not promoted.
  EXPECT_FALSE(m.shadow.is_page_table(m.root >> kPageShift));
  // check_gwalk compares the PAE top level with the snapshot, not memory.
  m.editor.map(m.root, kUserBase, 0x2000000, kPageSize, PageSize::k4K, rw_flags());
  ShadowWork w;
  const GuestWalk gw = m.shadow.guest_walk(0, kUserBase, Access::read(true), w);
  ASSERT_TRUE(gw.ok());
  EXPECT_EQ(w.guest_entries_read, 2u);  // PDE and PTE; the PDPTE comes from the snapshot
  m.shadow.apply_walk_ad(gw, w);
  EXPECT_TRUE(m.shadow.check_gwalk(gw, w));
  m.memory.write64(m.root + 8 * ((kUserBase >> 30) & 3), 0);  // PDPT write without CR3 load
  EXPECT_TRUE(m.shadow.check_gwalk(gw, w));
  m.memory.write64(gw.levels[1].entry_pa, 0);
  EXPECT_FALSE(m.shadow.check_gwalk(gw, w));
}

TEST(ShadowPaging, CheckGwalkComparesWholeEntries) {
  Machine m(PagingMode::k4Level);
  PageFlags f = rw_flags();
  f.accessed = false;
  f.dirty = false;
  m.editor.map(m.root, kUserBase, 0x2000000, kPageSize, PageSize::k4K, f);
  m.load_cr3();
  ShadowWork w;
  const GuestWalk gw = m.shadow.guest_walk(0, kUserBase, Access::read(true), w);
  ASSERT_TRUE(gw.ok());
  EXPECT_EQ(w.guest_entries_read, 4u);
  EXPECT_EQ(w.p2m_lookups, 4u);  // L3, L2, L1 tables and the target
  EXPECT_FALSE(m.shadow.check_gwalk(gw, w));  // A bits of the walk copy not yet in memory
  EXPECT_EQ(m.shadow.apply_walk_ad(gw, w), 1u);  // the leaf's A (the editor sets A above)
  ShadowWork w2;
  EXPECT_TRUE(m.shadow.check_gwalk(gw, w2));
  EXPECT_EQ(w2.guest_entries_read, 4u);
  // An A/D-only change is a mismatch too.
  const uint64_t l2e = gw.levels[2].entry_pa;
  m.memory.write64(l2e, m.memory.read64(l2e) | (1ULL << 9));
  EXPECT_FALSE(m.shadow.check_gwalk(gw, w2));
  // A cmpxchg whose entry changed meanwhile is not written.
  m.memory.write64(l2e, m.memory.read64(l2e) & ~(1ULL << 9));
  const GuestWalk gw2 = m.shadow.guest_walk(0, kUserBase, Access::write(true), w);
  m.memory.write64(gw2.levels[1].entry_pa, gw2.levels[1].value & ~pte::kAccessed & ~pte::kDirty
                                               & ~pte::kWritable);
  EXPECT_EQ(m.shadow.apply_walk_ad(gw2, w), 0u);
  EXPECT_FALSE(m.shadow.check_gwalk(gw2, w));
}

TEST(ShadowPaging, Cr3LoadRemovesWriteAccessWithFlushAndPins) {
  Machine m(PagingMode::k4Level);
  m.editor.map(m.root, kUserBase, m.root, kPageSize, PageSize::k4K, rw_flags());  // self-map
  const uint64_t second = m.editor.create_address_space();
  m.editor.map(second, kUserBase, m.root, kPageSize, PageSize::k4K, rw_flags());
  m.load_cr3(0, second);
  EXPECT_EQ(m.access(0, kUserBase, Access::write(true)).result, Result::kOk);
  EXPECT_EQ(m.shadow.frame_state(m.root >> kPageShift).writable_count, 1u);
  const Cr3Result c = m.load_cr3(0, m.root);  // root becomes a page table: removal + flush
  EXPECT_TRUE(c.flush_needed);
  EXPECT_EQ(m.shadow.frame_state(m.root >> kPageShift).writable_count, 0u);
  EXPECT_EQ(m.shadow.stats().writeable_bf, 1u);  // no heuristic (fault va 0) matched
  EXPECT_FALSE(m.load_cr3(0, m.root).flush_needed);  // early exit the second time
  int pinned = 0;
  m.shadow.for_each_shadow([&](const ShadowInfo& i) { pinned += i.pinned; });
  EXPECT_EQ(pinned, 2);  // both top-level shadows stay pinned
}

// --- write-access removal heuristics ---------------------------------------------------------

struct HeuristicCase {
  PagingMode mode;
  WriteGuessList list;
  uint64_t map_va;      // where the guest maps the new L1 table (0: direct map at map_base)
  uint64_t map_base;    // direct map base (large pages) when map_va == 0
  WriteHeuristic hit;
  uint32_t probes;
};

class Heuristics : public ::testing::TestWithParam<HeuristicCase> {};

TEST_P(Heuristics, EachLayoutIsFoundByItsHeuristic) {
  const HeuristicCase c = GetParam();
  ShadowParams p;
  p.guess_list = c.list;
  Machine m(c.mode, 4096, 1, p);
  m.editor.map(m.root, kUserBase, 0x2000000, kPageSize, PageSize::k4K, rw_flags());
  const uint64_t t1 = table_frame(m, kUserBase, 1, m.root);
  uint64_t wva;
  if (c.map_va != 0) {
    wva = c.map_va & ~(kPageSize - 1);
    m.editor.map(m.root, wva, t1 << kPageShift, kPageSize, PageSize::k4K, rw_flags(false));
  } else {
    m.editor.map(m.root, c.map_base, 0, test::kGuestFrames << kPageShift, large_page(c.mode),
                 rw_flags(false));
    wva = c.map_base + (t1 << kPageShift);
  }
  m.load_cr3();
  ASSERT_EQ(m.access(0, wva, Access::write(false)).result, Result::kOk);
  ASSERT_EQ(m.shadow.frame_state(t1).writable_count, 1u);
  ASSERT_FALSE(m.shadow.is_page_table(t1));
  const Machine::Fault f = m.access(0, kUserBase, Access::read(true));
  EXPECT_EQ(f.result, Result::kOk);
  EXPECT_EQ(f.work.heuristic_hit, c.hit);
  EXPECT_EQ(f.work.heuristic_probes, c.probes);
  EXPECT_TRUE(f.work.flush_needed);
  EXPECT_EQ(f.work.write_mappings_removed, 1u);
  EXPECT_EQ(m.shadow.stats().writeable, 1u);
  if (c.hit == WriteHeuristic::kBruteForce) {
    EXPECT_EQ(m.shadow.stats().writeable_bf, 1u);
    EXPECT_GE(f.work.bf_shadows_scanned, 1u);
    EXPECT_GT(f.work.bf_entries_scanned, 0u);
  } else {
    EXPECT_EQ(m.shadow.stats().writeable_h[static_cast<int>(c.hit)], 1u);
    EXPECT_EQ(f.work.bf_shadows_scanned, 0u);
  }
  EXPECT_TRUE(m.shadow.is_page_table(t1));
  EXPECT_EQ(m.shadow.frame_state(t1).writable_count, 0u);
  EXPECT_EQ(m.access(0, wva, Access::write(false)).result, Result::kEmulate);
  // A second page under the same L1 table: early exit, nothing probed.
  m.editor.map(m.root, kUserBase + kPageSize, 0x2001000, kPageSize, PageSize::k4K, rw_flags());
  const Machine::Fault g = m.access(0, kUserBase + kPageSize, Access::read(true));
  EXPECT_EQ(g.work.heuristic_probes, 0u);
  EXPECT_EQ(g.work.heuristic_hit, WriteHeuristic::kNone);
  EXPECT_EQ(m.shadow.stats().writeable, 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, Heuristics,
    ::testing::Values(
        // 32-bit w2k3 linear map: 0xC0000000 + (va >> 10).
        HeuristicCase{PagingMode::k32Bit, WriteGuessList::kXen2008, 0xC0000000 + (kUserBase >> 10),
                      0, WriteHeuristic::kH1, 1},
        // 32-bit Linux lowmem (4 MiB pages): the w2k3 guess misses, lowmem hits.
        HeuristicCase{PagingMode::k32Bit, WriteGuessList::kXen2008, 0, 0xC0000000,
                      WriteHeuristic::kH4, 2},
        // PAE w2k3: 0xC0000000 + (va >> 9).
        HeuristicCase{PagingMode::kPae, WriteGuessList::kXen2008, 0xC0000000 + (kUserBase >> 9),
                      0, WriteHeuristic::kH2, 1},
        HeuristicCase{PagingMode::kPae, WriteGuessList::kXen2008, 0, 0xC0000000,
                      WriteHeuristic::kH4, 2},
        // 64-bit w2k3 (2008 address) and Xen HEAD's 0xfffff68000000000.
        HeuristicCase{PagingMode::k4Level, WriteGuessList::kXen2008,
                      0x70000000000ULL + (kUserBase >> 9), 0, WriteHeuristic::kH3, 1},
        HeuristicCase{PagingMode::k4Level, WriteGuessList::kXenHead,
                      0xfffff68000000000ULL + (kUserBase >> 9), 0, WriteHeuristic::kH3, 1},
        // 64-bit Linux of 2008: direct map at 0xffff810000000000 (2 MiB pages -> FL1).
        HeuristicCase{PagingMode::k4Level, WriteGuessList::kXen2008, 0, 0xffff810000000000ULL,
                      WriteHeuristic::kH4, 2},
        // Linux >= 2.6.27 at 0xffff880000000000: only HEAD's list guesses it.
        HeuristicCase{PagingMode::k4Level, WriteGuessList::kXenHead, 0, 0xffff880000000000ULL,
                      WriteHeuristic::kH4, 2},
        HeuristicCase{PagingMode::k4Level, WriteGuessList::kXen2008, 0, 0xffff880000000000ULL,
                      WriteHeuristic::kBruteForce, 3},
        // Linux 6.1 at 0xffff888000000000: neither list guesses it -> brute force.
        HeuristicCase{PagingMode::k4Level, WriteGuessList::kXen2008, 0, 0xffff888000000000ULL,
                      WriteHeuristic::kBruteForce, 3},
        HeuristicCase{PagingMode::k4Level, WriteGuessList::kXenHead, 0, 0xffff888000000000ULL,
                      WriteHeuristic::kBruteForce, 7},
        HeuristicCase{PagingMode::k4Level, WriteGuessList::kNone, 0, 0xffff810000000000ULL,
                      WriteHeuristic::kBruteForce, 0}));

// Heuristic 2: after a brute-force hit in an FL1, the next table frame of the same guest
// superpage is found in that FL1 first.
TEST(ShadowPaging, HeuristicTwoReusesTheLastBruteForceShadow) {
  Machine m(PagingMode::k4Level);
  const uint64_t dm = 0xffff888000000000ULL;
  m.editor.map(m.root, dm, 0, test::kGuestFrames << kPageShift, PageSize::k2M, rw_flags(false));
  m.editor.map(m.root, kUserBase, 0x2000000, kPageSize, PageSize::k4K, rw_flags());
  m.editor.map(m.root, kUserBase + (1ULL << 21), 0x2001000, kPageSize, PageSize::k4K,
               rw_flags());
  const uint64_t t1 = table_frame(m, kUserBase, 1, m.root);
  const uint64_t t1b = table_frame(m, kUserBase + (1ULL << 21), 1, m.root);
  ASSERT_EQ(t1 >> 9, t1b >> 9);  // same 2 MiB direct-map page
  m.load_cr3();
  ASSERT_EQ(m.access(0, dm + (t1 << kPageShift), Access::write(false)).result, Result::kOk);
  ASSERT_EQ(m.access(0, dm + (t1b << kPageShift), Access::write(false)).result, Result::kOk);
  EXPECT_EQ(m.access(0, kUserBase, Access::read(true)).work.heuristic_hit,
            WriteHeuristic::kBruteForce);
  const Machine::Fault f = m.access(0, kUserBase + (1ULL << 21), Access::read(true));
  EXPECT_EQ(f.work.heuristic_hit, WriteHeuristic::kH5);
  EXPECT_EQ(f.work.heuristic_probes, 4u);  // three guesses, then the last shadow
  EXPECT_EQ(m.shadow.stats().writeable_h[5], 1u);
  EXPECT_EQ(m.shadow.stats().writeable_bf, 1u);
  // The two table frames are read-only inside the FL1; their neighbour is not.
  EXPECT_FALSE(m.shadow_walk(dm + (t1 << kPageShift), Access::write(false)).ok());
  EXPECT_FALSE(m.shadow_walk(dm + (t1b << kPageShift), Access::write(false)).ok());
  uint64_t other = t1b + 1;
  while (m.shadow.is_page_table(other)) ++other;
  EXPECT_EQ(m.access(0, dm + (other << kPageShift), Access::write(false)).result, Result::kOk);
  const WalkResult s = m.shadow_walk(dm + (other << kPageShift), Access::write(false));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s.translation.size, PageSize::k4K);  // splintered
}

// --- emulated writes ---------------------------------------------------------------------------

class Faulted : public ::testing::Test {
 protected:
  Faulted() : m(PagingMode::k4Level) {
    for (int i = 0; i < 8; ++i) {
      m.editor.map(m.root, kUserBase + i * kPageSize, 0x2000000 + i * kPageSize, kPageSize,
                   PageSize::k4K, rw_flags());
    }
    m.load_cr3();
    for (int i = 0; i < 8; ++i) m.access(0, kUserBase + i * kPageSize, Access::write(true));
    l1 = table_frame(m, kUserBase, 1, m.root);
  }
  // An emulated guest PTE write (the hypervisor's write to guest memory, then validation).
  ValidateResult emulate(uint64_t gfn, uint64_t index, uint64_t value, ShadowWork& w) {
    const uint64_t pa = (gfn << kPageShift) + 8 * index;
    const uint64_t old = m.memory.read64(pa);
    m.memory.write64(pa, value);
    return m.shadow.validate_guest_write(0, gfn, 8 * index, 8, old, w);
  }
  uint64_t sl1e(uint64_t index) {
    return m.memory.read64((*m.shadow.find_shadow(l1, ShadowType::kL1_64) << kPageShift) +
                           8 * index);
  }
  Machine m;
  uint64_t l1 = 0;
};

TEST_F(Faulted, ValidationUpdatesTheShadowAndFlushesLostRights) {
  const uint64_t base_index = (kUserBase >> 12) & 511;
  ShadowWork w;
  // Read-only now: the shadow loses R/W, a flush is needed.
  const uint64_t ro = 0x2000000 | pte::kPresent | pte::kUser | pte::kAccessed | pte::kDirty;
  ValidateResult r = emulate(l1, base_index, ro, w);
  EXPECT_FALSE(r.skipped);
  EXPECT_TRUE(r.flush_needed);
  EXPECT_EQ(sl1e(base_index), ro);
  EXPECT_EQ(m.shadow.stats().validate_gl1e_calls, 1u);
  EXPECT_FALSE(m.shadow_walk(kUserBase, Access::write(true)).ok());
  // Present again with more rights: no flush needed.
  r = emulate(l1, base_index, ro | pte::kWritable, w);
  EXPECT_FALSE(r.flush_needed);
  EXPECT_TRUE(m.shadow_walk(kUserBase, Access::write(true)).ok());
  // Not present: magic entry.
  r = emulate(l1, base_index, 0, w);
  EXPECT_EQ(sl1e(base_index), sentry::kGuestNotPresent);
  EXPECT_TRUE(r.flush_needed);
}

TEST_F(Faulted, SkipVerifyLeavesNotPresentWritesAlone) {
  const uint64_t idx = ((kUserBase >> 12) & 511) + 100;  // never present
  ShadowWork w;
  const uint64_t before = sl1e(idx);
  ValidateResult r = emulate(l1, idx, 0x2000000, w);  // P clear before and after
  EXPECT_TRUE(r.skipped);
  EXPECT_EQ(m.shadow.stats().validate_skipped, 1u);
  EXPECT_EQ(m.shadow.stats().validate_gl1e_calls, 0u);
  EXPECT_EQ(sl1e(idx), before);
  r = emulate(l1, idx, 0x2000000 | pte::kPresent | pte::kAccessed, w);  // becomes present
  EXPECT_FALSE(r.skipped);
  EXPECT_EQ(sl1e(idx), 0x2000000 | pte::kPresent | pte::kAccessed);
  // A 4-byte write to the high half is not PTE-aligned for a 64-bit shadow: validated.
  const uint64_t pa = (l1 << kPageShift) + 8 * (idx + 1) + 4;
  m.memory.write32(pa, 0);
  r = m.shadow.validate_guest_write(0, l1, 8 * (idx + 1) + 4, 4, 0, w);
  EXPECT_FALSE(r.skipped);
  // With SKIP_VERIFY off nothing is skipped.
  ShadowParams p;
  p.skip_verify = false;
  Machine m2(PagingMode::k4Level, 4096, 1, p);
  m2.editor.map(m2.root, kUserBase, 0x2000000, kPageSize, PageSize::k4K, rw_flags());
  m2.load_cr3();
  m2.access(0, kUserBase, Access::read(true));
  const uint64_t l1b = table_frame(m2, kUserBase, 1, m2.root);
  m2.memory.write64((l1b << kPageShift) + 8 * idx, 0x5000);
  EXPECT_FALSE(m2.shadow.validate_guest_write(0, l1b, 8 * idx, 8, 0, w).skipped);
}

TEST_F(Faulted, EarlyUnshadowAfterTwoZeroWrites) {
  const uint64_t idx = (kUserBase >> 12) & 511;
  ShadowWork w;
  EXPECT_FALSE(emulate(l1, idx, 0, w).early_unshadowed);
  m.shadow.reset_early_unshadow(0);  // a fixed fault in between resets the detector
  EXPECT_FALSE(emulate(l1, idx + 1, 0, w).early_unshadowed);
  const uint64_t gen = m.shadow.shadow_freed_generation();
  const ValidateResult r = emulate(l1, idx + 2, 0, w);  // second zero write in a row
  EXPECT_TRUE(r.early_unshadowed);
  EXPECT_TRUE(r.flush_needed);
  EXPECT_EQ(m.shadow.stats().early_unshadow, 1u);
  EXPECT_FALSE(m.shadow.is_page_table(l1));
  EXPECT_FALSE(m.shadow.find_shadow(l1, ShadowType::kL1_64));
  EXPECT_GT(m.shadow.shadow_freed_generation(), gen);
}

TEST_F(Faulted, EarlyUnshadowNeedsZeroWritesInARow) {
  const uint64_t idx = (kUserBase >> 12) & 511;
  ShadowWork w;
  EXPECT_FALSE(emulate(l1, idx, 0, w).early_unshadowed);
  EXPECT_FALSE(emulate(l1, idx + 1, 0x3000 | pte::kPresent, w).early_unshadowed);  // resets
  EXPECT_FALSE(emulate(l1, idx + 2, 0, w).early_unshadowed);
  EXPECT_TRUE(m.shadow.is_page_table(l1));
  ShadowParams p;
  p.early_unshadow = false;
  Machine m2(PagingMode::k4Level, 4096, 1, p);
  m2.editor.map(m2.root, kUserBase, 0x2000000, kPageSize, PageSize::k4K, rw_flags());
  m2.load_cr3();
  m2.access(0, kUserBase, Access::read(true));
  const uint64_t l1b = table_frame(m2, kUserBase, 1, m2.root);
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(m2.shadow.validate_guest_write(0, l1b, 8 * i, 8, 0, w).early_unshadowed);
  }
  EXPECT_TRUE(m2.shadow.is_page_table(l1b));
}

TEST_F(Faulted, StatisticsAreRegisteredUnderXenNames) {
  StatsRegistry reg;
  m.shadow.register_stats(StatsGroup(reg, "hv.shadow"));
  for (const char* name :
       {"shadow_hash_lookups", "shadow_hash_lookup_head", "shadow_hash_lookup_miss",
        "shadow_hash_inserts", "shadow_hash_deletes", "shadow_writeable_h_1",
        "shadow_writeable_h_5", "shadow_writeable_bf", "shadow_prealloc_1", "shadow_prealloc_2",
        "shadow_early_unshadow", "shadow_validate_gl1e_calls", "pool_pages_in_use",
        "pool_pages_peak", "promotions", "shadow_unshadow"}) {
    EXPECT_NE(reg.find(std::string("hv.shadow.") + name), nullptr) << name;
  }
  const auto* lookups = reg.find("hv.shadow.shadow_hash_lookups");
  ASSERT_NE(lookups, nullptr);
  EXPECT_EQ(lookups->counter, &m.shadow.hash().lookups);  // the live counter, not a copy
  EXPECT_GT(*lookups->counter, 0u);
  EXPECT_EQ(reg.find("hv.shadow.promotions")->counter[0], 4u);  // L4, L3, L2, L1 tables
  EXPECT_DOUBLE_EQ(reg.find("hv.shadow.pool_pages_in_use")->formula(), 4.0);
}

TEST_F(Faulted, RemoveShadowsAndWritableMappingsComeBackOnlyByFaults) {
  // A writable guest mapping of the L1 table frame, faulted in before promotion elsewhere.
  const uint64_t map_va = kUserBase + (1ULL << 30);
  m.editor.map(m.root, map_va, l1 << kPageShift, kPageSize, PageSize::k4K, rw_flags());
  EXPECT_EQ(m.access(0, map_va, Access::write(true)).result, Result::kEmulate);  // RO: table
  ShadowWork w;
  const RemoveShadowsResult r = m.shadow.remove_shadows(l1, false, w);
  EXPECT_TRUE(r.removed_all);
  EXPECT_TRUE(r.flush_needed);
  EXPECT_FALSE(m.shadow.is_page_table(l1));
  bool any = false;
  m.shadow.for_each_shadow_entry_of(l1, [&](const ShadowEntryView&) { any = true; });
  EXPECT_FALSE(any);
  EXPECT_EQ(m.shadow.stats().unshadow, 1u);
  EXPECT_FALSE(m.shadow_walk(kUserBase, Access::read(true)).ok());  // unhooked from its L2
  // The read-only mapping of the frame stays read-only until a write fault re-propagates it.
  EXPECT_TRUE(m.shadow_walk(map_va, Access::read(true)).ok());
  EXPECT_FALSE(m.shadow_walk(map_va, Access::write(true)).ok());
  EXPECT_EQ(m.access(0, map_va, Access::write(true)).result, Result::kOk);
  EXPECT_TRUE(m.shadow_walk(map_va, Access::write(true)).ok());
  // Faulting the user page back in promotes the frame again, with write-access removal.
  const Machine::Fault f = m.access(0, kUserBase, Access::read(true));
  EXPECT_EQ(f.result, Result::kOk);
  EXPECT_TRUE(f.work.flush_needed);
  EXPECT_TRUE(m.shadow.is_page_table(l1));
  EXPECT_FALSE(m.shadow_walk(map_va, Access::write(true)).ok());
}

TEST_F(Faulted, InvlpgReportsWhatTheHardwareMustDo) {
  ShadowWork w;
  m.shadow.vtlb(0).insert(kUserBase, 0x2000, pfec::kUser);
  InvlpgResult r = m.shadow.invlpg(0, kUserBase, w);
  EXPECT_TRUE(r.hardware_invlpg);
  EXPECT_FALSE(r.local_flush);
  EXPECT_FALSE(m.shadow.vtlb(0).lookup(kUserBase, 0));  // vTLB flushed
  r = m.shadow.invlpg(0, kUserBase + (1ULL << 32), w);  // nothing shadowed there
  EXPECT_FALSE(r.hardware_invlpg);
  EXPECT_FALSE(r.local_flush);
  m.editor.map(m.root, 0x40000000, 0x4000000, 1ULL << 21, PageSize::k2M, rw_flags());
  m.access(0, 0x40000000, Access::read(true));
  r = m.shadow.invlpg(0, 0x40001000, w);
  EXPECT_FALSE(r.hardware_invlpg);
  EXPECT_TRUE(r.local_flush);  // splintered superpage
}

TEST_F(Faulted, Cr3LoadFlushesTheVtlb) {
  m.shadow.vtlb(0).insert(kUserBase, 0x2000, pfec::kUser);
  m.load_cr3();
  EXPECT_FALSE(m.shadow.vtlb(0).lookup(kUserBase, 0));
}

// --- prefetch ----------------------------------------------------------------------------------

TEST(ShadowPaging, PrefetchRules) {
  for (PagingMode mode : {PagingMode::k32Bit, PagingMode::k4Level}) {
    SCOPED_TRACE(to_string(mode));
    Machine m(mode);
    const uint64_t entries = mode == PagingMode::k32Bit ? 1024 : 512;
    const uint64_t base = 0x40000000;  // start of a guest L1's range
    for (uint64_t i = 0; i < entries; ++i) {
      PageFlags f = rw_flags();
      if (i == 20) f.accessed = false;            // needs an A fault: stop
      if (i == 60) f.dirty = false;               // writable without D: stop
      if (i == 61) f.dirty = false, f.writable = false;  // read-only without D: fine
      m.editor.map(m.root, base + i * kPageSize, (0x2000 + i) << kPageShift, kPageSize,
                   PageSize::k4K, f);
    }
    m.load_cr3();
    auto faulted = [&](uint64_t i) {
      const Machine::Fault f = m.access(0, base + i * kPageSize, Access::read(true));
      EXPECT_EQ(f.result, Result::kOk);
      EXPECT_EQ(f.faults, 1);
      return f.work.prefetched;
    };
    EXPECT_EQ(faulted(0), 19u);    // 1..19, stops at the A=0 entry
    EXPECT_EQ(faulted(30), 29u);   // 31..59
    EXPECT_EQ(faulted(25), 4u);    // 26..29: stops at the existing shadow of 30
    EXPECT_EQ(faulted(100), 31u);  // prefetch distance 32, counting the faulting entry
    EXPECT_EQ(faulted(500), 11u);  // 501..511: not across the shadow page
    if (mode == PagingMode::k32Bit) {
      EXPECT_EQ(faulted(1000), 23u);  // second shadow page
    }
    // Prefetch does not stop at a clean (D=0) entry: it maps it read-only.
    EXPECT_EQ(faulted(60), 31u);
    EXPECT_TRUE(m.shadow_walk(base + 61 * kPageSize, Access::read(true)).ok());
  }
  ShadowParams p;
  p.prefetch = false;
  Machine m(PagingMode::kPae, 4096, 1, p);
  m.editor.map(m.root, 0x40000000, 0x2000000, 8 * kPageSize, PageSize::k4K, rw_flags());
  m.load_cr3();
  EXPECT_EQ(m.access(0, 0x40000000, Access::read(true)).work.prefetched, 0u);
}

TEST(ShadowPaging, FastFaultPathOffLeavesNotPresentEntriesEmpty) {
  for (bool fast : {true, false}) {
    ShadowParams p;
    p.fast_fault_path = fast;
    Machine m(PagingMode::kPae, 4096, 1, p);
    m.editor.map(m.root, kUserBase, 0x2000000, kPageSize, PageSize::k4K, rw_flags());
    m.load_cr3();
    ASSERT_EQ(m.access(0, kUserBase, Access::read(true)).work.prefetched, 31u);
    const WalkResult s = m.shadow_walk(kUserBase + kPageSize, Access::read(true));
    ASSERT_FALSE(s.ok());
    // Magic entry: #PF(P|RSVD); without the fast path: a plain not-present fault.
    EXPECT_EQ(s.error_code, fast ? (pfec::kPresent | pfec::kReserved | pfec::kUser)
                                 : pfec::kUser);
  }
  // 4-level shadows with MAXPHYADDR 52 have no reserved address bits: no magic entries.
  GuestMemory mem((test::kGuestFrames + 4096) << kPageShift);
  ShadowPaging sh(mem, test::kGuestFrames, test::kGuestFrames, 4096, PagingMode::k4Level, 1);
  CpuFeatures f52 = test::guest_features();
  f52.maxphyaddr = 52;
  PagingState g(PagingMode::k4Level, test::guest_controls(), f52);
  ASSERT_TRUE(g.load_cr3(0x100000, mem));
  ShadowWork w;
  sh.update_cr3(0, g, w);
  EXPECT_FALSE(sh.magic_enabled());
}

// Two VCPUs on one address space share its shadows; each has its own 32-byte PDPT.
TEST(ShadowPaging, VcpusShareShadowsWithPerVcpuPdpts) {
  Machine m(PagingMode::kPae, 4096, 2);
  m.editor.map(m.root, kUserBase, 0x2000000, kPageSize, PageSize::k4K, rw_flags());
  const Cr3Result a = m.load_cr3(0);
  const Cr3Result b = m.load_cr3(1);
  EXPECT_EQ(b.shadow_cr3, a.shadow_cr3 + 32);
  EXPECT_EQ(m.access(0, kUserBase, Access::read(true)).faults, 1);
  EXPECT_TRUE(m.shadow_walk(kUserBase, Access::read(true), 1).ok());  // VCPU 1: no fault
  ShadowWork w;
  EXPECT_TRUE(m.shadow.invlpg(1, kUserBase, w).hardware_invlpg);
  EXPECT_FALSE(m.shadow.invlpg(1, kUserBase + (1ULL << 21), w).hardware_invlpg);
  // VCPU 0 moves to another address space; VCPU 1 keeps the old one's shadows alive.
  const uint64_t other = m.editor.create_address_space();
  m.load_cr3(0, other);
  ShadowWork p;
  // 4086 pages are free; 4087 needs the L1 shadow under the in-use tops: stage 2.
  m.shadow.prealloc(ShadowType::kL1Pae, 4087, p);
  EXPECT_TRUE(p.flush_all_pcpus);
  EXPECT_TRUE(m.shadow.find_shadow(table_frame(m, kUserBase, 2, m.root), ShadowType::kL2Pae));
  EXPECT_EQ(m.access(1, kUserBase, Access::read(true)).result, Result::kOk);
  try {
    m.shadow.prealloc(ShadowType::kL1Pae, 5000, p);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("pool of 4096 pages"), std::string::npos) << e.what();
  }
}

// --- pool reclaim ------------------------------------------------------------------------------

TEST(ShadowPaging, ReclaimStageOneUnpinsUnusedTopLevels) {
  const uint64_t pool = ShadowPaging::min_pool_pages(PagingMode::k4Level, 1);
  Machine m(PagingMode::k4Level, pool);
  std::vector<uint64_t> spaces;
  bool stage1 = false;
  for (int s = 0; s < 40 && !stage1; ++s) {
    const uint64_t root = m.editor.create_address_space();
    for (int i = 0; i < 4; ++i) {
      m.editor.map(root, kUserBase + (uint64_t(i) << 30), 0x2000000, kPageSize, PageSize::k4K,
                   rw_flags());
    }
    m.load_cr3(0, root);
    for (int i = 0; i < 4; ++i) {
      const Machine::Fault f = m.access(0, kUserBase + (uint64_t(i) << 30), Access::read(true));
      EXPECT_EQ(f.result, Result::kOk);
      if (f.work.reclaimed) {
        stage1 = true;
        EXPECT_FALSE(f.work.flush_all_pcpus);
        EXPECT_GT(f.work.unpins, 0u);
        EXPECT_GT(f.work.shadows_destroyed, 0u);
      }
    }
  }
  EXPECT_TRUE(stage1);
  EXPECT_EQ(m.shadow.stats().prealloc_1, 1u);
  EXPECT_EQ(m.shadow.stats().prealloc_2, 0u);
  EXPECT_LT(m.shadow.pool().used_pages(), pool);  // the reclaim left room
}

TEST(ShadowPaging, ReclaimStageTwoUnhooksTheCurrentTables) {
  const uint64_t pool = ShadowPaging::min_pool_pages(PagingMode::kPae, 1);
  Machine m(PagingMode::kPae, pool);
  // 300 pages in 300 different 2 MiB regions: one L1 shadow each, more than the pool.
  for (uint64_t i = 0; i < 300; ++i) {
    m.editor.map(m.root, i << 21, 0x2000000, kPageSize, PageSize::k4K, rw_flags());
  }
  m.load_cr3();
  int stage2 = 0;
  for (uint64_t i = 0; i < 300; ++i) {
    const Machine::Fault f = m.access(0, i << 21, Access::read(true));
    ASSERT_EQ(f.result, Result::kOk);
    if (f.work.flush_all_pcpus) ++stage2;
  }
  EXPECT_GT(stage2, 0);
  EXPECT_EQ(m.shadow.stats().prealloc_2, static_cast<uint64_t>(stage2));
  EXPECT_TRUE(m.shadow_walk(299ULL << 21, Access::read(true)).ok());
  // The top-level shadows survived; earlier regions fault in again.
  EXPECT_EQ(m.access(0, 0, Access::read(true)).result, Result::kOk);
}

}  // namespace
}  // namespace shadowsim
