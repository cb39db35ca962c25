#include "workloads/trace_writer.h"

#include <fmt/format.h>

#include "common/error.h"
#include "workloads/trace_formats.h"

namespace shadowsim {

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
