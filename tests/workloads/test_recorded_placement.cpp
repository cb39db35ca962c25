// guest.scheduler.placement "recorded" (docs/vcpu.md): each task stays on the VCPU of the CPU
// its recording ran it on (the manifest's per-stream "cpu"), a run queue per VCPU; the run needs
// as many VCPUs as the recording had CPUs. Hand-written manifests with text traces; the
// importer's side (which CPU each task gets) is in test_perf_script.cpp.
#include <gtest/gtest.h>

#include <string>

#include <fmt/format.h>

#include "common/error.h"
#include "system_test_util.h"

namespace shadowsim {
namespace {

class RecordedPlacementTest : public SystemTest {
 protected:
  // Stream i reads kReads[i] distinct pages (so each VCPU's read count tells which streams it
  // ran); stream 0 creates the others with fork and waits for none of them.
  static constexpr int kReads[] = {1, 2, 4, 8, 16};
  static constexpr int kStreams = 5;

  void write_traces() {
    for (int i = 0; i < kStreams; ++i) {
      std::string t;
      for (int r = 0; r < kReads[i]; ++r) {
        t += fmt::format("R {:#x} 8\n", 0x10000000 + 0x100000 * i + 0x1000 * r);
      }
      if (i == 0) {
        for (int c = 1; c < kStreams; ++c) t += fmt::format("E create {} fork\n", c);
      } else {
        t += "E exit\n";
      }
      write(fmt::format("s{}.sstx", i), t);
    }
  }
  // The manifest, with `cpus` (a JSON value or "" for none) and the streams' CPUs (none if
  // empty).
  std::string manifest(const std::string& cpus, const std::vector<int>& cpu) {
    std::string streams;
    for (int i = 0; i < kStreams; ++i) {
      streams += fmt::format(R"({}{{"id": {}, "file": "s{}.sstx")", i ? ",\n" : "", i, i);
      if (i) streams += R"(, "parent": 0, "created": "fork")";
      if (!cpu.empty()) streams += fmt::format(R"(, "cpu": {})", cpu[static_cast<size_t>(i)]);
      streams += "}";
    }
    return write("w.json", fmt::format(R"({{"version": 1, "paging_mode": "4level", {}"streams": [
{}]}})", cpus.empty() ? "" : R"("cpus": )" + cpus + ", ", streams));
  }
  static constexpr const char* kConfig = R"({"workload": {"trace": "w.json"}})";
};

TEST_F(RecordedPlacementTest, EachTaskRunsOnTheVcpuOfItsRecordedCpu) {
  write_traces();
  const std::vector<int> cpu = {1, 0, 2, 1, 0};
  manifest("3", cpu);
  const auto s = run(kConfig, {"machine.vcpus=3", "guest.scheduler.placement=recorded"});
  double expected[3] = {};
  for (int i = 0; i < kStreams; ++i) expected[cpu[static_cast<size_t>(i)]] += kReads[i];
  ASSERT_EQ(expected[0], 2 + 16);
  ASSERT_EQ(expected[1], 1 + 8);
  ASSERT_EQ(expected[2], 4);
  for (int v = 0; v < 3; ++v) {
    EXPECT_EQ(stat(*s, fmt::format("vcpu{}.references.read", v)), expected[v]) << "vcpu" << v;
  }
  EXPECT_EQ(stat(*s, "sim.references"), 31);
  EXPECT_EQ(stat(*s, "guest.forks"), 4);

  // Another placement moves the references with it.
  const std::vector<int> other = {2, 2, 0, 0, 1};
  manifest("3", other);
  const auto t = run(kConfig, {"machine.vcpus=3", "guest.scheduler.placement=recorded"});
  EXPECT_EQ(stat(*t, "vcpu0.references.read"), 4 + 8);
  EXPECT_EQ(stat(*t, "vcpu1.references.read"), 16);
  EXPECT_EQ(stat(*t, "vcpu2.references.read"), 1 + 2);

  // Without "cpus" the recording's CPU count is the highest stream CPU + 1 (here 3).
  manifest("", cpu);
  const auto u = run(kConfig, {"machine.vcpus=3", "guest.scheduler.placement=recorded"});
  for (int v = 0; v < 3; ++v) {
    EXPECT_EQ(stat(*u, fmt::format("vcpu{}.references.read", v)), expected[v]) << "vcpu" << v;
  }
}

TEST_F(RecordedPlacementTest, QueuePlacementIgnoresTheCpusAndIsTheDefault) {
  write_traces();
  manifest("", {});
  const auto plain = run(kConfig, {"machine.vcpus=3"});
  manifest("3", {1, 0, 2, 1, 0});
  const auto with_cpus = run(kConfig, {"machine.vcpus=3"});
  const auto queue = run(kConfig, {"machine.vcpus=3", "guest.scheduler.placement=queue"});
  EXPECT_EQ(stats_without_host(*plain), stats_without_host(*with_cpus));
  EXPECT_EQ(stats_without_host(*plain), stats_without_host(*queue));
  // The queue's own placement is not the recorded one (else the test above proves nothing).
  EXPECT_NE(stat(*plain, "vcpu2.references.read"), 4);
}

TEST_F(RecordedPlacementTest, MismatchedCountsAndMissingCpusAreConfigErrors) {
  write_traces();
  manifest("3", {1, 0, 2, 1, 0});
  for (const char* vcpus : {"machine.vcpus=2", "machine.vcpus=4", "machine.vcpus=0"}) {
    try {
      run(kConfig, {vcpus, "guest.scheduler.placement=recorded"});
      ADD_FAILURE() << vcpus << ": expected an error";
    } catch (const Error& e) {
      const std::string n = std::string(vcpus) == "machine.vcpus=0" ? "5" : vcpus + 14;
      // The config file's name, then the JSON path and the counts.
      EXPECT_EQ(std::string(e.what()),
                fmt::format("{}: guest.scheduler.placement: recorded: the recording ran on 3 "
                            "CPUs but the run has {} VCPUs; expected machine.vcpus = 3",
                            (dir_ / "config.json").string(), n));
    }
  }
  manifest("", {});
  try {
    run(kConfig, {"machine.vcpus=3", "guest.scheduler.placement=recorded"});
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("guest.scheduler.placement: recorded needs the CPU each "
                                         "stream ran on"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("w.json"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace shadowsim
