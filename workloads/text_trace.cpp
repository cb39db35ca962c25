// The text format (.sstx) and the valgrind lackey importer: both line-based, both streaming.
#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "workloads/trace_formats.h"

namespace shadowsim {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t'; }

// Up to 16 hex digits, the whole of [b, e).
bool parse_hex(const char* b, const char* e, uint64_t* v) {
  if (b == e || e - b > 16) return false;
  auto [p, ec] = std::from_chars(b, e, *v, 16);
  return ec == std::errc() && p == e;
}

bool parse_dec(const char* b, const char* e, uint64_t* v) {
  if (b == e || *b == '+' || *b == '-') return false;
  auto [p, ec] = std::from_chars(b, e, *v, 10);
  return ec == std::errc() && p == e;
}

std::string quote(const char* b, const char* e) {
  constexpr ptrdiff_t kShown = 80;
  return e - b > kShown ? fmt::format("'{}...'", std::string(b, kShown))
                        : fmt::format("'{}'", std::string(b, e));
}

class TextReader final : public TraceReader {
 public:
  explicit TextReader(std::unique_ptr<InputBuffer> in) : lines_(std::move(in)) {}

  size_t read(TraceRecord* out, size_t max) override {
    size_t n = 0;
    const char* b;
    const char* e;
    while (n < max && lines_.next(&b, &e)) {
      if (const void* hash = std::memchr(b, '#', static_cast<size_t>(e - b))) {
        e = static_cast<const char*>(hash);
      }
      const char* fields[5][2];
      int count = 0;
      for (const char* p = b; p != e;) {
        while (p != e && is_space(*p)) ++p;
        if (p == e) break;
        const char* start = p;
        while (p != e && !is_space(*p)) ++p;
        if (count == 5) fail(b, e, "too many fields");
        fields[count][0] = start;
        fields[count][1] = p;
        ++count;
      }
      if (count == 0) continue;
      if (count < 3 || count > 4) fail(b, e, fmt::format("{} fields", count));
      TraceRecord& r = out[n];
      const char* kb = fields[0][0];
      if (fields[0][1] - kb != 1 || (*kb != 'R' && *kb != 'W' && *kb != 'F')) {
        fail(b, e, fmt::format("kind {}", quote(kb, fields[0][1])));
      }
      r.kind = *kb == 'R' ? RefKind::kRead : *kb == 'W' ? RefKind::kWrite : RefKind::kFetch;
      const char* ab = fields[1][0];
      uint64_t va;
      if (fields[1][1] - ab < 3 || ab[0] != '0' || (ab[1] != 'x' && ab[1] != 'X') ||
          !parse_hex(ab + 2, fields[1][1], &va)) {
        fail(b, e, fmt::format("address {}", quote(ab, fields[1][1])));
      }
      r.va = va;
      uint64_t size;
      if (!parse_dec(fields[2][0], fields[2][1], &size) || size == 0 || size > 255) {
        fail(b, e, fmt::format("size {}", quote(fields[2][0], fields[2][1])));
      }
      r.size = static_cast<uint8_t>(size);
      uint64_t gap = 0;
      if (count == 4) {
        const char* gb = fields[3][0];
        if (*gb != '+' || !parse_dec(gb + 1, fields[3][1], &gap) || gap > UINT32_MAX) {
          fail(b, e, fmt::format("gap {}", quote(gb, fields[3][1])));
        }
      }
      r.gap = static_cast<uint32_t>(gap);
      ++n;
    }
    return n;
  }

  const std::string& path() const override { return lines_.path(); }

 private:
  [[noreturn]] void fail(const char* b, const char* e, const std::string& what) const {
    throw Error(fmt::format("{}:{}: {} in {}; expected 'KIND ADDRESS SIZE [+GAP]' with KIND R, W "
                            "or F, ADDRESS 0x and 1..16 hex digits, SIZE 1..255, GAP +0..+{}",
                            lines_.path(), lines_.line(), what, quote(b, e), UINT32_MAX));
  }

  LineReader lines_;
};

class TextWriter final : public TraceWriter {
 public:
  TextWriter(std::unique_ptr<ByteSink> sink, std::string path)
      : out_(std::move(sink)), path_(std::move(path)) {
    const char header[] = "# shadowsim text trace (sstx 1): KIND ADDRESS SIZE [+GAP]\n";
    out_.append(header, sizeof header - 1);
  }

  void write(const TraceRecord* records, size_t n) override {
    if (closed_) throw Error(fmt::format("{}: write after close", path_));
    for (size_t i = 0; i < n; ++i) {
      const TraceRecord& r = records[i];
      const unsigned kind = static_cast<unsigned>(r.kind);
      if (kind > 2 || r.size == 0) {
        throw Error(fmt::format("{}: record {}: kind {} size {}; expected kind 0..2 and size "
                                "1..255", path_, records_, kind, r.size));
      }
      constexpr size_t kMaxLine = 48;  // "F 0x" + 16 + " 255" + " +4294967295" + "\n"
      char* const start = reinterpret_cast<char*>(out_.reserve(kMaxLine));
      char* p = start;
      p = fmt::format_to(p, "{} {:#x} {}", kind_letter(r.kind), r.va, r.size);
      if (r.gap) p = fmt::format_to(p, " +{}", r.gap);
      *p++ = '\n';
      out_.advance(reinterpret_cast<uint8_t*>(p));
      ++records_;
    }
  }

  void close() override {
    if (closed_) return;
    out_.finish();
    closed_ = true;
  }
  const std::string& path() const override { return path_; }
  uint64_t records() const override { return records_; }

 private:
  OutputBuffer out_;
  std::string path_;
  uint64_t records_ = 0;
  bool closed_ = false;
};

// valgrind --tool=lackey --trace-mem=yes: "I  04016f0,3" (fetch), " L a,s" (load), " S a,s"
// (store), " M a,s" (modify: a load then a store of the same bytes), "==PID== ..." (valgrind's
// own messages). Sizes above 255 (never seen from lackey) are refused rather than split.
class LackeyReader final : public TraceReader {
 public:
  explicit LackeyReader(std::unique_ptr<InputBuffer> in) : lines_(std::move(in)) {}

  size_t read(TraceRecord* out, size_t max) override {
    size_t n = 0;
    if (has_pending_ && max) {
      out[n++] = pending_;
      has_pending_ = false;
    }
    const char* b;
    const char* e;
    while (n < max && lines_.next(&b, &e)) {
      if (is_valgrind_message(b, e)) continue;
      const char* p = b;
      while (p != e && *p == ' ') ++p;
      if (p == e) continue;  // blank
      const char kind = *p++;
      if (kind != 'I' && kind != 'L' && kind != 'S' && kind != 'M') {
        fail(b, e, fmt::format("kind '{}'", kind));
      }
      if (p == e || *p != ' ') fail(b, e, "no space after the kind");
      while (p != e && *p == ' ') ++p;
      const char* comma = static_cast<const char*>(std::memchr(p, ',', static_cast<size_t>(e - p)));
      uint64_t va, size;
      if (!comma || !parse_hex(p, comma, &va)) fail(b, e, "address");
      const char* se = e;
      while (se != comma + 1 && is_space(se[-1])) --se;
      if (!parse_dec(comma + 1, se, &size) || size == 0 || size > 255) fail(b, e, "size");
      TraceRecord r;
      r.kind = kind == 'I' ? RefKind::kFetch : kind == 'S' ? RefKind::kWrite : RefKind::kRead;
      r.size = static_cast<uint8_t>(size);
      r.gap = 0;
      r.va = va;
      out[n++] = r;
      if (kind == 'M') {
        r.kind = RefKind::kWrite;
        if (n < max) {
          out[n++] = r;
        } else {
          pending_ = r;
          has_pending_ = true;
        }
      }
    }
    return n;
  }

  const std::string& path() const override { return lines_.path(); }

 private:
  static bool is_valgrind_message(const char* b, const char* e) {  // "==1234==..."
    if (e - b < 5 || b[0] != '=' || b[1] != '=') return false;
    const char* p = b + 2;
    while (p != e && *p >= '0' && *p <= '9') ++p;
    return p != b + 2 && e - p >= 2 && p[0] == '=' && p[1] == '=';
  }

  [[noreturn]] void fail(const char* b, const char* e, const std::string& what) const {
    throw Error(fmt::format("{}:{}: not a lackey trace line ({}) in {}; expected 'I  ADDR,SIZE', "
                            "' L ADDR,SIZE', ' S ADDR,SIZE', ' M ADDR,SIZE' (ADDR hex without "
                            "0x, SIZE 1..255) or a '==PID==' message",
                            lines_.path(), lines_.line(), what, quote(b, e)));
  }

  LineReader lines_;
  TraceRecord pending_{};
  bool has_pending_ = false;
};

}  // namespace

bool LineReader::next(const char** begin, const char** end) {
  for (;;) {
    const uint8_t* p = in_->pos();
    const uint8_t* e = in_->end();
    const size_t have = static_cast<size_t>(e - p);
    const void* nl = std::memchr(p, '\n', have);
    if (nl || in_->exhausted()) {
      if (!nl && have == 0) return false;
      const uint8_t* line_end = nl ? static_cast<const uint8_t*>(nl) : e;
      in_->set_pos(nl ? line_end + 1 : e);
      if (line_end != p && line_end[-1] == '\r') --line_end;
      *begin = reinterpret_cast<const char*>(p);
      *end = reinterpret_cast<const char*>(line_end);
      ++line_;
      return true;
    }
    if (have >= kMaxLine) {
      throw Error(fmt::format("{}:{}: line longer than {} bytes", in_->path(), line_ + 1,
                              kMaxLine));
    }
    try {
      in_->fill(have + 1);
    } catch (const SourceError& err) {
      throw Error(fmt::format("{}:{}: {}", in_->path(), line_ + 1, err.what()));
    }
  }
}

std::unique_ptr<TraceReader> make_text_reader(std::unique_ptr<InputBuffer> in) {
  return std::make_unique<TextReader>(std::move(in));
}
std::unique_ptr<TraceReader> make_lackey_reader(std::unique_ptr<InputBuffer> in) {
  return std::make_unique<LackeyReader>(std::move(in));
}
std::unique_ptr<TraceWriter> make_text_writer(std::unique_ptr<ByteSink> sink, std::string path) {
  return std::make_unique<TextWriter>(std::move(sink), std::move(path));
}

}  // namespace shadowsim
