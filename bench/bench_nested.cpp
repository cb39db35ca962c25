// 2-D walks per second (docs/nested.md): a 4-level guest on 4-level EPT / NPT, 4,096 user pages
// over 8 page tables walked in a fixed shuffled order, with every cache off ("cold": each walk
// makes 24 references), with the nested TLB alone, and with every cache of the walker.
#include <benchmark/benchmark.h>

#include <vector>

#include "common/rng.h"
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

}  // namespace
}  // namespace shadowsim

BENCHMARK_MAIN();
