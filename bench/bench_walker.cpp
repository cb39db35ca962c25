// Walks per second per paging mode, with the tables hot in the host's caches (docs/performance.md).
// Goal (issue 2): >= 20 M 4-level walks/s on one core; walks sit on the path of every TLB miss.
#include <benchmark/benchmark.h>

#include <vector>

#include "common/rng.h"
#include "paging/frame_allocator.h"
#include "paging/guest_memory.h"
#include "paging/page_table_editor.h"
#include "paging/paging_state.h"
#include "paging/walker.h"

namespace shadowsim {
namespace {

// An address space with 4096 user 4 KiB pages spread over 8 page tables, and the addresses to
// walk in a fixed shuffled order.
struct Fixture {
  explicit Fixture(PagingMode mode)
      : mem(1ULL << 30), frames(256, 1 << 16), store(mem),
        editor(mode, PagingControls{}, CpuFeatures{}, frames, store), state(mode) {
    const uint64_t root = editor.create_address_space();
    PageFlags f;
    f.user = f.writable = f.accessed = f.dirty = true;
    const uint64_t page_table_span = mode == PagingMode::k32Bit ? (4ULL << 20) : (2ULL << 20);
    for (uint64_t t = 0; t < 8; ++t) {
      const uint64_t va = 0x10000000 + t * 16 * page_table_span;
      editor.map(root, va, 0x20000000 + t * (2ULL << 20), 512 * kPageSize, PageSize::k4K, f);
      for (uint64_t p = 0; p < 512; ++p) addresses.push_back(va + p * kPageSize + 0x80);
    }
    Rng rng(1);
    for (size_t i = addresses.size() - 1; i > 0; --i) std::swap(addresses[i], addresses[rng.below(i + 1)]);
    state.load_cr3(root, mem);
  }
  GuestMemory mem;
  FrameAllocator frames;
  DirectPageTableStore store;
  PageTableEditor editor;
  PagingState state;
  std::vector<uint64_t> addresses;
};

void BM_Walk(benchmark::State& bench, PagingMode mode) {
  Fixture fx(mode);
  size_t i = 0;
  const Access access = Access::read(true);
  for (auto _ : bench) {
    const WalkResult r = walk(fx.mem, fx.state, fx.addresses[i], access);
    benchmark::DoNotOptimize(r.translation.pa);
    if (++i == fx.addresses.size()) i = 0;
  }
  bench.SetItemsProcessed(bench.iterations());
  bench.counters["walks_per_s"] =
      benchmark::Counter(static_cast<double>(bench.iterations()), benchmark::Counter::kIsRate);
}

BENCHMARK_CAPTURE(BM_Walk, 32bit, PagingMode::k32Bit);
BENCHMARK_CAPTURE(BM_Walk, pae, PagingMode::kPae);
BENCHMARK_CAPTURE(BM_Walk, 4level, PagingMode::k4Level);
BENCHMARK_CAPTURE(BM_Walk, 5level, PagingMode::k5Level);

}  // namespace
}  // namespace shadowsim

BENCHMARK_MAIN();
