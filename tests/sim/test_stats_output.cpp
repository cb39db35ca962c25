#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "stats_output.h"

namespace shadowsim {
namespace {

TEST(StatsOutput, JsonIsHierarchicalWithUnitsAndProvenance) {
  StatsRegistry registry;
  uint64_t hits = 7, misses = 3;
  Histogram h;
  h.sample(0);
  h.sample(5);
  StatsGroup g(registry, "pcpu0.dtlb");
  g.counter("hits", &hits, "lookups", "hits");
  g.counter("misses", &misses, "lookups", "misses");
  g.formula("miss_rate", [&] { return ratio(misses, hits + misses); }, "ratio", "rate");
  g.histogram("latency", &h, "cycles", "lat");
  RunRecord run;
  run.version = "0.1.0";
  run.git_hash = "abc";
  run.seed = 5;
  run.roi_references = 10;
  run.resolved_config_json = R"({"run": {"seed": 5}})";
  const auto doc = nlohmann::json::parse(stats_json(registry, run));
  EXPECT_EQ(doc["stats"]["pcpu0"]["dtlb"]["hits"]["value"], 7);
  EXPECT_EQ(doc["stats"]["pcpu0"]["dtlb"]["hits"]["unit"], "lookups");
  EXPECT_DOUBLE_EQ(doc["stats"]["pcpu0"]["dtlb"]["miss_rate"]["value"].get<double>(), 0.3);
  EXPECT_EQ(doc["stats"]["pcpu0"]["dtlb"]["latency"]["count"], 2);
  EXPECT_EQ(doc["stats"]["pcpu0"]["dtlb"]["latency"]["buckets"]["4"], 1);  // 5 is in [4, 8)
  EXPECT_EQ(doc["config"]["run"]["seed"], 5);
  EXPECT_EQ(doc["seed"], 5);
  EXPECT_TRUE(doc.contains("host"));
}

TEST(StatsOutput, CsvIsFlatOneRowPerValue) {
  StatsRegistry registry;
  uint64_t n = 3;
  Histogram h;
  h.sample(2);
  StatsGroup g(registry, "a");
  g.counter("n", &n, "things", "with, a comma");
  g.histogram("h", &h, "cycles", "hist");
  const std::string csv = stats_csv(registry);
  EXPECT_NE(csv.find("a.n,3.0,things,\"with, a comma\"\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find("a.h.mean,2.0,cycles,hist\n"), std::string::npos) << csv;
}

TEST(StatsOutput, RegistryRejectsBadAndDuplicateNames) {
  StatsRegistry registry;
  uint64_t x = 0;
  StatsGroup g(registry, "a");
  g.counter("x", &x, "u", "d");
  EXPECT_THROW(g.counter("x", &x, "u", "d"), Error);
  EXPECT_THROW(g.counter("bad name", &x, "u", "d"), Error);
  EXPECT_THROW(g.counter("", &x, "u", "d"), Error);
}

}  // namespace
}  // namespace shadowsim
