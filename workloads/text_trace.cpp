// The text format (.sstx) and the valgrind lackey importer: both line-based, both streaming.
#include <algorithm>
#include <charconv>
#include <cstring>
#include <deque>
#include <unordered_map>

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

// "0x" (or "0X") and 1..16 hex digits.
bool parse_0x(const char* b, const char* e, uint64_t* v) {
  return e - b >= 3 && b[0] == '0' && (b[1] == 'x' || b[1] == 'X') && parse_hex(b + 2, e, v);
}

std::string quote(const char* b, const char* e) {
  constexpr ptrdiff_t kShown = 80;
  return e - b > kShown ? fmt::format("'{}...'", std::string(b, kShown))
                        : fmt::format("'{}'", std::string(b, e));
}

std::string_view view(const char* b, const char* e) {
  return std::string_view(b, static_cast<size_t>(e - b));
}

class TextReader final : public TraceReader {
 public:
  explicit TextReader(std::unique_ptr<InputBuffer> in) : lines_(std::move(in)) {}

  size_t read(TraceRecord* out, size_t max) override {
    events_.clear();
    size_t n = 0;
    const char* b;
    const char* e;
    while (n < max && lines_.next(&b, &e)) {
      if (const void* hash = std::memchr(b, '#', static_cast<size_t>(e - b))) {
        e = static_cast<const char*>(hash);
      }
      Field fields[kMaxFields];
      int count = 0;
      for (const char* p = b; p != e;) {
        while (p != e && is_space(*p)) ++p;
        if (p == e) break;
        const char* start = p;
        while (p != e && !is_space(*p)) ++p;
        if (count == kMaxFields) fail(b, e, "too many fields");
        fields[count++] = {start, p};
      }
      if (count == 0) continue;
      TraceRecord& r = out[n];
      const char* kb = fields[0].b;
      if (fields[0].e - kb == 1 && *kb == 'E') {
        parse_event(b, e, fields, count, &r);
        ++n;
        continue;
      }
      if (count < 3 || count > 4) fail(b, e, fmt::format("{} fields", count));
      if (fields[0].e - kb != 1 || (*kb != 'R' && *kb != 'W' && *kb != 'F')) {
        fail(b, e, fmt::format("kind {}", quote(kb, fields[0].e)));
      }
      r.kind = *kb == 'R' ? RefKind::kRead : *kb == 'W' ? RefKind::kWrite : RefKind::kFetch;
      uint64_t va;
      if (!parse_0x(fields[1].b, fields[1].e, &va)) {
        fail(b, e, fmt::format("address {}", quote(fields[1].b, fields[1].e)));
      }
      r.va = va;
      uint64_t size;
      if (!parse_dec(fields[2].b, fields[2].e, &size) || size == 0 || size > 255) {
        fail(b, e, fmt::format("size {}", quote(fields[2].b, fields[2].e)));
      }
      r.size = static_cast<uint8_t>(size);
      uint64_t gap = 0;
      if (count == 4 && !parse_gap(fields[3], &gap)) {
        fail(b, e, fmt::format("gap {}", quote(fields[3].b, fields[3].e)));
      }
      r.gap = static_cast<uint32_t>(gap);
      ++n;
    }
    return n;
  }

  const std::vector<OsEvent>& events() const override { return events_; }
  const std::string& path() const override { return lines_.path(); }

 private:
  static constexpr int kMaxFields = 8;  // E mremap ADDRESS LENGTH NEW_ADDRESS NEW_LENGTH FLAGS +GAP
  struct Field {
    const char* b;
    const char* e;
  };

  static bool parse_gap(const Field& f, uint64_t* gap) {
    return *f.b == '+' && parse_dec(f.b + 1, f.e, gap) && *gap <= UINT32_MAX;
  }

  // "E WORD FIELDS... [+GAP]"
  void parse_event(const char* b, const char* e, const Field* fields, int count,
                   TraceRecord* r) {
    if (count < 2) fail_event(b, e, nullptr, "no event after E");
    const std::string_view word = view(fields[1].b, fields[1].e);
    const EventLayout* layout = nullptr;
    OsEventKind kind{};
    for (int k = 0; k < kOsEventKinds; ++k) {
      if (word == to_string(static_cast<OsEventKind>(k))) {
        kind = static_cast<OsEventKind>(k);
        layout = &event_layout(kind);
      }
    }
    if (!layout) {
      fail_event(b, e, nullptr, fmt::format("event {}", quote(fields[1].b, fields[1].e)));
    }
    int args = count - 2;
    uint64_t gap = 0;
    if (args > 0 && *fields[count - 1].b == '+') {
      if (!parse_gap(fields[count - 1], &gap)) {
        fail_event(b, e, layout,
                   fmt::format("gap {}", quote(fields[count - 1].b, fields[count - 1].e)));
      }
      --args;
    }
    if (args != layout->count) {
      fail_event(b, e, layout, fmt::format("{} field{} after '{}'", args, args == 1 ? "" : "s",
                                           word));
    }
    // The field names, for messages, are the syntax's words after "E WORD".
    const std::string syntax = layout->syntax;
    size_t name_at = syntax.find(' ', 2) + 1;
    uint64_t values[kMaxEventFields];
    for (int i = 0; i < args; ++i) {
      const size_t name_end = std::min(syntax.find(' ', name_at), syntax.size());
      const std::string name = syntax.substr(name_at, name_end - name_at);
      name_at = name_end + 1;
      const Field& f = fields[2 + i];
      const std::string_view text = view(f.b, f.e);
      bool ok = false;
      switch (layout->fields[i]) {
        case EventField::kStream:
          ok = parse_dec(f.b, f.e, &values[i]) && values[i] <= UINT32_MAX;
          break;
        case EventField::kHow:
          for (auto o : {StreamOrigin::kFork, StreamOrigin::kVfork, StreamOrigin::kThread}) {
            if (text == to_string(o)) {
              values[i] = static_cast<uint64_t>(o);
              ok = true;
            }
          }
          break;
        case EventField::kAddress: ok = parse_0x(f.b, f.e, &values[i]); break;
        case EventField::kProt: {
          uint8_t prot;
          ok = parse_prot(text, &prot);
          values[i] = prot;
          break;
        }
        case EventField::kMmapFlags:
        case EventField::kMremapFlags: {
          uint32_t flags;
          ok = layout->fields[i] == EventField::kMmapFlags ? parse_mmap_flags(text, &flags)
                                                           : parse_mremap_flags(text, &flags);
          values[i] = flags;
          break;
        }
      }
      if (!ok) fail_event(b, e, layout, fmt::format("{} {}", name, quote(f.b, f.e)));
    }
    OsEvent event;
    std::string problem;
    if (!event_from_fields(kind, values, &event, &problem)) fail_event(b, e, layout, problem);
    *r = TraceRecord{RefKind::kEvent, 0, static_cast<uint32_t>(gap), events_.size()};
    events_.push_back(event);
  }

  [[noreturn]] void fail(const char* b, const char* e, const std::string& what) const {
    throw Error(fmt::format("{}:{}: {} in {}; expected 'KIND ADDRESS SIZE [+GAP]' with KIND R, W "
                            "or F, ADDRESS 0x and 1..16 hex digits, SIZE 1..255, GAP +0..+{}; or "
                            "an OS event 'E WHAT ...'", lines_.path(), lines_.line(), what,
                            quote(b, e), UINT32_MAX));
  }

  // layout null: the event word itself is wrong.
  [[noreturn]] void fail_event(const char* b, const char* e, const EventLayout* layout,
                               const std::string& what) const {
    std::string expected;
    if (!layout) {
      expected = "'E WHAT ...' with WHAT one of";
      for (int k = 0; k < kOsEventKinds; ++k) {
        expected += fmt::format("{} {}", k ? "," : "", to_string(static_cast<OsEventKind>(k)));
      }
    } else {
      expected = fmt::format("'{} [+GAP]'", layout->syntax);
      bool said[6] = {};
      for (int i = 0; i < layout->count; ++i) {
        const int f = static_cast<int>(layout->fields[i]);
        if (said[f]) continue;
        said[f] = true;
        static const char* const kHelp[] = {
            "stream ids decimal 0..4294967295", "HOW fork, vfork or thread",
            "addresses and lengths 0x and 1..16 hex digits",
            "PROT three letters r, w, x or - (like rw-)",
            ("FLAGS a comma-separated list of shared or private, and fixed, anonymous, "
             "growsdown, populate, stack"),
            "FLAGS - or a comma-separated list of maymove, fixed, dontunmap"};
        expected += fmt::format(", {}", kHelp[f]);
      }
    }
    throw Error(fmt::format("{}:{}: {} in {}; expected {}", lines_.path(), lines_.line(), what,
                            quote(b, e), expected));
  }

  LineReader lines_;
  std::vector<OsEvent> events_;
};

class TextWriter final : public TraceWriter {
 public:
  TextWriter(std::unique_ptr<ByteSink> sink, std::string path)
      : out_(std::move(sink)), path_(std::move(path)) {
    const char header[] =
        "# shadowsim text trace (sstx 1): KIND ADDRESS SIZE [+GAP] or E EVENT FIELDS [+GAP]\n";
    out_.append(header, sizeof header - 1);
  }

  using TraceWriter::write;
  void write(const TraceRecord* records, size_t n, const OsEvent* events,
             size_t n_events) override {
    if (closed_) throw Error(fmt::format("{}: write after close", path_));
    for (size_t i = 0; i < n; ++i) {
      const TraceRecord& r = records[i];
      const unsigned kind = static_cast<unsigned>(r.kind);
      if (kind > 2 || r.size == 0) {
        if (r.kind == RefKind::kEvent) {
          const OsEvent& e = event_to_write(path_, records_, r, events, n_events);
          std::string line = "E " + event_text(e);
          if (r.gap) line += fmt::format(" +{}", r.gap);
          line += '\n';
          out_.append(line.data(), line.size());
          ++records_;
          ++events_;
          continue;
        }
        throw Error(fmt::format("{}: record {}: kind {} size {}; expected kind 0..3 and size "
                                "1..255 (0 for an event)", path_, records_, kind, r.size));
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
  uint64_t events() const override { return events_; }

 private:
  OutputBuffer out_;
  std::string path_;
  uint64_t records_ = 0;
  uint64_t events_ = 0;
  bool closed_ = false;
};

// valgrind --tool=lackey --trace-mem=yes: "I  04016f0,3" (fetch), " L a,s" (load), " S a,s"
// (store), " M a,s" (modify: a load then a store of the same bytes), "==PID== ..." and
// "--PID-- ..." (valgrind's own messages). Sizes above 255 (never seen from lackey) are refused
// rather than split. With --trace-syscalls=yes also "SYSCALL[PID,TID](NR) NAME ( ARGS ) --> R"
// lines, whose memory-management and process system calls become OS events
// (docs/trace-format.md has the mapping and real examples).
class LackeyReader final : public TraceReader {
 public:
  explicit LackeyReader(std::unique_ptr<InputBuffer> in) : lines_(std::move(in)) {}

  size_t read(TraceRecord* out, size_t max) override {
    events_.clear();
    out_ = out;
    max_ = max;
    n_ = 0;
    while (n_ < max && !queue_.empty()) {
      take(queue_.front());
      queue_.pop_front();
    }
    const char* b;
    const char* e;
    while (n_ < max) {
      if (!lines_.next(&b, &e)) {
        if (pending_.nr >= 0) resolve_without_result();
        break;
      }
      line(b, e);
    }
    return n_;
  }

  const std::vector<OsEvent>& events() const override { return events_; }
  const std::string& path() const override { return lines_.path(); }

 private:
  // Linux x86-64 system call numbers that become events.
  enum : int { kMmap = 9, kMprotect = 10, kMunmap = 11, kBrk = 12, kMremap = 25, kClone = 56,
               kFork = 57, kVfork = 58, kExecve = 59, kExit = 60, kWait4 = 61,
               kExitGroup = 231 };
  static constexpr uint64_t kCloneVm = 0x100, kCloneVfork = 0x4000;

  struct Call {  // a system call whose result is still to come
    int nr = -1;
    uint64_t tid = 0;
    uint64_t args[6] = {};
    int nargs = 0;
  };
  struct Result {
    enum Kind { kNone, kAsync, kSuccess, kFailure } kind = kNone;
    uint64_t value = 0;
  };
  struct Queued {  // records that did not fit the caller's batch
    TraceRecord record;
    OsEvent event;
  };

  void take(const Queued& q) {
    TraceRecord r = q.record;
    if (r.kind == RefKind::kEvent) {
      r.va = events_.size();
      events_.push_back(q.event);
    }
    out_[n_++] = r;
  }
  void put(const TraceRecord& r) {  // a reference
    if (n_ < max_) {
      out_[n_++] = r;
    } else {
      queue_.push_back({r, {}});
    }
  }
  void put_event(const OsEvent& event) {
    const Queued q{{RefKind::kEvent, 0, 0, 0}, event};
    if (n_ < max_) {
      take(q);
    } else {
      queue_.push_back(q);
    }
  }

  void line(const char* b, const char* e) {
    const char* p = b;
    while (p != e && *p == ' ') ++p;
    const bool continuation = e - p >= 3 && p[0] == '-' && p[1] == '-' && p[2] == '>';
    if (pending_.nr >= 0 && !continuation) resolve_without_result();
    if (is_valgrind_message(b, e)) return;
    if (p == e) return;  // blank
    if (continuation) {
      if (pending_.nr >= 0) {
        Call c = pending_;
        pending_.nr = -1;
        finish(c, result_of(b, b, e), b, e);
      }
      return;
    }
    if (*b == 'S' && e - b >= 8 && std::memcmp(b, "SYSCALL[", 8) == 0) {
      syscall(b, e);
      return;
    }
    // --trace-sched=yes: valgrind's scheduler also prints "SCHEDSETJMP(line 1211) tid 1,
    // jumped=..." (without the --PID-- prefix) when a signal interrupts a blocking call.
    if (*b == 'S' && e - b >= 12 && std::memcmp(b, "SCHEDSETJMP(", 12) == 0) return;
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
    put(r);
    if (kind == 'M') {
      r.kind = RefKind::kWrite;
      put(r);
    }
  }

  // "SYSCALL[PID,TID](NR) NAME ( ARGS ) --> RESULT", "... --> [async] ...", the completion
  // "SYSCALL[PID,TID](NR) ... [async] --> RESULT", or no result on the line (fork's "created
  // child" note, an execve that replaced the image, a result on a " --> " line that follows).
  void syscall(const char* b, const char* e) {
    uint64_t pid, tid, nr;
    const char* p = number_until(b + 8, e, ',', &pid);
    if (p) p = number_until(p, e, ']', &tid);
    if (p && (p == e || *p++ != '(')) p = nullptr;
    if (p) p = number_until(p, e, ')', &nr);
    if (!p || nr > 1000000) fail_syscall(b, e, "header");
    if (pid_ == 0) {
      pid_ = pid;
      pid_line_ = lines_.line();
    } else if (pid != pid_) {
      throw Error(fmt::format("{}:{}: a system call of process {}, but line {} had process {}: "
                              "one log must hold one process (record with "
                              "--log-file=NAME.%p)", lines_.path(), lines_.line(), pid,
                              pid_line_, pid_));
    }
    while (p != e && *p == ' ') ++p;
    if (e - p >= 3 && std::memcmp(p, "...", 3) == 0) {  // completion of an async call
      const auto it = async_.find(tid);
      if (it == async_.end() || it->second.nr != static_cast<int>(nr)) return;
      const Call c = it->second;
      async_.erase(it);
      finish(c, result_of(p, b, e), b, e);
      return;
    }
    Call c;
    c.nr = static_cast<int>(nr);
    c.tid = tid;
    switch (c.nr) {
      case kMmap: parse_args(p, b, e, 6, 6, &c); break;
      case kMprotect: parse_args(p, b, e, 3, 3, &c); break;
      case kMunmap: parse_args(p, b, e, 2, 2, &c); break;
      case kMremap: parse_args(p, b, e, 4, 5, &c); break;
      case kClone: parse_args(p, b, e, 1, 6, &c); break;
      case kBrk: case kFork: case kVfork: case kExecve: case kExit: case kExitGroup:
      case kWait4: break;
      default: return;  // not an event
    }
    const Result res = result_of(p, b, e);
    if (res.kind == Result::kAsync) {
      async_[tid] = c;
    } else if (res.kind != Result::kNone) {
      finish(c, res, b, e);
    } else if (const char* child = find(p, e, " created child ")) {  // fork succeeded
      uint64_t pid_of_child;
      const char* ce = child + 15;
      while (ce != e && *ce >= '0' && *ce <= '9') ++ce;
      if (!parse_dec(child + 15, ce, &pid_of_child)) fail_syscall(b, e, "child id");
      finish(c, {Result::kSuccess, pid_of_child}, b, e);
    } else {
      pending_ = c;
    }
  }

  // A call without a result when the next line is not a " --> " continuation: an execve that
  // succeeded (the new image does not return to valgrind's log); anything else is dropped.
  void resolve_without_result() {
    if (pending_.nr == kExecve) finish(pending_, {Result::kSuccess, 0}, nullptr, nullptr);
    pending_.nr = -1;
  }

  void finish(const Call& c, const Result& res, const char* b, const char* e) {
    if (res.kind == Result::kAsync) {  // " --> [async] ..." on a continuation line
      async_[c.tid] = c;
      return;
    }
    if (res.kind != Result::kSuccess) return;  // failed: no event
    const uint64_t* a = c.args;
    switch (c.nr) {
      case kMmap: {
        uint32_t flags = 0;
        switch (a[3] & 3) {
          case 1: case 3: flags = OsEvent::kMapShared; break;  // 3: MAP_SHARED_VALIDATE
          case 2: flags = OsEvent::kMapPrivate; break;
          default: fail_syscall(b, e, "mmap flags without MAP_SHARED or MAP_PRIVATE");
        }
        if (a[3] & 0x10) flags |= OsEvent::kMapFixed;
        if (a[3] & 0x20) flags |= OsEvent::kMapAnonymous;
        if (a[3] & 0x100) flags |= OsEvent::kMapGrowsDown;
        if (a[3] & (0x8000 | 0x2000)) flags |= OsEvent::kMapPopulate;  // MAP_POPULATE, MAP_LOCKED
        if (a[3] & 0x20000) flags |= OsEvent::kMapStack;
        put_event(OsEvent::mmap(res.value, a[1], a[2] & OsEvent::kProtAll, flags));
        break;
      }
      case kMprotect: put_event(OsEvent::mprotect(a[0], a[1], a[2] & OsEvent::kProtAll)); break;
      case kMunmap: put_event(OsEvent::munmap(a[0], a[1])); break;
      case kBrk: put_event(OsEvent::brk(res.value)); break;
      case kMremap:
        put_event(OsEvent::mremap(a[0], a[1], res.value, a[2],
                                  static_cast<uint32_t>(a[3] & OsEvent::kMremapKnown)));
        break;
      case kClone:
      case kFork:
      case kVfork: {
        const StreamOrigin how = c.nr == kFork                ? StreamOrigin::kFork
                                 : c.nr == kVfork             ? StreamOrigin::kVfork
                                 : (a[0] & kCloneVfork)       ? StreamOrigin::kVfork
                                 : (a[0] & kCloneVm)          ? StreamOrigin::kThread
                                                              : StreamOrigin::kFork;
        if (res.value > UINT32_MAX) fail_syscall(b, e, "child id above 2^32-1");
        if (how == StreamOrigin::kThread) ++threads_;
        put_event(OsEvent::create(static_cast<uint32_t>(res.value), how));
        break;
      }
      case kExecve:
        threads_ = 1;  // exec ends the other threads
        put_event(OsEvent::exec());
        break;
      case kExit:  // one thread: the stream ends only with its last thread
        if (threads_ > 1) {
          --threads_;
          break;
        }
        put_event(OsEvent::exit());
        break;
      case kExitGroup: put_event(OsEvent::exit()); break;
      case kWait4:  // a child was reaped: its pid is the result (0: WNOHANG, nothing yet)
        if (res.value > 0 && res.value <= UINT32_MAX) {
          put_event(OsEvent::wait_for(static_cast<uint32_t>(res.value)));
        }
        break;
    }
  }

  // Decimal digits up to `stop`; the position after it, or nullptr.
  static const char* number_until(const char* p, const char* e, char stop, uint64_t* v) {
    const char* s = static_cast<const char*>(std::memchr(p, stop, static_cast<size_t>(e - p)));
    return s && parse_dec(p, s, v) ? s + 1 : nullptr;
  }

  static const char* find(const char* b, const char* e, const char* what) {
    const std::string_view line = view(b, e);
    const size_t at = line.find(what);
    return at == std::string_view::npos ? nullptr : b + at;
  }

  // "( A, B, ... )" after the name: 0x-prefixed values are hex, others decimal, except clone's
  // flags, which valgrind prints in hex without the prefix.
  void parse_args(const char* p, const char* b, const char* e, int min, int max, Call* c) const {
    const char* const arrow = find(p, e, "-->");
    const char* const limit = arrow ? arrow : e;  // not the result's parentheses
    const char* open =
        static_cast<const char*>(std::memchr(p, '(', static_cast<size_t>(limit - p)));
    const char* close =
        open ? static_cast<const char*>(std::memchr(open, ')', static_cast<size_t>(limit - open)))
             : nullptr;
    if (!close) fail_syscall(b, e, "no argument list");
    c->nargs = 0;
    for (const char* a = open + 1; a < close;) {
      const char* end =
          static_cast<const char*>(std::memchr(a, ',', static_cast<size_t>(close - a)));
      if (!end) end = close;
      const char* tb = a;
      const char* te = end;
      while (tb != te && *tb == ' ') ++tb;
      while (te != tb && te[-1] == ' ') --te;
      a = end + 1;
      if (tb == te && end == close && c->nargs == 0) break;  // "( )"
      if (c->nargs == max) {
        fail_syscall(b, e, fmt::format("more than {} arguments", max));
      }
      uint64_t& v = c->args[c->nargs++];
      const bool ok = c->nr == kClone && c->nargs == 1 ? parse_hex(tb, te, &v)
                      : te - tb > 2 && tb[1] == 'x'    ? parse_0x(tb, te, &v)
                                                       : parse_dec(tb, te, &v);
      if (!ok) fail_syscall(b, e, fmt::format("argument {} {}", c->nargs, quote(tb, te)));
    }
    if (c->nargs < min) {
      fail_syscall(b, e, fmt::format("{} argument{}; expected {}{}", c->nargs,
                                     c->nargs == 1 ? "" : "s", min == max ? "" : "at least ",
                                     min));
    }
  }

  // The result after the last "-->" in [p, e): "[pre-success] Success(0x4835000)", "Failure(0x2)",
  // "[async] ...".
  Result result_of(const char* p, const char* b, const char* e) const {
    const std::string_view line = view(p, e);
    const size_t arrow = line.rfind("-->");
    if (arrow == std::string_view::npos) return {};
    std::string_view r = line.substr(arrow + 3);
    while (!r.empty() && r.front() == ' ') r.remove_prefix(1);
    if (r.substr(0, 7) == "[async]") return {Result::kAsync, 0};
    if (!r.empty() && r.front() == '[') {
      const size_t close = r.find(']');
      r.remove_prefix(close == std::string_view::npos ? r.size() : close + 1);
      while (!r.empty() && r.front() == ' ') r.remove_prefix(1);
    }
    Result res;
    if (r.substr(0, 8) == "Success(") {
      res.kind = Result::kSuccess;
    } else if (r.substr(0, 8) == "Failure(") {
      res.kind = Result::kFailure;
    } else {
      fail_syscall(b, e, "result");
    }
    const size_t close = r.find(')');
    if (close == std::string_view::npos ||
        !parse_0x(r.data() + 8, r.data() + close, &res.value)) {
      fail_syscall(b, e, "result value");
    }
    return res;
  }

  static bool is_valgrind_message(const char* b, const char* e) {  // "==1234==...", "--1234--..."
    if (e - b < 5 || (b[0] != '=' && b[0] != '-') || b[1] != b[0]) return false;
    const char* p = b + 2;
    while (p != e && *p >= '0' && *p <= '9') ++p;
    return p != b + 2 && e - p >= 2 && p[0] == b[0] && p[1] == b[0];
  }

  [[noreturn]] void fail(const char* b, const char* e, const std::string& what) const {
    throw Error(fmt::format("{}:{}: not a lackey trace line ({}) in {}; expected 'I  ADDR,SIZE', "
                            "' L ADDR,SIZE', ' S ADDR,SIZE', ' M ADDR,SIZE' (ADDR hex without "
                            "0x, SIZE 1..255), a '==PID==' message or a 'SYSCALL[PID,TID](NR) "
                            "...' line", lines_.path(), lines_.line(), what, quote(b, e)));
  }

  [[noreturn]] void fail_syscall(const char* b, const char* e, const std::string& what) const {
    throw Error(fmt::format("{}:{}: not a valgrind system call line ({}) in {}; expected "
                            "'SYSCALL[PID,TID](NR) NAME ( ARGS ) --> RESULT' as "
                            "--trace-syscalls=yes writes it", lines_.path(), lines_.line(), what,
                            b ? quote(b, e) : std::string("(end of log)")));
  }

  LineReader lines_;
  std::vector<OsEvent> events_;
  std::deque<Queued> queue_;
  TraceRecord* out_ = nullptr;  // the current read()'s batch
  size_t max_ = 0;
  size_t n_ = 0;
  Call pending_;  // nr -1: none
  std::unordered_map<uint64_t, Call> async_;  // by valgrind thread id
  uint64_t pid_ = 0;       // of the log's system calls; 0 until the first
  uint64_t pid_line_ = 0;  // where it was first seen
  uint64_t threads_ = 1;   // live threads of the process: exit() ends the stream with the last
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
