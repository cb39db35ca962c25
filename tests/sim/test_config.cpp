// The strict config loader: defaults, overrides, and a table of bad configs whose messages must
// name the offending JSON path and what was expected.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "config.h"

namespace shadowsim {
namespace {

SimConfig parse(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return parse_config(text, "test.json", overrides);
}

TEST(Config, DefaultsComeFromTheParameterStructs) {
  const SimConfig c = parse(R"({"workload": {"trace": "t.sst"}})");
  EXPECT_EQ(c.machine.paging_mode, PagingMode::k4Level);
  EXPECT_EQ(c.machine.memory.l1d.size_kib, PageTableMemoryParams{}.l1d.size_kib);
  EXPECT_EQ(c.run.seed, 1u);
  EXPECT_EQ(c.workload.trace, "t.sst");
}

TEST(Config, ValuesChoicesGroupsAndCommentsAreRead) {
  const SimConfig c = parse(R"({
    // comments are allowed
    "description": "pae run",
    "machine": {"paging_mode": "pae", "vcpu": {"cpi": 1.5},
                "controls": {"cr4_smep": true}, "memory": {"l2": {"size_kib": 512}}},
    "guest": {"fault_around_pages": 8, "costs": {"fork": 12345}},
    "workload": {"trace": "t.sst"},
    "run": {"seed": 42, "warmup_references": 1000}
  })");
  EXPECT_EQ(c.description, "pae run");
  EXPECT_EQ(c.machine.paging_mode, PagingMode::kPae);
  EXPECT_DOUBLE_EQ(c.machine.vcpu.cpi, 1.5);
  EXPECT_TRUE(c.machine.controls.cr4_smep);
  EXPECT_EQ(c.machine.memory.l2.size_kib, 512u);
  EXPECT_EQ(c.guest.fault_around_pages, 8u);
  EXPECT_EQ(c.guest.costs.fork, 12345u);
  EXPECT_EQ(c.run.seed, 42u);
  EXPECT_EQ(c.run.warmup_references, 1000u);
}

TEST(Config, OverridesApplyBeforeValidation) {
  const SimConfig c = parse(R"({"workload": {"trace": "t.sst"}})",
                            {"run.seed=9", "machine.paging_mode=5level", "description=hello",
                             "machine.memory.l1d.ways=4"});
  EXPECT_EQ(c.run.seed, 9u);
  EXPECT_EQ(c.machine.paging_mode, PagingMode::k5Level);
  EXPECT_EQ(c.description, "hello");
  EXPECT_EQ(c.machine.memory.l1d.ways, 4u);
  EXPECT_THROW(parse(R"({"workload": {"trace": "t.sst"}})", {"run.sed=9"}), Error);
  EXPECT_THROW(parse(R"({"workload": {"trace": "t.sst"}})", {"noequals"}), Error);
}

TEST(Config, ResolvedConfigRoundTrips) {
  const SimConfig c = parse(R"({"machine": {"paging_mode": "32bit"}, "workload": {"trace": "t.sst"},
                                "run": {"quantum_cycles": 77}})");
  const SimConfig again = parse(config_to_json(c));
  EXPECT_EQ(config_to_json(again), config_to_json(c));
  EXPECT_EQ(again.run.quantum_cycles, 77u);
  EXPECT_EQ(again.machine.paging_mode, PagingMode::k32Bit);
}

TEST(Config, APresetIsTheStartingPointAndTheDocumentOverridesIt) {
  const SimConfig modern = parse(R"({"workload": {"trace": "t.sst"}})");
  const SimConfig core2 = parse(R"({"preset": "core2-2008", "workload": {"trace": "t.sst"},
                                   "hypervisor": {"costs": {"vmentry_cycles": 123}}})");
  EXPECT_EQ(core2.preset, HardwarePreset::kCore2_2008);
  EXPECT_TRUE(modern.hypervisor.vpid);
  EXPECT_FALSE(core2.hypervisor.vpid) << "Core 2 has no VPID";
  EXPECT_TRUE(core2.hypervisor.ipi_exits);
  EXPECT_FALSE(core2.machine.psc.vpid);
  EXPECT_EQ(core2.machine.memory.l1d.latency_cycles, 3u);
  EXPECT_EQ(core2.hypervisor.costs.vmexit_cycles, 800u) << "from the preset";
  EXPECT_EQ(core2.hypervisor.costs.vmentry_cycles, 123u) << "the document wins over the preset";
  EXPECT_EQ(modern.hypervisor.costs.vmentry_cycles, HvCosts{}.vmentry_cycles);
  // The resolved config names the preset and every value: reading it back gives the same.
  const SimConfig again = parse(config_to_json(core2));
  EXPECT_EQ(config_to_json(again), config_to_json(core2));
  // Nested paging needs EPT, which a Core 2 lacks.
  EXPECT_THROW(parse(R"({"preset": "core2-2008", "workload": {"trace": "t.sst"},
                         "machine": {"virtualization": "nested"}})"),
               Error);
}

struct BadConfig {
  const char* name;
  const char* json;
  const char* path;      // the message must name this JSON path
  const char* expected;  // ... and say this about the expected form
};

class BadConfigs : public ::testing::TestWithParam<BadConfig> {};

TEST_P(BadConfigs, MessageNamesThePathAndTheExpectedForm) {
  const BadConfig& bad = GetParam();
  try {
    parse(bad.json);
    FAIL() << "accepted: " << bad.json;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("test.json"), std::string::npos) << message;
    EXPECT_NE(message.find(bad.path), std::string::npos) << message;
    EXPECT_NE(message.find(bad.expected), std::string::npos) << message;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadConfigs,
    ::testing::Values(
        BadConfig{"not_json", R"({"run": )", "not valid JSON", "parse error"},
        BadConfig{"top_not_object", R"([1, 2])", "top level", "JSON object"},
        BadConfig{"unknown_key", R"({"workload": {"trace": "t"}, "machin": {}})", "machin",
                  "unknown key"},
        BadConfig{"unknown_nested", R"({"workload": {"trace": "t"}, "run": {"sed": 1}})",
                  "run.sed", "expected one of"},
        BadConfig{"wrong_type_int", R"({"workload": {"trace": "t"}, "run": {"seed": "7"}})",
                  "run.seed", "expected an integer"},
        BadConfig{"negative_unsigned", R"({"workload": {"trace": "t"}, "run": {"seed": -1}})",
                  "run.seed", "expected an integer in [0,"},
        BadConfig{"fraction_for_int", R"({"workload": {"trace": "t"}, "run": {"seed": 1.5}})",
                  "run.seed", "expected an integer"},
        BadConfig{"out_of_range", R"({"workload": {"trace": "t"}, "run": {"quantum_cycles": 0}})",
                  "run.quantum_cycles", "[1, 1000000000000]"},
        BadConfig{"wrong_type_bool",
                  R"({"workload": {"trace": "t"}, "machine": {"controls": {"cr0_wp": 1}}})",
                  "machine.controls.cr0_wp", "true or false"},
        BadConfig{"bad_choice", R"({"workload": {"trace": "t"}, "machine": {"paging_mode": "64"}})",
                  "machine.paging_mode", "\"4level\""},
        BadConfig{"group_not_object", R"({"workload": {"trace": "t"}, "machine": {"memory": 4}})",
                  "machine.memory", "expected an object"},
        BadConfig{"cross_field", R"({"workload": {"trace": "t"}, "machine": {"memory": {"line_bytes": 48}}})",
                  "machine.memory.line_bytes", "power of two"},
        BadConfig{"cache_geometry",
                  R"({"workload": {"trace": "t"}, "machine": {"memory": {"llc": {"size_kib": 3}}}})",
                  "machine.memory.llc.size_kib", "power of two"},
        BadConfig{"pcid_in_pae",
                  R"({"workload": {"trace": "t"}, "machine": {"paging_mode": "pae", "controls": {"cr4_pcide": true}}})",
                  "machine.controls.cr4_pcide", "4level"},
        BadConfig{"memory_beyond_maxphyaddr",
                  R"({"workload": {"trace": "t"}, "machine": {"cpu": {"maxphyaddr": 32}, "memory": {"size_mib": 8192}}})",
                  "machine.memory.size_mib", "maxphyaddr"},
        BadConfig{"maxphyaddr", R"({"workload": {"trace": "t"}, "machine": {"cpu": {"maxphyaddr": 60}}})",
                  "machine.cpu.maxphyaddr", "[32, 52]"},
        BadConfig{"missing_trace", R"({})", "workload.trace", "expected a trace file"}),
    [](const ::testing::TestParamInfo<BadConfig>& info) { return std::string(info.param.name); });

TEST(Config, DefaultsDumpIsCompleteAndReloadable) {
  const nlohmann::json defaults = nlohmann::json::parse(config_defaults_json());
  EXPECT_EQ(defaults["machine"]["paging_mode"], "4level");
  EXPECT_TRUE(defaults["machine"]["memory"].contains("dram_latency_cycles"));
  nlohmann::json with_trace = defaults;
  with_trace["workload"]["trace"] = "t.sst";
  EXPECT_NO_THROW(parse(with_trace.dump()));
}

TEST(Config, IntegerLimitsAreExactNotRoundedThroughDouble) {
  const std::string base = R"({"workload": {"trace": "t"}, "run": {"max_references": )";
  EXPECT_EQ(parse(base + "1000000000000000000}}").run.max_references, 1000000000000000000u);
  EXPECT_THROW(parse(base + "1000000000000000064}}"), Error);  // 1e18 + 64: rounds to 1e18
  EXPECT_EQ(parse(R"({"workload": {"trace": "t"}, "run": {"seed": 18446744073709551615}})")
                .run.seed,
            18446744073709551615u);
}

// Found while writing the config fuzz target (docs/fuzzing.md): a --set value that is not JSON
// is kept as a string of arbitrary bytes, and one that was not UTF-8 made nlohmann's dump (of an
// error message, config_to_json, stats.json) throw its type_error instead of the loader's Error.
TEST(Config, NonUtf8OverrideValuesAreRefusedClearly) {
  const std::string doc = R"({"workload": {"trace": "t.sst"}})";
  for (const char* o : {"run.seed=\xff\xfe", "description=\xff", "workload.trace=a\xc3"}) {
    try {
      parse(doc, {o});
      FAIL() << o;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("test.json: --set "), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("not UTF-8"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(parse(doc, {"description=caf\xc3\xa9"}).description, "caf\xc3\xa9");
}

TEST(Config, MissingFileIsNamed) {
  try {
    load_config("/nonexistent/shadowsim.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/shadowsim.json"), std::string::npos);
  }
}

}  // namespace
}  // namespace shadowsim
