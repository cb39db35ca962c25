// Trace decoding speed: records/s from a file, binary and zstd-compressed (text for contrast), and
// binary with OS events (each ends a batch) at a density well above real programs'.
// The replay budget is a few ns per record (a bare decode-and-probe-a-64-entry-TLB loop runs
// ~5 ns/reference), so decoding must cost well under that. Input: the shipped xz trace
// (workloads/traces/README.md), re-encoded to temporary files; synthetic records if it is absent.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "common/rng.h"
#include "workloads/trace_reader.h"
#include "workloads/trace_writer.h"

namespace shadowsim {
namespace {

std::vector<TraceRecord> source_records() {
  std::vector<TraceRecord> all;
  const std::string shipped = std::string(SHADOWSIM_TRACES_DIR) + "/xz.sst.zst";
  if (std::filesystem::exists(shipped)) {
    auto reader = open_trace(shipped);
    std::vector<TraceRecord> batch(4096);
    while (const size_t n = reader->read(batch.data(), batch.size())) {
      all.insert(all.end(), batch.begin(), batch.begin() + static_cast<ptrdiff_t>(n));
    }
    return all;
  }
  Rng rng(1);  // fallback: sequential code with data near a moving pointer
  uint64_t pc = 0x400000, data = 0x7ffd0000;
  for (int i = 0; i < 3'000'000; ++i) {
    if (rng.chance(0.3)) {
      data += rng.below(256) - 128;
      all.push_back({rng.chance(0.3) ? RefKind::kWrite : RefKind::kRead, 8, 0, data});
    } else {
      if (rng.chance(0.1)) pc = 0x400000 + rng.below(1 << 20);
      all.push_back({RefKind::kFetch, 4, 0, pc});
      pc += 4;
    }
  }
  return all;
}

// One event every kEventEvery records: an mmap, then its munmap. A real lackey trace has about
// one per 16,000 (ls: 45 in 728,000 records).
constexpr size_t kEventEvery = 1000;

// One temporary file per extension, written on first use and removed at exit; the last one is
// binary with events.
struct TraceFiles {
  TraceFiles() : records(source_records()) {
    for (const char* ext : {".sst", ".sst.zst", ".sstx", "-events.sst"}) {
      const std::string path = (std::filesystem::temp_directory_path() /
                                ("shadowsim-bench-" + std::to_string(::getpid()) + ext)).string();
      auto w = create_trace(path);
      if (paths.size() < 3) {
        w->write(records.data(), records.size());
      } else {
        for (size_t at = 0; at < records.size(); at += kEventEvery) {
          const OsEvent e = (at / kEventEvery) % 2 == 0
                                ? OsEvent::mmap(0x7f0000000000, 0x21000, 3,
                                                OsEvent::kMapPrivate | OsEvent::kMapAnonymous)
                                : OsEvent::munmap(0x7f0000000000, 0x21000);
          w->write_event(e);
          w->write(records.data() + at, std::min(kEventEvery, records.size() - at));
        }
      }
      w->close();
      paths.push_back(path);
    }
  }
  ~TraceFiles() {
    for (const std::string& p : paths) std::remove(p.c_str());
  }
  std::vector<TraceRecord> records;
  std::vector<std::string> paths;
};

TraceFiles& files() {
  static TraceFiles f;
  return f;
}

void BM_Decode(benchmark::State& bench, int which) {
  const std::string& path = files().paths[which];
  std::vector<TraceRecord> batch(4096);
  uint64_t records = 0, checksum = 0;
  for (auto _ : bench) {
    auto reader = open_trace(path);
    while (const size_t n = reader->read(batch.data(), batch.size())) {
      records += n;
      checksum += batch[n - 1].va + reader->events().size();  // keep the decode observable
    }
  }
  benchmark::DoNotOptimize(checksum);
  bench.SetItemsProcessed(static_cast<int64_t>(records));
  bench.counters["records_per_s"] =
      benchmark::Counter(static_cast<double>(records), benchmark::Counter::kIsRate);
  bench.counters["ns_per_record"] = benchmark::Counter(
      static_cast<double>(records), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  bench.counters["bytes_per_record"] =
      static_cast<double>(std::filesystem::file_size(path)) / files().records.size();
}

BENCHMARK_CAPTURE(BM_Decode, binary, 0)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, zstd, 1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, text, 2)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, binary_events, 3)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace shadowsim

BENCHMARK_MAIN();
