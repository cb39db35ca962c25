// 2-D walks per second (docs/nested.md): a 4-level guest on 4-level EPT / NPT, 4,096 user pages
// over 8 page tables walked in a fixed shuffled order, with every cache off ("cold": each walk
// makes 24 references), with the nested TLB alone, and with every cache of the walker.
//
// Then the MMU-level miss cost (docs/performance.md, "Nested MMU"): Mmu::translate through the
// TLBs, the 2-D walk, the page-table memory's cache model and the TLB fill, native versus
// nested (EPT and NPT, 4 KiB and 2 MiB host pages, default caches), over 16,384 pages in
// shuffled order, so that nearly every reference misses the TLBs (1,536 STLB entries). Reported
// per translate: host nanoseconds, and the simulated cycles and references per walk.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "common/rng.h"
#include "memory/page_table_memory.h"
#include "mmu/mmu.h"
#include "nested/nested_host.h"
#include "nested/host_table_builder.h"
#include "nested/nested_walker.h"
#include "paging/frame_allocator.h"
#include "paging/guest_memory.h"
#include "paging/page_table_editor.h"
#include "paging/paging_state.h"

namespace shadowsim {
namespace {

constexpr uint64_t kHostOffset = 1ULL << 30;

struct Fixture {
  explicit Fixture(HostPagingKind kind)
      : guest(1ULL << 30), frames(256, 1 << 16), store(guest, false),
        editor(PagingMode::k4Level, PagingControls{}, CpuFeatures{}, frames, store),
        state(PagingMode::k4Level), host_mem(64ULL << 20),
        host_frames(1, (64ULL << 20) / kPageSize - 1),
        builder(host_mem, host_frames, [kind] {
          HostPagingParams p;
          p.kind = kind;
          return p;
        }()) {
    const uint64_t root = editor.create_address_space();
    PageFlags f;
    f.user = f.writable = f.accessed = f.dirty = true;
    for (uint64_t t = 0; t < 8; ++t) {
      const uint64_t va = 0x10000000 + t * 16 * (2ULL << 20);
      editor.map(root, va, 0x20000000 + t * (2ULL << 20), 512 * kPageSize, PageSize::k4K, f);
      for (uint64_t p = 0; p < 512; ++p) addresses.push_back(va + p * kPageSize + 0x80);
    }
    Rng rng(1);
    for (size_t i = addresses.size() - 1; i > 0; --i) {
      std::swap(addresses[i], addresses[rng.below(i + 1)]);
    }
    state.load_cr3(root, guest);
    // Host: the table region and the data region, 4 KiB pages, at +1 GiB.
    builder.map(0, kHostOffset, 16ULL << 20, PageSize::k4K);
    builder.map(0x20000000, 0x20000000 + kHostOffset, 16ULL << 20, PageSize::k4K);
  }
  GuestMemory guest;
  FrameAllocator frames;
  DirectPageTableStore store;
  PageTableEditor editor;
  PagingState state;
  GuestMemory host_mem;
  FrameAllocator host_frames;
  HostTableBuilder builder;
  std::vector<uint64_t> addresses;
};

void BM_Nested2D(benchmark::State& bench, HostPagingKind kind, int caches) {
  Fixture fx(kind);
  NestedParams params = NestedParams::no_caches();
  if (caches >= 1) params.nested_tlb = NestedParams{}.nested_tlb;
  if (caches >= 2) params = NestedParams{};
  NestedWalker walker(params, 1);
  const HostPageTables host = fx.builder.tables();
  const Access access = Access::read(true);
  size_t i = 0;
  uint64_t refs = 0;
  for (auto _ : bench) {
    const NestedWalk w = walker.walk(fx.guest, fx.state, host, fx.addresses[i], access);
    benchmark::DoNotOptimize(w.translation.pa);
    refs += w.ref_count;
    if (++i == fx.addresses.size()) i = 0;
  }
  bench.SetItemsProcessed(bench.iterations());
  bench.counters["walks_per_s"] =
      benchmark::Counter(static_cast<double>(bench.iterations()), benchmark::Counter::kIsRate);
  bench.counters["refs_per_walk"] =
      static_cast<double>(refs) / static_cast<double>(bench.iterations());
}

BENCHMARK_CAPTURE(BM_Nested2D, ept_cold, HostPagingKind::kEpt, 0);
BENCHMARK_CAPTURE(BM_Nested2D, ept_nested_tlb, HostPagingKind::kEpt, 1);
BENCHMARK_CAPTURE(BM_Nested2D, ept_all_caches, HostPagingKind::kEpt, 2);
BENCHMARK_CAPTURE(BM_Nested2D, npt_cold, HostPagingKind::kNpt, 0);
BENCHMARK_CAPTURE(BM_Nested2D, npt_nested_tlb, HostPagingKind::kNpt, 1);

// A guest of 1 GiB in a page-table memory, 16,384 user pages over 32 page tables (4 KiB guest
// pages), one MMU: native (no host) or nested over a NestedHost of `host`.
struct MmuFixture {
  MmuFixture(const NestedHostParams* host_params, const MmuParams& mmu_params)
      : memory([] {
          PageTableMemoryParams p;
          p.size_mib = 1024;
          return p;
        }(), 1),
        frames(256, 1 << 16), store(memory.memory(), false),
        editor(PagingMode::k4Level, PagingControls{}, CpuFeatures{}, frames, store),
        state(PagingMode::k4Level) {
    const uint64_t root = editor.create_address_space();
    PageFlags f;
    f.user = f.writable = f.accessed = f.dirty = true;
    for (uint64_t t = 0; t < 32; ++t) {
      const uint64_t va = 0x10000000 + t * 16 * (2ULL << 20);
      editor.map(root, va, 0x20000000 + t * (2ULL << 20), 512 * kPageSize, PageSize::k4K, f);
      for (uint64_t p = 0; p < 512; ++p) addresses.push_back(va + p * kPageSize + 0x80);
    }
    Rng rng(1);
    for (size_t i = addresses.size() - 1; i > 0; --i) {
      std::swap(addresses[i], addresses[rng.below(i + 1)]);
    }
    if (host_params) host = std::make_unique<NestedHost>(memory.memory(), *host_params);
    mmu = std::make_unique<Mmu>(0, mmu_params, memory, 1, host.get());
    mmu->load_guest_cr3(state, TlbContext{}, root, true);
  }
  PageTableMemory memory;
  FrameAllocator frames;
  DirectPageTableStore store;
  PageTableEditor editor;
  PagingState state;
  std::unique_ptr<NestedHost> host;
  std::unique_ptr<Mmu> mmu;
  std::vector<uint64_t> addresses;
};

// mode: 0 native; 1 EPT 4 KiB host pages; 2 EPT 2 MiB; 3 NPT 4 KiB; 4 NPT 2 MiB; with
// `cold`, no paging-structure caches (native) or no nested caches (nested): 4 / 24 references.
void BM_MmuMiss(benchmark::State& bench, int mode, bool cold) {
  NestedHostParams hp;
  hp.kind = mode >= 3 ? HostPagingKind::kNpt : HostPagingKind::kEpt;
  hp.page_size = mode == 1 || mode == 3 ? PageSize::k4K : PageSize::k2M;
  if (cold) hp.caches = NestedParams::no_caches();
  MmuParams mp;
  if (cold) {
    for (TlbArrayParams* a : {&mp.psc.pml5e, &mp.psc.pml4e, &mp.psc.pdpte, &mp.psc.pde}) {
      a->entries = 0;
    }
  }
  MmuFixture fx(mode == 0 ? nullptr : &hp, mp);
  StatsRegistry registry;
  fx.mmu->register_stats(StatsGroup(registry, "pcpu0"));
  const Access access = Access::read(true);
  const TlbContext ctx{};
  size_t i = 0;
  uint64_t cycles = 0;
  // Warm the caches once around the address list, then measure.
  for (uint64_t a : fx.addresses) fx.mmu->translate(a, access, fx.state, ctx);
  registry.reset();
  for (auto _ : bench) {
    const MmuResult r = fx.mmu->translate(fx.addresses[i], access, fx.state, ctx);
    benchmark::DoNotOptimize(r.pa);
    cycles += r.cycles;
    if (++i == fx.addresses.size()) i = 0;
  }
  const double n = static_cast<double>(bench.iterations());
  const double walks = static_cast<double>(*registry.find("pcpu0.walker.walks")->counter);
  const double refs = static_cast<double>(*registry.find("pcpu0.walker.references")->counter);
  bench.SetItemsProcessed(bench.iterations());
  bench.counters["walks_per_translate"] = walks / n;
  bench.counters["sim_cycles_per_translate"] = static_cast<double>(cycles) / n;
  bench.counters["refs_per_walk"] = walks > 0 ? refs / walks : 0;
}

BENCHMARK_CAPTURE(BM_MmuMiss, native, 0, false);
BENCHMARK_CAPTURE(BM_MmuMiss, ept_4k, 1, false);
BENCHMARK_CAPTURE(BM_MmuMiss, ept_2m, 2, false);
BENCHMARK_CAPTURE(BM_MmuMiss, npt_4k, 3, false);
BENCHMARK_CAPTURE(BM_MmuMiss, npt_2m, 4, false);
BENCHMARK_CAPTURE(BM_MmuMiss, native_no_psc, 0, true);
BENCHMARK_CAPTURE(BM_MmuMiss, ept_4k_no_caches, 1, true);
BENCHMARK_CAPTURE(BM_MmuMiss, npt_4k_no_caches, 3, true);

}  // namespace
}  // namespace shadowsim

BENCHMARK_MAIN();
