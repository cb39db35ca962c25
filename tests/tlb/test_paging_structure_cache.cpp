// Paging-structure caches with the real walker and page-table editor: page-table references per
// walk for known layouts in every mode, what is (not) cached, rights carried by cached entries,
// invalidation semantics, and a randomised check that a PSC-started walk always agrees with a
// full walk when the OS invalidates as the SDM requires.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "common/error.h"
#include "common/rng.h"
#include "common/stats.h"
#include "paging/frame_allocator.h"
#include "paging/guest_memory.h"
#include "paging/page_table_editor.h"
#include "paging/paging_state.h"
#include "paging/walker.h"
#include "param_visitors.h"
#include "tlb/paging_structure_cache.h"
#include "tlb/tlb_hierarchy.h"

namespace shadowsim {
namespace {

PageFlags user_rw() {
  PageFlags f;
  f.user = f.writable = true;
  return f;
}

class Psc : public ::testing::Test {
 protected:
  void build(PagingMode mode, PscParams params = {}) {
    mode_ = mode;
    mem = std::make_unique<GuestMemory>(256ULL << 20);
    frames = std::make_unique<FrameAllocator>(16, 8192);
    store = std::make_unique<DirectPageTableStore>(*mem);
    editor = std::make_unique<PageTableEditor>(mode, controls, CpuFeatures{}, *frames, *store);
    root = editor->create_address_space();
    state = std::make_unique<PagingState>(mode, controls);
    psc = std::make_unique<PagingStructureCaches>(params, 1);
  }
  void map(uint64_t va, PageSize size = PageSize::k4K, PageFlags flags = user_rw()) {
    // Data frames are never touched: any suitably aligned physical address will do.
    const uint64_t pa = size == PageSize::k1G ? (4ULL << 30) : 0x8000000 + (next_frame_++ << 22);
    editor->map(root, va, pa, page_bytes(size), size, flags);
  }
  void load() { ASSERT_TRUE(state->load_cr3(root, *mem)); }

  // One TLB-miss walk as the timed walker does it: PSC lookup, walk_from, A/D updates, fill.
  // Checks the result against a full walk from the top; returns the references made.
  int refs(uint64_t va, Access access = Access::read(true), TlbContext ctx = {}) {
    const WalkResult full = walk(*mem, *state, va, access);
    const WalkStart start = psc->lookup(va, ctx, *state);
    const WalkResult w = walk_from(*mem, *state, va, access, start);
    EXPECT_EQ(w.outcome, full.outcome) << std::hex << va;
    EXPECT_EQ(w.error_code, full.error_code) << std::hex << va;
    if (w.ok() && full.ok()) {
      EXPECT_EQ(w.translation.pa, full.translation.pa) << std::hex << va;
      EXPECT_EQ(w.translation.rights.writable, full.translation.rights.writable);
      EXPECT_EQ(w.translation.rights.user, full.translation.rights.user);
      EXPECT_EQ(w.translation.rights.execute_disable, full.translation.rights.execute_disable);
    }
    if (w.ok()) apply_updates(*mem, w);
    psc->fill(va, ctx, *state, start, w);
    return w.ref_count;
  }

  PagingMode mode_ = PagingMode::k4Level;
  PagingControls controls;
  std::unique_ptr<GuestMemory> mem;
  std::unique_ptr<FrameAllocator> frames;
  std::unique_ptr<DirectPageTableStore> store;
  std::unique_ptr<PageTableEditor> editor;
  std::unique_ptr<PagingState> state;
  std::unique_ptr<PagingStructureCaches> psc;
  uint64_t root = 0;

 private:
  uint64_t next_frame_ = 0;
};

// Base address and its neighbours at each level of the tree (IA-32e spans).
constexpr uint64_t kBase = 0x40000000;
constexpr uint64_t k2M = 1ULL << 21;
constexpr uint64_t k1G = 1ULL << 30;
constexpr uint64_t k512G = 1ULL << 39;
constexpr uint64_t k256T = 1ULL << 48;

TEST_F(Psc, FourLevelWalksSkipTheLevelsTheCachesHold) {
  build(PagingMode::k4Level);
  for (uint64_t va : {kBase, kBase + kPageSize, kBase + k2M, kBase + k1G, kBase + k512G}) map(va);
  load();
  EXPECT_EQ(refs(kBase), 4);              // cold
  EXPECT_EQ(refs(kBase + kPageSize), 1);  // same page table: PDE cache
  EXPECT_EQ(refs(kBase + k2M), 2);        // another page table, same directory: PDPTE cache
  EXPECT_EQ(refs(kBase + k1G), 3);        // another directory, same PDPT: PML4E cache
  EXPECT_EQ(refs(kBase + k512G), 4);      // another PDPT: complete miss
  EXPECT_EQ(refs(kBase + k512G), 1);
  EXPECT_EQ(psc->hits(2), 2u);
  EXPECT_EQ(psc->hits(3), 1u);
  EXPECT_EQ(psc->hits(4), 1u);
  EXPECT_EQ(psc->misses(), 2u);
  EXPECT_EQ(psc->lookups(), 6u);
  EXPECT_FALSE(psc->has_cache(5) && psc->valid_count(5) != 0) << "no PML5E entries in 4-level";
  EXPECT_EQ(psc->latency(PagingMode::k4Level), 1u);
}

TEST_F(Psc, APageFaultInvalidatesOnlyTheEntriesItsAddressWouldUse) {
  build(PagingMode::k4Level);
  for (uint64_t va : {kBase, kBase + k2M}) map(va);
  load();
  refs(kBase);
  refs(kBase + k2M);
  psc->page_fault_invalidate(kBase + kPageSize, TlbContext{}, PagingMode::k4Level);
  // kBase's PDE, PDPTE and PML4E entries are gone, so the next walk is cold...
  EXPECT_EQ(refs(kBase), 4);
  // ...while another PCID's entries for the same address would have stayed:
  refs(kBase, Access::read(true), TlbContext{0, 1});
  psc->page_fault_invalidate(kBase, TlbContext{0, 2}, PagingMode::k4Level);
  EXPECT_EQ(refs(kBase, Access::read(true), TlbContext{0, 1}), 1);
  EXPECT_EQ(psc->lookups(), psc->misses() + psc->hits(2) + psc->hits(3) + psc->hits(4));
}

TEST_F(Psc, FiveLevelWalksUseThePml5eCacheToo) {
  build(PagingMode::k5Level);
  for (uint64_t va : {kBase, kBase + kPageSize, kBase + k2M, kBase + k1G, kBase + k512G,
                      kBase + k256T}) {
    map(va);
  }
  load();
  EXPECT_EQ(refs(kBase), 5);
  EXPECT_EQ(refs(kBase + kPageSize), 1);
  EXPECT_EQ(refs(kBase + k2M), 2);
  EXPECT_EQ(refs(kBase + k1G), 3);
  EXPECT_EQ(refs(kBase + k512G), 4);  // another PDPT under the same PML4: PML5E cache
  EXPECT_EQ(refs(kBase + k256T), 5);  // another PML4 table
  EXPECT_EQ(psc->hits(5), 1u);
  EXPECT_EQ(psc->valid_count(5), 2u);
}

TEST_F(Psc, PaeHasOnlyThePdeCacheBecausePdptesAreRegisters) {
  build(PagingMode::kPae);
  for (uint64_t va : {kBase, kBase + kPageSize, kBase + k2M, kBase + k1G}) map(va);
  load();
  EXPECT_EQ(refs(kBase), 2);              // PDE, PTE: the PDPTE is a register
  EXPECT_EQ(refs(kBase + kPageSize), 1);  // PDE cache
  EXPECT_EQ(refs(kBase + k2M), 2);        // another page table: nothing above the PDE to skip
  EXPECT_EQ(refs(kBase + k1G), 2);        // another PDPTE (register) and directory
  EXPECT_EQ(psc->hits(2), 1u);
  EXPECT_EQ(psc->fills(2), 3u);
  EXPECT_EQ(psc->valid_count(3) + psc->valid_count(4), 0u);
  EXPECT_EQ(psc->latency(PagingMode::kPae), 1u);
}

TEST_F(Psc, ThirtyTwoBitPagingHasOnlyThePdeCache) {
  build(PagingMode::k32Bit);
  const uint64_t k4M = 4ULL << 20;
  for (uint64_t va : {kBase, kBase + kPageSize, kBase + k4M}) map(va);
  load();
  EXPECT_EQ(refs(kBase), 2);
  EXPECT_EQ(refs(kBase + kPageSize), 1);
  EXPECT_EQ(refs(kBase + k4M), 2);
  EXPECT_EQ(refs(kBase + k4M + 0x10), 1);
  EXPECT_EQ(psc->valid_count(2), 2u);
}

TEST_F(Psc, LargePageLeavesAreNeverCached) {
  build(PagingMode::k4Level);
  map(kBase, PageSize::k2M);
  map(2 * k1G, PageSize::k1G);
  load();
  EXPECT_EQ(refs(kBase), 3);             // PML4E, PDPTE, PDE (a leaf)
  EXPECT_EQ(refs(kBase + 0x1000), 1);    // PDPTE cache: only the leaf PDE is read again
  EXPECT_EQ(psc->valid_count(2), 0u);
  EXPECT_EQ(refs(2 * k1G), 1);           // PML4E cache hit, then the 1G leaf PDPTE
  EXPECT_EQ(psc->valid_count(3), 1u);    // the PDPTE above kBase's directory only
  EXPECT_EQ(refs(2 * k1G + k2M), 1);     // the leaf again: it is not in the PDPTE cache
}

TEST_F(Psc, AFaultingWalkCachesTheAccessedEntriesAboveTheFault) {
  build(PagingMode::k4Level);
  map(kBase);
  load();
  EXPECT_EQ(refs(kBase), 4);  // sets A on all four entries
  psc->flush_all();
  // Not mapped: same directory, PDE not present. PML4E and PDPTE had A set: cached.
  EXPECT_EQ(refs(kBase + k2M, Access::read(true)), 3);
  EXPECT_EQ(psc->fills(4), 2u);
  EXPECT_EQ(psc->fills(3), 2u);
  EXPECT_EQ(psc->fills(2), 1u) << "the not-present PDE is not cached";
  EXPECT_EQ(refs(kBase + 2 * k2M), 1) << "the PDPTE cache skips to the directory";

  // Clear A in the PDPTE: a faulting walk may cache the PML4E but nothing from the PDPTE down.
  psc->flush_all();
  const WalkResult w = walk(*mem, *state, kBase, Access::read(true));
  const PageTableRef pdpte = w.refs[1];
  mem->write64(pdpte.entry_pa, pdpte.value & ~pte::kAccessed);
  const uint64_t pml4e_fills = psc->fills(4);
  const uint64_t pdpte_fills = psc->fills(3);
  EXPECT_EQ(refs(kBase + 3 * k2M), 3);
  EXPECT_EQ(psc->fills(4), pml4e_fills + 1);
  EXPECT_EQ(psc->fills(3), pdpte_fills);
  EXPECT_EQ(refs(kBase + 4 * k2M), 2) << "PML4E cache hit only";
}

TEST_F(Psc, CachedEntriesCarryTheRightsAccumulatedAboveThem) {
  build(PagingMode::k4Level);
  map(kBase);
  map(kBase + kPageSize);
  load();
  // Make the PDPTE read-only and supervisor-only (no flush needed: nothing is cached yet).
  const WalkResult w = walk(*mem, *state, kBase, Access::read(false));
  const PageTableRef pdpte = w.refs[1];
  mem->write64(pdpte.entry_pa, pdpte.value & ~(pte::kWritable | pte::kUser));
  EXPECT_EQ(refs(kBase, Access::read(false)), 4);
  // The PDE-cache entry must now refuse what the PDPTE refuses, although the PDE and PTE allow.
  const WalkStart start = psc->lookup(kBase + kPageSize, {}, *state);
  EXPECT_EQ(start.level, 1);
  EXPECT_FALSE(start.rights.writable);
  EXPECT_FALSE(start.rights.user);
  EXPECT_EQ(refs(kBase + kPageSize, Access::write(true)), 1);  // refs() compares error codes
  const WalkResult f = walk_from(*mem, *state, kBase + kPageSize, Access::write(true), start);
  EXPECT_EQ(f.error_code, pfec::kPresent | pfec::kWrite | pfec::kUser);

  // XD in the PML4E (with NXE) reaches every cache below it.
  psc->flush_all();
  const PageTableRef pml4e = w.refs[0];
  mem->write64(pml4e.entry_pa, pml4e.value | pte::kExecuteDisable);
  EXPECT_EQ(refs(kBase, Access::read(false)), 4);
  const WalkStart xd = psc->lookup(kBase + kPageSize, {}, *state);
  EXPECT_EQ(xd.level, 1);
  EXPECT_TRUE(xd.rights.execute_disable);
  EXPECT_EQ(refs(kBase + kPageSize, Access::fetch(false)), 1);  // faults like the full walk
  EXPECT_EQ(walk_from(*mem, *state, kBase + kPageSize, Access::fetch(false), xd).error_code,
            pfec::kPresent | pfec::kFetch);
}

TEST_F(Psc, StaleEntriesAreUsedUntilInvalidated) {
  build(PagingMode::k4Level);
  map(kBase);
  map(kBase + k1G);  // a second page table to point the PDE at
  load();
  EXPECT_EQ(refs(kBase), 4);
  const WalkResult a = walk(*mem, *state, kBase, Access::read(true));
  const WalkResult b = walk(*mem, *state, kBase + k1G, Access::read(true));
  mem->write64(a.refs[2].entry_pa, b.refs[2].value);  // PDE now points at the other table
  const WalkStart stale = psc->lookup(kBase, {}, *state);
  EXPECT_EQ(stale.level, 1);
  EXPECT_EQ(stale.table_pa, a.refs[3].entry_pa & ~0xfffULL) << "the old page table";
  psc->invlpg(0x12345000, {});  // any address: INVLPG empties the PCID's PSC entries
  const WalkStart fresh = psc->lookup(kBase, {}, *state);
  EXPECT_EQ(fresh.level, 4);
  EXPECT_EQ(walk_from(*mem, *state, kBase, Access::read(true), fresh).translation.pa,
            b.translation.pa);
}

TEST_F(Psc, InvalidationByPcidAndVpid) {
  build(PagingMode::k4Level);
  map(kBase);
  load();
  const TlbContext a{1, 1};
  const TlbContext b{1, 2};
  const TlbContext c{2, 1};
  const auto cached = [&](TlbContext ctx) { return psc->lookup(kBase, ctx, *state).level == 1; };
  const auto fill_all = [&] {
    for (TlbContext ctx : {a, b, c}) refs(kBase, Access::read(true), ctx);
  };
  fill_all();
  EXPECT_TRUE(cached(a) && cached(b) && cached(c));
  EXPECT_FALSE(cached({3, 1})) << "never global: another VPID misses";
  psc->flush_non_global(a);  // MOV to CR3
  EXPECT_FALSE(cached(a));
  EXPECT_TRUE(cached(b) && cached(c));
  fill_all();
  psc->invpcid(0, kBase + k512G, b);  // type 0: the whole PCID, not only that address
  EXPECT_FALSE(cached(b));
  EXPECT_TRUE(cached(a) && cached(c));
  fill_all();
  psc->invpcid(1, 0, a);
  EXPECT_FALSE(cached(a));
  EXPECT_TRUE(cached(b));
  fill_all();
  psc->invpcid(3, 0, a);  // types 2 and 3: every PCID of the VPID
  EXPECT_FALSE(cached(a) || cached(b));
  EXPECT_TRUE(cached(c));
  fill_all();
  psc->invpcid(2, 0, c);
  EXPECT_FALSE(cached(c));
  EXPECT_TRUE(cached(a));
  EXPECT_THROW(psc->invpcid(7, 0, a), Error);
  psc->flush_vpid(1);
  EXPECT_FALSE(cached(a) || cached(b));
  fill_all();
  psc->flush_all();
  EXPECT_FALSE(cached(a) || cached(b) || cached(c));
  EXPECT_THROW(psc->lookup(kBase, {0, 0x1000}, *state), Error);
}

TEST_F(Psc, EntriesOfOneModeAreNotUsedInAnother) {
  build(PagingMode::k4Level);
  map(kBase);
  load();
  refs(kBase);
  PagingState five(PagingMode::k5Level);
  ASSERT_TRUE(five.load_cr3(root, *mem));
  EXPECT_EQ(psc->lookup(kBase, {}, five).level, 5);
}

TEST_F(Psc, FillChecksTheWalkMatchesItsStart) {
  build(PagingMode::k4Level);
  map(kBase);
  load();
  const WalkResult full = walk(*mem, *state, kBase, Access::read(true));
  EXPECT_NO_THROW(psc->fill(kBase, {}, *state, full));
  const WalkStart start = psc->lookup(kBase, {}, *state);
  ASSERT_EQ(start.level, 1);
  const WalkResult partial = walk_from(*mem, *state, kBase, Access::read(true), start);
  EXPECT_THROW(psc->fill(kBase, {}, *state, partial), Error);  // the top-start overload
  EXPECT_NO_THROW(psc->fill(kBase, {}, *state, start, partial));
}

TEST_F(Psc, WithoutTagsEveryContextSharesEntries) {
  build(PagingMode::k4Level, PscParams::core2());
  map(kBase);
  load();
  refs(kBase, Access::read(true), {5, 9});
  EXPECT_EQ(psc->lookup(kBase + kPageSize, {0, 0}, *state).level, 1);
  EXPECT_FALSE(psc->has_cache(5));
}

TEST_F(Psc, DisabledCachesAreSkippedAndSmallCachesEvict) {
  PscParams p;
  p.pde.entries = 0;
  p.pdpte = TlbArrayParams{1, 1, Replacement::kLru, 3};
  build(PagingMode::k4Level, p);
  for (uint64_t va : {kBase, kBase + kPageSize, kBase + k1G}) map(va);
  load();
  EXPECT_EQ(psc->latency(PagingMode::k4Level), 3u);
  EXPECT_EQ(refs(kBase), 4);
  EXPECT_EQ(refs(kBase + kPageSize), 2) << "no PDE cache: the PDPTE cache is the deepest";
  EXPECT_EQ(refs(kBase + k1G), 3);       // evicts the only PDPTE entry
  EXPECT_EQ(refs(kBase), 3);
  StatsRegistry registry;
  psc->register_stats(StatsGroup(registry, "pcpu0.psc"));
  EXPECT_EQ(registry.find("pcpu0.psc.pde.hits"), nullptr);
  const StatsRegistry::Entry* ev = registry.find("pcpu0.psc.pdpte.evictions");
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(*ev->counter, 2u);
  EXPECT_EQ(*registry.find("pcpu0.psc.pml4e.hits")->counter, 2u);
  EXPECT_EQ(*registry.find("pcpu0.psc.misses")->counter, 1u);
  EXPECT_NE(registry.find("pcpu0.psc.flushes.pcid"), nullptr);
}

TEST(PscParamsTest, VisitValidateAndPresets) {
  const std::vector<std::string> names = test::field_names(PscParams{});
  EXPECT_EQ(names.size(), 4u * 4u + 2u);
  PscParams p = test::with_field(PscParams{}, "pde.ways", 3);
  try {
    p.validate();
    ADD_FAILURE() << "expected a ParamError";
  } catch (const ParamError& e) {
    EXPECT_EQ(e.field(), "pde.ways");
  }
  EXPECT_THROW(PagingStructureCaches(p, 1), ParamError);
  EXPECT_NO_THROW(PscParams::skylake().validate());
  EXPECT_NO_THROW(PscParams::core2().validate());
  EXPECT_EQ(PscParams::core2().pml5e.entries, 0u);
  EXPECT_FALSE(PscParams::core2().vpid);
}

// The whole miss path (TLB, PSC, walk) on random map/unmap/protect sequences, with the OS's
// invalidations after every change (INVLPG per page; it also empties the PCID's PSC entries):
// every PSC-started walk must agree with a full walk, and no walk may read more entries.
class PscProperty : public Psc, public ::testing::WithParamInterface<PagingMode> {};

TEST_P(PscProperty, PscStartedWalksAgreeWithFullWalks) {
  const PagingMode mode = GetParam();
  build(mode);
  load();
  TlbHierarchy tlb(TlbHierarchyParams::skylake(), 2);
  Rng rng(17);
  // Few choices per level, so walks share upper-level entries and the editor frees and
  // re-creates tables under the caches.
  const auto pick = [&]() -> uint64_t {
    uint64_t va = kBase + rng.below(16) * kPageSize;
    switch (mode) {
      case PagingMode::k32Bit: return va + rng.below(8) * (4ULL << 20);
      case PagingMode::kPae: return va + rng.below(2) * k1G + rng.below(4) * k2M;
      case PagingMode::k5Level: va += rng.below(2) * k256T; [[fallthrough]];
      case PagingMode::k4Level:
        return va + rng.below(3) * k512G + rng.below(3) * k1G + rng.below(4) * k2M;
    }
    return va;
  };
  for (int i = 0; i < 2000; ++i) {  // most candidate pages mapped, so walks mostly succeed
    editor->map(root, pick(), 0x8000000 + rng.below(1024) * kPageSize, kPageSize, PageSize::k4K,
                user_rw());
  }
  uint64_t walks = 0;
  uint64_t skipped = 0;
  uint64_t tlb_hits = 0;
  for (int step = 0; step < 3000; ++step) {
    const uint64_t va = pick() & ~(kPageSize - 1);
    const int op = static_cast<int>(rng.below(20));  // 0-2: change a page (15%); else access
    try {
      if (op == 0) {
        editor->map(root, va, 0x8000000 + rng.below(1024) * kPageSize, kPageSize, PageSize::k4K,
                     user_rw());
      } else if (op == 1) {
        editor->unmap(root, va, kPageSize);
      } else if (op == 2) {
        PageFlags f = user_rw();
        f.writable = rng.chance(0.5);
        editor->protect(root, va, kPageSize, f);
      }
    } catch (const Error&) {
      continue;  // refused by the editor (e.g. a large page in the way): nothing written
    }
    if (op <= 2) {  // the OS's shootdown for the page
      tlb.invlpg(va, {});
      psc->invlpg(va, {});
      continue;
    }
    const uint64_t a = va + rng.below(kPageSize);
    const Access access = rng.chance(0.3) ? Access::write(true) : Access::read(true);
    const TlbLookup hit = tlb.lookup(a, access, {}, controls, mode);
    const WalkResult full = walk(*mem, *state, a, access);
    if (hit.result == TlbLookup::Result::kHit) {
      ASSERT_TRUE(full.ok());
      EXPECT_EQ(hit.pa, full.translation.pa);
      ++tlb_hits;
      continue;
    }
    if (hit.result == TlbLookup::Result::kFault) {
      EXPECT_EQ(hit.error_code, full.error_code);
      continue;
    }
    const int full_refs = full.ref_count;
    const int made = refs(a, access);
    EXPECT_LE(made, full_refs);
    ++walks;
    skipped += static_cast<uint64_t>(full_refs - made);
    const WalkResult again = walk(*mem, *state, a, access);
    if (again.ok()) tlb.fill(a, again.translation, access, {});
  }
  uint64_t psc_started = 0;  // walks that began below the top, each checked against a full walk
  for (int level = 2; level <= 5; ++level) psc_started += psc->hits(level);
  EXPECT_GT(walks, 500u);
  EXPECT_GT(tlb_hits, 200u);  // candidate pages use only 16 sets of each array
  EXPECT_GT(psc_started, walks / 4);
  EXPECT_GE(skipped, psc_started);
}

INSTANTIATE_TEST_SUITE_P(Modes, PscProperty,
                         ::testing::Values(PagingMode::k32Bit, PagingMode::kPae,
                                           PagingMode::k4Level, PagingMode::k5Level),
                         [](const ::testing::TestParamInfo<PagingMode>& info) {
                           return std::string("m") + to_string(info.param);
                         });

}  // namespace
}  // namespace shadowsim
