// The perf-script kernel-event importer (workloads/perf_script.h): the reader's records, the
// summary, the conversion to a workload, and bad lines.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <regex>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "trace_test_util.h"
#include "workloads/perf_script.h"
#include "workloads/trace_cli.h"
#include "workloads/trace_manifest.h"

namespace shadowsim {
namespace {

using test::error_of;
using test::Item;
using test::read_file;
using test::read_items;
using test::ScratchDir;
using test::write_file;

// Hand-written in perf script's format (perf-small.txt; -F comm,pid,tid,cpu,time,event,trace):
// make (1000) posix_spawns sh (1001: clone3, another thread group), which forks 1002 (clone
// without CLONE_VM), creates a thread 1003 (clone3, same thread group) and vforks 1004.
const std::string kSmall = std::string(SHADOWSIM_TEST_DATA_DIR) + "/perf-small.txt";

TEST(PerfScript, ReaderRecords) {
  PerfScriptReader reader(kSmall);
  std::vector<PerfRecord> all;
  std::vector<std::string> comms;
  PerfRecord r;
  while (reader.next(&r)) {
    all.push_back(r);
    comms.emplace_back(r.comm);
  }
  ASSERT_EQ(all.size(), 32u);  // 33 lines, one blank
  const PerfRecord& f = all[0];
  EXPECT_EQ(f.kind, PerfEventKind::kPageFault);
  EXPECT_EQ(f.line, 1u);
  EXPECT_EQ(comms[0], "make");
  EXPECT_EQ(f.pid, 1000);
  EXPECT_EQ(f.tid, 1000u);
  EXPECT_EQ(f.cpu, 0u);
  EXPECT_EQ(f.time_ns, 100000000000ULL);
  EXPECT_EQ(f.address, 0x7f0000001000u);
  EXPECT_EQ(f.ip, 0x7f0000000100u);
  EXPECT_EQ(f.error_code, 0x14u);
  EXPECT_EQ(all[1].kind, PerfEventKind::kMmap);
  ASSERT_EQ(all[1].nargs, 6);
  EXPECT_EQ(all[1].args[1], 0x2000u);
  EXPECT_EQ(all[1].args[4], 0xffffffffu);
  EXPECT_EQ(all[2].kind, PerfEventKind::kMmapResult);
  EXPECT_EQ(all[2].result, 0x7f0000010000u);
  EXPECT_EQ(all[2].time_ns, 100000012000ULL);
  EXPECT_EQ(all[7].kind, PerfEventKind::kFork);
  EXPECT_EQ(all[7].child, 1001u);
  EXPECT_EQ(all[8].kind, PerfEventKind::kSwitch);
  EXPECT_EQ(all[8].prev_tid, 1000u);
  EXPECT_EQ(all[8].next_tid, 1001u);
  EXPECT_EQ(all[8].prev_state, "D");
  EXPECT_EQ(all[9].kind, PerfEventKind::kTlbFlush);
  EXPECT_EQ(all[9].pages, -1);
  EXPECT_EQ(all[9].reason, 0);
  EXPECT_EQ(all[9].reason_text, "flush on task switch (0)");
  EXPECT_EQ(all[10].filename, "/bin/sh");
  EXPECT_EQ(all[14].kind, PerfEventKind::kClone);
  EXPECT_EQ(all[14].args[0], 0x01200011u);
  EXPECT_EQ(all[23].pid, 1001);  // the thread: PID/TID 1001/1003
  EXPECT_EQ(all[23].tid, 1003u);
  EXPECT_EQ(all[23].line, 25u);  // after the blank line
  EXPECT_EQ(all[24].group_dead, 0);
  EXPECT_EQ(all[25].kind, PerfEventKind::kVforkCall);
  EXPECT_EQ(all[25].nargs, 0);
  EXPECT_EQ(comms[28], "gmain thread");  // a name with a space
  EXPECT_EQ(all[29].kind, PerfEventKind::kOther);
  EXPECT_EQ(all[29].event, "probe:something");
}

// perf script's default output has the TID only.
std::string without_pids(const std::string& text) {
  return std::regex_replace(text, std::regex(R"(\b\d+/(\d+) +\[)"), "$1 [");
}

TEST(PerfScript, SummaryCountsByHand) {
  ScratchDir dir;
  write_file(dir.path("tid-only.txt"), without_pids(read_file(kSmall)));
  for (const std::string& path : {kSmall, dir.path("tid-only.txt")}) {
    SCOPED_TRACE(path);
    const PerfSummary s = summarize_perf_script(path);
    EXPECT_EQ(s.lines, 32u);
    EXPECT_EQ(s.by_kind[static_cast<int>(PerfEventKind::kPageFault)], 6u);
    EXPECT_EQ(s.faults_by_error_code, (std::map<uint64_t, uint64_t>{
                                          {0x4, 1}, {0x6, 2}, {0x7, 1}, {0x14, 2}}));
    EXPECT_EQ(s.by_kind[static_cast<int>(PerfEventKind::kFork)], 4u);
    EXPECT_EQ(s.by_kind[static_cast<int>(PerfEventKind::kExec)], 1u);
    EXPECT_EQ(s.by_kind[static_cast<int>(PerfEventKind::kExit)], 5u);
    EXPECT_EQ(s.by_kind[static_cast<int>(PerfEventKind::kSwitch)], 1u);
    EXPECT_EQ(s.by_kind[static_cast<int>(PerfEventKind::kTlbFlush)], 2u);
    EXPECT_EQ(s.flushes_by_reason, (std::map<std::string, uint64_t>{
                                       {"flush on task switch (0)", 1},
                                       {"local MM shootdown (3)", 1}}));
    EXPECT_EQ(s.full_flushes, 1u);
    EXPECT_EQ(s.flushed_pages, 1u);
    EXPECT_EQ(s.full_flushes_by_reason,
              (std::map<std::string, uint64_t>{{"flush on task switch (0)", 1}}));
    EXPECT_EQ(s.flushed_pages_by_reason,
              (std::map<std::string, uint64_t>{{"local MM shootdown (3)", 1}}));
    EXPECT_TRUE(s.empty_flushes_by_reason.empty());
    EXPECT_EQ(s.other_events, (std::map<std::string, uint64_t>{{"probe:something", 1}}));
    EXPECT_EQ(s.tasks, 5u);
    // 1003 is a thread: same thread group (PID/TID), or its exit's group_dead=false (TID only).
    EXPECT_EQ(s.processes, 4u);
    EXPECT_EQ(s.threads_created, 1u);
    EXPECT_EQ(s.records_by_cpu, (std::map<uint32_t, uint64_t>{{0, 24}, {1, 8}}));
    EXPECT_EQ(s.last_ns - s.first_ns, 300000u);
  }
}

TEST(PerfScript, ConvertsToWorkload) {
  ScratchDir dir;
  PerfImportOptions opts;
  opts.ghz = 1.0;  // one instruction per ns: gaps are the CPU time in ns
  opts.ipc = 1.0;
  const PerfImportResult r = import_perf_script(kSmall, dir.path("out/m.json"), opts);
  EXPECT_EQ(r.streams, 5u);
  EXPECT_EQ(r.references, 6u);
  EXPECT_EQ(r.events_by_kind[static_cast<int>(OsEventKind::kCreate)], 4u);
  EXPECT_EQ(r.events_by_kind[static_cast<int>(OsEventKind::kExit)], 5u);
  EXPECT_EQ(r.events_by_kind[static_cast<int>(OsEventKind::kMmap)], 1u);  // one failed

  const TraceManifest m = load_manifest(dir.path("out/m.json"));
  ASSERT_EQ(m.streams.size(), 5u);
  auto origin = [&](uint32_t id) { return m.find(id)->created; };
  EXPECT_EQ(origin(1000), StreamOrigin::kInitial);
  EXPECT_EQ(origin(1001), StreamOrigin::kVfork);   // clone3 into another thread group
  EXPECT_EQ(origin(1002), StreamOrigin::kFork);    // clone without CLONE_VM
  EXPECT_EQ(origin(1003), StreamOrigin::kThread);  // clone3 within the thread group
  EXPECT_EQ(origin(1004), StreamOrigin::kVfork);   // vfork
  EXPECT_EQ(m.find(1002)->parent, std::optional<uint32_t>(1001));
  EXPECT_EQ(m.find(1001)->command, "/bin/sh");

  // make: fetch fault; mmap (12 us after it); write fault; create 1001 (the failed mmap and the
  // clone3 entry give nothing); exit. Its switch-out at 60 us stops its clock until its exit.
  std::vector<Item> mk = read_items(m.find(1000)->path);
  ASSERT_EQ(mk.size(), 5u);
  EXPECT_EQ(mk[0].record, (TraceRecord{RefKind::kFetch, 1, 0, 0x7f0000001000}));
  EXPECT_EQ(mk[1].event, OsEvent::mmap(0x7f0000010000, 0x2000, 3,
                                       OsEvent::kMapPrivate | OsEvent::kMapAnonymous));
  EXPECT_EQ(mk[1].record.gap, 12000u);
  EXPECT_EQ(mk[2].record, (TraceRecord{RefKind::kWrite, 1, 8000, 0x7f0000010008}));
  EXPECT_EQ(mk[3].event, OsEvent::create(1001, StreamOrigin::kVfork));
  EXPECT_EQ(mk[3].record.gap, 30000u);
  EXPECT_EQ(mk[4].event, OsEvent::exit());
  EXPECT_EQ(mk[4].record.gap, 10000u);  // 50..60 us; nothing while switched out

  // sh: runs from the switch to it at 60 us.
  std::vector<Item> sh = read_items(m.find(1001)->path);
  ASSERT_EQ(sh.size(), 8u);
  EXPECT_EQ(sh[0].event, OsEvent::exec());
  EXPECT_EQ(sh[0].record.gap, 10000u);
  EXPECT_EQ(sh[1].record.kind, RefKind::kFetch);
  EXPECT_EQ(sh[2].event, OsEvent::brk(0x555555600000));
  EXPECT_EQ(sh[2].record.gap, 11000u);
  EXPECT_EQ(sh[3].event, OsEvent::create(1002, StreamOrigin::kFork));
  EXPECT_EQ(sh[4].event, OsEvent::create(1003, StreamOrigin::kThread));
  EXPECT_EQ(sh[4].record.gap, 70000u);
  EXPECT_EQ(sh[5].event, OsEvent::create(1004, StreamOrigin::kVfork));
  EXPECT_EQ(sh[6].record.kind, RefKind::kWrite);
  EXPECT_EQ(sh[7].event, OsEvent::exit());

  std::vector<Item> child = read_items(m.find(1002)->path);
  ASSERT_EQ(child.size(), 4u);
  EXPECT_EQ(child[0].record, (TraceRecord{RefKind::kWrite, 1, 0, 0x555555600010}));  // 0x7
  EXPECT_EQ(child[1].event, OsEvent::munmap(0x7f0000020000, 0x3000));
  EXPECT_EQ(child[2].event, OsEvent::mprotect(0x7f0000030000, 0x1000, 1));
  EXPECT_EQ(child[3].event, OsEvent::exit());
  std::vector<Item> thread = read_items(m.find(1003)->path);
  ASSERT_EQ(thread.size(), 2u);
  EXPECT_EQ(thread[0].record.kind, RefKind::kRead);  // 0x4

  // Recorded CPUs: make and sh ran on CPU 0 (make's exit on CPU 1 comes after its switch-out:
  // no CPU time), 1002 to 1004 on CPU 1; the file names CPUs 0 and 1.
  EXPECT_EQ(m.cpus, 2u);
  EXPECT_EQ(r.cpus, 2u);
  for (const auto& [id, cpu] : std::map<uint32_t, uint32_t>{
           {1000, 0}, {1001, 0}, {1002, 1}, {1003, 1}, {1004, 1}}) {
    EXPECT_EQ(m.find(id)->cpu, cpu) << id;
  }
  EXPECT_EQ(r.streams_by_cpu, (std::map<uint32_t, uint64_t>{{0, 2}, {1, 3}}));

  // Twice the rate, twice the gaps.
  opts.ghz = 2.0;
  import_perf_script(kSmall, dir.path("fast/m.json"), opts);
  mk = read_items(load_manifest(dir.path("fast/m.json")).find(1000)->path);
  EXPECT_EQ(mk[1].record.gap, 24000u);
}

TEST(PerfScript, BadLinesNameFileAndLine) {
  ScratchDir dir;
  const std::string good =
      "make 1000 [000] 100.000000: exceptions:page_fault_user: address=0x1000 ip=0x2000 "
      "error_code=0x6\n";
  const struct {
    const char* line;
    const char* expect;
  } cases[] = {
      {"hello world\n", "no '[CPU]' field"},
      {"make 1000 [000] 100.000000: exceptions:page_fault_user: address=0x1000 ip=0x2000\n",
       "no 'error_code='"},
      {"make 1000 [000] 100.0000x0: tlb:tlb_flush: pages:1 reason:local MM shootdown (3)\n",
       "timestamp"},
      {"make 1000 [000] 100.000001: tlb:tlb_flush: pages:one reason:x (3)\n", "tlb_flush"},
      {"make 1000 [000] 100.000001: syscalls:sys_enter_munmap: addr: 0x10\n",
       "1 arguments; expected 2"},
      {"make x/1000 [000] 100.000001: sched:sched_process_exec: filename=/bin/sh pid=1\n",
       "PID/TID"},
      {"make 1000 [000] 100.000001: syscalls:sys_exit_mmap: -12\n", "result"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.line);
    write_file(dir.path("bad.txt"), good + c.line);
    const std::string msg = error_of([&] { summarize_perf_script(dir.path("bad.txt")); });
    EXPECT_NE(msg.find("bad.txt:2:"), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
    int status;
    std::string err;
    test::run_trace_cli({"perf-info", dir.path("bad.txt")}, &status, &err);
    EXPECT_EQ(status, 1);
    EXPECT_NE(err.find("bad.txt:2:"), std::string::npos) << err;
    test::run_trace_cli({"perf-import", dir.path("bad.txt"), "-o", dir.path("o/m.json")}, &status, &err);
    EXPECT_EQ(status, 1);
    EXPECT_FALSE(std::filesystem::exists(dir.path("o/1000.sst.zst")));
  }
  int status;
  test::run_trace_cli({"perf-info", dir.path("missing.txt")}, &status);
  EXPECT_EQ(status, 1);
  test::run_trace_cli({"perf-import", kSmall}, &status);
  EXPECT_EQ(status, 2);  // no -o
  test::run_trace_cli({"perf-import", kSmall, "-o", dir.path("m.json"), "--ipc", "0"}, &status);
  EXPECT_EQ(status, 2);
}

TEST(PerfScript, CliPerfInfo) {
  int status;
  const std::string text = test::run_trace_cli({"perf-info", kSmall}, &status);
  EXPECT_EQ(status, 0);
  EXPECT_NE(text.find("32 records"), std::string::npos) << text;
  EXPECT_NE(text.find("on 2 CPUs"), std::string::npos) << text;
  const nlohmann::json j = nlohmann::json::parse(test::run_trace_cli({"perf-info", kSmall, "--json"}, &status));
  EXPECT_EQ(j["faults"], 6);
  EXPECT_EQ(j["faults_by_error_code"]["0x14"], 2);
  EXPECT_EQ(j["processes"], 4);
  EXPECT_EQ(j["duration_ns"], 300000);
  EXPECT_EQ(j["flushes_by_reason"]["local MM shootdown (3)"], 1);
  EXPECT_EQ(j["flush_detail"]["flush on task switch (0)"]["full"], 1);
  EXPECT_EQ(j["flush_detail"]["local MM shootdown (3)"]["pages"], 1);
  EXPECT_EQ(j["flush_detail"]["local MM shootdown (3)"]["empty"], 0);
}

// The shipped recording: perf of `make -j2 kernel/fork.o mm/memory.o kernel/exit.o` in Debian's
// linux-source-6.1 tinyconfig tree (workloads/record/record-perf-kbuild.sh). Counts from grep -c
// on the text (tests/workloads/data/README.md).
// The manifest's "cpu": the CPU with the most CPU time (as counted for the instructions), the
// lowest of equals; with none, the CPU of the task's first record, or of the fork that created
// it when it has no record. "cpus": the highest CPU named + 1.
TEST(PerfScript, RecordedCpuIsWhereTheTaskRanMost) {
  ScratchDir dir;
  constexpr const char* kFault = "exceptions:page_fault_user: address=0x1000 ip=0x1000 "
                                 "error_code=0x4";
  auto line = [&](const char* comm, int tid, int cpu, const char* time, const std::string& ev) {
    return fmt::format("{} {}/{} [{:03}] {}: {}\n", comm, tid, tid, cpu, time, ev);
  };
  auto off = [](int tid) {
    return fmt::format("sched:sched_switch: prev_comm=x prev_pid={} prev_prio=120 prev_state=S "
                       "==> next_comm=swapper next_pid=0 next_prio=120", tid);
  };
  std::string text;
  // a: first on CPU 1 (20 us there), then 200 us on CPU 0, then forks 2001 on CPU 1 (10 us).
  text += line("a", 2000, 1, "1.000000", kFault);
  text += line("a", 2000, 1, "1.000010", kFault);
  text += line("a", 2000, 1, "1.000020", off(2000));
  text += line("a", 2000, 0, "1.000100", kFault);
  text += line("a", 2000, 0, "1.000300", kFault);
  text += line("a", 2000, 1, "1.000310",
               "sched:sched_process_fork: comm=a pid=2000 child_comm=a child_pid=2001");
  // b: one record (no CPU time), on CPU 1.
  text += line("b", 2002, 1, "1.000400", kFault);
  // c: 10 us on CPU 1 first, then 10 us on CPU 0: a tie, the lower CPU.
  text += line("c", 2003, 1, "1.000500", kFault);
  text += line("c", 2003, 1, "1.000510", off(2003));
  text += line("c", 2003, 0, "1.000600", kFault);
  text += line("c", 2003, 0, "1.000610", kFault);
  // d: one record on CPU 3, so the recording had 4 CPUs (2 unused by these tasks).
  text += line("d", 2004, 3, "1.000700", kFault);
  test::write_file(dir.path("cpus.txt"), text);
  const PerfImportResult r = import_perf_script(dir.path("cpus.txt"), dir.path("o/m.json"));
  const TraceManifest m = load_manifest(dir.path("o/m.json"));
  ASSERT_EQ(m.streams.size(), 5u);
  EXPECT_EQ(m.find(2000)->cpu, 0u);  // most time, not its first record
  EXPECT_EQ(m.find(2001)->cpu, 1u);  // no record: its fork's CPU
  EXPECT_EQ(m.find(2002)->cpu, 1u);  // no time: its first record's
  EXPECT_EQ(m.find(2003)->cpu, 0u);  // a tie: the lower CPU
  EXPECT_EQ(m.find(2004)->cpu, 3u);
  EXPECT_EQ(m.cpus, 4u);
  EXPECT_EQ(m.recorded_cpus(), 4u);
  EXPECT_EQ(r.streams_by_cpu, (std::map<uint32_t, uint64_t>{{0, 2}, {1, 2}, {3, 1}}));
  int status;
  const std::string out =
      test::run_trace_cli({"perf-import", dir.path("cpus.txt"), "-o", dir.path("p/m.json")}, &status);
  EXPECT_EQ(status, 0);
  EXPECT_NE(out.find("recorded on 4 CPU(s); streams by the CPU they ran on most: CPU 0 2, CPU 1 "
                     "2, CPU 3 1"),
            std::string::npos)
      << out;
}

// Found by fuzzing (docs/fuzzing.md, fuzz/corpus/perf_script): a second exit of a task that
// already ended (its TID not reused by a traced fork) dereferenced the closed stream's writer;
// a comm that is not UTF-8 made the manifest's JSON dump throw nlohmann's type_error.
TEST(PerfScript, FuzzFindingsRepeatedExitAndNonUtf8Comm) {
  ScratchDir dir;
  const std::string exit_line =
      "a 3000/3000 [000] 1.000010: sched:sched_process_exit: comm=a pid=3000 prio=120 "
      "group_dead=1\n";
  write_file(dir.path("exit2.txt"),
             "a 3000/3000 [000] 1.000000: exceptions:page_fault_user: address=0x1000 ip=0x1000 "
             "error_code=0x4\n" + exit_line + exit_line);
  const PerfImportResult r = import_perf_script(dir.path("exit2.txt"), dir.path("o/m.json"));
  EXPECT_EQ(r.streams, 1u);
  EXPECT_EQ(r.events_by_kind[static_cast<int>(OsEventKind::kExit)], 1u);

  write_file(dir.path("utf8.txt"), "\xff\xfe 3001/3001 [000] 1.0: exceptions:page_fault_user: "
                                   "address=0x1000 ip=0x1000 error_code=0x4\n");
  import_perf_script(dir.path("utf8.txt"), dir.path("u/m.json"));
  const TraceManifest m = load_manifest(dir.path("u/m.json"));
  ASSERT_EQ(m.streams.size(), 1u);
  EXPECT_EQ(m.streams[0].name, "\xef\xbf\xbd\xef\xbf\xbd") << "invalid bytes written as U+FFFD";
}

// The make -j16 recording (10 files on 2 CPUs; tests/workloads/data/README.md): counts by grep,
// and the recorded CPUs of cc1 tasks whose records are clearly on one CPU.
TEST(PerfScript, RealKernelBuildMoreJobsThanCpus) {
  const std::string path = std::string(SHADOWSIM_TEST_DATA_DIR) + "/kbuild-j16.perf.txt.zst";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " missing";
  const PerfSummary s = summarize_perf_script(path);
  EXPECT_EQ(s.lines, 337200u);
  EXPECT_EQ(s.faults_by_error_code, (std::map<uint64_t, uint64_t>{
                                        {0x4, 34865}, {0x6, 182698}, {0x7, 20401}, {0x14, 27246}}));
  EXPECT_EQ(s.by_kind[static_cast<int>(PerfEventKind::kFork)], 618u);
  EXPECT_EQ(s.by_kind[static_cast<int>(PerfEventKind::kExec)], 582u);
  EXPECT_EQ(s.by_kind[static_cast<int>(PerfEventKind::kExit)], 619u);
  EXPECT_EQ(s.by_kind[static_cast<int>(PerfEventKind::kSwitch)], 4101u);
  EXPECT_EQ(s.records_by_cpu, (std::map<uint32_t, uint64_t>{{0, 175231}, {1, 161969}}));

  ScratchDir dir;
  const PerfImportResult r = import_perf_script(path, dir.path("m.json"));
  EXPECT_EQ(r.streams, 619u);
  EXPECT_EQ(r.references, 265210u);
  EXPECT_EQ(r.cpus, 2u);
  const TraceManifest m = load_manifest(dir.path("m.json"));
  // grep ' [0-9]*/TID  *\[' | awk '{print $3}' | sort | uniq -c: 25680 3,670 on [000] and
  // 16,192 on [001]; 25676 14,716 and 4,382; 25705 16,559 and 662; 25700 14,442 and none.
  EXPECT_EQ(m.find(25680)->cpu, 1u);
  EXPECT_EQ(m.find(25676)->cpu, 0u);
  EXPECT_EQ(m.find(25705)->cpu, 0u);
  EXPECT_EQ(m.find(25700)->cpu, 0u);
  EXPECT_EQ(m.find(25680)->name, "cc1");
}

TEST(PerfScript, RealKernelBuild) {
  const std::string path = std::string(SHADOWSIM_TEST_DATA_DIR) + "/kbuild-3files.perf.txt.zst";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " missing";
  const PerfSummary s = summarize_perf_script(path);
  EXPECT_EQ(s.lines, 193839u);
  EXPECT_EQ(s.faults_by_error_code, (std::map<uint64_t, uint64_t>{
                                        {0x4, 22363}, {0x6, 90670}, {0x7, 12196}, {0x14, 18874}}));
  EXPECT_EQ(s.by_kind[static_cast<int>(PerfEventKind::kFork)], 482u);
  EXPECT_EQ(s.by_kind[static_cast<int>(PerfEventKind::kExec)], 453u);
  EXPECT_EQ(s.by_kind[static_cast<int>(PerfEventKind::kExit)], 483u);
  EXPECT_EQ(s.by_kind[static_cast<int>(PerfEventKind::kSwitch)], 3082u);
  EXPECT_EQ(s.by_kind[static_cast<int>(PerfEventKind::kMmap)], 9525u);
  EXPECT_EQ(s.by_kind[static_cast<int>(PerfEventKind::kMunmap)], 720u);
  EXPECT_EQ(s.by_kind[static_cast<int>(PerfEventKind::kMprotect)], 1957u);
  EXPECT_EQ(s.by_kind[static_cast<int>(PerfEventKind::kBrk)], 1915u);
  EXPECT_EQ(s.flushes_by_reason, (std::map<std::string, uint64_t>{
                                     {"flush on task switch (0)", 2430},
                                     {"local MM shootdown (3)", 15450},
                                     {"remote IPI send (4)", 1295},
                                     {"remote wrong CPU (5)", 22}}));
  // grep tlb:tlb_flush, split by pages:-1, pages:0 and the sum of the other page counts.
  EXPECT_EQ(s.full_flushes_by_reason, (std::map<std::string, uint64_t>{
                                          {"flush on task switch (0)", 604},
                                          {"local MM shootdown (3)", 578},
                                          {"remote IPI send (4)", 18}}));
  EXPECT_EQ(s.empty_flushes_by_reason, (std::map<std::string, uint64_t>{
                                           {"flush on task switch (0)", 1826},
                                           {"local MM shootdown (3)", 29},
                                           {"remote wrong CPU (5)", 22}}));
  EXPECT_EQ(s.flushed_pages_by_reason.at("local MM shootdown (3)"), 22901u);
  EXPECT_EQ(s.flushed_pages_by_reason.at("remote IPI send (4)"), 1364u);
  EXPECT_EQ(s.records_by_cpu, (std::map<uint32_t, uint64_t>{{0, 70902}, {1, 122937}}));
  EXPECT_EQ(s.tasks, 483u);
  EXPECT_EQ(s.first_ns, 12603189328000ULL);
  EXPECT_EQ(s.last_ns, 12606068851000ULL);

  ScratchDir dir;
  const PerfImportResult r = import_perf_script(path, dir.path("m.json"));
  EXPECT_EQ(r.streams, 483u);
  EXPECT_EQ(r.references, 144103u);
  EXPECT_EQ(r.events_by_kind[static_cast<int>(OsEventKind::kCreate)], 482u);
  EXPECT_EQ(r.events_by_kind[static_cast<int>(OsEventKind::kExec)], 453u);
  EXPECT_EQ(r.events_by_kind[static_cast<int>(OsEventKind::kExit)], 483u);
  // 89 clone(SIGCHLD) forks by the shell; 238 vforks (gcc) + 155 clone3 (make's posix_spawn).
  EXPECT_EQ(r.created_by_origin.at(static_cast<int>(StreamOrigin::kFork)), 89u);
  EXPECT_EQ(r.created_by_origin.at(static_cast<int>(StreamOrigin::kVfork)), 393u);
  const TraceManifest m = load_manifest(dir.path("m.json"));
  EXPECT_EQ(m.streams.size(), 483u);
  // Recorded CPUs (grep ' [0-9]*/TID  *\[' | awk '{print $3}' | sort | uniq -c): cc1 31086 has
  // 3,011 records on [000] (its first, a migration switch, among them) and 20,732 on [001];
  // cc1 31113 65 and 20,735; nm 31148 3,613 on [000] only; nm 30809 3,638 on [001] only.
  EXPECT_EQ(m.cpus, 2u);
  EXPECT_EQ(m.find(31086)->cpu, 1u);
  EXPECT_EQ(m.find(31113)->cpu, 1u);
  EXPECT_EQ(m.find(31148)->cpu, 0u);
  EXPECT_EQ(m.find(30809)->cpu, 1u);
  EXPECT_EQ(r.streams_by_cpu, (std::map<uint32_t, uint64_t>{{0, 221}, {1, 262}}));
}

}  // namespace
}  // namespace shadowsim
