// Reading traces: one stream at a time, in batches, never the whole file in memory. The formats
// and their byte-level layout are specified in docs/trace-format.md.
//
//   auto reader = open_trace("workloads/traces/xz.sst.zst");
//   std::vector<TraceRecord> batch(4096);
//   while (size_t n = reader->read(batch.data(), batch.size())) {
//     for (size_t i = 0; i < n; ++i) {
//       if (batch[i].kind == RefKind::kEvent) { use(reader->events()[batch[i].va]); continue; }
//       ...
//     }
//   }
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "workloads/os_event.h"
#include "workloads/trace_record.h"

namespace shadowsim {

class TraceReader {  // one stream, streaming: never loads a whole trace
 public:
  virtual ~TraceReader() = default;
  // Fills out[0..max) and returns how many; 0 means the end of the stream, while fewer than max
  // does not (the binary reader ends a batch after each OS event). Throws shadowsim::Error on a
  // malformed/truncated/corrupt trace naming the file and the record index (binary) or line
  // (text).
  virtual size_t read(TraceRecord* out, size_t max) = 0;
  // The OS events of the last read()'s batch, indexed by its kEvent records' `va`. Valid until
  // the next read(); empty for a stream without events.
  virtual const std::vector<OsEvent>& events() const;
  virtual const std::string& path() const = 0;
};

// kBinary: .sst; kText: .sstx; kLackey: valgrind --tool=lackey --trace-mem=yes output (.lackey).
// Any of them may be zstd-compressed (.zst appended); compression is recognised by its magic.
enum class TraceFormat : uint8_t { kAuto, kBinary, kText, kLackey };

const char* to_string(TraceFormat format);            // "auto", "binary", "text", "lackey"
TraceFormat trace_format_from_string(const std::string& name);  // throws Error naming the choices

// What a file name says: the format of its extension (kAuto if none is known) and whether it
// ends in .zst. ".sst" binary, ".sstx" text, ".lackey" lackey, each optionally + ".zst".
struct TraceFileType {
  TraceFormat format = TraceFormat::kAuto;
  bool zstd = false;
};
TraceFileType trace_file_type(const std::string& path);

struct TraceOpenOptions {
  // kAuto: binary if the (decompressed) data starts with the binary magic, otherwise what the
  // extension says; a file neither recognises is an error.
  TraceFormat format = TraceFormat::kAuto;
  // false: drop fetch records and fold the instructions they stood for into the next record's
  // gap (instructions after the last remaining record are lost; see docs/trace-format.md).
  bool fetches = true;
  // false: drop OS-event records the same way, for a consumer without an OS model.
  bool events = true;
};

// Picks the format from the file's magic / extension.
std::unique_ptr<TraceReader> open_trace(const std::string& path);
std::unique_ptr<TraceReader> open_trace(const std::string& path, const TraceOpenOptions& options);

// Wrap a reader so that it drops fetch records (events pass through) or OS-event records, folding
// their instructions into the next record's gap.
std::unique_ptr<TraceReader> drop_fetches(std::unique_ptr<TraceReader> inner);
std::unique_ptr<TraceReader> drop_events(std::unique_ptr<TraceReader> inner);

// The format open_trace() would pick, and whether the file is zstd-compressed. Throws like it.
TraceFileType detect_trace_type(const std::string& path);

}  // namespace shadowsim
