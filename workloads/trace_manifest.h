// Multi-stream workloads. Real recorders give one stream per process or thread and no timing
// across them, so a workload is a set of per-stream trace files plus a small JSON manifest: the
// streams, which stream created which and how, and the paging mode they were recorded in. The
// guest scheduler decides which stream runs where and when. Format: docs/trace-format.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "paging/paging_types.h"
#include "workloads/os_event.h"  // StreamOrigin

namespace shadowsim {

struct TraceStream {
  uint32_t id = 0;
  std::string file;  // as written in the manifest: relative to the manifest's folder, or absolute
  std::string path;  // file resolved, ready for open_trace()
  std::optional<uint32_t> parent;  // the stream that created this one; none for kInitial
  StreamOrigin created = StreamOrigin::kInitial;
  std::string name;     // optional, e.g. "xz"
  std::string command;  // optional, the command line the stream ran
  // Optional: the CPU the recorded task ran on (most of its CPU time; docs/trace-format.md,
  // "perf script import"), for guest.scheduler.placement "recorded". Every stream has one or
  // none does.
  std::optional<uint32_t> cpu;
};

struct TraceManifest {
  static constexpr int kVersion = 1;

  std::string path;  // the manifest file; empty for a workload made from a single trace
  PagingMode paging_mode = PagingMode::k4Level;
  std::string name;
  std::string command;
  std::vector<TraceStream> streams;  // manifest order
  // Optional: how many CPUs the recording ran on (only with per-stream CPUs, each below it).
  std::optional<uint32_t> cpus;

  const TraceStream* find(uint32_t id) const;  // nullptr if no stream has that id
  // Whether the streams carry their recorded CPUs, and how many CPUs the recording had: `cpus`,
  // or else the highest stream CPU + 1; 0 without CPUs.
  bool has_cpus() const { return !streams.empty() && streams.front().cpu.has_value(); }
  uint32_t recorded_cpus() const;
};

// Reads and checks a manifest: unknown keys, missing keys, wrong types, bad values, duplicate
// ids, a parent that does not exist (or a cycle), an origin that contradicts the parent, and a
// stream file that does not exist are errors naming the manifest file and the JSON path (e.g.
// "streams[2].parent") and what was expected.
TraceManifest load_manifest(const std::string& path);
// The same from text; `path` names the manifest in messages and resolves stream files against its
// folder. check_files=false skips the existence check (manifests built in memory).
TraceManifest parse_manifest(const std::string& json_text, const std::string& path,
                             bool check_files = true);

// The JSON that load_manifest() reads back as `manifest` (stream `path`s are not written).
std::string manifest_to_json(const TraceManifest& manifest);
void save_manifest(const TraceManifest& manifest, const std::string& path);

// A name ending in .json, or a file whose first non-blank byte is '{'.
bool is_manifest_file(const std::string& path);

// Any workload path as a manifest: a manifest is loaded; a single trace file (checked with
// detect_trace_type) becomes one initial stream with id 0, recorded in `mode`.
TraceManifest load_workload(const std::string& path, PagingMode mode = PagingMode::k4Level);

}  // namespace shadowsim
