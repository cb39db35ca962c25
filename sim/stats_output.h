// Writing results: OUTDIR/stats.json (hierarchical statistics with units and descriptions, the
// fully resolved config beside them, provenance, interval snapshots) and OUTDIR/stats.csv (flat:
// one statistic per row). Host-dependent fields sit under "host" only, so two runs of the same
// config and seed give identical files apart from that object.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/stats.h"

namespace shadowsim {

// Flat view of every statistic: counters and formulas as one value, histograms as
// NAME.count/.mean/.min/.max. Names in registry order.
struct FlatStat {
  std::string name;
  double value;
  std::string unit;
  std::string description;
};
std::vector<FlatStat> flatten(const StatsRegistry& registry);

struct IntervalSnapshot {
  uint64_t references;     // references replayed in the region of interest so far
  uint64_t cycles;         // global simulated time at the snapshot
  std::vector<double> values;  // flatten(registry) values, same order as the final names
};

struct RunRecord {
  std::string version;
  std::string git_hash;
  std::string config_path;
  std::string resolved_config_json;  // config_to_json()
  uint64_t seed = 0;
  uint64_t roi_references = 0;
  uint64_t roi_start_cycles = 0;
  uint64_t end_cycles = 0;
  double host_seconds = 0;
  std::vector<IntervalSnapshot> intervals;
};

std::string stats_json(const StatsRegistry& registry, const RunRecord& run);
std::string stats_csv(const StatsRegistry& registry);
// Writes stats.json and stats.csv into `out_dir` (created if needed) atomically: each file is
// written under a temporary name and renamed, so a crash never leaves a half file behind.
void write_results(const std::string& out_dir, const StatsRegistry& registry,
                   const RunRecord& run);
// Writes `text` to `path` the same atomic way.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace shadowsim
