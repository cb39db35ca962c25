#include "workloads/perf_script.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <unordered_map>

#include <fmt/format.h>

#include "common/error.h"
#include "workloads/byte_stream.h"
#include "workloads/locality_model.h"
#include "workloads/trace_formats.h"
#include "workloads/trace_manifest.h"
#include "workloads/trace_writer.h"

namespace shadowsim {
namespace {

namespace fs = std::filesystem;
using std::string_view;

constexpr const char* kExpectedLine =
    "expected 'COMM TID [CPU] SECONDS.FRACTION: EVENT: FIELDS' or 'COMM PID/TID [CPU] ...' as "
    "perf script prints it";

struct KnownEvent {
  const char* name;
  PerfEventKind kind;
};
constexpr KnownEvent kKnown[] = {
    {"exceptions:page_fault_user", PerfEventKind::kPageFault},
    {"tlb:tlb_flush", PerfEventKind::kTlbFlush},
    {"sched:sched_process_fork", PerfEventKind::kFork},
    {"sched:sched_process_exec", PerfEventKind::kExec},
    {"sched:sched_process_exit", PerfEventKind::kExit},
    {"sched:sched_switch", PerfEventKind::kSwitch},
    {"syscalls:sys_enter_mmap", PerfEventKind::kMmap},
    {"syscalls:sys_exit_mmap", PerfEventKind::kMmapResult},
    {"syscalls:sys_enter_munmap", PerfEventKind::kMunmap},
    {"syscalls:sys_enter_mprotect", PerfEventKind::kMprotect},
    {"syscalls:sys_enter_brk", PerfEventKind::kBrk},
    {"syscalls:sys_exit_brk", PerfEventKind::kBrkResult},
    {"syscalls:sys_enter_mremap", PerfEventKind::kMremap},
    {"syscalls:sys_exit_mremap", PerfEventKind::kMremapResult},
    {"syscalls:sys_enter_madvise", PerfEventKind::kMadvise},
    {"syscalls:sys_enter_clone", PerfEventKind::kClone},
    {"syscalls:sys_enter_clone3", PerfEventKind::kClone3},
    {"syscalls:sys_enter_fork", PerfEventKind::kForkCall},
    {"syscalls:sys_enter_vfork", PerfEventKind::kVforkCall},
};
static_assert(sizeof kKnown / sizeof kKnown[0] == kPerfEventKinds - 1, "one name per kind");

// How many arguments each system call entry must print (the tracepoint's fields).
int expected_args(PerfEventKind k) {
  switch (k) {
    case PerfEventKind::kMmap: return 6;
    case PerfEventKind::kMunmap: return 2;
    case PerfEventKind::kMprotect: return 3;
    case PerfEventKind::kBrk: return 1;
    case PerfEventKind::kMremap: return 5;
    case PerfEventKind::kMadvise: return 3;
    case PerfEventKind::kClone: return 5;
    case PerfEventKind::kClone3: return 2;
    case PerfEventKind::kForkCall:
    case PerfEventKind::kVforkCall: return 0;
    default: return -1;
  }
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

string_view trim(string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool parse_u64(string_view s, int base, uint64_t* v) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v, base);
  return ec == std::errc() && p == s.data() + s.size();
}

// "0x1f" (hex) or "-1"/"12" (decimal, possibly negative).
bool parse_int(string_view s, int64_t* v) {
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    uint64_t u;
    if (!parse_u64(s.substr(2), 16, &u)) return false;
    *v = static_cast<int64_t>(u);
    return true;
  }
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v, 10);
  return !s.empty() && ec == std::errc() && p == s.data() + s.size();
}

bool parse_hex0x(string_view s, uint64_t* v) {
  return s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') &&
         parse_u64(s.substr(2), 16, v);
}

// The value of "KEY=VALUE" among space-separated fields: KEY at the start or after a space,
// VALUE up to the next space. Empty if absent.
bool find_key(string_view fields, string_view key, string_view* value) {
  size_t from = 0;
  for (;;) {
    const size_t at = fields.find(key, from);
    if (at == string_view::npos) return false;
    const size_t after = at + key.size();
    if ((at == 0 || fields[at - 1] == ' ') && after < fields.size() && fields[after] == '=') {
      size_t end = fields.find(' ', after + 1);
      if (end == string_view::npos) end = fields.size();
      *value = fields.substr(after + 1, end - after - 1);
      return true;
    }
    from = at + 1;
  }
}

}  // namespace

const char* to_string(PerfEventKind kind) {
  for (const KnownEvent& k : kKnown) {
    if (k.kind == kind) return k.name;
  }
  return "other";
}

PerfScriptReader::PerfScriptReader(const std::string& path) : path_(path) {
  if (!fs::is_regular_file(path)) throw Error(fmt::format("{}: no such file", path));
  lines_ = std::make_unique<LineReader>(std::make_unique<InputBuffer>(
      is_zstd_file(path) ? zstd_source(path) : file_source(path), path));
}

PerfScriptReader::~PerfScriptReader() = default;

bool PerfScriptReader::next(PerfRecord* r) {
  const char* b;
  const char* e;
  string_view line;
  do {
    if (!lines_->next(&b, &e)) return false;
    line = string_view(b, static_cast<size_t>(e - b));
  } while (trim(line).empty());
  *r = PerfRecord{};
  r->line = lines_->line();
  auto fail = [&](const std::string& what) {
    const std::string shown = line.size() > 160 ? std::string(line.substr(0, 160)) + "..."
                                                : std::string(line);
    throw Error(fmt::format("{}:{}: {} in '{}'; {}", path_, r->line, what, shown, kExpectedLine));
  };

  // " [CPU] " preceded by the TID (or PID/TID) token.
  size_t open = string_view::npos;
  for (size_t at = line.find(" ["); at != string_view::npos; at = line.find(" [", at + 1)) {
    size_t p = at + 2;
    while (p < line.size() && line[p] >= '0' && line[p] <= '9') ++p;
    if (p > at + 2 && p < line.size() && line[p] == ']') {
      open = at + 1;
      break;
    }
  }
  if (open == string_view::npos) fail("no '[CPU]' field");
  const size_t close = line.find(']', open);
  uint64_t cpu;
  if (!parse_u64(line.substr(open + 1, close - open - 1), 10, &cpu) || cpu > UINT32_MAX) {
    fail("CPU");
  }
  r->cpu = static_cast<uint32_t>(cpu);
  string_view head = trim(line.substr(0, open));
  const size_t space = head.find_last_of(" \t");
  const string_view ids = space == string_view::npos ? head : head.substr(space + 1);
  r->comm = space == string_view::npos ? string_view() : trim(head.substr(0, space));
  const size_t slash = ids.find('/');
  uint64_t tid = 0, pid = 0;
  if (slash == string_view::npos) {
    if (!parse_u64(ids, 10, &tid)) fail(fmt::format("TID '{}'", ids));
  } else {
    if (!parse_u64(ids.substr(0, slash), 10, &pid) || !parse_u64(ids.substr(slash + 1), 10, &tid) ||
        pid > UINT32_MAX) {
      fail(fmt::format("PID/TID '{}'", ids));
    }
    r->pid = static_cast<int64_t>(pid);
  }
  if (tid > UINT32_MAX) fail(fmt::format("TID {} above 2^32-1", tid));
  r->tid = static_cast<uint32_t>(tid);

  // "SECONDS.FRACTION:"
  string_view rest = trim(line.substr(close + 1));
  const size_t colon = rest.find(':');
  if (colon == string_view::npos) fail("no timestamp");
  const string_view stamp = rest.substr(0, colon);
  const size_t dot = stamp.find('.');
  uint64_t secs, frac = 0;
  if (dot == string_view::npos || !parse_u64(stamp.substr(0, dot), 10, &secs) ||
      stamp.size() - dot - 1 > 9 || !parse_u64(stamp.substr(dot + 1), 10, &frac)) {
    fail(fmt::format("timestamp '{}'", stamp));
  }
  for (size_t digits = stamp.size() - dot - 1; digits < 9; ++digits) frac *= 10;
  r->time_ns = secs * 1000000000ULL + frac;

  // "EVENT:" then the fields.
  rest = trim(rest.substr(colon + 1));
  size_t name_end = 0;
  while (name_end < rest.size() && !is_space(rest[name_end])) ++name_end;
  string_view event = rest.substr(0, name_end);
  if (event.size() < 2 || event.back() != ':') fail("no 'EVENT:' after the timestamp");
  event.remove_suffix(1);
  r->event = event;
  const string_view fields = trim(rest.substr(name_end));
  for (const KnownEvent& k : kKnown) {
    if (event == k.name) r->kind = k.kind;
  }

  auto need = [&](string_view key, string_view* v) {
    if (!find_key(fields, key, v)) fail(fmt::format("{}: no '{}='", event, key));
  };
  auto need_u64 = [&](string_view key, int base, uint64_t* out) {
    string_view v;
    need(key, &v);
    const bool ok = base == 16 ? parse_hex0x(v, out) : parse_u64(v, 10, out);
    if (!ok) fail(fmt::format("{}: {}={}", event, key, v));
  };
  uint64_t v;
  switch (r->kind) {
    case PerfEventKind::kPageFault:
      need_u64("address", 16, &r->address);
      need_u64("ip", 16, &r->ip);
      need_u64("error_code", 16, &r->error_code);
      break;
    case PerfEventKind::kTlbFlush: {
      // "pages:1 reason:local MM shootdown (3)"
      const size_t reason = fields.find(" reason:");
      if (fields.substr(0, 6) != "pages:" || reason == string_view::npos ||
          !parse_int(fields.substr(6, reason - 6), &r->pages)) {
        fail("tlb_flush: expected 'pages:N reason:TEXT (N)'");
      }
      r->reason_text = trim(fields.substr(reason + 8));
      const size_t lp = r->reason_text.rfind('(');
      uint64_t n = 0;
      if (lp == string_view::npos || r->reason_text.back() != ')' ||
          !parse_u64(r->reason_text.substr(lp + 1, r->reason_text.size() - lp - 2), 10, &n)) {
        fail("tlb_flush: expected 'pages:N reason:TEXT (N)'");
      }
      r->reason = static_cast<int>(n);
      break;
    }
    case PerfEventKind::kFork:
      need_u64("child_pid", 10, &v);
      if (v > UINT32_MAX) fail("child_pid above 2^32-1");
      r->child = static_cast<uint32_t>(v);
      break;
    case PerfEventKind::kExec: {
      const size_t at = fields.rfind(" pid=");
      if (fields.substr(0, 9) != "filename=" || at == string_view::npos) {
        fail("sched_process_exec: expected 'filename=PATH pid=N old_pid=N'");
      }
      r->filename = fields.substr(9, at - 9);
      break;
    }
    case PerfEventKind::kExit: {
      string_view g;
      if (find_key(fields, "group_dead", &g)) {
        if (g != "true" && g != "false" && g != "1" && g != "0") {
          fail(fmt::format("sched_process_exit: group_dead={}", g));
        }
        r->group_dead = g == "true" || g == "1";
      }
      break;
    }
    case PerfEventKind::kSwitch: {
      const size_t arrow = fields.find(" ==> ");
      if (arrow == string_view::npos) fail("sched_switch: no ' ==> '");
      const string_view prev = fields.substr(0, arrow), next = fields.substr(arrow + 5);
      string_view p, n, s;
      uint64_t pt = 0, nt = 0;  // set when the condition below holds (fail() throws)
      if (!find_key(prev, "prev_pid", &p) || !find_key(next, "next_pid", &n) ||
          !find_key(prev, "prev_state", &s) || !parse_u64(p, 10, &pt) || !parse_u64(n, 10, &nt) ||
          pt > UINT32_MAX || nt > UINT32_MAX) {
        fail("sched_switch: expected 'prev_comm=C prev_pid=N prev_prio=N prev_state=S ==> "
             "next_comm=C next_pid=N next_prio=N'");
      }
      r->prev_tid = static_cast<uint32_t>(pt);
      r->next_tid = static_cast<uint32_t>(nt);
      r->prev_state = s;
      break;
    }
    case PerfEventKind::kMmapResult:
    case PerfEventKind::kBrkResult:
    case PerfEventKind::kMremapResult:
      if (!parse_hex0x(fields, &r->result)) {
        fail(fmt::format("{}: result '{}'; expected 0x and hex digits", event, fields));
      }
      break;
    case PerfEventKind::kOther: break;
    default: {  // system call entries: "name: 0x..., name: 0x..."
      const int want = expected_args(r->kind);
      string_view f = fields;
      while (!f.empty()) {
        size_t comma = f.find(", ");
        const string_view item = f.substr(0, comma);
        f = comma == string_view::npos ? string_view() : f.substr(comma + 2);
        const size_t c = item.find(": ");
        if (c == string_view::npos || r->nargs == 6 ||
            !parse_hex0x(trim(item.substr(c + 2)), &r->args[r->nargs])) {
          fail(fmt::format("{}: argument '{}'; expected 'NAME: 0xHEX, ...'", event, item));
        }
        ++r->nargs;
      }
      if (r->nargs != want) {
        fail(fmt::format("{}: {} arguments; expected {}", event, r->nargs, want));
      }
    }
  }
  return true;
}

namespace {

// Which tasks are threads, and how each task was created: the first pass of the importer and the
// summary. A task *instance* is one life of a TID (TIDs are reused in a long build).
struct Instance {
  uint32_t tid = 0;
  uint32_t stream = 0;           // tid + generation * 2^22
  int64_t parent = -1;           // instance index
  PerfEventKind call = PerfEventKind::kOther;  // the parent's creating system call, if recorded
  uint64_t clone_flags = 0;
  int64_t tgid = -1;             // when the lines have PID/TID
  int group_dead = -1;           // from its exit
  std::string comm;              // the last name seen
  std::string filename;          // of its last exec
  bool exited = false;
  StreamOrigin origin = StreamOrigin::kInitial;
};

constexpr int kFlushOnTaskSwitch = 0;  // tlb:tlb_flush reason TLB_FLUSH_ON_TASK_SWITCH
constexpr uint64_t kCloneVm = 0x100, kCloneVfork = 0x4000, kCloneThread = 0x10000;
constexpr uint32_t kTidSpace = 1u << 22;  // Linux's PID_MAX_LIMIT

class TaskTable {
 public:
  // The instance a record belongs to (created as an initial task if the TID is new).
  size_t of(const PerfRecord& r) {
    auto it = current_.find(r.tid);
    if (it != current_.end()) return it->second;
    return add(r.tid, -1, r);
  }
  // A fork record in `parent`'s context.
  size_t fork(size_t parent, const PerfRecord& r) {
    Instance& p = instances_[parent];
    const PerfEventKind call = pending_call_[p.tid];
    const uint64_t flags = pending_flags_[p.tid];
    pending_call_.erase(p.tid);
    const size_t child = add(r.child, static_cast<int64_t>(parent), r);
    instances_[child].call = call;
    instances_[child].clone_flags = flags;
    instances_[child].tgid = -1;
    return child;
  }
  void note(size_t i, const PerfRecord& r) {
    Instance& in = instances_[i];
    if (r.pid >= 0) in.tgid = r.pid;
    if (!r.comm.empty()) in.comm = std::string(r.comm);
    switch (r.kind) {
      case PerfEventKind::kClone:
        pending_call_[r.tid] = r.kind;
        pending_flags_[r.tid] = r.args[0];
        break;
      case PerfEventKind::kClone3:
      case PerfEventKind::kForkCall:
      case PerfEventKind::kVforkCall:
        pending_call_[r.tid] = r.kind;
        pending_flags_[r.tid] = 0;
        break;
      case PerfEventKind::kExec: in.filename = std::string(r.filename); break;
      case PerfEventKind::kExit:
        in.group_dead = r.group_dead;
        in.exited = true;
        break;
      default: break;
    }
  }
  // After the whole file: each created instance's origin.
  void resolve() {
    for (Instance& in : instances_) {
      if (in.parent < 0) continue;
      const Instance& p = instances_[static_cast<size_t>(in.parent)];
      const bool same_group = in.tgid >= 0 && p.tgid >= 0 && in.tgid == p.tgid;
      const bool thread_exit = in.group_dead == 0;
      switch (in.call) {
        case PerfEventKind::kClone:
          in.origin = (in.clone_flags & kCloneThread) ||
                              ((in.clone_flags & kCloneVm) && !(in.clone_flags & kCloneVfork))
                          ? StreamOrigin::kThread
                      : (in.clone_flags & kCloneVfork) ? StreamOrigin::kVfork
                                                       : StreamOrigin::kFork;
          break;
        case PerfEventKind::kVforkCall: in.origin = StreamOrigin::kVfork; break;
        case PerfEventKind::kForkCall: in.origin = StreamOrigin::kFork; break;
        case PerfEventKind::kClone3:  // glibc: pthread_create or posix_spawn (CLONE_VM|CLONE_VFORK)
          in.origin = same_group || thread_exit ? StreamOrigin::kThread : StreamOrigin::kVfork;
          break;
        default:  // not recorded: a thread if it shows as one, else a fork
          in.origin = same_group || thread_exit ? StreamOrigin::kThread : StreamOrigin::kFork;
      }
    }
  }
  std::vector<Instance>& instances() { return instances_; }
  // The current instance of a TID, SIZE_MAX if none.
  size_t current(uint32_t tid) const {
    const auto it = current_.find(tid);
    return it == current_.end() ? SIZE_MAX : it->second;
  }
  void restart() {  // for the second pass: the same instances, in the same order
    current_.clear();
    pending_call_.clear();
    pending_flags_.clear();
    replay_ = true;
    next_ = 0;
  }

 private:
  size_t add(uint32_t tid, int64_t parent, const PerfRecord& r) {
    if (replay_) {
      const size_t i = next_++;
      if (i >= instances_.size() || instances_[i].tid != tid) {
        throw Error(fmt::format("line {}: the file changed between the two passes", r.line));
      }
      current_[tid] = i;
      return i;
    }
    const uint32_t generation = generations_[tid]++;
    const uint64_t stream = tid + uint64_t{generation} * kTidSpace;
    if (tid >= kTidSpace || stream > UINT32_MAX) {
      throw Error(fmt::format("line {}: TID {} (life {}) gives no stream id below 2^32", r.line,
                              tid, generation + 1));
    }
    Instance in;
    in.tid = tid;
    in.stream = static_cast<uint32_t>(stream);
    in.parent = parent;
    instances_.push_back(in);
    current_[tid] = instances_.size() - 1;
    return instances_.size() - 1;
  }

  std::vector<Instance> instances_;
  std::unordered_map<uint32_t, size_t> current_;
  std::unordered_map<uint32_t, uint32_t> generations_;
  std::unordered_map<uint32_t, PerfEventKind> pending_call_;
  std::unordered_map<uint32_t, uint64_t> pending_flags_;
  bool replay_ = false;
  size_t next_ = 0;
};

// One pass over the file that keeps the task table; `each` sees every record with its instance.
template <typename F>
void scan(PerfScriptReader& reader, TaskTable& tasks, F each) {
  PerfRecord r;
  while (reader.next(&r)) {
    const size_t i = tasks.of(r);
    tasks.note(i, r);
    size_t child = SIZE_MAX;
    if (r.kind == PerfEventKind::kFork) child = tasks.fork(i, r);
    each(r, i, child);
  }
}

}  // namespace

PerfSummary summarize_perf_script(const std::string& path) {
  PerfSummary s;
  PerfScriptReader reader(path);
  TaskTable tasks;
  scan(reader, tasks, [&](const PerfRecord& r, size_t, size_t) {
    if (s.lines == 0) s.first_ns = r.time_ns;
    s.first_ns = std::min(s.first_ns, r.time_ns);
    s.last_ns = std::max(s.last_ns, r.time_ns);
    ++s.lines;
    ++s.by_kind[static_cast<int>(r.kind)];
    ++s.records_by_cpu[r.cpu];
    switch (r.kind) {
      case PerfEventKind::kPageFault: ++s.faults_by_error_code[r.error_code]; break;
      case PerfEventKind::kTlbFlush:
        ++s.flushes_by_reason[std::string(r.reason_text)];
        if (r.pages < 0) {
          ++s.full_flushes;
          ++s.full_flushes_by_reason[std::string(r.reason_text)];
        } else {
          s.flushed_pages += static_cast<uint64_t>(r.pages);
          s.flushed_pages_by_reason[std::string(r.reason_text)] += static_cast<uint64_t>(r.pages);
          if (r.pages == 0) ++s.empty_flushes_by_reason[std::string(r.reason_text)];
        }
        break;
      case PerfEventKind::kOther: ++s.other_events[std::string(r.event)]; break;
      default: break;
    }
  });
  tasks.resolve();
  for (const Instance& in : tasks.instances()) {
    if (in.origin == StreamOrigin::kThread) {
      ++s.threads_created;
    } else {
      ++s.processes;
    }
  }
  s.tasks = tasks.instances().size();
  return s;
}

PerfImportResult import_perf_script(const std::string& path, const std::string& manifest_path,
                                    const PerfImportOptions& options) {
  if (fs::path(manifest_path).extension() != ".json") {
    throw Error(fmt::format("{}: expected a manifest name ending in .json", manifest_path));
  }
  if (!(options.ghz > 0) || !(options.ipc > 0)) {
    throw Error(fmt::format("ghz {} and ipc {}: expected both above 0", options.ghz, options.ipc));
  }
  const fs::path out_dir = fs::absolute(manifest_path).parent_path();
  fs::create_directories(out_dir);
  PerfImportResult result;
  result.manifest = manifest_path;

  // Pass 1: the task instances and their origins; whether mremap results were recorded.
  TaskTable tasks;
  bool mremap_results = false;
  {
    PerfScriptReader reader(path);
    scan(reader, tasks, [&](const PerfRecord& r, size_t, size_t) {
      mremap_results |= r.kind == PerfEventKind::kMremapResult;
    });
  }
  tasks.resolve();
  std::vector<Instance>& inst = tasks.instances();
  if (inst.empty()) throw Error(fmt::format("{}: no events", path));

  // Pass 2: one stream per instance.
  struct Stream {
    std::unique_ptr<TraceWriter> writer;
    uint64_t last_ns = 0;
    bool off_cpu = true;    // not running: its clock restarts at a switch to it or its next record
    double pending = 0;     // instructions since its last written record
    uint64_t last_ip = 0;   // of its last fault, for filler records
    PerfRecord call;        // a system call entry waiting for its exit
    bool has_call = false;
    bool closed = false;    // exited: nothing more is written
    std::unique_ptr<LocalityGenerator> locality;  // with a model: its synthetic references
    std::string comm;       // the comm its locality program was chosen by
    // Its CPU time by CPU (the time counted into its instructions) and the CPU of its first
    // record: the manifest's "cpu" is the CPU with the most time, else the first.
    std::vector<std::pair<uint32_t, uint64_t>> ns_by_cpu;
    int64_t first_cpu = -1;
    uint32_t fork_cpu = 0;  // of the fork that created it: for a task without records
  };
  uint32_t max_cpu = 0;
  std::vector<Stream> streams(inst.size());
  const double per_ns = options.ghz * options.ipc;
  TraceWriteOptions wopts;
  wopts.zstd_level = options.zstd_level;
  std::vector<std::string> files(inst.size());
  uint64_t records = 0;
  LocalityModel model;
  const bool synthesize = !options.locality.empty();
  if (synthesize) model = load_locality_model(options.locality);
  std::vector<TraceRecord> synthetic;
  auto file_of = [&](size_t i) { return fmt::format("{}.sst.zst", inst[i].stream); };
  auto open = [&](size_t i) {
    files[i] = file_of(i);
    streams[i].writer = create_trace((out_dir / files[i]).string(), wopts);
    if (synthesize) {
      streams[i].locality = std::make_unique<LocalityGenerator>(options.seed, inst[i].stream);
    }
  };
  // Writes r after the stream's pending instructions: first the synthetic references of the
  // locality model standing for them (if any), then r, splitting a gap above 2^32-1 with fetch
  // records at the stream's last faulting IP. The model then learns what r did.
  auto put = [&](size_t i, TraceRecord rec, const OsEvent* event) {
    Stream& s = streams[i];
    if (s.closed) return;
    if (event && !event_problem(*event).empty()) return;  // e.g. a range past 2^64: no change
    uint64_t gap = static_cast<uint64_t>(std::llround(s.pending));
    s.pending = 0;
    if (s.locality) {
      synthetic.clear();
      double modelled = 0;
      const size_t n =
          s.locality->generate(gap, options.refs_per_event, &synthetic, &gap, &modelled);
      result.modelled += modelled;
      if (n) {
        s.writer->write(synthetic.data(), n);
        for (const TraceRecord& x : synthetic) {
          result.instructions += instructions_of(x);
          ++result.synthetic_by_kind[static_cast<int>(x.kind)];
        }
        result.synthetic += n;
        result.synthetic_by_program[s.locality->program()->name] += n;
        records += n;
      }
    }
    while (gap > UINT32_MAX && s.last_ip) {
      const TraceRecord filler{RefKind::kFetch, 1, UINT32_MAX, s.last_ip};
      s.writer->write(filler);
      gap -= uint64_t{UINT32_MAX} + 1;
      ++result.fillers;
      result.instructions += uint64_t{UINT32_MAX} + 1;
    }
    gap = std::min<uint64_t>(gap, UINT32_MAX);
    rec.gap = static_cast<uint32_t>(gap);
    result.instructions += instructions_of(rec);
    if (event) {
      s.writer->write_event(*event, rec.gap);
      ++result.events_by_kind[static_cast<int>(event->kind)];
      if (s.locality) s.locality->event(*event);
    } else {
      s.writer->write(rec);
      ++result.references;
      if (s.locality) s.locality->touch(rec.kind, rec.va);
    }
    ++records;
  };
  auto put_event = [&](size_t i, const OsEvent& e) { put(i, TraceRecord{}, &e); };
  auto mmap_flags = [](uint64_t f, uint32_t* out) {
    switch (f & 3) {
      case 1: case 3: *out = OsEvent::kMapShared; break;
      case 2: *out = OsEvent::kMapPrivate; break;
      default: return false;
    }
    if (f & 0x10) *out |= OsEvent::kMapFixed;
    if (f & 0x20) *out |= OsEvent::kMapAnonymous;
    if (f & 0x100) *out |= OsEvent::kMapGrowsDown;
    if (f & (0x8000 | 0x2000)) *out |= OsEvent::kMapPopulate;
    if (f & 0x20000) *out |= OsEvent::kMapStack;
    return true;
  };
  constexpr uint64_t kErrorResults = 4095;  // -1..-4095: a failed system call

  try {
    tasks.restart();
    PerfScriptReader reader(path);
    scan(reader, tasks, [&](const PerfRecord& r, size_t i, size_t child) {
      Stream& s = streams[i];
      if (!s.writer && !s.closed) open(i);
      if (s.first_cpu < 0) s.first_cpu = r.cpu;
      max_cpu = std::max(max_cpu, r.cpu);
      if (s.locality && (s.comm != r.comm || !s.locality->program())) {  // a new task or an exec
        s.comm = std::string(r.comm);
        s.locality->set_program(&model.lookup(s.comm));
      }
      // The "flush on task switch" flush is traced inside the switch, still in the context of
      // the task switched out: not a sign that it runs.
      if (r.kind == PerfEventKind::kTlbFlush && r.reason == kFlushOnTaskSwitch) return;
      // CPU time since the stream's last record. A task switched out (a sched_switch in its
      // context) runs again from a recorded switch to it, or else (switched in by an untraced
      // task or the idle task: not recorded) from this record: the time between its wake-up and
      // its first record is not counted. Without sched_switch records all time counts.
      const uint64_t from = s.off_cpu ? r.time_ns : s.last_ns;
      if (r.time_ns > from) {
        s.pending += static_cast<double>(r.time_ns - from) * per_ns;
        auto on = std::find_if(s.ns_by_cpu.begin(), s.ns_by_cpu.end(),
                               [&](const auto& c) { return c.first == r.cpu; });
        if (on == s.ns_by_cpu.end()) on = s.ns_by_cpu.insert(on, {r.cpu, 0});
        on->second += r.time_ns - from;
      }
      s.off_cpu = false;
      s.last_ns = r.time_ns;

      switch (r.kind) {
        case PerfEventKind::kPageFault: {
          const RefKind kind = (r.error_code & 0x10)  ? RefKind::kFetch
                               : (r.error_code & 0x2) ? RefKind::kWrite
                                                      : RefKind::kRead;
          put(i, TraceRecord{kind, options.access_size, 0, r.address}, nullptr);
          s.last_ip = r.ip;
          break;
        }
        case PerfEventKind::kFork: {
          open(child);
          streams[child].off_cpu = true;  // not running until a switch to it or its first record
          streams[child].fork_cpu = r.cpu;
          put_event(i, OsEvent::create(inst[child].stream, inst[child].origin));
          ++result.created_by_origin[static_cast<int>(inst[child].origin)];
          break;
        }
        case PerfEventKind::kExec: put_event(i, OsEvent::exec()); break;
        case PerfEventKind::kExit:
          if (s.closed) break;  // a second exit of an ended task (its TID not reused by a fork)
          put_event(i, OsEvent::exit());
          s.writer->close();
          s.writer.reset();  // its buffers: a build has thousands of tasks, a few alive at once
          s.locality.reset();
          s.closed = true;
          break;
        case PerfEventKind::kSwitch: {
          if (r.prev_tid == r.tid) s.off_cpu = true;
          const size_t next = tasks.current(r.next_tid);
          if (next != SIZE_MAX && next != i && !streams[next].closed) {
            streams[next].off_cpu = false;  // it runs from now
            streams[next].last_ns = r.time_ns;
          }
          break;
        }
        case PerfEventKind::kMmap:
        case PerfEventKind::kBrk:
          s.call = r;
          s.has_call = true;
          break;
        case PerfEventKind::kMremap:
          if (mremap_results) {
            s.call = r;
            s.has_call = true;
          } else {  // no results recorded: assume it succeeded, in place unless MREMAP_FIXED
            const uint64_t to = (r.args[3] & OsEvent::kMremapFixed) ? r.args[4] : r.args[0];
            put_event(i, OsEvent::mremap(r.args[0], r.args[1], to, r.args[2],
                                         static_cast<uint32_t>(r.args[3] & OsEvent::kMremapKnown)));
          }
          break;
        case PerfEventKind::kMmapResult:
        case PerfEventKind::kBrkResult:
        case PerfEventKind::kMremapResult: {
          const PerfEventKind want = r.kind == PerfEventKind::kMmapResult   ? PerfEventKind::kMmap
                                     : r.kind == PerfEventKind::kBrkResult ? PerfEventKind::kBrk
                                                                            : PerfEventKind::kMremap;
          if (!s.has_call || s.call.kind != want) {
            ++result.unmatched;
            break;
          }
          s.has_call = false;
          const uint64_t* a = s.call.args;
          if (r.result >= ~uint64_t{0} - kErrorResults + 1) break;  // failed: no change
          if (want == PerfEventKind::kMmap) {
            uint32_t flags;
            if (a[1] && mmap_flags(a[3], &flags)) {
              put_event(i, OsEvent::mmap(r.result, a[1], a[2] & OsEvent::kProtAll, flags));
            }
          } else if (want == PerfEventKind::kBrk) {
            put_event(i, OsEvent::brk(r.result));
          } else {
            put_event(i, OsEvent::mremap(a[0], a[1], r.result, a[2],
                                         static_cast<uint32_t>(a[3] & OsEvent::kMremapKnown)));
          }
          break;
        }
        // No exit recorded for these: assumed to succeed.
        case PerfEventKind::kMunmap:
          if (r.args[1]) put_event(i, OsEvent::munmap(r.args[0], r.args[1]));
          break;
        case PerfEventKind::kMprotect:
          if (r.args[1]) {
            put_event(i, OsEvent::mprotect(r.args[0], r.args[1],
                                           static_cast<uint8_t>(r.args[2] & OsEvent::kProtAll)));
          }
          break;
        default: break;  // flushes, madvise, clone entries, other events: no stream record
      }
    });
    for (Stream& s : streams) {
      if (s.writer) s.writer->close();
    }
  } catch (...) {
    std::error_code ec;
    for (size_t i = 0; i < streams.size(); ++i) {
      streams[i].writer.reset();
      if (!files[i].empty()) fs::remove(out_dir / files[i], ec);
    }
    throw;
  }

  TraceManifest m;
  m.paging_mode = PagingMode::k4Level;
  m.name = options.name.empty() ? fmt::format("perf {}", path) : options.name;
  m.cpus = max_cpu + 1;  // the highest CPU any record names, + 1
  for (size_t i = 0; i < inst.size(); ++i) {
    const Instance& in = inst[i];
    TraceStream s;
    s.id = in.stream;
    s.file = files[i];
    if (in.parent >= 0) s.parent = inst[static_cast<size_t>(in.parent)].stream;
    s.created = in.origin;
    s.name = in.comm;
    s.command = in.filename;
    // The CPU it spent the most CPU time on (the lowest of equals); with none counted (a task
    // with one record, or only records right after being switched in), its first record's; with
    // no record of its own, the CPU of the fork that created it.
    uint64_t most = 0;
    for (const auto& [cpu, ns] : streams[i].ns_by_cpu) {
      if (ns > most || (ns == most && most && cpu < *s.cpu)) {
        most = ns;
        s.cpu = cpu;
      }
    }
    if (!s.cpu) {
      s.cpu = streams[i].first_cpu >= 0 ? static_cast<uint32_t>(streams[i].first_cpu)
                                        : streams[i].fork_cpu;
    }
    ++result.streams_by_cpu[*s.cpu];
    if (m.command.empty() && in.parent < 0) m.command = in.filename;
    m.streams.push_back(std::move(s));
  }
  save_manifest(m, manifest_path);
  load_manifest(manifest_path);
  result.streams = inst.size();
  result.cpus = *m.cpus;
  (void)records;
  return result;
}

}  // namespace shadowsim
