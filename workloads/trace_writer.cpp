#include "workloads/trace_writer.h"

#include <fmt/format.h>

#include "common/error.h"
#include "workloads/trace_formats.h"

namespace shadowsim {

void TraceWriter::write_event(const OsEvent& e, uint32_t gap) {
  const TraceRecord r{RefKind::kEvent, 0, gap, 0};
  write(&r, 1, &e, 1);
}

const OsEvent& event_to_write(const std::string& path, uint64_t record, const TraceRecord& r,
                              const OsEvent* events, size_t n_events) {
  if (r.size != 0) {
    throw Error(fmt::format("{}: record {}: event record with size {}; expected 0", path, record,
                            r.size));
  }
  if (r.va >= n_events) {
    throw Error(fmt::format("{}: record {}: event index {}, but the batch has {} event{}", path,
                            record, r.va, n_events, n_events == 1 ? "" : "s"));
  }
  const OsEvent& e = events[r.va];
  const std::string problem = event_problem(e);
  if (!problem.empty()) throw Error(fmt::format("{}: record {}: {}", path, record, problem));
  return e;
}

std::unique_ptr<TraceWriter> create_trace(const std::string& path) {
  return create_trace(path, TraceWriteOptions{});
}

std::unique_ptr<TraceWriter> create_trace(const std::string& path,
                                          const TraceWriteOptions& options) {
  const TraceFileType by_name = trace_file_type(path);
  const TraceFormat format =
      options.format == TraceFormat::kAuto ? by_name.format : options.format;
  if (format != TraceFormat::kBinary && format != TraceFormat::kText) {
    throw Error(fmt::format("{}: cannot write {}: expected a name ending in .sst, .sst.zst, .sstx "
                            "or .sstx.zst", path,
                            format == TraceFormat::kLackey ? "lackey output (import only)"
                                                           : "a trace of unknown format"));
  }
  const bool zstd = options.compress < 0 ? by_name.zstd : options.compress > 0;
  std::unique_ptr<ByteSink> sink = zstd ? zstd_sink(path, options.zstd_level) : file_sink(path);
  return format == TraceFormat::kBinary ? make_binary_writer(std::move(sink), path)
                                        : make_text_writer(std::move(sink), path);
}

}  // namespace shadowsim
