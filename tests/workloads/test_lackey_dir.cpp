// The multi-process lackey importer (workloads/lackey_import.h): a folder of per-image logs
// (valgrind --log-file=DIR/%p.%n) into one manifest + one stream per process.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include <fmt/format.h>

#include "trace_test_util.h"
#include "workloads/lackey_import.h"
#include "workloads/trace_cli.h"
#include "workloads/trace_manifest.h"

namespace shadowsim {
namespace {

using test::error_of;
using test::Item;
using test::read_items;
using test::ScratchDir;
using test::write_file;

std::string header(int pid, const char* command, int parent) {
  return fmt::format("=={0}== Lackey, an example Valgrind tool\n"
                     "=={0}== Command: {1}\n"
                     "=={0}== Parent PID: {2}\n"
                     "=={0}== \n",
                     pid, command, parent);
}

// Hand-written from the real logs' lines: make (100) spawns 101 with posix_spawn (clone with
// CLONE_VM|CLONE_VFORK: vfork requested) and forks 102 with sys_fork(57). 101 execs /bin/true:
// its pre-exec image is 101.2 (valgrind numbers a forked child's first image after the exec'd
// one, as in the real recording), its post-exec image 101.1. 102 exits without exec.
void write_make_dir(const std::string& dir) {
  std::filesystem::create_directories(dir);
  write_file(dir + "/100.1",
             header(100, "make -j2", 99) +
                 "I  0401ab70,3\n"
                 " S 1fff000658,8\n"
                 "--100--   SCHED[1]:  acquired lock (thread_wrapper(starting new thread))\n"
                 "I  049489b1,2\n"
                 "SYSCALL[100,1](9) sys_mmap ( 0x0, 8192, 3, 34, 4294967295, 0 ) --> "
                 "[pre-success] Success(0x4835000) \n"
                 "I  0494fb40,2\n"
                 "SYSCALL[100,1](56) sys_clone ( 4111, 0x4a97ff0, 0x0, 0x0, 0x0 )   clone(fork): "
                 "process 100 created child 101\n"
                 " --> [pre-success] Success(0x65) \n"
                 " M 0422a0d0,8\n"
                 "I  0494fb40,2\n"
                 "SYSCALL[100,1](57) sys_fork ( )   fork: process 100 created child 102\n"
                 " --> [pre-success] Success(0x66) \n"
                 "SCHEDSETJMP(line 1211) tid 1, jumped=1476724588\n"
                 "I  0491b407,2\n"
                 "SYSCALL[100,1](231) exit_group( 0 ) --> [pre-success] Success(0x0) \n"
                 "==100== \n==100== Exit code:       0\n");
  write_file(dir + "/101.2", header(101, "make -j2", 100) +
                                 " --> [pre-success] Success(0x0) \n"
                                 "I  0494fb42,3\n"
                                 " L 04844ff0,8\n"
                                 "I  0491bad5,2\n"
                                 "SYSCALL[101,1](59) sys_execve ( 0x10a004(/bin/true), "
                                 "0x1fff0005f0, 0x1fff000738 )");
  write_file(dir + "/101.1", header(101, "/bin/true", 100) +
                                 "I  0401ab70,3\n"
                                 " S 1fff000658,8\n"
                                 "I  0401fc45,2\n"
                                 "SYSCALL[101,1](12) sys_brk ( 0x0 ) --> [pre-success] "
                                 "Success(0x4035000) \n"
                                 "I  0491b407,2\n"
                                 "SYSCALL[101,1](231) exit_group( 0 ) --> [pre-success] "
                                 "Success(0x0) \n");
  write_file(dir + "/102.1", header(102, "make -j2", 100) +
                                 " --> [pre-success] Success(0x0) \n"
                                 "I  0494fb42,3\n"
                                 " S 04844e68,8\n"
                                 "I  0491b407,2\n"
                                 "SYSCALL[102,1](231) exit_group( 1 ) --> [pre-success] "
                                 "Success(0x0) \n");
  write_file(dir + "/README", "not a log: skipped\n");
}

std::vector<Item> stream_items(const TraceManifest& m, uint32_t id) {
  const TraceStream* s = m.find(id);
  EXPECT_NE(s, nullptr) << id;
  return s ? read_items(s->path) : std::vector<Item>{};
}

TEST(LackeyDir, HandWrittenMakeTree) {
  ScratchDir dir;
  write_make_dir(dir.path("in"));
  const LackeyImportResult r = import_lackey_dir(dir.path("in"), dir.path("out/w.json"));
  EXPECT_EQ(r.logs, 4u);
  EXPECT_EQ(r.skipped_files, 1u);
  EXPECT_EQ(r.children_without_create, 0u);
  const TraceManifest m = load_manifest(dir.path("out/w.json"));
  ASSERT_EQ(m.streams.size(), 3u);
  EXPECT_EQ(m.streams[0].id, 100u);  // parents first
  EXPECT_EQ(m.command, "make -j2");
  const TraceStream* make = m.find(100);
  const TraceStream* spawned = m.find(101);
  const TraceStream* forked = m.find(102);
  ASSERT_TRUE(make && spawned && forked);
  EXPECT_EQ(make->created, StreamOrigin::kInitial);
  EXPECT_FALSE(make->parent.has_value());  // 99 was not traced
  // posix_spawn's clone(CLONE_VM|CLONE_VFORK): the requested vfork, not the fork valgrind ran.
  EXPECT_EQ(spawned->created, StreamOrigin::kVfork);
  EXPECT_EQ(spawned->parent, std::optional<uint32_t>(100));
  EXPECT_EQ(forked->created, StreamOrigin::kFork);
  EXPECT_EQ(spawned->name, "true");
  EXPECT_EQ(spawned->command, "/bin/true");
  EXPECT_EQ(forked->name, "make");

  // make: F, W, F, mmap, F, create 101 vfork, R+W (modify), F, create 102 fork, F, exit.
  const std::vector<Item> mk = stream_items(m, 100);
  ASSERT_EQ(mk.size(), 12u);
  EXPECT_EQ(mk[3].event, OsEvent::mmap(0x4835000, 0x2000, 3, OsEvent::kMapPrivate |
                                                                OsEvent::kMapAnonymous));
  EXPECT_EQ(mk[5].event, OsEvent::create(101, StreamOrigin::kVfork));
  EXPECT_EQ(mk[6].record.kind, RefKind::kRead);
  EXPECT_EQ(mk[7].record.kind, RefKind::kWrite);
  EXPECT_EQ(mk[9].event, OsEvent::create(102, StreamOrigin::kFork));
  EXPECT_EQ(mk[11].event, OsEvent::exit());

  // 101: the pre-exec half (101.2: F R F exec) first, then the exec'd image (101.1: F W F brk F
  // exit), whatever their file numbers.
  const std::vector<Item> sp = stream_items(m, 101);
  ASSERT_EQ(sp.size(), 10u);
  EXPECT_EQ(sp[0].record.va, 0x494fb42u);
  EXPECT_EQ(sp[1].record.kind, RefKind::kRead);
  EXPECT_EQ(sp[3].record.kind, RefKind::kEvent);
  EXPECT_EQ(sp[3].event, OsEvent::exec());
  EXPECT_EQ(sp[4].record.va, 0x401ab70u);
  EXPECT_EQ(sp[7].event, OsEvent::brk(0x4035000));
  EXPECT_EQ(sp[9].event, OsEvent::exit());
  int execs = 0;
  for (const Item& i : sp) execs += i.record.kind == RefKind::kEvent && i.event == OsEvent::exec();
  EXPECT_EQ(execs, 1);

  const std::vector<Item> fk = stream_items(m, 102);
  ASSERT_EQ(fk.size(), 4u);
  EXPECT_EQ(fk[3].event, OsEvent::exit());
  EXPECT_EQ(r.records, mk.size() + sp.size() + fk.size());
}

TEST(LackeyDir, CliImportsAndReportsBadLines) {
  ScratchDir dir;
  write_make_dir(dir.path("in"));
  int status;
  std::string out = test::run_trace_cli({"import-lackey", dir.path("in"), "-o", dir.path("out/m.json")},
                            &status);
  EXPECT_EQ(status, 0);
  EXPECT_NE(out.find("3 processes from 4 logs"), std::string::npos) << out;
  EXPECT_NE(out.find("1 initial, 1 fork, 1 vfork"), std::string::npos) << out;
  EXPECT_TRUE(std::filesystem::exists(dir.path("out/101.sst.zst")));

  // A bad line in the pre-exec half: the file and line are named, nothing is left behind.
  write_file(dir.path("in/101.2"), header(101, "make -j2", 100) +
                                       " --> [pre-success] Success(0x0) \n"
                                       "I  0494fb42,3\n"
                                       " Q 04844ff0,8\n");
  std::string err;
  test::run_trace_cli({"import-lackey", dir.path("in"), "-o", dir.path("bad/m.json")}, &status, &err);
  EXPECT_EQ(status, 1);
  EXPECT_NE(err.find("101.2:7:"), std::string::npos) << err;
  EXPECT_FALSE(std::filesystem::exists(dir.path("bad/101.sst.zst")));
  EXPECT_FALSE(std::filesystem::exists(dir.path("bad/100.sst.zst")));

  test::run_trace_cli({"import-lackey", dir.path("in")}, &status, &err);
  EXPECT_EQ(status, 2);  // no -o
  test::run_trace_cli({"import-lackey", dir.path("nowhere"), "-o", dir.path("x/m.json")}, &status, &err);
  EXPECT_EQ(status, 1);
  EXPECT_NE(err.find("not a directory"), std::string::npos) << err;
}

TEST(LackeyDir, InconsistentRecordingsAreErrors) {
  ScratchDir dir;
  write_make_dir(dir.path("in"));
  // A second final image of 101: two logs without a final exec.
  write_file(dir.path("in/101.3"), header(101, "/bin/false", 100) + "I  0401ab70,3\n");
  std::string msg = error_of([&] { import_lackey_dir(dir.path("in"), dir.path("o/m.json")); });
  EXPECT_NE(msg.find("process 101: 3 logs"), std::string::npos) << msg;
  std::filesystem::remove(dir.path("in/101.3"));

  // A header naming another process than the file name.
  write_file(dir.path("in/103.1"), header(104, "x", 100));
  msg = error_of([&] { import_lackey_dir(dir.path("in"), dir.path("o/m.json")); });
  EXPECT_NE(msg.find("103.1: the header is of process 104"), std::string::npos) << msg;
  std::filesystem::remove(dir.path("in/103.1"));

  // No header at all.
  write_file(dir.path("in/105.1"), "I  0401ab70,3\n");
  msg = error_of([&] { import_lackey_dir(dir.path("in"), dir.path("o/m.json")); });
  EXPECT_NE(msg.find("105.1: no valgrind header"), std::string::npos) << msg;
  std::filesystem::remove(dir.path("in/105.1"));

  // A child whose parent's log lacks the create event: taken as a fork, and counted.
  write_file(dir.path("in/106.1"), header(106, "orphan", 102) + "I  0401ab70,3\n");
  const LackeyImportResult r = import_lackey_dir(dir.path("in"), dir.path("o/m.json"));
  EXPECT_EQ(r.children_without_create, 1u);
  EXPECT_EQ(load_manifest(dir.path("o/m.json")).find(106)->created, StreamOrigin::kFork);
}

// The shipped real recording (workloads/record/record-lackey-make.sh ... shell): make -j2 of two
// shell recipes. Counts from `zstd -dc F | grep -c` on the logs (tests/workloads/data/README.md).
TEST(LackeyDir, RealMakeRecording) {
  const std::string in = std::string(SHADOWSIM_TEST_DATA_DIR) + "/lackey-make";
  if (!std::filesystem::exists(in)) GTEST_SKIP() << in << " missing";
  ScratchDir dir;
  const LackeyImportResult r = import_lackey_dir(in, dir.path("m.json"));
  EXPECT_EQ(r.logs, 7u);
  const TraceManifest m = load_manifest(dir.path("m.json"));
  ASSERT_EQ(m.streams.size(), 4u);
  const TraceStream* make = m.find(27992);
  ASSERT_NE(make, nullptr);
  EXPECT_EQ(make->created, StreamOrigin::kInitial);
  for (uint32_t id : {28234u, 28243u}) {
    ASSERT_NE(m.find(id), nullptr);
    EXPECT_EQ(m.find(id)->created, StreamOrigin::kVfork);  // make's posix_spawn
    EXPECT_EQ(m.find(id)->parent, std::optional<uint32_t>(27992));
  }
  ASSERT_NE(m.find(28344), nullptr);
  EXPECT_EQ(m.find(28344)->created, StreamOrigin::kVfork);  // dash's vfork (syscall 58)
  EXPECT_EQ(m.find(28344)->parent, std::optional<uint32_t>(28243));
  EXPECT_EQ(m.find(28344)->name, "cat");

  // make's log: I 3,154,544, L 734,184, S 455,656, M 11,616 lines; 2 created, 1 exit_group.
  uint64_t kinds[4] = {}, creates = 0, execs = 0, exits = 0;
  for (const Item& i : read_items(make->path)) {
    ++kinds[static_cast<int>(i.record.kind)];
    if (i.record.kind != RefKind::kEvent) continue;
    creates += i.event.kind == OsEventKind::kCreate;
    exits += i.event.kind == OsEventKind::kExit;
  }
  EXPECT_EQ(kinds[static_cast<int>(RefKind::kFetch)], 3154544u);
  EXPECT_EQ(kinds[static_cast<int>(RefKind::kRead)], 734184u + 11616u);
  EXPECT_EQ(kinds[static_cast<int>(RefKind::kWrite)], 455656u + 11616u);
  EXPECT_EQ(creates, 2u);
  EXPECT_EQ(exits, 1u);

  // 28344 (cat): pre-exec half 28344.2 (I 3,083, L 702, S 331, M 3) then exec, then the cat
  // image 28344.1 (I 315,152, L 72,931, S 30,771, M 1,753).
  std::fill(std::begin(kinds), std::end(kinds), 0);
  uint64_t fetches_before_exec = 0;
  for (const Item& i : read_items(m.find(28344)->path)) {
    ++kinds[static_cast<int>(i.record.kind)];
    if (i.record.kind == RefKind::kEvent && i.event.kind == OsEventKind::kExec) {
      ++execs;
      fetches_before_exec = kinds[static_cast<int>(RefKind::kFetch)];
    }
  }
  EXPECT_EQ(execs, 1u);
  EXPECT_EQ(fetches_before_exec, 3083u);
  EXPECT_EQ(kinds[static_cast<int>(RefKind::kFetch)], 3083u + 315152u);
  EXPECT_EQ(kinds[static_cast<int>(RefKind::kRead)], 702u + 3u + 72931u + 1753u);
  EXPECT_EQ(kinds[static_cast<int>(RefKind::kWrite)], 331u + 3u + 30771u + 1753u);
}

}  // namespace
}  // namespace shadowsim
