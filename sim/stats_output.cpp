#include "stats_output.h"

#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"

namespace shadowsim {
namespace {

using nlohmann::ordered_json;

// Inserts `leaf` at the dotted `name` inside `tree`.
void insert(ordered_json& tree, const std::string& name, ordered_json leaf) {
  ordered_json* node = &tree;
  size_t start = 0;
  while (true) {
    const size_t dot = name.find('.', start);
    const std::string key = name.substr(start, dot == std::string::npos ? dot : dot - start);
    if (dot == std::string::npos) {
      (*node)[key] = std::move(leaf);
      return;
    }
    ordered_json& child = (*node)[key];
    if (child.is_object() && child.contains("unit")) {
      throw Error(fmt::format("statistic '{}' nests under another statistic", name));
    }
    node = &child;
    start = dot + 1;
  }
}

void write_atomically(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    if (!out.flush()) throw Error(fmt::format("{}: cannot write", tmp.string()));
  }
  std::filesystem::rename(tmp, path);
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string quoted = "\"";
  for (char c : s) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

}  // namespace

std::vector<FlatStat> flatten(const StatsRegistry& registry) {
  std::vector<FlatStat> flat;
  for (const StatsRegistry::Entry& e : registry.entries()) {
    switch (e.kind) {
      case StatsRegistry::Kind::kCounter:
        flat.push_back({e.name, static_cast<double>(*e.counter), e.unit, e.description});
        break;
      case StatsRegistry::Kind::kFormula:
        flat.push_back({e.name, e.formula(), e.unit, e.description});
        break;
      case StatsRegistry::Kind::kHistogram: {
        const Histogram& h = *e.histogram;
        flat.push_back({e.name + ".count", static_cast<double>(h.count()), "samples",
                        e.description});
        flat.push_back({e.name + ".mean", h.mean(), e.unit, e.description});
        flat.push_back({e.name + ".min", static_cast<double>(h.min()), e.unit, e.description});
        flat.push_back({e.name + ".max", static_cast<double>(h.max()), e.unit, e.description});
        break;
      }
    }
  }
  return flat;
}

std::string stats_json(const StatsRegistry& registry, const RunRecord& run) {
  ordered_json doc;
  doc["shadowsim"] = {{"version", run.version}, {"git", run.git_hash}};
  doc["config_file"] = run.config_path;
  doc["seed"] = run.seed;
  doc["roi"] = {{"references", run.roi_references},
                {"start_cycles", run.roi_start_cycles},
                {"end_cycles", run.end_cycles},
                {"cycles", run.end_cycles - run.roi_start_cycles}};
  ordered_json stats = ordered_json::object();
  for (const StatsRegistry::Entry& e : registry.entries()) {
    ordered_json leaf = {{"unit", e.unit}, {"description", e.description}};
    switch (e.kind) {
      case StatsRegistry::Kind::kCounter: leaf["value"] = *e.counter; break;
      case StatsRegistry::Kind::kFormula: leaf["value"] = e.formula(); break;
      case StatsRegistry::Kind::kHistogram: {
        const Histogram& h = *e.histogram;
        leaf["count"] = h.count();
        leaf["sum"] = h.sum();
        leaf["mean"] = h.mean();
        leaf["min"] = h.min();
        leaf["max"] = h.max();
        ordered_json buckets = ordered_json::object();  // lower bound -> count, non-empty only
        for (int i = 0; i < Histogram::kBuckets; ++i) {
          if (h.buckets()[i]) buckets[std::to_string(Histogram::bucket_low(i))] = h.buckets()[i];
        }
        leaf["buckets"] = std::move(buckets);
        break;
      }
    }
    insert(stats, e.name, std::move(leaf));
  }
  doc["stats"] = std::move(stats);
  if (!run.intervals.empty()) {
    const std::vector<FlatStat> names = flatten(registry);
    ordered_json intervals = ordered_json::array();
    for (const IntervalSnapshot& snap : run.intervals) {
      ordered_json values = ordered_json::object();
      for (size_t i = 0; i < names.size() && i < snap.values.size(); ++i) {
        values[names[i].name] = snap.values[i];
      }
      intervals.push_back(
          {{"references", snap.references}, {"cycles", snap.cycles}, {"values", values}});
    }
    doc["intervals"] = std::move(intervals);
  }
  doc["config"] = ordered_json::parse(run.resolved_config_json);
  doc["host"] = {{"wall_seconds", run.host_seconds},
                 {"references_per_second",
                  run.host_seconds > 0 ? static_cast<double>(run.roi_references) / run.host_seconds
                                       : 0.0}};
  // Strings in the config and record come from files and need not be UTF-8 (a manifest's names
  // are checked, --set values are refused): whatever slips through must not lose a finished run.
  return doc.dump(2, ' ', false, ordered_json::error_handler_t::replace) + "\n";
}

std::string stats_csv(const StatsRegistry& registry) {
  std::string out = "name,value,unit,description\n";
  for (const FlatStat& s : flatten(registry)) {
    out += fmt::format("{},{},{},{}\n", s.name, ordered_json(s.value).dump(), csv_field(s.unit),
                       csv_field(s.description));
  }
  return out;
}

void write_file_atomically(const std::string& path, const std::string& text) {
  write_atomically(std::filesystem::path(path), text);
}

void write_results(const std::string& out_dir, const StatsRegistry& registry,
                   const RunRecord& run) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw Error(fmt::format("{}: cannot create the output folder ({})", out_dir,
                                  ec.message()));
  write_atomically(fs::path(out_dir) / "stats.json", stats_json(registry, run));
  write_atomically(fs::path(out_dir) / "stats.csv", stats_csv(registry));
}

}  // namespace shadowsim
