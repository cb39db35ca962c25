#include "workloads/lackey_import.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string_view>

#include <fmt/format.h>

#include "common/error.h"
#include "workloads/trace_formats.h"
#include "workloads/trace_manifest.h"
#include "workloads/trace_reader.h"
#include "workloads/trace_writer.h"

namespace shadowsim {
namespace {

namespace fs = std::filesystem;

// "==1234== " at the start of [b, e): the PID, and where the text after the prefix starts.
bool valgrind_prefix(const char* b, const char* e, char mark, uint64_t* pid, const char** rest) {
  if (e - b < 5 || b[0] != mark || b[1] != mark) return false;
  const char* p = b + 2;
  uint64_t v = 0;
  while (p != e && *p >= '0' && *p <= '9') v = v * 10 + static_cast<uint64_t>(*p++ - '0');
  if (p == b + 2 || e - p < 2 || p[0] != mark || p[1] != mark) return false;
  p += 2;
  while (p != e && *p == ' ') ++p;
  *pid = v;
  *rest = p;
  return true;
}

// valgrind prints the command with spaces and shell characters escaped by a backslash.
std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) ++i;
    out += s[i];
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// "/usr/bin/cat Makefile" -> "cat".
std::string program_name(const std::string& command) {
  const std::string first = command.substr(0, command.find(' '));
  return fs::path(first).filename().string();
}

std::unique_ptr<InputBuffer> open_log(const std::string& path) {
  return std::make_unique<InputBuffer>(is_zstd_file(path) ? zstd_source(path) : file_source(path),
                                       path);
}

struct Converted {  // what the first pass learned about one log
  bool ends_in_exec = false;
  uint64_t records = 0;
  uint64_t events = 0;
  uint64_t by_kind[kOsEventKinds] = {};
  std::vector<std::pair<uint32_t, StreamOrigin>> creates;  // child pid, how
};

// Copies every record of `reader` to `writer`, noting what Converted needs.
void copy_stream(TraceReader& reader, TraceWriter& writer, Converted* c) {
  std::vector<TraceRecord> batch(4096);
  while (const size_t n = reader.read(batch.data(), batch.size())) {
    const std::vector<OsEvent>& events = reader.events();
    for (size_t i = 0; i < n; ++i) {
      const TraceRecord& r = batch[i];
      if (r.kind != RefKind::kEvent) continue;
      const OsEvent& e = events[r.va];
      ++c->events;
      ++c->by_kind[static_cast<int>(e.kind)];
      c->ends_in_exec = e.kind == OsEventKind::kExec;
      if (e.kind == OsEventKind::kCreate) c->creates.emplace_back(e.stream, e.how);
    }
    c->records += n;
    writer.write(batch.data(), n, events);
  }
}

// Removes the files it holds unless release()d: no half-written import is left behind.
class Cleanup {
 public:
  ~Cleanup() {
    std::error_code ec;
    for (const std::string& p : paths_) fs::remove(p, ec);
  }
  void add(const std::string& p) { paths_.push_back(p); }
  void keep(const std::string& p) { paths_.erase(std::remove(paths_.begin(), paths_.end(), p),
                                                  paths_.end()); }

 private:
  std::vector<std::string> paths_;
};

}  // namespace

LackeyLog read_lackey_header(const std::string& path) {
  LackeyLog log;
  log.path = path;
  LineReader lines(open_log(path));
  const char* b;
  const char* e;
  bool have_pid = false;
  while (lines.next(&b, &e)) {
    uint64_t pid;
    const char* rest;
    if (valgrind_prefix(b, e, '-', &pid, &rest)) continue;  // --PID-- messages (SCHED lines)
    if (!valgrind_prefix(b, e, '=', &pid, &rest)) {
      const char* p = b;
      while (p != e && *p == ' ') ++p;
      if (p == e) continue;
      log.forked_start = e - p >= 3 && std::memcmp(p, "-->", 3) == 0;
      break;
    }
    if (have_pid && pid != log.pid) {
      throw Error(fmt::format("{}:{}: valgrind message of process {} in the header of process {}",
                              path, lines.line(), pid, log.pid));
    }
    if (pid > UINT32_MAX) throw Error(fmt::format("{}:{}: PID {} above 2^32-1", path,
                                                  lines.line(), pid));
    log.pid = static_cast<uint32_t>(pid);
    have_pid = true;
    const std::string_view text(rest, static_cast<size_t>(e - rest));
    if (text.substr(0, 9) == "Command: ") {
      log.command = unescape(text.substr(9));
    } else if (text.substr(0, 12) == "Parent PID: ") {
      uint64_t parent = 0;
      const std::string_view digits = text.substr(12);
      bool ok = !digits.empty() && digits.size() <= 10;
      for (char c : digits) {
        if (c == ' ') break;
        ok = ok && c >= '0' && c <= '9';
        parent = parent * 10 + static_cast<uint64_t>(c - '0');
      }
      if (!ok || parent > UINT32_MAX) {
        throw Error(fmt::format("{}:{}: 'Parent PID: {}'; expected a decimal PID", path,
                                lines.line(), digits));
      }
      log.parent_pid = static_cast<uint32_t>(parent);
    }
    if (lines.line() > 1000) break;  // a header is a handful of lines
  }
  if (!have_pid) {
    throw Error(fmt::format("{}: no valgrind header ('==PID== Command: ...'); expected a log "
                            "written by valgrind --tool=lackey --log-file=DIR/%p.%n", path));
  }
  return log;
}

LackeyImportResult import_lackey_dir(const std::string& dir, const std::string& manifest_path,
                                     const LackeyImportOptions& options) {
  if (!fs::is_directory(dir)) {
    throw Error(fmt::format("{}: not a directory; expected the folder of a valgrind "
                            "--log-file=DIR/%p.%n recording", dir));
  }
  if (fs::path(manifest_path).extension() != ".json") {
    throw Error(fmt::format("{}: expected a manifest name ending in .json", manifest_path));
  }
  LackeyImportResult result;
  result.manifest = manifest_path;
  const fs::path out_dir = fs::absolute(manifest_path).parent_path();
  fs::create_directories(out_dir);

  // The logs, by PID, each with its header.
  static const std::regex kName(R"((\d{1,10})\.(\d{1,10})(\.lackey)?(\.zst)?)");
  std::map<uint32_t, std::vector<LackeyLog>> by_pid;
  std::vector<fs::path> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) names.push_back(entry.path());
  std::sort(names.begin(), names.end());
  for (const fs::path& p : names) {
    std::smatch m;
    const std::string name = p.filename().string();
    if (!fs::is_regular_file(p) || !std::regex_match(name, m, kName) ||
        std::stoull(m[1].str()) > UINT32_MAX || std::stoull(m[2].str()) > UINT32_MAX) {
      ++result.skipped_files;
      continue;
    }
    LackeyLog log = read_lackey_header(p.string());
    const uint32_t pid = static_cast<uint32_t>(std::stoull(m[1].str()));
    if (log.pid != pid) {
      throw Error(fmt::format("{}: the header is of process {}, the name says {}", log.path,
                              log.pid, pid));
    }
    log.seq = static_cast<uint32_t>(std::stoull(m[2].str()));
    by_pid[pid].push_back(std::move(log));
    ++result.logs;
  }
  if (by_pid.empty()) {
    throw Error(fmt::format("{}: no lackey logs named PID.N (or PID.N.zst); expected the folder "
                            "of a valgrind --log-file=DIR/%p.%n recording", dir));
  }

  Cleanup cleanup;
  TraceOpenOptions in_opts;
  in_opts.format = TraceFormat::kLackey;
  in_opts.fetches = options.fetches;
  TraceWriteOptions out_opts;
  out_opts.zstd_level = options.zstd_level;
  // child pid -> (creator pid, how, the creator's log), from every create event.
  struct Creation {
    uint32_t creator;
    StreamOrigin how;
    std::string log;
  };
  std::map<uint32_t, Creation> creations;

  for (auto& [pid, logs] : by_pid) {
    LackeyProcess proc;
    proc.pid = pid;
    proc.file = fmt::format("{}.sst.zst", pid);
    const std::string final_path = (out_dir / proc.file).string();
    cleanup.add(final_path);
    std::vector<Converted> conv(logs.size());
    if (logs.size() == 1) {  // one image: straight to the stream file
      auto reader = open_trace(logs[0].path, in_opts);
      auto writer = create_trace(final_path, out_opts);
      copy_stream(*reader, *writer, &conv[0]);
      writer->close();
    } else {  // several images: each to a temporary binary trace, joined below
      for (size_t i = 0; i < logs.size(); ++i) {
        const std::string tmp = (out_dir / fmt::format(".{}.{}.tmp.sst", pid, logs[i].seq)).string();
        cleanup.add(tmp);
        auto reader = open_trace(logs[i].path, in_opts);
        auto writer = create_trace(tmp, out_opts);
        copy_stream(*reader, *writer, &conv[i]);
        writer->close();
      }
    }
    std::vector<size_t> order(logs.size());
    for (size_t i = 0; i < logs.size(); ++i) {
      logs[i].ends_in_exec = conv[i].ends_in_exec;
      logs[i].records = conv[i].records;
      logs[i].events = conv[i].events;
      order[i] = i;
    }
    if (logs.size() > 1) {
      // The image that did not exec is the last; the one that starts as a forked child's
      // continuation is the first; images in between (a process that exec'd twice or more) go
      // by valgrind's sequence number. (%n does not follow exec order: a forked child's first
      // image often has the higher number.)
      size_t finals = 0, firsts = 0;
      for (const LackeyLog& l : logs) {
        finals += !l.ends_in_exec;
        firsts += l.forked_start;
      }
      if (finals > 1 || firsts > 1) {
        std::string list;
        for (const LackeyLog& l : logs) {
          list += fmt::format("\n  {}: {}{}", l.path, l.forked_start ? "starts a forked child, " : "",
                              l.ends_in_exec ? "ends in exec" : "does not end in exec");
        }
        throw Error(fmt::format("process {}: {} logs that cannot be one process's images in "
                                "order (at most one may lack a final exec, at most one may start "
                                "a forked child); was the folder recorded twice, or did PIDs "
                                "wrap?{}", pid, logs.size(), list));
      }
      const std::vector<LackeyLog>& images = logs;  // C++17: a lambda cannot capture `logs`
      std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const LackeyLog& x = images[a];
        const LackeyLog& y = images[b];
        if (x.forked_start != y.forked_start) return x.forked_start;
        if (x.ends_in_exec != y.ends_in_exec) return x.ends_in_exec;
        return x.seq < y.seq;
      });
      auto writer = create_trace(final_path, out_opts);
      for (size_t i : order) {
        const std::string tmp = (out_dir / fmt::format(".{}.{}.tmp.sst", pid, logs[i].seq)).string();
        auto reader = open_trace(tmp);
        Converted ignored;
        copy_stream(*reader, *writer, &ignored);
        fs::remove(tmp);
      }
      writer->close();
    }
    for (size_t i : order) {
      proc.logs.push_back(logs[i]);
      proc.records += conv[i].records;
      for (int k = 0; k < kOsEventKinds; ++k) proc.events_by_kind[k] += conv[i].by_kind[k];
      for (const auto& [child, how] : conv[i].creates) {
        creations[child] = {pid, how, logs[i].path};
      }
      result.records += conv[i].records;
      result.events += conv[i].events;
    }
    result.processes.push_back(std::move(proc));
  }

  // The process tree: the header's parent, and how the parent's create event asked for the child.
  for (LackeyProcess& proc : result.processes) {
    const LackeyLog& first = proc.logs.front();
    if (!first.parent_pid || !by_pid.count(*first.parent_pid)) continue;  // an initial process
    proc.parent = *first.parent_pid;
    const auto it = creations.find(proc.pid);
    if (it == creations.end()) {
      proc.created = StreamOrigin::kFork;
      ++result.children_without_create;
      continue;
    }
    if (it->second.creator != *proc.parent) {
      throw Error(fmt::format("{}: parent PID {}, but {} says process {} created it", first.path,
                              *proc.parent, it->second.log, it->second.creator));
    }
    if (it->second.how == StreamOrigin::kThread) {
      throw Error(fmt::format("{}: process {} has its own log, but {} created it as a thread",
                              first.path, proc.pid, it->second.log));
    }
    proc.created = it->second.how;
  }

  // Parents before children, roots by PID.
  TraceManifest manifest;
  manifest.paging_mode = PagingMode::k4Level;
  manifest.name = options.name.empty() ? fmt::format("lackey {}", dir) : options.name;
  std::map<uint32_t, std::vector<size_t>> children;
  std::deque<size_t> ready;
  for (size_t i = 0; i < result.processes.size(); ++i) {
    const LackeyProcess& p = result.processes[i];
    if (p.parent) {
      children[*p.parent].push_back(i);
    } else {
      ready.push_back(i);
    }
  }
  std::vector<LackeyProcess> ordered;
  while (!ready.empty()) {
    const size_t i = ready.front();
    ready.pop_front();
    ordered.push_back(result.processes[i]);
    for (size_t c : children[result.processes[i].pid]) ready.push_back(c);
  }
  if (ordered.size() != result.processes.size()) {
    throw Error(fmt::format("{}: the Parent PID headers form a cycle", dir));
  }
  result.processes = std::move(ordered);
  for (const LackeyProcess& p : result.processes) {
    TraceStream s;
    s.id = p.pid;
    s.file = p.file;
    s.parent = p.parent;
    s.created = p.created;
    s.command = p.logs.back().command;
    s.name = program_name(s.command);
    if (manifest.command.empty() && !p.parent) manifest.command = p.logs.front().command;
    manifest.streams.push_back(std::move(s));
  }
  save_manifest(manifest, manifest_path);
  load_manifest(manifest_path);  // the checks every consumer makes
  for (const LackeyProcess& p : result.processes) cleanup.keep((out_dir / p.file).string());
  return result;
}

}  // namespace shadowsim
