// `shadowsim trace ...` run in-process through run_trace_command.
#include <gtest/gtest.h>

#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "trace_test_util.h"
#include "workloads/trace_cli.h"
#include "workloads/trace_manifest.h"

namespace shadowsim {
namespace {

using test::ScratchDir;

struct CliRun {
  int status;
  std::string out;
  std::string err;
};

CliRun run(std::vector<std::string> args) {
  args.insert(args.begin(), "trace");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  std::ostringstream out, err;
  const int status = run_trace_command(static_cast<int>(argv.size()), argv.data(), out, err);
  return {status, out.str(), err.str()};
}

TEST(TraceCli, HelpAndUsageErrors) {
  CliRun r = run({"--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("sub-commands"), std::string::npos);
  EXPECT_EQ(run({}).status, 2);
  r = run({"frobnicate"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("unknown sub-command 'frobnicate'"), std::string::npos) << r.err;
  for (const char* sub : {"info", "convert", "head"}) {
    r = run({sub, "--help"});
    EXPECT_EQ(r.status, 0) << sub;
    EXPECT_NE(r.out.find(std::string("usage: shadowsim trace ") + sub), std::string::npos);
    EXPECT_NE(r.out.find("--help"), std::string::npos);
    r = run({sub});
    EXPECT_EQ(r.status, 2) << sub;
    EXPECT_NE(r.err.find("missing argument"), std::string::npos) << r.err;
    r = run({sub, "a", "b", "c", "--bogus"});
    EXPECT_EQ(r.status, 2) << sub;
  }
  EXPECT_EQ(run({"info", "x.sst", "--from", "pdf"}).status, 2);
}

// Independent count of what info should say.
nlohmann::json expected_summary(const std::vector<TraceRecord>& records) {
  uint64_t kinds[3] = {}, instructions = 0, lo = ~0ULL, hi = 0;
  std::set<uint64_t> pages, code, data;
  for (const TraceRecord& r : records) {
    ++kinds[static_cast<int>(r.kind)];
    instructions += uint64_t{r.gap} + (r.kind == RefKind::kFetch ? 1 : 0);
    const uint64_t last = r.va + r.size - 1 < r.va ? ~0ULL : r.va + r.size - 1;
    lo = std::min(lo, r.va);
    hi = std::max(hi, last);
    for (uint64_t p = r.va >> 12; p <= last >> 12; ++p) {
      pages.insert(p);
      (r.kind == RefKind::kFetch ? code : data).insert(p);
    }
  }
  nlohmann::json by_event = nlohmann::json::object();
  for (const char* k : {"create", "exec", "exit", "mmap", "munmap", "mprotect", "brk", "mremap",
                        "switch", "wait"}) {
    by_event[k] = 0;
  }
  return {{"records", records.size()}, {"reads", kinds[0]}, {"writes", kinds[1]},
          {"fetches", kinds[2]}, {"events", 0}, {"events_by_kind", by_event},
          {"instructions", instructions}, {"pages", pages.size()},
          {"code_pages", code.size()}, {"data_pages", data.size()},
          {"min_va", records.empty() ? 0 : lo}, {"max_va", records.empty() ? 0 : hi}};
}

nlohmann::json without_file(nlohmann::json j) {
  for (const char* k : {"file", "format", "id", "parent", "created"}) j.erase(k);
  return j;
}

TEST(TraceCli, InfoCountsWhatTheTraceHolds) {
  ScratchDir dir;
  const auto records = test::random_records(21, 30'000);
  test::write_trace(dir.path("t.sst.zst"), records);
  CliRun r = run({"info", dir.path("t.sst.zst"), "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["manifest"].is_null());
  ASSERT_EQ(j["streams"].size(), 1u);
  EXPECT_EQ(j["streams"][0]["format"], "binary, zstd-compressed");
  EXPECT_EQ(without_file(j["streams"][0]), expected_summary(records));
  EXPECT_EQ(j["total"], expected_summary(records));

  r = run({"info", dir.path("t.sst.zst")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("binary, zstd-compressed trace"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("30,000"), std::string::npos) << r.out;
}

TEST(TraceCli, InfoOnAManifestReportsEachStream) {
  ScratchDir dir;
  const auto a = test::random_records(1, 1000), b = test::random_records(2, 3000);
  test::write_trace(dir.path("a.sst"), a);
  test::write_trace(dir.path("b.sstx"), b);
  TraceManifest m;
  m.paging_mode = PagingMode::k5Level;
  m.streams.push_back({0, "a.sst", "", std::nullopt, StreamOrigin::kInitial, "a", "", std::nullopt});
  m.streams.push_back({1, "b.sstx", "", 0u, StreamOrigin::kVfork, "", "", std::nullopt});
  save_manifest(m, dir.path("m.json"));
  CliRun r = run({"info", dir.path("m.json"), "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["manifest"], dir.path("m.json"));
  EXPECT_EQ(j["paging_mode"], "5level");
  ASSERT_EQ(j["streams"].size(), 2u);
  EXPECT_EQ(without_file(j["streams"][0]), expected_summary(a));
  EXPECT_EQ(without_file(j["streams"][1]), expected_summary(b));
  EXPECT_EQ(j["streams"][1]["created"], "vfork");
  EXPECT_EQ(j["streams"][1]["parent"], 0);
  EXPECT_EQ(j["total"]["records"], a.size() + b.size());
  r = run({"info", dir.path("m.json")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("stream 1 (vfork by 0)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("total"), std::string::npos) << r.out;
}

TEST(TraceCli, ConvertBetweenAllFormats) {
  ScratchDir dir;
  const auto records = test::random_records(4, 20'000);
  test::write_trace(dir.path("a.sstx"), records);
  const char* chain[] = {"a.sstx", "b.sst", "c.sst.zst", "d.sstx.zst", "e.sst"};
  for (int i = 0; i + 1 < 5; ++i) {
    CliRun r = run({"convert", dir.path(chain[i]), dir.path(chain[i + 1]), "--level", "3"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("20000 records"), std::string::npos) << r.out;
  }
  EXPECT_EQ(test::read_all(dir.path("e.sst")), records);
}

TEST(TraceCli, ConvertLackeyWithAndWithoutFetches) {
  ScratchDir dir;
  test::write_file(dir.path("p.log"), "==1== x\nI  0400,3\n L 0600,8\nI  0403,2\n M 0608,4\n");
  CliRun r = run({"convert", dir.path("p.log"), dir.path("p.sst"), "--from", "lackey"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("5 records, 2 instructions"), std::string::npos) << r.out;
  r = run({"convert", dir.path("p.log"), dir.path("q.sstx"), "--from", "lackey", "--no-fetch"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("3 records, 2 instructions"), std::string::npos) << r.out;
  const std::vector<TraceRecord> expected = {{RefKind::kRead, 8, 1, 0x600},
                                             {RefKind::kRead, 4, 1, 0x608},
                                             {RefKind::kWrite, 4, 0, 0x608}};
  EXPECT_EQ(test::read_all(dir.path("q.sstx")), expected);
}

TEST(TraceCli, ConvertErrors) {
  ScratchDir dir;
  test::write_file(dir.path("bad.lackey"), "I  0400,3\nI  0403,3\noops\n");
  CliRun r = run({"convert", dir.path("bad.lackey"), dir.path("out.sst")});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find(dir.path("bad.lackey") + ":3:"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.path("out.sst"))) << "no half-written output";

  test::write_trace(dir.path("t.sst"), test::random_records(1, 10));
  r = run({"convert", dir.path("t.sst"), dir.path("out.txt")});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find(".sst, .sst.zst, .sstx"), std::string::npos) << r.err;
  EXPECT_EQ(run({"convert", dir.path("t.sst"), dir.path("t.sst")}).status, 2);
  EXPECT_EQ(run({"convert", dir.path("t.sst"), dir.path("o.sst"), "--level", "40"}).status, 2);
  r = run({"convert", dir.path("missing.sst"), dir.path("o.sst")});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("missing.sst"), std::string::npos) << r.err;
}

TEST(TraceCli, HeadPrintsTextThatReadsBack) {
  ScratchDir dir;
  const auto records = test::random_records(9, 500);
  test::write_trace(dir.path("t.sst"), records);
  CliRun r = run({"head", dir.path("t.sst"), "-n", "37"});
  ASSERT_EQ(r.status, 0) << r.err;
  test::write_file(dir.path("h.sstx"), r.out);
  const auto back = test::read_all(dir.path("h.sstx"));
  EXPECT_EQ(back, std::vector<TraceRecord>(records.begin(), records.begin() + 37));
  r = run({"head", dir.path("t.sst")});
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 10);
  r = run({"head", dir.path("t.sst"), "-n", "100000"});
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 500);

  // A manifest: --stream picks the stream.
  const auto other = test::random_records(10, 5);
  test::write_trace(dir.path("u.sst"), other);
  test::write_file(dir.path("m.json"), R"({"version": 1, "paging_mode": "4level", "streams": [
      {"id": 3, "file": "t.sst"}, {"id": 4, "file": "u.sst", "parent": 3, "created": "fork"}]})");
  r = run({"head", dir.path("m.json"), "--stream", "4", "-n", "5"});
  ASSERT_EQ(r.status, 0) << r.err;
  test::write_file(dir.path("h2.sstx"), r.out);
  EXPECT_EQ(test::read_all(dir.path("h2.sstx")), other);
  EXPECT_EQ(run({"head", dir.path("m.json"), "--stream", "5"}).status, 2);
}

TEST(TraceCli, BadInputExitsOneNamingTheFile) {
  ScratchDir dir;
  test::write_file(dir.path("t.sstx"), "R 0x10 8\nR 0x10 0\n");
  CliRun r = run({"info", dir.path("t.sstx")});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find(dir.path("t.sstx") + ":2:"), std::string::npos) << r.err;
  test::write_file(dir.path("m.json"), R"({"version": 1, "paging_mode": "4level", "streams": 1})");
  r = run({"info", dir.path("m.json")});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("m.json: streams:"), std::string::npos) << r.err;
}

TEST(TraceCli, EventsThroughHeadInfoAndConvert) {
  ScratchDir dir;
  auto items = test::random_items(17, 5000, 0.05);
  for (test::Item& i : items) i.record.gap %= 1000;  // --no-events below folds gaps together
  test::write_items(dir.path("e.sst"), items);
  uint64_t events = 0, by_kind[kOsEventKinds] = {};
  for (const test::Item& i : items) {
    if (i.record.kind != RefKind::kEvent) continue;
    ++events;
    ++by_kind[static_cast<int>(i.event.kind)];
  }
  ASSERT_GT(events, 100u);

  // head prints events in the text syntax: its output reads back as the same stream.
  CliRun r = run({"head", dir.path("e.sst"), "-n", "100000"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("\nE "), std::string::npos);
  test::write_file(dir.path("h.sstx"), r.out);
  EXPECT_EQ(test::read_items(dir.path("h.sstx")), items);

  // info counts them by kind.
  r = run({"info", dir.path("e.sst"), "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out)["total"];
  EXPECT_EQ(j["records"], items.size());
  EXPECT_EQ(j["events"], events);
  EXPECT_EQ(j["reads"].get<uint64_t>() + j["writes"].get<uint64_t>() +
                j["fetches"].get<uint64_t>() + events, items.size());
  for (int k = 0; k < kOsEventKinds; ++k) {
    EXPECT_EQ(j["events_by_kind"][to_string(static_cast<OsEventKind>(k))], by_kind[k]) << k;
  }
  r = run({"info", dir.path("e.sst")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find(fmt::format("OS event {}", events)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(fmt::format("mmap {}", by_kind[3])), std::string::npos) << r.out;

  // convert keeps them through every format; --no-events drops them, keeping the instructions.
  const char* chain[] = {"e.sst", "f.sstx.zst", "g.sst.zst", "h2.sstx", "i.sst"};
  for (int i = 0; i + 1 < 5; ++i) {
    r = run({"convert", dir.path(chain[i]), dir.path(chain[i + 1]), "--level", "3"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find(fmt::format("{} records ({} OS events)", items.size(), events)),
              std::string::npos) << r.out;
  }
  EXPECT_EQ(test::read_items(dir.path("i.sst")), items);
  r = run({"convert", dir.path("e.sst"), dir.path("n.sst"), "--no-events"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find(fmt::format("{} records,", items.size() - events)), std::string::npos)
      << r.out;
  const auto before = nlohmann::json::parse(run({"info", dir.path("e.sst"), "--json"}).out);
  const auto after = nlohmann::json::parse(run({"info", dir.path("n.sst"), "--json"}).out);
  EXPECT_EQ(after["total"]["events"], 0);
  // Gaps move to the next record; only those of events at the very end would be lost.
  uint64_t trailing = 0;
  for (auto it = items.rbegin(); it != items.rend() && it->record.kind == RefKind::kEvent; ++it) {
    trailing += it->record.gap;
  }
  EXPECT_EQ(after["total"]["instructions"].get<uint64_t>() + trailing,
            before["total"]["instructions"].get<uint64_t>());
}

TEST(TraceCli, ConvertLackeyWithSyscalls) {
  ScratchDir dir;
  const std::string log = std::string(SHADOWSIM_TEST_DATA_DIR) + "/g-30229.lackey";
  CliRun r = run({"convert", log, dir.path("g.sstx")});
  ASSERT_EQ(r.status, 0) << r.err;
  // 9 events: the 8 mm and lifecycle calls and the wait4 that reaped the child (line 27).
  EXPECT_NE(r.out.find("19 records (9 OS events), 10 instructions"), std::string::npos) << r.out;
  const std::string text = test::read_file(dir.path("g.sstx"));
  // The mremap right after the fetch of its syscall instruction.
  EXPECT_NE(text.find("F 0x49509fe 2\nE mremap 0x4a2c000 0x10000 0x4a2c000 0x4000 -\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("E create 30234 vfork\n"), std::string::npos) << text;
  EXPECT_NE(text.find("E mremap 0x4a2c000 0x4000 0x4a40000 0x8000 maymove,fixed\n"),
            std::string::npos) << text;
  r = run({"info", log});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("OS events                 9   create 1, exit 1, mmap 3, munmap 1, "
                       "mremap 2, wait 1\n"), std::string::npos) << r.out;
}

// The trace shipped for the default config (workloads/traces/README.md): it decodes to the end,
// its manifest agrees with it, and it has the shape the README claims.
TEST(ShippedTrace, DecodesAndMatchesItsManifest) {
  const std::string manifest = std::string(SHADOWSIM_TRACES_DIR) + "/xz.json";
  if (!std::filesystem::exists(manifest)) GTEST_SKIP() << manifest << " not present";
  const TraceManifest m = load_manifest(manifest);
  ASSERT_EQ(m.streams.size(), 1u);
  CliRun r = run({"info", manifest, "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto t = nlohmann::json::parse(r.out)["total"];
  EXPECT_GT(t["records"].get<uint64_t>(), 1'000'000u);
  EXPECT_GT(t["reads"].get<uint64_t>(), 0u);
  EXPECT_GT(t["writes"].get<uint64_t>(), 0u);
  EXPECT_EQ(t["instructions"], t["fetches"]);  // recorded with fetches: every gap is 0
  EXPECT_GT(t["data_pages"].get<uint64_t>(), 256u);  // more than a 1 MiB footprint
}

}  // namespace
}  // namespace shadowsim
