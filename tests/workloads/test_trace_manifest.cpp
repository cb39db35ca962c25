// Multi-stream manifests: loading, checks with JSON paths, saving, single traces as workloads.
#include <gtest/gtest.h>

#include "trace_test_util.h"
#include "workloads/trace_manifest.h"

namespace shadowsim {
namespace {

using test::ScratchDir;

constexpr const char* kGood = R"({
  "version": 1,
  "paging_mode": "pae",
  "name": "make -j2",
  "command": "make -j2 all",
  "streams": [
    {"id": 7, "file": "s/make.sst", "created": "initial", "name": "make"},
    {"id": 8, "file": "s/cc.sst", "parent": 7, "created": "fork", "command": "cc -c a.c"},
    {"id": 9, "file": "s/cc.sst", "parent": 8, "created": "thread"},
    {"id": 10, "file": "s/make.sst", "parent": null}
  ]
})";

TEST(TraceManifest, LoadsEveryField) {
  ScratchDir dir;
  std::filesystem::create_directories(dir.path("w/s"));
  test::write_trace(dir.path("w/s/make.sst"), test::random_records(1, 10));
  test::write_trace(dir.path("w/s/cc.sst"), test::random_records(2, 10));
  test::write_file(dir.path("w/m.json"), kGood);
  const TraceManifest m = load_manifest(dir.path("w/m.json"));
  EXPECT_EQ(m.path, dir.path("w/m.json"));
  EXPECT_EQ(m.paging_mode, PagingMode::kPae);
  EXPECT_EQ(m.name, "make -j2");
  EXPECT_EQ(m.command, "make -j2 all");
  ASSERT_EQ(m.streams.size(), 4u);
  EXPECT_EQ(m.streams[0].id, 7u);
  EXPECT_EQ(m.streams[0].file, "s/make.sst");
  EXPECT_EQ(m.streams[0].path, dir.path("w/s/make.sst"));
  EXPECT_FALSE(m.streams[0].parent);
  EXPECT_EQ(m.streams[0].name, "make");
  EXPECT_EQ(m.streams[1].parent, 7u);
  EXPECT_EQ(m.streams[1].created, StreamOrigin::kFork);
  EXPECT_EQ(m.streams[1].command, "cc -c a.c");
  EXPECT_EQ(m.streams[2].created, StreamOrigin::kThread);
  EXPECT_EQ(m.streams[3].created, StreamOrigin::kInitial);  // the default without a parent
  EXPECT_EQ(m.find(9), &m.streams[2]);
  EXPECT_EQ(m.find(1), nullptr);
  // Stream paths open.
  EXPECT_EQ(test::read_all(m.streams[1].path).size(), 10u);

  // Saved and loaded again: the same manifest.
  save_manifest(m, dir.path("w/copy.json"));
  const TraceManifest again = load_manifest(dir.path("w/copy.json"));
  EXPECT_EQ(manifest_to_json(again), manifest_to_json(m));
  EXPECT_EQ(again.streams[2].path, m.streams[2].path);
}

TEST(TraceManifest, RecordedCpusAreOptionalAndRoundTrip) {
  ScratchDir dir;
  test::write_trace(dir.path("a.sst"), test::random_records(1, 10));
  // Old manifests (no CPUs) stay valid and say so.
  test::write_file(dir.path("old.json"), R"({"version": 1, "paging_mode": "4level",
      "streams": [{"id": 0, "file": "a.sst"}, {"id": 1, "file": "a.sst", "parent": 0,
                   "created": "fork"}]})");
  const TraceManifest old = load_manifest(dir.path("old.json"));
  EXPECT_FALSE(old.has_cpus());
  EXPECT_FALSE(old.cpus);
  EXPECT_EQ(old.recorded_cpus(), 0u);
  EXPECT_EQ(manifest_to_json(old).find("cpu"), std::string::npos);

  // Per-stream CPUs without "cpus": the count is the highest CPU + 1.
  test::write_file(dir.path("cpus.json"), R"({"version": 1, "paging_mode": "4level",
      "streams": [{"id": 0, "file": "a.sst", "cpu": 0}, {"id": 1, "file": "a.sst", "parent": 0,
                   "created": "fork", "cpu": 2}]})");
  const TraceManifest m = load_manifest(dir.path("cpus.json"));
  ASSERT_TRUE(m.has_cpus());
  EXPECT_EQ(m.streams[0].cpu, 0u);
  EXPECT_EQ(m.streams[1].cpu, 2u);
  EXPECT_EQ(m.recorded_cpus(), 3u);
  // With "cpus" (a recording on 4 CPUs that used 3 of them): that count.
  TraceManifest four = m;
  four.cpus = 4;
  save_manifest(four, dir.path("four.json"));
  const TraceManifest again = load_manifest(dir.path("four.json"));
  EXPECT_EQ(again.cpus, 4u);
  EXPECT_EQ(again.recorded_cpus(), 4u);
  EXPECT_EQ(again.streams[1].cpu, 2u);
  EXPECT_EQ(manifest_to_json(again), manifest_to_json(four));
}

TEST(TraceManifest, SingleTraceIsAOneStreamWorkload) {
  ScratchDir dir;
  test::write_trace(dir.path("t.sst.zst"), test::random_records(1, 10));
  const TraceManifest m = load_workload(dir.path("t.sst.zst"), PagingMode::k5Level);
  EXPECT_TRUE(m.path.empty());
  EXPECT_EQ(m.paging_mode, PagingMode::k5Level);
  ASSERT_EQ(m.streams.size(), 1u);
  EXPECT_EQ(m.streams[0].path, dir.path("t.sst.zst"));
  EXPECT_EQ(m.streams[0].created, StreamOrigin::kInitial);
  EXPECT_FALSE(m.streams[0].parent);

  test::write_file(dir.path("m.json"), R"({"version": 1, "paging_mode": "32bit",
      "streams": [{"id": 0, "file": "t.sst.zst"}]})");
  const TraceManifest from_json = load_workload(dir.path("m.json"));
  EXPECT_EQ(from_json.paging_mode, PagingMode::k32Bit);
  EXPECT_EQ(from_json.streams[0].path, dir.path("t.sst.zst"));

  EXPECT_NE(test::error_of([&] { load_workload(dir.path("nothing.sst")); }).find("no such file"),
            std::string::npos);
  test::write_file(dir.path("junk.bin"), "junk");
  EXPECT_NE(test::error_of([&] { load_workload(dir.path("junk.bin")); }).find("unknown trace"),
            std::string::npos);
}

struct BadManifest {
  const char* name;
  const char* json;
  std::vector<const char*> message;  // each must appear, after the manifest's path
};

class ManifestErrors : public ::testing::TestWithParam<BadManifest> {};

TEST_P(ManifestErrors, MessageNamesFileAndJsonPath) {
  ScratchDir dir;
  test::write_trace(dir.path("a.sst"), {});
  const std::string path = dir.path("m.json");
  test::write_file(path, GetParam().json);
  const std::string msg = test::error_of([&] { load_manifest(path); });
  EXPECT_EQ(msg.rfind(path + ":", 0), 0u) << msg;
  for (const char* part : GetParam().message) EXPECT_NE(msg.find(part), std::string::npos) << msg;
}

#define STREAM0 R"({"id": 0, "file": "a.sst"})"
#define HEAD R"("version": 1, "paging_mode": "4level", )"

std::vector<BadManifest> bad_manifests() {
  return {
      {"not_json", "{\"version\": 1,\n \"streams\": [}", {":2:", "not valid JSON"}},
      {"not_object", "[1, 2]", {"(top level)", "expected an object, got array"}},
      {"missing_version", R"({"paging_mode": "4level", "streams": [)" STREAM0 "]}",
       {"version: missing"}},
      {"wrong_version", R"({"version": 2, "paging_mode": "4level", "streams": [)" STREAM0 "]}",
       {"version:", "version 2"}},
      {"version_string", R"({"version": "1", "paging_mode": "4level", "streams": [)" STREAM0 "]}",
       {"version:", "expected an integer", "\"1\""}},
      {"missing_mode", R"({"version": 1, "streams": [)" STREAM0 "]}", {"paging_mode: missing"}},
      {"bad_mode", R"({"version": 1, "paging_mode": "3level", "streams": [)" STREAM0 "]}",
       {"paging_mode:", "32bit, pae, 4level, 5level", "3level"}},
      {"mode_number", R"({"version": 1, "paging_mode": 4, "streams": [)" STREAM0 "]}",
       {"paging_mode:", "got an integer"}},
      {"unknown_top_key", "{" HEAD R"("stream": [], "streams": [)" STREAM0 "]}",
       {"stream: unknown key"}},
      {"missing_streams", R"({"version": 1, "paging_mode": "4level"})", {"streams: missing"}},
      {"empty_streams", "{" HEAD R"("streams": []})", {"streams:", "non-empty array"}},
      {"streams_object", "{" HEAD R"("streams": {}})", {"streams:", "got object"}},
      {"stream_not_object", "{" HEAD R"("streams": [)" STREAM0 R"(, 3]})",
       {"streams[1]:", "expected an object"}},
      {"missing_id", "{" HEAD R"("streams": [{"file": "a.sst"}]})", {"streams[0].id: missing"}},
      {"negative_id", "{" HEAD R"("streams": [{"id": -1, "file": "a.sst"}]})",
       {"streams[0].id:", "expected an integer 0..4294967295", "-1"}},
      {"float_id", "{" HEAD R"("streams": [{"id": 1.5, "file": "a.sst"}]})", {"streams[0].id:"}},
      {"duplicate_id", "{" HEAD R"("streams": [)" STREAM0 ", " STREAM0 "]}",
       {"streams[1].id:", "already used by streams[0]"}},
      {"missing_file", "{" HEAD R"("streams": [{"id": 0}]})", {"streams[0].file: missing"}},
      {"file_number", "{" HEAD R"("streams": [{"id": 0, "file": 3}]})",
       {"streams[0].file:", "got an integer"}},
      {"file_absent", "{" HEAD R"("streams": [{"id": 0, "file": "b.sst"}]})",
       {"streams[0].file:", "b.sst", "does not exist"}},
      {"parent_string", "{" HEAD R"("streams": [)" STREAM0
       R"(, {"id": 1, "file": "a.sst", "parent": "0", "created": "fork"}]})",
       {"streams[1].parent:", "or null"}},
      {"parent_unknown", "{" HEAD R"("streams": [)" STREAM0
       R"(, {"id": 1, "file": "a.sst", "parent": 5, "created": "fork"}]})",
       {"streams[1].parent:", "no stream has id 5"}},
      {"parent_cycle", "{" HEAD R"("streams": [)" STREAM0
       R"(, {"id": 1, "file": "a.sst", "parent": 2, "created": "fork"},
            {"id": 2, "file": "a.sst", "parent": 1, "created": "thread"}]})",
       {"streams[1].parent:", "its own ancestor"}},
      {"created_unknown", "{" HEAD R"("streams": [)" STREAM0
       R"(, {"id": 1, "file": "a.sst", "parent": 0, "created": "clone"}]})",
       {"streams[1].created:", "initial, fork, vfork, thread", "clone"}},
      {"fork_without_parent", "{" HEAD R"("streams": [{"id": 0, "file": "a.sst",
       "created": "vfork"}]})", {"streams[0].parent:", "vfork needs its parent"}},
      {"parent_but_initial", "{" HEAD R"("streams": [)" STREAM0
       R"(, {"id": 1, "file": "a.sst", "parent": 0}]})",
       {"streams[1].parent:", "fork, vfork or thread"}},
      {"unknown_stream_key", "{" HEAD R"("streams": [{"id": 0, "file": "a.sst", "pid": 4}]})",
       {"streams[0].pid: unknown key"}},
      {"name_number", "{" HEAD R"("name": 5, "streams": [)" STREAM0 "]}", {"name:", "a string"}},
      // Recorded CPUs: every stream has one or none does; each below "cpus".
      {"cpu_string", "{" HEAD R"("streams": [{"id": 0, "file": "a.sst", "cpu": "1"}]})",
       {"streams[0].cpu:", "expected an integer 0..65535", "\"1\""}},
      {"cpu_negative", "{" HEAD R"("streams": [{"id": 0, "file": "a.sst", "cpu": -1}]})",
       {"streams[0].cpu:", "expected an integer"}},
      {"cpu_not_below_cpus", "{" HEAD R"("cpus": 2, "streams": [{"id": 0, "file": "a.sst",
       "cpu": 2}]})", {"streams[0].cpu:", "CPU 2 of a recording on 2 CPUs", "expected 0..1"}},
      {"cpu_missing_in_one", "{" HEAD R"("streams": [{"id": 0, "file": "a.sst", "cpu": 0},
       {"id": 1, "file": "a.sst"}]})",
       {"streams[1]:", "has no \"cpu\" but streams[0] has one", "every stream"}},
      {"cpu_only_in_one", "{" HEAD R"("streams": [)" STREAM0 R"(, {"id": 1, "file": "a.sst",
       "cpu": 1}]})", {"streams[1].cpu:", "has a CPU but streams[0] has none"}},
      {"cpus_zero", "{" HEAD R"("cpus": 0, "streams": [{"id": 0, "file": "a.sst", "cpu": 0}]})",
       {"cpus:", "expected an integer 1..65536, got 0"}},
      {"cpus_without_stream_cpus", "{" HEAD R"("cpus": 2, "streams": [)" STREAM0 "]}",
       {"cpus:", "without per-stream CPUs"}},
  };
}

INSTANTIATE_TEST_SUITE_P(Table, ManifestErrors, ::testing::ValuesIn(bad_manifests()),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace shadowsim
