// Synthetic workload generators (workloads/generators.h): determinism, manifests that load,
// streams that read back, every reference inside a VMA the stream's events made, create events
// that match the manifest, and kernel-compile's process counts.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include "trace_test_util.h"
#include "workloads/generators.h"
#include "workloads/trace_manifest.h"
#include "workloads/trace_reader.h"

namespace shadowsim {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;

constexpr uint64_t kPage = 4096;
uint64_t page_up(uint64_t a) { return (a + kPage - 1) & ~(kPage - 1); }

// A tiny VMA map: page -> prot, enough for the small scales tested here.
struct AddressSpace {
  std::map<uint64_t, uint8_t> pages;
  bool brk_known = false;
  uint64_t brk = 0;

  void map(uint64_t a, uint64_t len, uint8_t prot) {
    for (uint64_t p = a; p < a + page_up(len); p += kPage) pages[p] = prot;
  }
  void unmap(uint64_t a, uint64_t len) {
    pages.erase(pages.lower_bound(a), pages.lower_bound(a + page_up(len)));
  }
  void protect(uint64_t a, uint64_t len, uint8_t prot) {
    for (auto it = pages.lower_bound(a); it != pages.lower_bound(a + page_up(len)); ++it) {
      it->second = prot;
    }
  }
};

struct Counts {
  uint64_t streams = 0, forks = 0, vforks = 0, threads = 0, execs = 0, exits = 0;
  uint64_t mmaps = 0, munmaps = 0, mprotects = 0, brks = 0, references = 0;
};

// Replays every stream of the workload, parents first, children from their parent's address
// space at the create event (a copy: fork, vfork until exec; threads only touch what existed
// at creation or what they map themselves).
Counts check_workload(const std::string& manifest_path) {
  const TraceManifest m = load_manifest(manifest_path);
  Counts c;
  std::map<uint32_t, AddressSpace> inherited;
  std::map<uint32_t, uint32_t> created_by;
  for (const TraceStream& s : m.streams) {  // ids grow from parent to child
    SCOPED_TRACE(s.file);
    ++c.streams;
    if (s.parent) {
      EXPECT_EQ(created_by.count(s.id), 1u) << "no create event for stream " << s.id;
      EXPECT_EQ(created_by[s.id], *s.parent);
    }
    AddressSpace as = std::move(inherited[s.id]);
    bool exited = false;
    auto reader = open_trace(s.path);
    std::vector<TraceRecord> batch(4096);
    while (const size_t n = reader->read(batch.data(), batch.size())) {
      for (size_t i = 0; i < n; ++i) {
        const TraceRecord& r = batch[i];
        EXPECT_FALSE(exited) << "record after exit";
        if (r.kind == RefKind::kEvent) {
          const OsEvent& e = reader->events()[r.va];
          switch (e.kind) {
            case OsEventKind::kCreate: {
              const TraceStream* child = m.find(e.stream);
              EXPECT_NE(child, nullptr);
              if (child) {
                EXPECT_EQ(child->parent, std::optional<uint32_t>(s.id));
                EXPECT_EQ(child->created, e.how);
              }
              EXPECT_EQ(created_by.count(e.stream), 0u);
              created_by[e.stream] = s.id;
              inherited[e.stream] = as;
              c.forks += e.how == StreamOrigin::kFork;
              c.vforks += e.how == StreamOrigin::kVfork;
              c.threads += e.how == StreamOrigin::kThread;
              break;
            }
            case OsEventKind::kExec:
              as = AddressSpace{};
              ++c.execs;
              break;
            case OsEventKind::kExit:
              exited = true;
              ++c.exits;
              break;
            case OsEventKind::kMmap: as.map(e.addr, e.length, e.prot); ++c.mmaps; break;
            case OsEventKind::kMunmap: as.unmap(e.addr, e.length); ++c.munmaps; break;
            case OsEventKind::kMprotect: as.protect(e.addr, e.length, e.prot); ++c.mprotects; break;
            case OsEventKind::kBrk:
              ++c.brks;
              if (!as.brk_known) {
                as.brk_known = true;
                as.brk = page_up(e.addr);
              } else if (page_up(e.addr) > as.brk) {
                as.map(as.brk, page_up(e.addr) - as.brk, 3);
                as.brk = page_up(e.addr);
              }
              break;
            default: ADD_FAILURE() << "unexpected event " << to_string(e.kind);
          }
          continue;
        }
        ++c.references;
        const uint8_t need = r.kind == RefKind::kWrite ? 2 : r.kind == RefKind::kFetch ? 4 : 1;
        const auto it = as.pages.find(r.va & ~(kPage - 1));
        if (it == as.pages.end() || !(it->second & need)) {
          ADD_FAILURE() << to_string(r.kind) << " of 0x" << std::hex << r.va
                        << " outside the stream's VMAs";
          return c;
        }
        EXPECT_LT(r.va, uint64_t{1} << 47) << "a kernel address";
      }
    }
    EXPECT_TRUE(exited) << "stream never exits";
  }
  EXPECT_EQ(created_by.size() + 1, m.streams.size());
  return c;
}

std::map<std::string, std::string> read_files(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    files[entry.path().filename().string()] =
        std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return files;
}

GeneratorParams small() {
  GeneratorParams p;
  p.scale = 0.02;
  p.kernel_compile.files = 3;
  p.walk_stress.footprint_mib = 64;
  return p;
}

TEST(Generators, EveryKindIsDeterministicAndSeedDependent) {
  ScratchDir dir;
  for (const WorkloadKind& k : workload_kinds()) {
    SCOPED_TRACE(k.name);
    generate_workload(k.name, small(), 7, dir.path(std::string(k.name) + "-a"));
    generate_workload(k.name, small(), 7, dir.path(std::string(k.name) + "-b"));
    generate_workload(k.name, small(), 8, dir.path(std::string(k.name) + "-c"));
    const auto a = read_files(dir.path(std::string(k.name) + "-a"));
    const auto c = read_files(dir.path(std::string(k.name) + "-c"));
    EXPECT_EQ(a, read_files(dir.path(std::string(k.name) + "-b")));
    EXPECT_NE(a, c);
    EXPECT_GE(a.size(), 2u);
  }
}

TEST(Generators, EveryKindReplaysInsideItsOwnVmas) {
  ScratchDir dir;
  for (const WorkloadKind& k : workload_kinds()) {
    SCOPED_TRACE(k.name);
    const std::string manifest = generate_workload(k.name, small(), 3, dir.path(k.name));
    const Counts c = check_workload(manifest);
    EXPECT_GT(c.references, 0u);
    EXPECT_EQ(c.exits, c.streams);
  }
}

TEST(Generators, KernelCompileCountsFollowTheParams) {
  ScratchDir dir;
  GeneratorParams p = small();
  p.kernel_compile.files = 3;
  const KernelCompileParams& k = p.kernel_compile;
  const Counts c = check_workload(generate_workload("kernel-compile", p, 1, dir.path("kc")));
  const uint64_t forks_per_file = 4;  // round(0.16 * 26)
  EXPECT_EQ(c.streams, 1 + k.files * k.creations_per_file);
  EXPECT_EQ(c.forks, k.files * forks_per_file);
  EXPECT_EQ(c.vforks, k.files * (k.creations_per_file - forks_per_file));
  EXPECT_EQ(c.threads, 0u);
  EXPECT_EQ(c.execs, k.files * k.creations_per_file);  // every created process execs
  EXPECT_GT(c.mprotects, 0u);                           // RELRO after every exec
  EXPECT_GT(c.brks, c.execs);                            // the initial break, then growth
  const double fork_share = static_cast<double>(c.forks) / (c.forks + c.vforks);
  EXPECT_GE(fork_share, 0.13);
  EXPECT_LE(fork_share, 0.19);

  const TraceManifest m = load_manifest(dir.path("kc/manifest.json"));
  int cc1 = 0;
  for (const TraceStream& s : m.streams) cc1 += s.name == "cc1";
  EXPECT_EQ(cc1, static_cast<int>(k.files));
}

TEST(Generators, OtherKindsCountsFollowTheParams) {
  ScratchDir dir;
  GeneratorParams p = small();
  Counts c = check_workload(generate_workload("fork-exit", p, 1, dir.path("fe")));
  EXPECT_EQ(c.forks, 4u);  // 200 * 0.02
  EXPECT_EQ(c.streams, 5u);
  c = check_workload(generate_workload("threads", p, 1, dir.path("th")));
  EXPECT_EQ(c.threads, p.threads.threads);
  EXPECT_EQ(c.munmaps, (p.threads.threads + 1) * 4u);  // rounds 200 * 0.02 per thread
  c = check_workload(generate_workload("mmap-churn", p, 1, dir.path("mc")));
  EXPECT_GE(c.munmaps, 40u);  // 2000 * 0.02 cycles, some unmapped in three pieces
}

TEST(Generators, BadInputIsAnError) {
  ScratchDir dir;
  EXPECT_THROW(generate_workload("nope", small(), 1, dir.path("x")), Error);
  GeneratorParams p = small();
  p.scale = 0;
  EXPECT_THROW(generate_workload("fork-exit", p, 1, dir.path("x")), Error);
  p = small();
  p.kernel_compile.creations_per_file = 4;  // sh, gcc, cc1, as and no room for a fork
  EXPECT_THROW(generate_workload("kernel-compile", p, 1, dir.path("x")), Error);
}

struct CliRun {
  int status;
  std::string out;
  std::string err;
};

CliRun run(std::vector<std::string> args) {
  args.insert(args.begin(), "workload");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  std::ostringstream out, err;
  const int status = run_workload_command(static_cast<int>(argv.size()), argv.data(), out, err);
  return {status, out.str(), err.str()};
}

TEST(WorkloadCli, ListHelpGenerateAndErrors) {
  ScratchDir dir;
  CliRun r = run({"list"});
  EXPECT_EQ(r.status, 0);
  for (const WorkloadKind& k : workload_kinds()) EXPECT_NE(r.out.find(k.name), std::string::npos);
  EXPECT_EQ(run({"--help"}).status, 0);
  EXPECT_EQ(run({"list", "--help"}).status, 0);
  r = run({"generate", "--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("--seed"), std::string::npos);
  EXPECT_EQ(run({}).status, 2);
  EXPECT_EQ(run({"frobnicate"}).status, 2);
  EXPECT_EQ(run({"generate", "fork-exit"}).status, 2);  // no -o
  EXPECT_EQ(run({"generate", "nope", "-o", dir.path("n")}).status, 2);
  EXPECT_EQ(run({"generate", "fork-exit", "-o", dir.path("n"), "--scale", "-1"}).status, 2);
  EXPECT_EQ(run({"generate", "fork-exit", "-o", dir.path("n"), "--bogus"}).status, 2);
  r = run({"generate", "threads", "-o", dir.path("t"), "--scale", "0.02", "--threads", "2",
           "--seed", "5"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(check_workload(dir.path("t/manifest.json")).threads, 2u);
  // A file where the folder should be: bad input, status 1.
  std::ofstream(dir.path("f")) << "x";
  EXPECT_EQ(run({"generate", "fork-exit", "-o", dir.path("f"), "--scale", "0.02"}).status, 1);
}

}  // namespace
}  // namespace shadowsim
