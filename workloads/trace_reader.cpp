#include "workloads/trace_reader.h"

#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "common/error.h"
#include "workloads/binary_format.h"
#include "workloads/trace_formats.h"

namespace shadowsim {
namespace {

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// Drops the records of some kinds (fetches, events), folding the instructions they stood for into
// the gap of the next record that is kept.
class RecordDropper final : public TraceReader {
 public:
  RecordDropper(std::unique_ptr<TraceReader> inner, RefKind dropped)
      : inner_(std::move(inner)), dropped_(dropped) {}

  size_t read(TraceRecord* out, size_t max) override {
    events_.clear();
    size_t n = 0;
    while (n < max) {
      // Read into the caller's buffer and compact in place: no copy of our own. The inner
      // reader's events last only until its next read, so the kept ones are copied.
      const size_t got = inner_->read(out + n, max - n);
      if (got == 0) break;
      size_t kept = n;
      for (size_t i = n; i < n + got; ++i) {
        TraceRecord r = out[i];
        if (r.kind == dropped_) {
          pending_ += instructions_of(r);
          continue;
        }
        const uint64_t gap = pending_ + r.gap;
        if (gap > UINT32_MAX) {
          throw Error(fmt::format("{}: more than {} instructions between two kept records; the "
                                  "gap field cannot hold them", inner_->path(), UINT32_MAX));
        }
        if (r.kind == RefKind::kEvent) {
          events_.push_back(inner_->events()[r.va]);
          r.va = events_.size() - 1;
        }
        r.gap = static_cast<uint32_t>(gap);
        out[kept++] = r;
        pending_ = 0;
      }
      n = kept;
    }
    return n;
  }
  const std::vector<OsEvent>& events() const override { return events_; }
  const std::string& path() const override { return inner_->path(); }

 private:
  std::unique_ptr<TraceReader> inner_;
  RefKind dropped_;
  uint64_t pending_ = 0;  // instructions since the last kept record
  std::vector<OsEvent> events_;
};

std::unique_ptr<InputBuffer> open_input(const std::string& path, bool zstd) {
  return std::make_unique<InputBuffer>(zstd ? zstd_source(path) : file_source(path), path);
}

// Peeks at the start of the (decompressed) data for the binary magic.
bool starts_with_binary_magic(InputBuffer& in) {
  try {
    in.fill(4);
  } catch (const SourceError& e) {
    throw Error(fmt::format("{}: {}", in.path(), e.what()));
  }
  return in.end() - in.pos() >= 4 && std::memcmp(in.pos(), sst::kMagic, 4) == 0;
}

[[noreturn]] void unknown_format(const std::string& path) {
  throw Error(fmt::format("{}: unknown trace format: expected a binary trace (magic 89 53 53 54), "
                          "or a name ending in .sst, .sstx or .lackey (each optionally + .zst)",
                          path));
}

}  // namespace

char kind_letter(RefKind kind) {
  switch (kind) {
    case RefKind::kRead: return 'R';
    case RefKind::kWrite: return 'W';
    case RefKind::kFetch: return 'F';
    case RefKind::kEvent: return 'E';
  }
  return '?';
}

const char* to_string(RefKind kind) {
  switch (kind) {
    case RefKind::kRead: return "read";
    case RefKind::kWrite: return "write";
    case RefKind::kFetch: return "fetch";
    case RefKind::kEvent: return "event";
  }
  return "?";
}

const std::vector<OsEvent>& TraceReader::events() const {
  static const std::vector<OsEvent> kNone;
  return kNone;
}

const char* to_string(TraceFormat format) {
  switch (format) {
    case TraceFormat::kAuto: return "auto";
    case TraceFormat::kBinary: return "binary";
    case TraceFormat::kText: return "text";
    case TraceFormat::kLackey: return "lackey";
  }
  return "?";
}

TraceFormat trace_format_from_string(const std::string& name) {
  for (TraceFormat f : {TraceFormat::kAuto, TraceFormat::kBinary, TraceFormat::kText,
                        TraceFormat::kLackey}) {
    if (name == to_string(f)) return f;
  }
  throw Error(fmt::format("unknown trace format '{}': expected one of auto, binary, text, lackey",
                          name));
}

TraceFileType trace_file_type(const std::string& path) {
  TraceFileType t;
  std::string name = path;
  if (ends_with(name, ".zst")) {
    t.zstd = true;
    name.resize(name.size() - 4);
  }
  if (ends_with(name, ".sst")) {
    t.format = TraceFormat::kBinary;
  } else if (ends_with(name, ".sstx")) {
    t.format = TraceFormat::kText;
  } else if (ends_with(name, ".lackey")) {
    t.format = TraceFormat::kLackey;
  }
  return t;
}

namespace {

// The one place that decides a file's format: returns it with the opened input.
TraceFormat detect(const std::string& path, TraceFormat wanted, std::unique_ptr<InputBuffer>* in) {
  const bool zstd = is_zstd_file(path);
  *in = open_input(path, zstd);
  if (wanted != TraceFormat::kAuto) return wanted;
  if (starts_with_binary_magic(**in)) return TraceFormat::kBinary;
  const TraceFormat by_name = trace_file_type(path).format;
  if (by_name == TraceFormat::kAuto) unknown_format(path);
  return by_name;  // a .sst without the magic gets the binary reader's bad-magic error
}

}  // namespace

TraceFileType detect_trace_type(const std::string& path) {
  std::unique_ptr<InputBuffer> in;
  TraceFileType t;
  t.format = detect(path, TraceFormat::kAuto, &in);
  t.zstd = is_zstd_file(path);
  return t;
}

std::unique_ptr<TraceReader> open_trace(const std::string& path) {
  return open_trace(path, TraceOpenOptions{});
}

std::unique_ptr<TraceReader> open_trace(const std::string& path,
                                        const TraceOpenOptions& options) {
  std::unique_ptr<InputBuffer> in;
  std::unique_ptr<TraceReader> reader;
  switch (detect(path, options.format, &in)) {
    case TraceFormat::kBinary: reader = make_binary_reader(std::move(in)); break;
    case TraceFormat::kText: reader = make_text_reader(std::move(in)); break;
    case TraceFormat::kLackey: reader = make_lackey_reader(std::move(in)); break;
    case TraceFormat::kAuto: unknown_format(path);
  }
  if (!options.fetches) reader = drop_fetches(std::move(reader));
  if (!options.events) reader = drop_events(std::move(reader));
  return reader;
}

std::unique_ptr<TraceReader> drop_fetches(std::unique_ptr<TraceReader> inner) {
  return std::make_unique<RecordDropper>(std::move(inner), RefKind::kFetch);
}

std::unique_ptr<TraceReader> drop_events(std::unique_ptr<TraceReader> inner) {
  return std::make_unique<RecordDropper>(std::move(inner), RefKind::kEvent);
}

}  // namespace shadowsim
