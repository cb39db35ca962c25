#include "memory/page_table_memory.h"

#include <fmt/format.h>

#include "common/error.h"

namespace shadowsim {

PageTableMemory::PageTableMemory(const PageTableMemoryParams& params, int pcpus)
    : params_(params), memory_(params.size_mib << 20),
      line_shift_(static_cast<unsigned>(__builtin_ctz(params.line_bytes))),
      llc_(params.llc, params.line_bytes) {
  if (pcpus < 1) throw Error(fmt::format("page-table memory for {} PCPUs: expected >= 1", pcpus));
  for (int i = 0; i < pcpus; ++i) {
    pcpus_.push_back(std::make_unique<Private>(Private{LineCache(params.l1d, params.line_bytes),
                                                       LineCache(params.l2, params.line_bytes),
                                                       {}, {}, 0}));
  }
}

// Inclusive fill on the way in; the latency is that of the level that hit.
uint32_t PageTableMemory::access(int pcpu, uint64_t line) {
  Private& p = *pcpus_[static_cast<size_t>(pcpu)];
  if (p.l1d.access(line)) {
    ++p.l1d_stats.hits;
    return params_.l1d.latency_cycles;
  }
  ++p.l1d_stats.misses;
  if (p.l2.access(line)) {
    ++p.l2_stats.hits;
    return params_.l2.latency_cycles;
  }
  ++p.l2_stats.misses;
  if (llc_.access(line)) {
    ++llc_stats_.hits;
    return params_.llc.latency_cycles;
  }
  ++llc_stats_.misses;
  ++dram_accesses_;
  return params_.dram_latency_cycles;
}

uint32_t PageTableMemory::read(int pcpu, uint64_t pa) {
  ++reads_;
  return access(pcpu, pa >> line_shift_);
}

uint32_t PageTableMemory::write(int pcpu, uint64_t pa) {
  ++writes_;
  const uint64_t line = pa >> line_shift_;
  for (size_t i = 0; i < pcpus_.size(); ++i) {
    if (static_cast<int>(i) == pcpu) continue;
    Private& other = *pcpus_[i];
    if (other.l1d.contains(line) || other.l2.contains(line)) {
      other.l1d.invalidate(line);
      other.l2.invalidate(line);
      ++other.invalidations;
    }
  }
  return access(pcpu, line);  // read for ownership
}

void PageTableMemory::register_stats(StatsGroup g) {
  g.counter("reads", &reads_, "references", "page-table entry reads");
  g.counter("writes", &writes_, "references", "page-table entry writes (A/D updates, stores)");
  g.counter("dram_accesses", &dram_accesses_, "references", "references that missed every cache");
  auto level = [](StatsGroup lg, LevelStats* s) {
    lg.counter("hits", &s->hits, "references", "page-table line hits");
    lg.counter("misses", &s->misses, "references", "page-table line misses");
    lg.formula("hit_rate", [s] { return ratio(s->hits, s->hits + s->misses); }, "ratio",
               "hits / (hits + misses)");
  };
  level(g.sub("llc"), &llc_stats_);
  for (size_t i = 0; i < pcpus_.size(); ++i) {
    Private& p = *pcpus_[i];
    StatsGroup pg = g.sub(fmt::format("pcpu{}", i));
    level(pg.sub("l1d"), &p.l1d_stats);
    level(pg.sub("l2"), &p.l2_stats);
    pg.counter("invalidations", &p.invalidations, "lines",
               "lines invalidated by other PCPUs' page-table writes");
  }
}

}  // namespace shadowsim
