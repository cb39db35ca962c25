#include "workloads/trace_cli.h"

#include <boost/program_options.hpp>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "workloads/lackey_import.h"
#include "workloads/locality_model.h"
#include "workloads/perf_script.h"
#include "workloads/trace_manifest.h"
#include "workloads/trace_reader.h"
#include "workloads/trace_summary.h"
#include "workloads/trace_writer.h"

namespace shadowsim {
namespace {

namespace po = boost::program_options;
namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kUsage =
    "usage: shadowsim trace <sub-command> [options]\n\n"
    "sub-commands:\n"
    "  info FILE       record and OS-event counts, instructions, pages and address range of a\n"
    "                  trace or of each stream of a manifest\n"
    "  convert IN OUT  convert between formats (output format from OUT's extension) and import\n"
    "                  valgrind lackey output\n"
    "  head FILE       print the first records in the text format\n"
    "  import-lackey DIR -o OUT/manifest.json\n"
    "                  import a multi-process valgrind lackey recording (--log-file=DIR/%p.%n)\n"
    "  perf-info FILE  counts of a 'perf script' kernel-event stream (faults, flushes, ...)\n"
    "  perf-import FILE -o OUT/manifest.json [--locality MODEL.json]\n"
    "                  convert a 'perf script' kernel-event stream to a multi-stream workload\n"
    "  fit-locality INPUT... -o MODEL.json\n"
    "                  fit a page-level locality model per program to lackey recordings\n\n"
    "Run 'shadowsim trace <sub-command> --help' for its options. Formats: docs/trace-format.md.\n";

constexpr const char* kFromHelp = "input format: auto (default), binary, text, lackey";

// A usage error: reported with the sub-command's usage, exit status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Command {
  const char* name;
  const char* synopsis;
  const char* description;
  po::options_description options;
  po::positional_options_description positional;
  std::vector<std::string> positional_names;

  Command(const char* n, const char* s, const char* d) : name(n), synopsis(s), description(d),
                                                         options("options") {
    options.add_options()("help,h", "print this help");
  }
  void print_help(std::ostream& out) const {
    out << "usage: shadowsim trace " << name << ' ' << synopsis << "\n\n" << description << "\n\n"
        << options;
  }
  // Parses argv (argv[0] = sub-command); false if --help was given (help printed).
  bool parse(int argc, char** argv, po::variables_map& vm, std::ostream& out) {
    po::options_description all;
    all.add(options);
    po::options_description hidden;
    for (const std::string& p : positional_names) {
      hidden.add_options()(p.c_str(), po::value<std::string>(), "");
    }
    all.add(hidden);
    try {
      po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(),
                vm);
    } catch (const po::error& e) {
      throw UsageError(e.what());
    }
    if (vm.count("help")) {
      print_help(out);
      return false;
    }
    po::notify(vm);
    for (const std::string& p : positional_names) {
      if (!vm.count(p)) throw UsageError(fmt::format("missing argument {}", p));
    }
    return true;
  }
  void add_positional(const char* n) {
    positional.add(n, 1);
    positional_names.emplace_back(n);
  }
};

TraceOpenOptions open_options(const po::variables_map& vm) {
  TraceOpenOptions o;
  if (vm.count("from")) {
    try {
      o.format = trace_format_from_string(vm["from"].as<std::string>());
    } catch (const Error& e) {
      throw UsageError(fmt::format("--from: {}", e.what()));
    }
  }
  return o;
}

std::string describe_type(const std::string& path, const TraceOpenOptions& o) {
  if (o.format != TraceFormat::kAuto) return to_string(o.format);
  const TraceFileType t = detect_trace_type(path);
  return fmt::format("{}{}", to_string(t.format), t.zstd ? ", zstd-compressed" : "");
}

json summary_json(const TraceSummary& s) {
  json by_event = json::object();
  for (int k = 0; k < kOsEventKinds; ++k) {
    by_event[to_string(static_cast<OsEventKind>(k))] = s.by_event[k];
  }
  return json{{"records", s.records},
              {"reads", s.by_kind[static_cast<int>(RefKind::kRead)]},
              {"writes", s.by_kind[static_cast<int>(RefKind::kWrite)]},
              {"fetches", s.by_kind[static_cast<int>(RefKind::kFetch)]},
              {"events", s.events},
              {"events_by_kind", std::move(by_event)},
              {"instructions", s.instructions},
              {"pages", s.pages},
              {"code_pages", s.code_pages},
              {"data_pages", s.data_pages},
              {"min_va", s.min_va},
              {"max_va", s.max_va}};
}

// 1234567 -> "1,234,567": counts of millions read at a glance, independent of the locale.
std::string grouped(uint64_t v) {
  std::string digits = std::to_string(v);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(i, ",");
  return digits;
}

void print_summary(std::ostream& out, const TraceSummary& s, bool pages_are_sums) {
  out << fmt::format("  records       {:>13}   read {}, write {}, fetch {}, OS event {}\n",
                     grouped(s.records), grouped(s.by_kind[0]), grouped(s.by_kind[1]),
                     grouped(s.by_kind[2]), grouped(s.events));
  if (s.events) {
    std::string kinds;
    for (int k = 0; k < kOsEventKinds; ++k) {
      if (!s.by_event[k]) continue;
      kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ",
                           to_string(static_cast<OsEventKind>(k)), grouped(s.by_event[k]));
    }
    out << fmt::format("  OS events     {:>13}   {}\n", grouped(s.events), kinds);
  }
  out << fmt::format("  instructions  {:>13}\n", grouped(s.instructions));
  out << fmt::format("  pages         {:>13}   distinct 4 KiB pages{}: code {}, data {}\n",
                     grouped(s.pages), pages_are_sums ? ", summed over streams" : "",
                     grouped(s.code_pages), grouped(s.data_pages));
  if (s.records > s.events) {  // has references
    out << fmt::format("  addresses     {:#018x} .. {:#018x}\n", s.min_va, s.max_va);
  }
}

int info(int argc, char** argv, std::ostream& out) {
  Command cmd("info", "FILE [--json] [--from FORMAT]",
              "Reads a trace (or every stream of a manifest) to the end and prints its record\n"
              "counts by kind, OS events by kind, instruction count, distinct 4 KiB pages and\n"
              "address range.");
  cmd.options.add_options()("json", "print JSON instead of text")(
      "from", po::value<std::string>()->value_name("FORMAT"), kFromHelp);
  cmd.add_positional("FILE");
  po::variables_map vm;
  if (!cmd.parse(argc, argv, vm, out)) return 0;
  const std::string path = vm["FILE"].as<std::string>();
  const TraceOpenOptions opts = open_options(vm);
  const TraceManifest m = load_workload(path);
  const bool manifest = !m.path.empty();

  json streams = json::array();
  TraceSummary total;
  std::string text;
  if (manifest) {
    text += fmt::format("{}: manifest, {} stream{}, paging mode {}{}\n", path, m.streams.size(),
                        m.streams.size() == 1 ? "" : "s", to_string(m.paging_mode),
                        m.name.empty() ? "" : fmt::format(", name \"{}\"", m.name));
  }
  for (const TraceStream& s : m.streams) {
    const std::string type = describe_type(s.path, opts);
    auto reader = open_trace(s.path, opts);
    const TraceSummary sum = summarize_trace(*reader);
    total.add(sum);
    json j = summary_json(sum);
    j["file"] = s.path;
    j["format"] = type;
    if (manifest) {
      j["id"] = s.id;
      j["parent"] = s.parent ? json(*s.parent) : json(nullptr);
      j["created"] = to_string(s.created);
      text += fmt::format("stream {} ({}{}): {} ({})\n", s.id, to_string(s.created),
                          s.parent ? fmt::format(" by {}", *s.parent) : "", s.path, type);
    } else {
      text += fmt::format("{}: {} trace\n", s.path, type);
    }
    std::ostringstream block;
    print_summary(block, sum, false);
    text += block.str();
    streams.push_back(std::move(j));
  }
  if (manifest && m.streams.size() > 1) {
    std::ostringstream block;
    print_summary(block, total, true);
    text += "total\n" + block.str();
  }
  if (vm.count("json")) {
    json doc{{"manifest", manifest ? json(m.path) : json(nullptr)},
             {"paging_mode", manifest ? json(to_string(m.paging_mode)) : json(nullptr)},
             {"streams", std::move(streams)},
             {"total", summary_json(total)}};
    out << doc.dump(2, ' ', false, json::error_handler_t::replace) << '\n';
  } else {
    out << text;
  }
  return 0;
}

int convert(int argc, char** argv, std::ostream& out) {
  Command cmd("convert", "IN OUT [--from FORMAT] [--no-fetch] [--no-events] [--level N]",
              "Converts a trace. OUT's extension picks the output: .sst binary, .sst.zst binary\n"
              "compressed with zstd, .sstx text, .sstx.zst text compressed. IN may be valgrind\n"
              "lackey output (valgrind --tool=lackey --trace-mem=yes --log-file=F.lackey PROG),\n"
              "recognised by the extension .lackey or given with --from lackey (with\n"
              "--trace-syscalls=yes its memory-management and process system calls become OS\n"
              "events). OS events are kept unless --no-events is given.");
  cmd.options.add_options()("from", po::value<std::string>()->value_name("FORMAT"), kFromHelp)(
      "no-fetch", "drop fetch records, folding the instructions into the next record's gap")(
      "no-events", "drop OS-event records, folding their gaps into the next record's gap")(
      "level", po::value<int>()->default_value(TraceWriteOptions{}.zstd_level)->value_name("N"),
      "zstd compression level, 1..19");
  cmd.add_positional("IN");
  cmd.add_positional("OUT");
  po::variables_map vm;
  if (!cmd.parse(argc, argv, vm, out)) return 0;
  const std::string in_path = vm["IN"].as<std::string>();
  const std::string out_path = vm["OUT"].as<std::string>();
  TraceOpenOptions in_opts = open_options(vm);
  in_opts.fetches = !vm.count("no-fetch");
  in_opts.events = !vm.count("no-events");
  TraceWriteOptions out_opts;
  out_opts.zstd_level = vm["level"].as<int>();
  const TraceFileType out_type = trace_file_type(out_path);
  if (out_type.format != TraceFormat::kBinary && out_type.format != TraceFormat::kText) {
    throw UsageError(fmt::format("output {}: expected a name ending in .sst, .sst.zst, .sstx or "
                                 ".sstx.zst", out_path));
  }
  if (out_opts.zstd_level < 1 || out_opts.zstd_level > 19) {
    throw UsageError(fmt::format("--level {}: expected 1..19", out_opts.zstd_level));
  }
  std::error_code ec;
  if (fs::exists(out_path) && fs::equivalent(in_path, out_path, ec)) {
    throw UsageError(fmt::format("output {} is the input", out_path));
  }
  auto reader = open_trace(in_path, in_opts);
  std::unique_ptr<TraceWriter> writer = create_trace(out_path, out_opts);
  uint64_t instructions = 0;
  try {
    std::vector<TraceRecord> batch(4096);
    while (const size_t n = reader->read(batch.data(), batch.size())) {
      for (size_t i = 0; i < n; ++i) instructions += instructions_of(batch[i]);
      writer->write(batch.data(), n, reader->events());
    }
    writer->close();
  } catch (...) {
    writer.reset();
    fs::remove(out_path, ec);  // no half-written output left behind
    throw;
  }
  out << fmt::format("{} -> {}: {} records{}, {} instructions\n", in_path, out_path,
                     writer->records(),
                     writer->events() ? fmt::format(" ({} OS events)", writer->events()) : "",
                     instructions);
  return 0;
}

int head(int argc, char** argv, std::ostream& out) {
  Command cmd("head", "FILE [-n N] [--from FORMAT] [--stream ID]",
              "Prints the first N records (OS events included) of a trace in the text format\n"
              "(docs/trace-format.md), so the output is itself a valid .sstx trace. For a\n"
              "manifest, prints the stream given by --stream (default: the first one listed).");
  cmd.options.add_options()("lines,n", po::value<uint64_t>()->default_value(10)->value_name("N"),
                            "number of records")(
      "from", po::value<std::string>()->value_name("FORMAT"), kFromHelp)(
      "stream", po::value<uint32_t>()->value_name("ID"), "stream id, for a manifest");
  cmd.add_positional("FILE");
  po::variables_map vm;
  if (!cmd.parse(argc, argv, vm, out)) return 0;
  const std::string path = vm["FILE"].as<std::string>();
  const TraceManifest m = load_workload(path);
  const TraceStream* stream = &m.streams.front();
  if (vm.count("stream")) {
    const uint32_t id = vm["stream"].as<uint32_t>();
    stream = m.find(id);
    if (!stream) throw UsageError(fmt::format("--stream {}: {} has no stream {}", id, path, id));
  }
  auto reader = open_trace(stream->path, open_options(vm));
  uint64_t left = vm["lines"].as<uint64_t>();
  std::vector<TraceRecord> batch(4096);
  std::string text;
  while (left) {
    const size_t n = reader->read(batch.data(), std::min<uint64_t>(left, batch.size()));
    if (n == 0) break;
    for (size_t i = 0; i < n; ++i) {
      const TraceRecord& r = batch[i];
      if (r.kind == RefKind::kEvent) {
        text += "E " + event_text(reader->events()[r.va]);
      } else {
        text += fmt::format("{} {:#x} {}", kind_letter(r.kind), r.va, r.size);
      }
      if (r.gap) text += fmt::format(" +{}", r.gap);
      text += '\n';
    }
    out << text;
    text.clear();
    left -= n;
  }
  return 0;
}

int import_lackey(int argc, char** argv, std::ostream& out) {
  Command cmd("import-lackey", "DIR -o OUT/manifest.json [--no-fetch] [--level N] [--name NAME]",
              "Imports the folder a multi-process valgrind lackey recording wrote,\n"
              "  valgrind --tool=lackey --trace-mem=yes --trace-syscalls=yes --trace-children=yes \\\n"
              "           --log-file=DIR/%p.%n PROG ...\n"
              "(one log per process image, PID.N or PID.N.zst), into one workload: the manifest\n"
              "and one PID.sst.zst stream per process beside it. A process's images (before and\n"
              "after exec) are joined into one stream; the process tree comes from the Parent PID\n"
              "headers, and each child's origin (fork, vfork) from its parent's create event, as\n"
              "the program asked for it (valgrind runs vfork and posix_spawn as forks).");
  cmd.options.add_options()("output,o", po::value<std::string>()->value_name("MANIFEST"),
                            "the manifest to write (.json); streams go beside it")(
      "no-fetch", "drop fetch records, folding the instructions into the next record's gap")(
      "level", po::value<int>()->default_value(TraceWriteOptions{}.zstd_level)->value_name("N"),
      "zstd compression level of the streams, 1..19")(
      "name", po::value<std::string>()->value_name("NAME"), "the manifest's name");
  cmd.add_positional("DIR");
  po::variables_map vm;
  if (!cmd.parse(argc, argv, vm, out)) return 0;
  if (!vm.count("output")) throw UsageError("missing -o OUT/manifest.json");
  LackeyImportOptions opts;
  opts.fetches = !vm.count("no-fetch");
  opts.zstd_level = vm["level"].as<int>();
  if (opts.zstd_level < 1 || opts.zstd_level > 19) {
    throw UsageError(fmt::format("--level {}: expected 1..19", opts.zstd_level));
  }
  if (vm.count("name")) opts.name = vm["name"].as<std::string>();
  const LackeyImportResult r =
      import_lackey_dir(vm["DIR"].as<std::string>(), vm["output"].as<std::string>(), opts);
  uint64_t by_origin[4] = {};
  for (const LackeyProcess& p : r.processes) ++by_origin[static_cast<int>(p.created)];
  out << fmt::format("{}: {} processes from {} logs{}: {} initial, {} fork, {} vfork; {} records "
                     "({} OS events)\n",
                     r.manifest, r.processes.size(), r.logs,
                     r.skipped_files ? fmt::format(" ({} other files skipped)", r.skipped_files)
                                     : "",
                     by_origin[0], by_origin[1], by_origin[2], grouped(r.records),
                     grouped(r.events));
  for (const LackeyProcess& p : r.processes) {
    out << fmt::format("  {:>7} {:<8} {:>7} {:>2} image{} {:>13} records  {}\n", p.pid,
                       to_string(p.created), p.parent ? std::to_string(*p.parent) : "-",
                       p.logs.size(), p.logs.size() == 1 ? " " : "s", grouped(p.records),
                       p.logs.back().command);
  }
  if (r.children_without_create) {
    out << fmt::format("note: {} children have no create event in their parent's log (a log cut "
                       "short?); taken as forks\n", r.children_without_create);
  }
  return 0;
}

std::string seconds(uint64_t ns) { return fmt::format("{:.6f} s", static_cast<double>(ns) / 1e9); }

int perf_info(int argc, char** argv, std::ostream& out) {
  Command cmd("perf-info", "FILE [--json]",
              "Reads the text 'perf script' prints for the kernel-event recording of\n"
              "docs/workloads.md (page faults, TLB flushes, fork/exec/exit, context switches, mm\n"
              "system calls; optionally zstd-compressed) and prints its counts: faults by error\n"
              "code, flushes by reason, forks/execs/exits, system calls, tasks, processes, CPUs\n"
              "and the time it spans.");
  cmd.options.add_options()("json", "print JSON instead of text");
  cmd.add_positional("FILE");
  po::variables_map vm;
  if (!cmd.parse(argc, argv, vm, out)) return 0;
  const std::string path = vm["FILE"].as<std::string>();
  const PerfSummary s = summarize_perf_script(path);
  auto count = [&](PerfEventKind k) { return s.by_kind[static_cast<int>(k)]; };
  const uint64_t duration = s.last_ns - s.first_ns;
  if (vm.count("json")) {
    json faults = json::object(), flushes = json::object(), cpus = json::object(),
         other = json::object(), by_event = json::object();
    for (const auto& [code, n] : s.faults_by_error_code) faults[fmt::format("{:#x}", code)] = n;
    json flush_detail = json::object();
    for (const auto& [reason, n] : s.flushes_by_reason) {
      flushes[reason] = n;
      const std::string& key = reason;  // C++17 lambdas cannot capture a structured binding
      auto get = [&](const std::map<std::string, uint64_t>& m) {
        const auto it = m.find(key);
        return it == m.end() ? uint64_t{0} : it->second;
      };
      flush_detail[reason] = json{{"events", n},
                                  {"full", get(s.full_flushes_by_reason)},
                                  {"empty", get(s.empty_flushes_by_reason)},
                                  {"pages", get(s.flushed_pages_by_reason)}};
    }
    for (const auto& [cpu, n] : s.records_by_cpu) cpus[std::to_string(cpu)] = n;
    for (const auto& [name, n] : s.other_events) other[name] = n;
    for (int k = 0; k < kPerfEventKinds - 1; ++k) {
      by_event[to_string(static_cast<PerfEventKind>(k))] = s.by_kind[k];
    }
    json doc{{"file", path},
             {"records", s.lines},
             {"events", by_event},
             {"other_events", other},
             {"faults", count(PerfEventKind::kPageFault)},
             {"faults_by_error_code", faults},
             {"flushes", count(PerfEventKind::kTlbFlush)},
             {"flushes_by_reason", flushes},
             {"flush_detail", flush_detail},
             {"full_flushes", s.full_flushes},
             {"flushed_pages", s.flushed_pages},
             {"forks", count(PerfEventKind::kFork)},
             {"execs", count(PerfEventKind::kExec)},
             {"exits", count(PerfEventKind::kExit)},
             {"switches", count(PerfEventKind::kSwitch)},
             {"tasks", s.tasks},
             {"processes", s.processes},
             {"threads_created", s.threads_created},
             {"cpus", s.records_by_cpu.size()},
             {"records_by_cpu", cpus},
             {"first_ns", s.first_ns},
             {"last_ns", s.last_ns},
             {"duration_ns", duration}};
    out << doc.dump(2, ' ', false, json::error_handler_t::replace) << '\n';
    return 0;
  }
  out << fmt::format("{}: perf script, {} records over {} on {} CPU{}\n", path, grouped(s.lines),
                     seconds(duration), s.records_by_cpu.size(),
                     s.records_by_cpu.size() == 1 ? "" : "s");
  out << fmt::format("  tasks        {:>11}   processes {}, threads created {}\n",
                     grouped(s.tasks), grouped(s.processes), grouped(s.threads_created));
  out << fmt::format("  forks        {:>11}   execs {}, exits {}, context switches {}\n",
                     grouped(count(PerfEventKind::kFork)), grouped(count(PerfEventKind::kExec)),
                     grouped(count(PerfEventKind::kExit)),
                     grouped(count(PerfEventKind::kSwitch)));
  std::string codes;
  for (const auto& [code, n] : s.faults_by_error_code) {
    codes += fmt::format("{}{:#x} {}", codes.empty() ? "" : ", ", code, grouped(n));
  }
  out << fmt::format("  user faults  {:>11}   by error code: {}\n",
                     grouped(count(PerfEventKind::kPageFault)), codes.empty() ? "-" : codes);
  out << fmt::format("  TLB flushes  {:>11}   full {}, pages {}\n",
                     grouped(count(PerfEventKind::kTlbFlush)), grouped(s.full_flushes),
                     grouped(s.flushed_pages));
  for (const auto& [reason, n] : s.flushes_by_reason) {
    const std::string& key = reason;  // C++17 lambdas cannot capture a structured binding
    auto get = [&](const std::map<std::string, uint64_t>& m) {
      const auto it = m.find(key);
      return it == m.end() ? uint64_t{0} : it->second;
    };
    out << fmt::format("    {:>11}   {} (full {}, no flush {}, pages {})\n", grouped(n), reason,
                       grouped(get(s.full_flushes_by_reason)),
                       grouped(get(s.empty_flushes_by_reason)),
                       grouped(get(s.flushed_pages_by_reason)));
  }
  out << fmt::format("  mm calls     mmap {}, munmap {}, mprotect {}, brk {}, mremap {}, madvise "
                     "{}\n",
                     grouped(count(PerfEventKind::kMmap)), grouped(count(PerfEventKind::kMunmap)),
                     grouped(count(PerfEventKind::kMprotect)),
                     grouped(count(PerfEventKind::kBrk)), grouped(count(PerfEventKind::kMremap)),
                     grouped(count(PerfEventKind::kMadvise)));
  out << fmt::format("  creations    clone {}, clone3 {}, fork {}, vfork {} (system call entries)\n",
                     grouped(count(PerfEventKind::kClone)), grouped(count(PerfEventKind::kClone3)),
                     grouped(count(PerfEventKind::kForkCall)),
                     grouped(count(PerfEventKind::kVforkCall)));
  for (const auto& [name, n] : s.other_events) {
    out << fmt::format("  other        {:>11}   {}\n", grouped(n), name);
  }
  return 0;
}

int perf_import(int argc, char** argv, std::ostream& out) {
  const PerfImportOptions defaults;
  Command cmd("perf-import",
              "FILE -o OUT/manifest.json [--ghz F] [--ipc F] [--level N] [--name NAME]\n"
              "         [--locality MODEL.json [--refs-per-event N] [--seed N]]",
              "Converts a 'perf script' kernel-event stream into a multi-stream workload: one\n"
              "stream per task (TID), its recorded user page faults as references at the recorded\n"
              "address (fetch, write or read from the error code), fork/exec/exit and the mm system\n"
              "calls as OS events, and the instructions between two records of a task from its\n"
              "CPU time between them at --ghz x --ipc (assumptions; docs/trace-format.md).\n"
              "Nothing between the faults is recorded; with --locality, up to --refs-per-event\n"
              "synthetic references drawn from a fitted locality model (fit-locality) stand for\n"
              "the TLB traffic of each gap, on pages the task's own faults touched.");
  cmd.options.add_options()("output,o", po::value<std::string>()->value_name("MANIFEST"),
                            "the manifest to write (.json); streams go beside it")(
      "ghz", po::value<double>()->default_value(defaults.ghz)->value_name("F"),
      "assumed clock, GHz")(
      "ipc", po::value<double>()->default_value(defaults.ipc)->value_name("F"),
      "assumed instructions per cycle")(
      "level", po::value<int>()->default_value(defaults.zstd_level)->value_name("N"),
      "zstd compression level of the streams, 1..19")(
      "name", po::value<std::string>()->value_name("NAME"), "the manifest's name")(
      "locality", po::value<std::string>()->value_name("MODEL"),
      "locality model (JSON from fit-locality): synthetic references between events")(
      "refs-per-event",
      po::value<uint32_t>()->default_value(defaults.refs_per_event)->value_name("N"),
      "at most N synthetic references per gap between two records of a task")(
      "seed", po::value<uint64_t>()->default_value(defaults.seed)->value_name("N"),
      "seed of the synthetic references");
  cmd.add_positional("FILE");
  po::variables_map vm;
  if (!cmd.parse(argc, argv, vm, out)) return 0;
  if (!vm.count("output")) throw UsageError("missing -o OUT/manifest.json");
  PerfImportOptions opts;
  if (vm.count("locality")) opts.locality = vm["locality"].as<std::string>();
  opts.refs_per_event = vm["refs-per-event"].as<uint32_t>();
  opts.seed = vm["seed"].as<uint64_t>();
  if (opts.refs_per_event > 1000000) {
    throw UsageError(fmt::format("--refs-per-event {}: expected 0..1000000", opts.refs_per_event));
  }
  if (opts.locality.empty() && (!vm["refs-per-event"].defaulted() || !vm["seed"].defaulted())) {
    throw UsageError("--refs-per-event and --seed need --locality MODEL.json");
  }
  opts.ghz = vm["ghz"].as<double>();
  opts.ipc = vm["ipc"].as<double>();
  opts.zstd_level = vm["level"].as<int>();
  if (!(opts.ghz > 0 && opts.ghz < 1000) || !(opts.ipc > 0 && opts.ipc < 100)) {
    throw UsageError(fmt::format("--ghz {} --ipc {}: expected 0 < GHz < 1000 and 0 < IPC < 100",
                                 opts.ghz, opts.ipc));
  }
  if (opts.zstd_level < 1 || opts.zstd_level > 19) {
    throw UsageError(fmt::format("--level {}: expected 1..19", opts.zstd_level));
  }
  if (vm.count("name")) opts.name = vm["name"].as<std::string>();
  const PerfImportResult r =
      import_perf_script(vm["FILE"].as<std::string>(), vm["output"].as<std::string>(), opts);
  auto origin = [&](StreamOrigin o) {
    const auto it = r.created_by_origin.find(static_cast<int>(o));
    return it == r.created_by_origin.end() ? uint64_t{0} : it->second;
  };
  std::string kinds;
  for (int k = 0; k < kOsEventKinds; ++k) {
    if (!r.events_by_kind[k]) continue;
    kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ",
                         to_string(static_cast<OsEventKind>(k)), grouped(r.events_by_kind[k]));
  }
  out << fmt::format("{}: {} streams ({} fork, {} vfork, {} thread), {} fault references, OS "
                     "events: {}; {} instructions at {} GHz x IPC {}\n",
                     r.manifest, grouped(r.streams), origin(StreamOrigin::kFork),
                     origin(StreamOrigin::kVfork), origin(StreamOrigin::kThread),
                     grouped(r.references), kinds.empty() ? "none" : kinds,
                     grouped(r.instructions), opts.ghz, opts.ipc);
  std::string placed;
  for (const auto& [cpu, n] : r.streams_by_cpu) {
    placed += fmt::format("{}CPU {} {}", placed.empty() ? "" : ", ", cpu, grouped(n));
  }
  out << fmt::format("recorded on {} CPU(s); streams by the CPU they ran on most: {}\n", r.cpus,
                     placed);
  if (!opts.locality.empty()) {
    out << fmt::format("locality {}: {} synthetic references (read {}, write {}, fetch {}), at "
                       "most {} per gap; the model expected {} for the same instructions "
                       "(sampled 1 in {:.1f})\n",
                       opts.locality, grouped(r.synthetic),
                       grouped(r.synthetic_by_kind[static_cast<int>(RefKind::kRead)]),
                       grouped(r.synthetic_by_kind[static_cast<int>(RefKind::kWrite)]),
                       grouped(r.synthetic_by_kind[static_cast<int>(RefKind::kFetch)]),
                       opts.refs_per_event, grouped(static_cast<uint64_t>(r.modelled)),
                       r.synthetic ? r.modelled / static_cast<double>(r.synthetic) : 0.0);
    std::string by;
    for (const auto& [name, n] : r.synthetic_by_program) {
      by += fmt::format("{}{} {}", by.empty() ? "" : ", ", name, grouped(n));
    }
    if (!by.empty()) out << "  by fitted program: " << by << '\n';
  }
  if (r.unmatched) {
    out << fmt::format("note: {} system call exits without their entry were ignored\n",
                       r.unmatched);
  }
  return 0;
}

int fit_locality_command(int argc, char** argv, std::ostream& out) {
  Command cmd("fit-locality", "INPUT... -o MODEL.json [--max-records N]",
              "Fits a page-level locality model per program (docs/trace-format.md, \"Locality\n"
              "model\") to lackey recordings: a folder of a multi-process recording\n"
              "(--log-file=DIR/%p.%n; each log under its Command: program), a single .lackey[.zst]\n"
              "log, or a trace or manifest (a stream under its manifest name). For each program:\n"
              "instructions, page-level references (a reference to another page than the previous\n"
              "one) of fetches and of data, first touches, writes, and the LRU stack distances of\n"
              "the re-references. perf-import --locality uses it.");
  cmd.options.add_options()("output,o", po::value<std::string>()->value_name("MODEL"),
                            "the model to write (.json)")(
      "max-records", po::value<uint64_t>()->default_value(0)->value_name("N"),
      "fit only the first N records of each process image (0: all)")(
      "input", po::value<std::vector<std::string>>()->value_name("INPUT"), "");
  po::positional_options_description pos;
  pos.add("input", -1);
  cmd.positional = pos;
  po::variables_map vm;
  if (!cmd.parse(argc, argv, vm, out)) return 0;
  if (!vm.count("input")) throw UsageError("missing INPUT (a lackey folder, log or trace)");
  if (!vm.count("output")) throw UsageError("missing -o MODEL.json");
  const std::string model_path = vm["output"].as<std::string>();
  if (fs::path(model_path).extension() != ".json") {
    throw UsageError(fmt::format("-o {}: expected a name ending in .json", model_path));
  }
  LocalityFitOptions opts;
  opts.max_records = vm["max-records"].as<uint64_t>();
  LocalityModel model;
  for (const std::string& in : vm["input"].as<std::vector<std::string>>()) {
    fit_locality(in, opts, &model);
  }
  save_locality_model(model, model_path);
  out << fmt::format("{}: {} programs\n", model_path, model.programs.size());
  out << fmt::format("  {:<15} {:>6} {:>15} {:>9} {:>9} {:>7} {:>9} {:>9}\n", "program", "images",
                     "instructions", "code/ki", "data/ki", "writes", "code cold", "data cold");
  auto row = [&](const LocalityProgram& p) {
    out << fmt::format("  {:<15} {:>6} {:>15} {:>9.2f} {:>9.2f} {:>6.1f}% {:>9} {:>9}\n", p.name,
                       p.images, grouped(p.instructions), 1000 * p.code_rate(),
                       1000 * p.data_rate(), 100 * p.write_share(), grouped(p.code.cold),
                       grouped(p.data.cold));
  };
  for (const auto& [name, p] : model.programs) row(p);
  row(model.pooled);
  return 0;
}

}  // namespace

int run_trace_command(int argc, char** argv, std::ostream& out, std::ostream& err) {
  if (argc < 2) {
    err << kUsage;
    return 2;
  }
  const std::string sub = argv[1];
  if (sub == "--help" || sub == "-h" || sub == "help") {
    out << kUsage;
    return 0;
  }
  try {
    if (sub == "info") return info(argc - 1, argv + 1, out);
    if (sub == "convert") return convert(argc - 1, argv + 1, out);
    if (sub == "head") return head(argc - 1, argv + 1, out);
    if (sub == "import-lackey") return import_lackey(argc - 1, argv + 1, out);
    if (sub == "perf-info") return perf_info(argc - 1, argv + 1, out);
    if (sub == "perf-import") return perf_import(argc - 1, argv + 1, out);
    if (sub == "fit-locality") return fit_locality_command(argc - 1, argv + 1, out);
    err << fmt::format("shadowsim trace: unknown sub-command '{}'\n\n{}", sub, kUsage);
    return 2;
  } catch (const UsageError& e) {
    err << fmt::format("shadowsim trace {}: {}\nRun 'shadowsim trace {} --help' for usage.\n",
                       sub, e.what(), sub);
    return 2;
  } catch (const Error& e) {
    err << fmt::format("shadowsim trace {}: error: {}\n", sub, e.what());
    return 1;
  } catch (const std::exception& e) {  // filesystem and allocation failures
    err << fmt::format("shadowsim trace {}: error: {}\n", sub, e.what());
    return 1;
  }
}

}  // namespace shadowsim
