// The fixture of the end-to-end tests (test_system.cpp, test_shadow_system.cpp): a temporary
// folder per test for traces and configs, a run of the assembled System, statistics by name.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "stats_output.h"
#include "system.h"

namespace shadowsim {

namespace fs = std::filesystem;

class SystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("shadowsim_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::create_directories(dir_);
  }
  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  // Runs a config (JSON text with the trace path relative to the test folder).
  std::unique_ptr<System> run(const std::string& config_json,
                              const std::vector<std::string>& overrides = {}) {
    const std::string path = write("config.json", config_json);
    auto system = std::make_unique<System>(load_config(path, overrides), path);
    system->run();
    return system;
  }
  static double stat(const System& s, const std::string& name) {
    const StatsRegistry::Entry* e = s.stats().find(name);
    if (!e) throw Error("no statistic " + name);
    return e->counter ? static_cast<double>(*e->counter) : e->formula();
  }
  static std::string stats_without_host(const System& s) {
    nlohmann::json doc = nlohmann::json::parse(stats_json(s.stats(), s.record()));
    doc.erase("host");
    return doc.dump();
  }
  fs::path dir_;
};

}  // namespace shadowsim
