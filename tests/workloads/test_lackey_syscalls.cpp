// The lackey importer's system calls (valgrind --trace-syscalls=yes) as OS events, against
// excerpts of real logs (tests/workloads/data/README.md) whose events were counted by hand, and
// hand-written lines of the same shape for the cases valgrind rarely prints.
#include <gtest/gtest.h>

#include "trace_test_util.h"
#include "workloads/trace_manifest.h"

namespace shadowsim {
namespace {

using test::Item;
using test::ScratchDir;

const std::string kData = SHADOWSIM_TEST_DATA_DIR;
constexpr uint32_t kPrivAnon = OsEvent::kMapPrivate | OsEvent::kMapAnonymous;

std::vector<OsEvent> events_of(const std::vector<Item>& items) {
  std::vector<OsEvent> v;
  for (const Item& i : items) {
    if (i.record.kind == RefKind::kEvent) v.push_back(i.event);
  }
  return v;
}

uint64_t count(const std::vector<Item>& items, RefKind kind) {
  return static_cast<uint64_t>(std::count_if(items.begin(), items.end(), [&](const Item& i) {
    return i.record.kind == kind;
  }));
}

// t-24176.lackey, line by line: brk(0) (the break), an openat (ignored), the dynamic loader's
// anonymous and file mmaps (2066 = MAP_DENYWRITE|MAP_FIXED|MAP_PRIVATE: DENYWRITE dropped),
// mprotect, munmap of an unrounded length, mmap with MAP_POPULATE (32802), a failed mremap (no
// event), mmap with MAP_FIXED_NOREPLACE (1048610: dropped, the address is the result anyway), a
// stack (131362 = STACK|GROWSDOWN|ANONYMOUS|PRIVATE), a failed mmap (no event), brk, an
// unimplemented syscall, a thread (clone 0x3d0f00: CLONE_VM) whose mmap/munmap/exit(60) are in
// the same log (its exit does not end the stream), a fork by clone (0x1200011), a vfork (58), and
// the execve that ends the log.
const std::vector<OsEvent> kT24176Events = {
    OsEvent::brk(0x4035000),
    OsEvent::mmap(0x4835000, 0x2000, 3, kPrivAnon),
    OsEvent::mmap(0x4838000, 0x1000, 5, OsEvent::kMapPrivate | OsEvent::kMapFixed),
    OsEvent::mprotect(0x4a16000, 0x4000, 1),
    OsEvent::munmap(0x483c000, 42343),
    OsEvent::mmap(0x4a2c000, 0x10000, 3, kPrivAnon | OsEvent::kMapPopulate),
    OsEvent::mmap(0x10000, 0x1000, 1, kPrivAnon),
    OsEvent::mmap(0x4a3c000, 0x100000, 3,
                  kPrivAnon | OsEvent::kMapGrowsDown | OsEvent::kMapStack),
    OsEvent::brk(0x4036000),
    OsEvent::create(24177, StreamOrigin::kThread),
    OsEvent::mmap(0x483c000, 0x2000, 3, kPrivAnon),
    OsEvent::munmap(0x483c000, 0x2000),
    OsEvent::create(24178, StreamOrigin::kFork),
    OsEvent::wait_for(24178),  // wait4 reaped 24178 (Success(0x5e72), line 61)
    OsEvent::create(24179, StreamOrigin::kVfork),
    OsEvent::exec(),
};

TEST(LackeySyscalls, RealLogHandCounted) {
  const std::string path = kData + "/t-24176.lackey";
  for (size_t batch : {1, 2, 3, 4096}) {
    const auto items = test::read_items(path, {}, batch);
    EXPECT_EQ(events_of(items), kT24176Events) << "batch " << batch;
    EXPECT_EQ(count(items, RefKind::kFetch), 29u);
    EXPECT_EQ(count(items, RefKind::kRead), 1u);
    EXPECT_EQ(count(items, RefKind::kWrite), 1u);
    // Each event stands right after the fetch of its 2-byte syscall instruction.
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i].record.kind != RefKind::kEvent) continue;
      ASSERT_GT(i, 0u);
      EXPECT_EQ(items[i - 1], Item::ref(RefKind::kFetch, 2, items[i - 1].record.va)) << i;
      EXPECT_EQ(items[i].record.gap, 0u);
    }
    // The program's first store into its new mapping comes after the mmap that made it.
    const auto store = std::find(items.begin(), items.end(),
                                 Item::ref(RefKind::kWrite, 1, 0x4a2c000));
    const auto mmap = std::find(items.begin(), items.end(), Item::ev(kT24176Events[5]));
    ASSERT_NE(store, items.end());
    EXPECT_LT(mmap, store);
  }
  EXPECT_TRUE(kT24176Events[2].file);
  EXPECT_FALSE(kT24176Events[1].file);
}

// g-30229.lackey: a shared anonymous mapping (33 = MAP_ANONYMOUS|MAP_SHARED), mremap shrinking
// it in place, a PROT_NONE reservation, mremap with
// MAYMOVE|FIXED and its fifth argument, posix_spawn's stack and clone(CLONE_VM|CLONE_VFORK|
// SIGCHLD) = vfork, munmap, exit_group, valgrind's summary. g-30234.lackey: the child's log, which
// begins with the rest of its clone line and ends at its execve.
TEST(LackeySyscalls, VforkedChildAndItsManifest) {
  const std::vector<OsEvent> parent = {
      OsEvent::mmap(0x4a2c000, 0x10000, 3, OsEvent::kMapShared | OsEvent::kMapAnonymous),
      OsEvent::mremap(0x4a2c000, 0x10000, 0x4a2c000, 0x4000, 0),
      OsEvent::mmap(0x4a30000, 0x100000, 0, kPrivAnon),
      OsEvent::mremap(0x4a2c000, 0x4000, 0x4a40000, 0x8000,
                      OsEvent::kMremapMayMove | OsEvent::kMremapFixed),
      OsEvent::mmap(0x483c000, 0x9000, 3, kPrivAnon | OsEvent::kMapStack),
      OsEvent::create(30234, StreamOrigin::kVfork),
      OsEvent::munmap(0x483c000, 0x9000),
      OsEvent::wait_for(30234),  // line 27: wait4 reaped 0x761a = 30234
      OsEvent::exit(),
  };
  const auto p = test::read_items(kData + "/g-30229.lackey");
  EXPECT_EQ(events_of(p), parent);
  EXPECT_EQ(count(p, RefKind::kFetch), 10u);
  EXPECT_EQ(p.back(), Item::ev(OsEvent::exit())) << "exit_group is the last record";

  const auto c = test::read_items(kData + "/g-30234.lackey");
  EXPECT_EQ(events_of(c), std::vector<OsEvent>{OsEvent::exec()});
  EXPECT_EQ(c.size(), 8u + 1 + 1 + 1);
  EXPECT_EQ(c.back(), Item::ev(OsEvent::exec()));

  // Without fetches the instructions fold into the next record, the exec included.
  TraceOpenOptions o;
  o.fetches = false;
  const std::vector<Item> folded = {Item::ref(RefKind::kRead, 8, 0x4844ff0, 5),
                                    Item::ref(RefKind::kWrite, 8, 0x4844e68, 1),
                                    Item::ev(OsEvent::exec(), 2)};
  EXPECT_EQ(test::read_items(kData + "/g-30234.lackey", o), folded);

  // Create events name children by PID: a manifest of per-PID logs uses the PIDs as stream ids.
  ScratchDir dir;
  test::write_file(dir.path("g.json"),
                   R"({"version": 1, "paging_mode": "4level", "streams": [
                        {"id": 30229, "file": ")" + kData + R"(/g-30229.lackey"},
                        {"id": 30234, "file": ")" + kData + R"(/g-30234.lackey",
                         "parent": 30229, "created": "vfork"}]})");
  const TraceManifest m = load_manifest(dir.path("g.json"));
  for (const OsEvent& e : events_of(p)) {
    if (e.kind != OsEventKind::kCreate) continue;
    const TraceStream* child = m.find(e.stream);
    ASSERT_NE(child, nullptr);
    EXPECT_EQ(child->parent, std::optional<uint32_t>(30229));
    EXPECT_EQ(child->created, e.how);
  }
}

// Lines of valgrind's shapes for cases the real excerpts lack: an asynchronous mm call (valgrind
// runs them synchronously, but any call may print "[async]"), a fork whose result comes on the
// continuation line, the last thread's exit(60), MAP_SHARED_VALIDATE and MAP_LOCKED, a failed
// execve, and "--PID--" messages.
TEST(LackeySyscalls, HandWrittenShapes) {
  ScratchDir dir;
  test::write_file(
      dir.path("h.lackey"),
      "==7== Lackey, an example Valgrind tool\n"
      "--7-- WARNING: a message of valgrind's own\n"
      "SYSCALL[7,1](11) sys_munmap ( 0x483c000, 8192 ) --> [async] ... \n"
      "I  0400000,2\n"
      "SYSCALL[7,1](11) ... [async] --> Success(0x0) \n"
      "SYSCALL[7,1](11) sys_munmap ( 0x5000000, 8192 ) --> [async] ... \n"
      "SYSCALL[7,1](11) ... [async] --> Failure(0x16) \n"
      "SYSCALL[7,1](57) sys_fork ( )\n"
      " --> [pre-success] Success(0x9) \n"
      "SYSCALL[7,1](57) sys_fork ( )\n"
      " --> [pre-fail] Failure(0xb) \n"
      "SYSCALL[7,1](9) sys_mmap ( 0x0, 4096, 3, 8195, 3, 0 ) --> [pre-success] Success(0x6000) \n"
      "SYSCALL[7,1](59) sys_execve ( 0x10a006(/nonexistent), 0x1fff0005a0, 0x1fff000738 ) --> "
      "[pre-fail] Failure(0x2) \n"
      "SYSCALL[7,1](56) sys_clone ( 3d0f00, 0x533bf70, 0x533c990, 0x533c990, 0x533c6c0 ) --> "
      "[pre-success] Success(0xa) \n"
      "SYSCALL[7,2](60) exit( 0 ) --> [pre-success] Success(0x0) \n"
      "SYSCALL[7,1](60) exit( 0 ) --> [pre-success] Success(0x0) \n");
  const std::vector<Item> expected = {
      Item::ref(RefKind::kFetch, 2, 0x400000),
      Item::ev(OsEvent::munmap(0x483c000, 8192)),
      Item::ev(OsEvent::create(9, StreamOrigin::kFork)),
      Item::ev(OsEvent::mmap(0x6000, 4096, 3, OsEvent::kMapShared | OsEvent::kMapPopulate)),
      Item::ev(OsEvent::create(10, StreamOrigin::kThread)),
      Item::ev(OsEvent::exit()),
  };
  for (size_t batch : {1, 4096}) {
    EXPECT_EQ(test::read_items(dir.path("h.lackey"), {}, batch), expected) << batch;
  }
  EXPECT_TRUE(expected[3].event.file);
}

struct BadSyscall {
  const char* name;
  std::string text;  // the bad line is line 2
  std::vector<const char*> message;
};

class LackeySyscallErrors : public ::testing::TestWithParam<BadSyscall> {};

TEST_P(LackeySyscallErrors, MessageNamesFileAndLine) {
  ScratchDir dir;
  const std::string path = dir.path("bad.lackey");
  test::write_file(path, "I  0400000,2\n" + GetParam().text + "\nI  0400002,2\n");
  const std::string msg = test::error_of([&] { test::read_items(path); });
  EXPECT_NE(msg.find(path + ":2: "), std::string::npos) << msg;
  for (const char* part : GetParam().message) EXPECT_NE(msg.find(part), std::string::npos) << msg;
}

INSTANTIATE_TEST_SUITE_P(
    Table, LackeySyscallErrors,
    ::testing::ValuesIn(std::vector<BadSyscall>{
        {"header", "SYSCALL[x,1](9) sys_mmap ( 0x0, 8192, 3, 34, 4294967295, 0 )",
         {"not a valgrind system call line (header)", "SYSCALL[PID,TID](NR)"}},
        {"mmap_3_args", "SYSCALL[7,1](9) sys_mmap ( 0x0, 8192, 3 ) --> Success(0x1000)",
         {"3 arguments; expected 6"}},
        {"mmap_bad_arg", "SYSCALL[7,1](9) sys_mmap ( 0x0, 8k, 3, 34, 4294967295, 0 ) --> "
                         "[pre-success] Success(0x1000)",
         {"argument 2 '8k'"}},
        {"mremap_6_args", "SYSCALL[7,1](25) sys_mremap ( 0x1, 2, 3, 0x4, 0x5, 6 ) --> "
                          "Success(0x1000)",
         {"more than 5 arguments"}},
        {"no_args", "SYSCALL[7,1](11) sys_munmap --> Success(0x0)", {"no argument list"}},
        {"result_word", "SYSCALL[7,1](12) sys_brk ( 0x0 ) --> [pre-success] Sucess(0x4035000)",
         {"(result)"}},
        {"result_value", "SYSCALL[7,1](12) sys_brk ( 0x0 ) --> [pre-success] Success(4035000)",
         {"(result value)"}},
        {"mmap_type_0", "SYSCALL[7,1](9) sys_mmap ( 0x0, 8192, 3, 32, 4294967295, 0 ) --> "
                        "[pre-success] Success(0x1000)",
         {"MAP_SHARED or MAP_PRIVATE"}},
        {"child_id", "SYSCALL[7,1](57) sys_fork ( )   fork: process 7 created child x",
         {"(child id)"}},
        {"thread_id_too_big", "SYSCALL[7,1](56) sys_clone ( 3d0f00, 0x0 ) --> "
                              "Success(0x100000000)",
         {"child id above 2^32-1"}},
        {"no_space", "SYSCALLS", {"not a lackey trace line", "no space after the kind"}},
    }),
    [](const auto& info) { return std::string(info.param.name); });

TEST(LackeySyscalls, OneProcessPerLog) {
  ScratchDir dir;
  test::write_file(dir.path("mixed.lackey"),
                   "SYSCALL[7,1](12) sys_brk ( 0x0 ) --> [pre-success] Success(0x4035000) \n"
                   "I  0400000,2\n"
                   "SYSCALL[8,1](12) sys_brk ( 0x0 ) --> [pre-success] Success(0x4035000) \n");
  const std::string msg = test::error_of([&] { test::read_items(dir.path("mixed.lackey")); });
  EXPECT_NE(msg.find(dir.path("mixed.lackey") + ":3: a system call of process 8, but line 1 had "
                     "process 7"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--log-file=NAME.%p"), std::string::npos) << msg;
}

}  // namespace
}  // namespace shadowsim
