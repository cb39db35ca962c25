// The locality model (workloads/locality_model.h): fitting on hand-made lackey traces whose
// page-level statistics are counted by hand, the JSON round trip and its errors, the generator's
// rules (only known pages, no writes after a fork, forgetting unmapped ranges, the fitted
// distances, the cap, instructions kept), and the perf import with a model: deterministic,
// bounded and instruction-preserving.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "trace_test_util.h"
#include "workloads/locality_model.h"
#include "workloads/perf_script.h"
#include "workloads/trace_cli.h"
#include "workloads/trace_manifest.h"
#include "workloads/trace_reader.h"
#include "workloads/trace_writer.h"

namespace shadowsim {
namespace {

using test::error_of;
using test::read_file;
using test::ScratchDir;
using test::write_file;

const std::string kData = SHADOWSIM_TEST_DATA_DIR;

// Page-level references, counted by hand (pages are address >> 12):
//   code: 0x401 cold; 0x401 again (same page: no reference); 0x402 cold; 0x401 distance 1.
//     -> refs 3, cold 2, histogram[0] 1.
//   data: 0x500 cold; 0x501 cold (a store, but a first touch: not a counted write);
//     0x500 distance 1, its run has a store: write 1; 0x502 cold; 0x501 distance 2 (0x502 and
//     0x500 came between); 0x502 distance 1 by an M (load + store): write 2.
//     -> refs 6, cold 3, histogram[0] 2, histogram[1] 1, writes 2.
//   instructions: 4 fetches.
const char* kHandLackey =
    "==100== Lackey, an example Valgrind tool\n"
    "==100== Command: /usr/lib/gcc/x86_64-linux-gnu/12/cc1 -quiet x.c\n"
    "==100== Parent PID: 99\n"
    "==100== \n"
    "I  00401000,4\n"
    " L 00500000,8\n"
    " S 00501000,8\n"
    "I  00401004,4\n"
    " L 00500008,8\n"
    " S 00500010,8\n"
    " L 00502000,8\n"
    "I  00402000,4\n"
    " L 00501ff8,8\n"
    "I  00401008,4\n"
    " M 00502000,8\n";

TEST(LocalityFit, HandCountedLackeyLog) {
  ScratchDir dir;
  const std::string log = dir.path("x.lackey");
  write_file(log, kHandLackey);
  LocalityModel m;
  fit_locality(log, {}, &m);
  ASSERT_EQ(m.programs.size(), 1u);
  ASSERT_TRUE(m.programs.count("cc1"));  // from the Command: header, as perf's comm shows it
  const LocalityProgram& p = m.programs.at("cc1");
  EXPECT_EQ(p.images, 1u);
  EXPECT_EQ(p.instructions, 4u);
  EXPECT_EQ(p.code.refs, 3u);
  EXPECT_EQ(p.code.cold, 2u);
  EXPECT_EQ(p.code.far, 0u);
  EXPECT_EQ(p.code.histogram[0], 1u);
  EXPECT_EQ(p.data.refs, 6u);
  EXPECT_EQ(p.data.cold, 3u);
  EXPECT_EQ(p.data.histogram[0], 2u);
  EXPECT_EQ(p.data.histogram[1], 1u);
  EXPECT_EQ(p.data.writes, 2u);
  EXPECT_DOUBLE_EQ(p.code_rate(), 1.0 / 4);
  EXPECT_DOUBLE_EQ(p.data_rate(), 3.0 / 4);
  EXPECT_DOUBLE_EQ(p.write_share(), 2.0 / 3);
  // The pooled program is the sum; an unknown comm gets it.
  EXPECT_EQ(&m.lookup("no-such-program"), &m.pooled);
  EXPECT_EQ(m.pooled.data.refs, 6u);
  EXPECT_EQ(&m.lookup("cc1"), &m.programs.at("cc1"));

  // The first 5 records only: I 0x401, L 0x500, S 0x501, I (same page), L 0x500 (distance 1).
  LocalityModel w;
  LocalityFitOptions o;
  o.max_records = 5;
  fit_locality(log, o, &w);
  const LocalityProgram& q = w.programs.at("cc1");
  EXPECT_EQ(q.instructions, 2u);
  EXPECT_EQ(q.data.refs, 3u);
  EXPECT_EQ(q.data.histogram[0], 1u);
  EXPECT_EQ(q.data.writes, 0u);
}

TEST(LocalityFit, FarReferencesAndExec) {
  // 4,097 distinct data pages, then page 0 again (pushed out of the 4,096-deep list: far), then
  // page 4,096 (the one before page 0: distance 1); an exec; page 1 again: a first touch of the
  // new image.
  ScratchDir dir;
  const std::string path = dir.path("far.sst");
  {
    auto w = create_trace(path);
    for (uint64_t page = 0; page <= kLocalityMaxDepth; ++page) {
      w->write(TraceRecord{RefKind::kRead, 8, 1, page << 12});
    }
    w->write(TraceRecord{RefKind::kRead, 8, 1, 0});
    w->write(TraceRecord{RefKind::kWrite, 8, 1, uint64_t{kLocalityMaxDepth} << 12});
    w->write_event(OsEvent::exec(), 0);
    w->write(TraceRecord{RefKind::kRead, 8, 1, 1 << 12});
    w->close();
  }
  LocalityModel m;
  auto reader = open_trace(path);
  fit_locality_stream(*reader, "prog", 0, &m);
  const LocalityProgram& p = m.programs.at("prog");
  EXPECT_EQ(p.images, 2u);
  EXPECT_EQ(p.instructions, kLocalityMaxDepth + 4u);  // one per record (gap 1)
  EXPECT_EQ(p.data.refs, kLocalityMaxDepth + 4u);
  EXPECT_EQ(p.data.cold, kLocalityMaxDepth + 2u);
  EXPECT_EQ(p.data.far, 1u);
  EXPECT_EQ(p.data.histogram[0], 1u);
  EXPECT_EQ(p.data.writes, 1u);
  EXPECT_EQ(p.code.refs, 0u);
}

TEST(LocalityFit, LackeyFolderByCommand) {
  // The shipped recording: make, two sh and cat (docs/workloads.md); each log is fitted under
  // the program of its Command: header (a pre-exec half is its parent's program).
  LocalityModel m;
  fit_locality(kData + "/lackey-make", {}, &m);
  std::set<std::string> names;
  for (const auto& [name, p] : m.programs) names.insert(name);
  EXPECT_EQ(names, (std::set<std::string>{"cat", "make", "sh"}));
  EXPECT_EQ(m.programs.at("make").images, 3u);  // make's log and two pre-exec halves
  EXPECT_EQ(m.programs.at("sh").images, 3u);    // two sh images and cat's pre-exec half
  EXPECT_EQ(m.programs.at("cat").images, 1u);
  uint64_t instructions = 0;
  for (const auto& [name, p] : m.programs) {
    instructions += p.instructions;
    EXPECT_LE(p.code.cold, p.code.refs);
    EXPECT_LE(p.data.writes, p.data.reuses());
  }
  // 3,960,... fetches in the recording (docs/workloads.md: 3.96 M): every instruction counted.
  EXPECT_GT(instructions, 3950000u);
  EXPECT_LT(instructions, 3970000u);
  EXPECT_EQ(m.pooled.instructions, instructions);
}

TEST(LocalityFit, CommOfCommand) {
  EXPECT_EQ(comm_of_command("/usr/bin/make -j2"), "make");
  EXPECT_EQ(comm_of_command("  sh -c 'echo a'"), "sh");
  EXPECT_EQ(comm_of_command("./scripts/pahole-flags.sh"), "pahole-flags.sh");
  EXPECT_EQ(comm_of_command("/x/check-local-export y"), "check-local-exp");  // 15 characters
  EXPECT_EQ(comm_of_command(""), "");
}

TEST(LocalityModelFile, RoundTripAndErrors) {
  ScratchDir dir;
  write_file(dir.path("x.lackey"), kHandLackey);
  LocalityModel m;
  fit_locality(dir.path("x.lackey"), {}, &m);
  save_locality_model(m, dir.path("m.json"));
  const LocalityModel back = load_locality_model(dir.path("m.json"));
  ASSERT_EQ(back.programs.size(), 1u);
  const LocalityProgram& p = back.programs.at("cc1");
  EXPECT_EQ(p.data.histogram, m.programs.at("cc1").data.histogram);
  EXPECT_EQ(p.data.writes, 2u);
  EXPECT_EQ(p.code.cold, 2u);
  EXPECT_EQ(back.pooled.instructions, 4u);

  // Counts that do not add up, a wrong kind, bad JSON: errors naming the file and the place.
  std::string text = read_file(dir.path("m.json"));
  const std::string good = "\"cold\": 3";
  ASSERT_NE(text.find(good), std::string::npos) << text;
  std::string bad = text;
  bad.replace(bad.find(good), good.size(), "\"cold\": 4");
  write_file(dir.path("bad.json"), bad);
  std::string e = error_of([&] { load_locality_model(dir.path("bad.json")); });
  EXPECT_NE(e.find("bad.json: programs.cc1.data: inconsistent counts"), std::string::npos) << e;
  write_file(dir.path("kind.json"), "{\"version\": 1, \"kind\": \"manifest\"}");
  e = error_of([&] { load_locality_model(dir.path("kind.json")); });
  EXPECT_NE(e.find("kind.json: kind: expected \"shadowsim-locality-model\""), std::string::npos)
      << e;
  // Found by fuzzing (docs/fuzzing.md): a kind that is not a string threw nlohmann's type_error.
  write_file(dir.path("kind0.json"), "{\"version\": 1, \"kind\": 0}");
  e = error_of([&] { load_locality_model(dir.path("kind0.json")); });
  EXPECT_NE(e.find("kind0.json: kind: expected \"shadowsim-locality-model\""), std::string::npos)
      << e;
  write_file(dir.path("junk.json"), "{");
  e = error_of([&] { load_locality_model(dir.path("junk.json")); });
  EXPECT_NE(e.find("junk.json: not valid JSON"), std::string::npos) << e;
}

// A program whose references all fall in one distance bucket.
LocalityProgram one_bucket(int bucket, uint64_t code_reuses, uint64_t data_reuses,
                           uint64_t writes, uint64_t instructions) {
  LocalityProgram p;
  p.name = "test";
  p.instructions = instructions;
  p.code.refs = code_reuses;
  p.code.histogram[static_cast<size_t>(bucket)] = code_reuses;
  p.data.refs = data_reuses;
  p.data.histogram[static_cast<size_t>(bucket)] = data_reuses;
  p.data.writes = writes;
  return p;
}

TEST(LocalityGenerator, DrawsTheFittedDistancesFromKnownPagesOnly) {
  // Every data reuse at distance 8..15: replaying the generated pages through an LRU list kept
  // here, each must be found 8..15 deep.
  const LocalityProgram p = one_bucket(3, 0, 100, 0, 100);
  LocalityGenerator g(7, 1);
  g.set_program(&p);
  std::vector<uint64_t> lru;  // page numbers, most recent first
  std::set<uint64_t> known;
  for (uint64_t page = 0x1000; page < 0x1000 + 100; ++page) {
    g.touch(RefKind::kRead, page << 12 | 0x10);
    lru.insert(lru.begin(), page);
    known.insert(page);
  }
  std::vector<TraceRecord> out;
  uint64_t rest;
  double modelled;
  for (int i = 0; i < 200; ++i) {
    out.clear();
    ASSERT_EQ(g.generate(1000, 50, &out, &rest, &modelled), 50u);
    EXPECT_DOUBLE_EQ(modelled, 1000.0);  // 1 data reuse per instruction
    for (const TraceRecord& r : out) {
      ASSERT_EQ(r.kind, RefKind::kRead);  // no write was ever recorded
      const uint64_t page = r.va >> 12;
      ASSERT_TRUE(known.count(page)) << std::hex << r.va;
      const auto it = std::find(lru.begin(), lru.end(), page);
      const auto depth = it - lru.begin();
      ASSERT_GE(depth, 8);
      ASSERT_LT(depth, 16);
      std::rotate(lru.begin(), it, it + 1);
    }
  }
}

TEST(LocalityGenerator, CapInstructionsAndExpectedCount) {
  const LocalityProgram p = one_bucket(0, 1, 3, 0, 16);  // 0.25 references per instruction
  LocalityGenerator g(1, 2);
  g.set_program(&p);
  g.touch(RefKind::kFetch, 0x400000);
  g.touch(RefKind::kFetch, 0x401000);
  g.touch(RefKind::kRead, 0x600000);
  g.touch(RefKind::kRead, 0x601000);
  std::vector<TraceRecord> out;
  uint64_t rest;
  double modelled;
  // A long gap: exactly the cap, and the instructions add up.
  for (uint64_t instructions : {uint64_t{1000000}, uint64_t{100}, uint64_t{10000000000}}) {
    out.clear();
    const size_t n = g.generate(instructions, 16, &out, &rest, &modelled);
    ASSERT_EQ(n, 16u);
    uint64_t sum = rest;
    for (const TraceRecord& r : out) sum += instructions_of(r);
    EXPECT_EQ(sum, instructions);
  }
  // A short gap: 10 instructions x 0.25 = 2.5 expected, so 2 or 3, 2.5 on average.
  uint64_t total = 0;
  for (int i = 0; i < 4000; ++i) {
    out.clear();
    const size_t n = g.generate(10, 16, &out, &rest, &modelled);
    ASSERT_TRUE(n == 2 || n == 3) << n;
    total += n;
  }
  EXPECT_NEAR(static_cast<double>(total) / 4000, 2.5, 0.05);
  // Nothing without a program, with a zero cap, or with no known pages.
  out.clear();
  EXPECT_EQ(g.generate(1000, 0, &out, &rest, &modelled), 0u);
  EXPECT_EQ(rest, 1000u);
  LocalityGenerator empty(1, 3);
  empty.set_program(&p);
  EXPECT_EQ(empty.generate(1000, 16, &out, &rest, &modelled), 0u);
  LocalityGenerator none(1, 4);
  none.touch(RefKind::kRead, 0x600000);
  EXPECT_EQ(none.generate(1000, 16, &out, &rest, &modelled), 0u);
}

TEST(LocalityGenerator, WritesOnlyWritablePagesAndForgetsChangedRanges) {
  LocalityProgram p = one_bucket(0, 0, 10, 10, 10);  // every data reuse writes (if it may)
  p.data.refs = 20;  // distances 1 and 2-3: all three pages get picked
  p.data.writes = 20;
  p.data.histogram[1] = 10;
  LocalityGenerator g(3, 5);
  g.set_program(&p);
  g.touch(RefKind::kWrite, 0x10000);
  g.touch(RefKind::kRead, 0x11000);   // read fault (e.g. the zero page): not writable
  g.touch(RefKind::kWrite, 0x12000);
  std::vector<TraceRecord> out;
  uint64_t rest;
  double modelled;
  g.generate(100000, 1000, &out, &rest, &modelled);
  std::map<uint64_t, std::set<RefKind>> kinds;
  for (const TraceRecord& r : out) kinds[r.va >> 12].insert(r.kind);
  EXPECT_EQ(kinds[0x10], (std::set<RefKind>{RefKind::kWrite}));
  EXPECT_EQ(kinds[0x11], (std::set<RefKind>{RefKind::kRead}));
  EXPECT_EQ(kinds[0x12], (std::set<RefKind>{RefKind::kWrite}));
  // A fork write-protects everything (COW): reads only, until a write fault on a page.
  g.event(OsEvent::create(9, StreamOrigin::kFork));
  out.clear();
  g.generate(100000, 1000, &out, &rest, &modelled);
  for (const TraceRecord& r : out) ASSERT_EQ(r.kind, RefKind::kRead);
  g.touch(RefKind::kWrite, 0x12000);
  // A vfork does not.
  g.event(OsEvent::create(10, StreamOrigin::kVfork));
  out.clear();
  g.generate(100000, 1000, &out, &rest, &modelled);
  bool wrote = false;
  for (const TraceRecord& r : out) wrote |= r.kind == RefKind::kWrite && r.va >> 12 == 0x12;
  EXPECT_TRUE(wrote);
  // munmap forgets the range; brk shrinking forgets above the new break; exec forgets all.
  g.event(OsEvent::munmap(0x10000, 0x1000));
  out.clear();
  g.generate(100000, 1000, &out, &rest, &modelled);
  for (const TraceRecord& r : out) ASSERT_NE(r.va >> 12, 0x10u);
  EXPECT_EQ(g.data_pages(), 2u);
  g.event(OsEvent::brk(0x13000));
  g.event(OsEvent::brk(0x12000));  // shrinks over page 0x12
  EXPECT_EQ(g.data_pages(), 1u);
  g.event(OsEvent::exec());
  EXPECT_EQ(g.data_pages(), 0u);
  out.clear();
  EXPECT_EQ(g.generate(100000, 1000, &out, &rest, &modelled), 0u);
}

TEST(LocalityGenerator, Deterministic) {
  const LocalityProgram p = one_bucket(2, 5, 5, 2, 100);
  auto run = [&](uint64_t seed) {
    LocalityGenerator g(seed, 11);
    g.set_program(&p);
    for (uint64_t i = 0; i < 40; ++i) g.touch(i % 3 ? RefKind::kWrite : RefKind::kFetch, i << 12);
    std::vector<TraceRecord> out;
    uint64_t rest;
    double modelled;
    for (int k = 0; k < 20; ++k) g.generate(5000, 32, &out, &rest, &modelled);
    return out;
  };
  EXPECT_EQ(run(1), run(1));
  EXPECT_NE(run(1), run(2));
}

// ---- the perf import with a model ----

struct StreamFacts {
  uint64_t references = 0, synthetic_candidates = 0, instructions = 0;
};

// Reads a workload back: per stream, every reference that is not on a page an earlier reference
// of the stream (since its last exec) touched is a recorded fault; the others may be synthetic.
std::map<uint32_t, std::vector<TraceRecord>> read_streams(const std::string& manifest) {
  std::map<uint32_t, std::vector<TraceRecord>> all;
  const TraceManifest m = load_manifest(manifest);
  for (const TraceStream& s : m.streams) {
    auto reader = open_trace(s.path);
    std::vector<TraceRecord> batch(4096);
    std::vector<TraceRecord>& v = all[s.id];
    while (const size_t n = reader->read(batch.data(), batch.size())) {
      for (size_t i = 0; i < n; ++i) {
        TraceRecord r = batch[i];
        if (r.kind == RefKind::kEvent) r.va = static_cast<uint64_t>(reader->events()[r.va].kind);
        v.push_back(r);
      }
    }
  }
  return all;
}

TEST(PerfImportLocality, DeterministicBoundedAndInstructionsKept) {
  ScratchDir dir;
  const std::string fixture = kData + "/kbuild-3files.perf.txt.zst";
  if (!std::filesystem::exists(fixture)) GTEST_SKIP() << fixture << " missing";
  LocalityModel model;
  fit_locality(kData + "/lackey-make", {}, &model);
  save_locality_model(model, dir.path("model.json"));

  PerfImportOptions plain;
  const PerfImportResult base = import_perf_script(fixture, dir.path("plain/manifest.json"), plain);
  PerfImportOptions with = plain;
  with.locality = dir.path("model.json");
  with.refs_per_event = 4;
  const PerfImportResult a = import_perf_script(fixture, dir.path("a/manifest.json"), with);
  const PerfImportResult b = import_perf_script(fixture, dir.path("b/manifest.json"), with);
  with.seed = 2;
  const PerfImportResult c = import_perf_script(fixture, dir.path("c/manifest.json"), with);

  // The recorded faults and events are all still there; the instructions are unchanged.
  EXPECT_EQ(a.references, 144103u);  // tests/workloads/data/README.md: grep -c page_fault_user
  EXPECT_EQ(a.references, base.references);
  for (int k = 0; k < kOsEventKinds; ++k) EXPECT_EQ(a.events_by_kind[k], base.events_by_kind[k]);
  EXPECT_EQ(a.instructions, base.instructions);
  // Bounded: at most 4 per record written (each record has one gap before it), and most gaps
  // (cc1: ~200 K instructions per fault) are long enough to reach the cap.
  uint64_t records = a.references;
  for (int k = 0; k < kOsEventKinds; ++k) records += a.events_by_kind[k];
  EXPECT_LE(a.synthetic, 4 * records);
  EXPECT_GT(a.synthetic, 2 * records);
  EXPECT_GT(a.modelled, static_cast<double>(a.synthetic));
  EXPECT_EQ(a.synthetic, a.synthetic_by_kind[0] + a.synthetic_by_kind[1] + a.synthetic_by_kind[2]);
  // Deterministic: byte-identical streams for one seed, different ones for another.
  const TraceManifest ma = load_manifest(dir.path("a/manifest.json"));
  const TraceManifest mb = load_manifest(dir.path("b/manifest.json"));
  ASSERT_EQ(ma.streams.size(), mb.streams.size());
  bool differs = false;
  for (size_t i = 0; i < ma.streams.size(); ++i) {
    ASSERT_EQ(read_file(ma.streams[i].path), read_file(mb.streams[i].path)) << ma.streams[i].path;
    const std::string other = dir.path("c/" + std::filesystem::path(ma.streams[i].path)
                                                  .filename().string());
    differs |= read_file(ma.streams[i].path) != read_file(other);
  }
  EXPECT_TRUE(differs);
  EXPECT_EQ(c.synthetic_by_kind[0] + c.synthetic_by_kind[1] + c.synthetic_by_kind[2], c.synthetic);

  // Every synthetic reference lies on a page the stream's recorded faults touched since its
  // last exec: strip the synthetic references (the streams without them are the plain import),
  // so compare page sets.
  const auto plain_streams = read_streams(dir.path("plain/manifest.json"));
  const auto model_streams = read_streams(dir.path("a/manifest.json"));
  ASSERT_EQ(plain_streams.size(), model_streams.size());
  for (const auto& [id, recs] : model_streams) {
    const std::vector<TraceRecord>& base_recs = plain_streams.at(id);
    size_t j = 0;  // next record of the plain stream
    std::set<uint64_t> pages;
    for (const TraceRecord& r : recs) {
      const bool recorded = j < base_recs.size() && base_recs[j].kind == r.kind &&
                            base_recs[j].va == r.va && base_recs[j].size == r.size;
      if (recorded) {
        ++j;
        if (r.kind == RefKind::kEvent && r.va == static_cast<uint64_t>(OsEventKind::kExec)) {
          pages.clear();
        } else if (r.kind != RefKind::kEvent) {
          pages.insert(r.va >> 12);
        }
        continue;
      }
      ASSERT_NE(r.kind, RefKind::kEvent) << "stream " << id;
      ASSERT_TRUE(pages.count(r.va >> 12)) << "stream " << id << " synthetic reference at 0x"
                                           << std::hex << r.va << " on no faulted page";
    }
    EXPECT_EQ(j, base_recs.size()) << "stream " << id << ": a recorded record is missing";
  }
}

TEST(PerfImportLocality, Cli) {
  ScratchDir dir;
  int status;
  std::ostringstream out, err;
  std::vector<std::string> args = {"trace", "fit-locality", kData + "/lackey-make", "-o",
                                   dir.path("m.json")};
  std::vector<char*> argv;
  for (std::string& s : args) argv.push_back(s.data());
  status = run_trace_command(static_cast<int>(argv.size()), argv.data(), out, err);
  ASSERT_EQ(status, 0) << err.str();
  EXPECT_NE(out.str().find("3 programs"), std::string::npos) << out.str();
  EXPECT_TRUE(std::filesystem::exists(dir.path("m.json")));

  args = {"trace", "perf-import", kData + "/perf-small.txt", "-o", dir.path("w/manifest.json"),
          "--locality", dir.path("m.json"), "--refs-per-event", "3"};
  argv.clear();
  for (std::string& s : args) argv.push_back(s.data());
  std::ostringstream out2, err2;
  status = run_trace_command(static_cast<int>(argv.size()), argv.data(), out2, err2);
  ASSERT_EQ(status, 0) << err2.str();
  EXPECT_NE(out2.str().find("at most 3 per gap"), std::string::npos) << out2.str();

  // --refs-per-event without a model is a usage error; a missing model a bad input.
  args = {"trace", "perf-import", kData + "/perf-small.txt", "-o", dir.path("x/manifest.json"),
          "--refs-per-event", "3"};
  argv.clear();
  for (std::string& s : args) argv.push_back(s.data());
  std::ostringstream out3, err3;
  EXPECT_EQ(run_trace_command(static_cast<int>(argv.size()), argv.data(), out3, err3), 2);
  EXPECT_NE(err3.str().find("need --locality"), std::string::npos) << err3.str();
  args = {"trace", "perf-import", kData + "/perf-small.txt", "-o", dir.path("y/manifest.json"),
          "--locality", dir.path("none.json")};
  argv.clear();
  for (std::string& s : args) argv.push_back(s.data());
  std::ostringstream out4, err4;
  EXPECT_EQ(run_trace_command(static_cast<int>(argv.size()), argv.data(), out4, err4), 1);
  EXPECT_NE(err4.str().find("none.json: cannot read the locality model"), std::string::npos)
      << err4.str();
}

}  // namespace
}  // namespace shadowsim
