// TLB lookup cost (docs/tlb.md). A TLB hit sits on every simulated memory reference, so it must
// stay a few ns: the L1 hit is the figure that matters; the miss paths run once per walk.
#include <benchmark/benchmark.h>

#include <utility>
#include <vector>

#include "common/rng.h"
#include "paging/frame_allocator.h"
#include "paging/guest_memory.h"
#include "paging/page_table_editor.h"
#include "paging/paging_state.h"
#include "paging/walker.h"
#include "tlb/paging_structure_cache.h"
#include "tlb/tlb_hierarchy.h"

namespace shadowsim {
namespace {

constexpr uint64_t kBase = 0x7f0000000000ULL;

Translation page_at(uint64_t va) {
  Translation t{};
  t.page_va = va & ~(kPageSize - 1);
  t.page_pa = 0x100000000ULL + (t.page_va & 0xfffffff000ULL);
  t.pa = t.page_pa | (va & (kPageSize - 1));
  t.size = PageSize::k4K;
  t.dirty = true;
  return t;
}

// `pages` consecutive 4 KiB pages, in a fixed shuffled order, one address in each.
std::vector<uint64_t> shuffled_pages(uint64_t pages) {
  std::vector<uint64_t> v;
  for (uint64_t p = 0; p < pages; ++p) v.push_back(kBase + p * kPageSize + 0x40);
  Rng rng(1);
  for (size_t i = v.size() - 1; i > 0; --i) std::swap(v[i], v[rng.below(i + 1)]);
  return v;
}

// `pages` consecutive pages walked in order, 64 cache lines in each: the locality of a real
// instruction or data stream (the same entry hits many times in a row).
std::vector<uint64_t> sequential_lines(uint64_t pages) {
  std::vector<uint64_t> v;
  for (uint64_t a = 0; a < pages * kPageSize; a += 64) v.push_back(kBase + a);
  return v;
}

// Lookups over `addresses`, filling after every miss (steady state).
void lookups(benchmark::State& bench, const std::vector<uint64_t>& addresses,
             const Access access) {
  TlbHierarchy tlb(TlbHierarchyParams::skylake(), 1);
  const PagingControls controls;
  const TlbContext ctx{1, 1};
  for (uint64_t va : addresses) tlb.fill(va, page_at(va), access, ctx);
  size_t i = 0;
  uint64_t l1 = 0;
  for (auto _ : bench) {
    const uint64_t va = addresses[i];
    const TlbLookup r = tlb.lookup(va, access, ctx, controls, PagingMode::k4Level);
    if (r.result != TlbLookup::Result::kHit) tlb.fill(va, page_at(va), access, ctx);
    l1 += r.level == 1;
    benchmark::DoNotOptimize(r.pa);
    if (++i == addresses.size()) i = 0;
  }
  bench.SetItemsProcessed(bench.iterations());
  bench.counters["l1_hit_ratio"] =
      static_cast<double>(l1) / static_cast<double>(bench.iterations());
}

// 48 pages in random order: all in the 64-entry L1 DTLB (16 sets x 4 ways, 3 per set); the
// way that hits is unpredictable, the worst case for the host's branch predictor.
void BM_L1Hit(benchmark::State& bench) {
  lookups(bench, shuffled_pages(48), Access::read(true));
}
// The same 48 pages walked line by line.
void BM_L1HitSequential(benchmark::State& bench) {
  lookups(bench, sequential_lines(48), Access::read(true));
}
// 1024 pages: beyond the L1, inside the 1536-entry STLB: L1 miss, STLB hit, L1 refill.
void BM_StlbHit(benchmark::State& bench) {
  lookups(bench, shuffled_pages(1024), Access::read(true));
}
// 65536 pages: beyond the STLB: every lookup misses both levels and fills both.
void BM_MissFill(benchmark::State& bench) {
  lookups(bench, shuffled_pages(65536), Access::read(true));
}

// The whole miss path of the timed model: TLB miss, PSC lookup, walk_from, PSC fill, TLB fill,
// over 4,096 pages in 8 page tables (4-level), with a 64-entry DTLB and no STLB so nearly every
// lookup misses.
void BM_MissPscWalkFill(benchmark::State& bench) {
  GuestMemory mem(1ULL << 30);
  FrameAllocator frames(256, 1 << 16);
  DirectPageTableStore store(mem);
  const PagingMode mode = PagingMode::k4Level;
  PageTableEditor editor(mode, PagingControls{}, CpuFeatures{}, frames, store);
  const uint64_t root = editor.create_address_space();
  PageFlags f;
  f.user = f.writable = f.accessed = f.dirty = true;
  std::vector<uint64_t> addresses;
  for (uint64_t t = 0; t < 8; ++t) {
    const uint64_t va = 0x10000000 + t * 16 * (2ULL << 20);
    editor.map(root, va, 0x20000000 + t * (2ULL << 20), 512 * kPageSize, PageSize::k4K, f);
    for (uint64_t p = 0; p < 512; ++p) addresses.push_back(va + p * kPageSize + 0x80);
  }
  Rng rng(1);
  for (size_t i = addresses.size() - 1; i > 0; --i) {
    std::swap(addresses[i], addresses[rng.below(i + 1)]);
  }
  PagingState state(mode);
  state.load_cr3(root, mem);
  TlbHierarchyParams params;
  params.stlb_enabled = false;
  TlbHierarchy tlb(params, 1);
  PagingStructureCaches psc(PscParams::skylake(), 1);
  const Access access = Access::read(true);
  const TlbContext ctx{1, 0};
  size_t i = 0;
  uint64_t refs = 0;
  uint64_t walks = 0;
  for (auto _ : bench) {
    const uint64_t va = addresses[i];
    const TlbLookup r = tlb.lookup(va, access, ctx, state.controls(), mode);
    if (r.result == TlbLookup::Result::kMiss) {
      const WalkStart start = psc.lookup(va, ctx, state);
      const WalkResult w = walk_from(mem, state, va, access, start);
      psc.fill(va, ctx, state, start, w);
      tlb.fill(va, w.translation, access, ctx);
      refs += w.ref_count;
      ++walks;
    }
    benchmark::DoNotOptimize(r.pa);
    if (++i == addresses.size()) i = 0;
  }
  bench.SetItemsProcessed(bench.iterations());
  bench.counters["miss_ratio"] =
      static_cast<double>(walks) / static_cast<double>(bench.iterations());
  bench.counters["refs_per_walk"] = walks ? static_cast<double>(refs) / walks : 0.0;
}

BENCHMARK(BM_L1Hit);
BENCHMARK(BM_L1HitSequential);
BENCHMARK(BM_StlbHit);
BENCHMARK(BM_MissFill);
BENCHMARK(BM_MissPscWalkFill);

}  // namespace
}  // namespace shadowsim

BENCHMARK_MAIN();
