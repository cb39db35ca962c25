// Guest page-table memory: owns guest physical memory and says what a page-table reference
// costs. PTE lines have strong locality and their hit rates decide walk cost, so the latency
// comes from a small cache model of page-table lines: per-PCPU L1D and L2, a shared LLC, DRAM.
// A line written by one PCPU (an A/D update, a PTE store) is invalidated in the other PCPUs'
// private caches, as MESI would. Data references do not go through this model (see
// docs/memory.md): hit rates of page-table lines are therefore upper bounds.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/params.h"
#include "common/stats.h"
#include "memory/line_cache.h"
#include "paging/guest_memory.h"

namespace shadowsim {

struct PageTableMemoryParams {
  uint64_t size_mib = 4096;  // guest physical memory
  uint32_t line_bytes = 64;
  // Defaults: Intel Skylake client core (Intel 64 and IA-32 Architectures Optimization Reference
  // Manual, table "Cache parameters of the Skylake microarchitecture": L1D 32 KiB 8-way 4-5
  // cycles, L2 256 KiB 4-way 12 cycles; LLC ~42 cycles (7-cpu.com Skylake measurements);
  // 8 MiB 16-way LLC as on a 4-core i7-6700).
  CacheParams l1d{32, 8, 5};
  CacheParams l2{256, 4, 12};
  CacheParams llc{8192, 16, 42};
  // DRAM: ~70 ns load-to-use at 3 GHz (7-cpu.com, Skylake i7-6700 with DDR4: 42 cycles + 51 ns).
  uint32_t dram_latency_cycles = 200;

  template <class V>
  void visit(V& v) {
    v.value("size_mib", size_mib, "guest physical memory (the first MiB is firmware's)",
            Limits{2, 64 * 1024 * 1024}, "MiB");
    v.value("line_bytes", line_bytes, "cache line size", Limits{16, 4096}, "bytes");
    v.group("l1d", l1d, "per-PCPU L1 data cache (page-table lines)");
    v.group("l2", l2, "per-PCPU L2 cache");
    v.group("llc", llc, "shared last-level cache");
    v.value("dram_latency_cycles", dram_latency_cycles, "load-to-use latency of DRAM",
            Limits{0, 100000}, "cycles");
  }
  void validate() const {
    if (line_bytes & (line_bytes - 1)) throw ParamError("line_bytes", "must be a power of two");
    for (const auto& [name, cache] : {std::pair<const char*, const CacheParams*>{"l1d", &l1d},
                                      {"l2", &l2}, {"llc", &llc}}) {
      const GeometryProblem p = cache_geometry_problem(*cache, line_bytes);
      if (p.field) throw ParamError(std::string(name) + "." + p.field, p.message);
    }
  }
};

class PageTableMemory {
 public:
  PageTableMemory(const PageTableMemoryParams& params, int pcpus);

  GuestMemory& memory() { return memory_; }
  const GuestMemory& memory() const { return memory_; }

  // Latency, in cycles, of PCPU `pcpu` reading / writing the page-table entry at `pa`.
  uint32_t read(int pcpu, uint64_t pa);
  uint32_t write(int pcpu, uint64_t pa);

  void register_stats(StatsGroup g);

 private:
  struct LevelStats {
    uint64_t hits = 0;
    uint64_t misses = 0;
  };
  struct Private {
    LineCache l1d;
    LineCache l2;
    LevelStats l1d_stats, l2_stats;
    uint64_t invalidations = 0;  // lines of this PCPU's caches invalidated by others' writes
  };

  uint32_t access(int pcpu, uint64_t line);

  PageTableMemoryParams params_;
  GuestMemory memory_;
  unsigned line_shift_;
  std::vector<std::unique_ptr<Private>> pcpus_;
  LineCache llc_;
  LevelStats llc_stats_;
  uint64_t reads_ = 0;
  uint64_t writes_ = 0;
  uint64_t dram_accesses_ = 0;
};

}  // namespace shadowsim
