// Writing traces in the binary (.sst), compressed (.sst.zst) and text (.sstx) formats of
// docs/trace-format.md. A writer that is destroyed without close() leaves a binary trace without
// its end marker, so a half-written file is later reported as truncated rather than read as short.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "workloads/os_event.h"
#include "workloads/trace_reader.h"
#include "workloads/trace_record.h"

namespace shadowsim {

class TraceWriter {
 public:
  virtual ~TraceWriter() = default;
  // Writes records[0..n); a kEvent record stands for events[record.va], events[0..n_events) being
  // the batch's events as TraceReader::events() gives them, so a copy loop is
  // `writer->write(batch.data(), n, reader->events())`. Throws Error for a record the formats
  // cannot hold (size 0, unknown kind, an event index out of range, a malformed event:
  // event_problem()) or a write error.
  virtual void write(const TraceRecord* records, size_t n, const OsEvent* events,
                     size_t n_events) = 0;
  void write(const TraceRecord* records, size_t n, const std::vector<OsEvent>& events) {
    write(records, n, events.data(), events.size());
  }
  void write(const TraceRecord* records, size_t n) { write(records, n, nullptr, 0); }
  void write(const TraceRecord& r) { write(&r, 1); }
  // One event record, after `gap` instructions that have no record.
  void write_event(const OsEvent& e, uint32_t gap = 0);
  // Ends the stream (binary: end marker with record and instruction counts) and closes the file.
  virtual void close() = 0;
  virtual const std::string& path() const = 0;
  virtual uint64_t records() const = 0;  // written so far, event records included
  virtual uint64_t events() const = 0;   // event records written so far
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
