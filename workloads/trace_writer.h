// Writing traces in the binary (.sst), compressed (.sst.zst) and text (.sstx) formats of
// docs/trace-format.md. A writer that is destroyed without close() leaves a binary trace without
// its end marker, so a half-written file is later reported as truncated rather than read as short.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "workloads/trace_reader.h"
#include "workloads/trace_record.h"

namespace shadowsim {

class TraceWriter {
 public:
  virtual ~TraceWriter() = default;
  // Throws Error for a record the formats cannot hold (size 0, unknown kind) or a write error.
  virtual void write(const TraceRecord* records, size_t n) = 0;
  void write(const TraceRecord& r) { write(&r, 1); }
  // Ends the stream (binary: end marker with record and instruction counts) and closes the file.
  virtual void close() = 0;
  virtual const std::string& path() const = 0;
  virtual uint64_t records() const = 0;  // written so far
};

struct TraceWriteOptions {
  TraceFormat format = TraceFormat::kAuto;  // kAuto: from the extension; kLackey is refused
  int compress = -1;                        // -1: from the extension (.zst), 0 no, 1 yes
  // 12: a lackey-derived trace comes out ~20% smaller than at zstd's default 3, at 1.7x the time.
  int zstd_level = 12;
};

std::unique_ptr<TraceWriter> create_trace(const std::string& path);
std::unique_ptr<TraceWriter> create_trace(const std::string& path,
                                          const TraceWriteOptions& options);

}  // namespace shadowsim
