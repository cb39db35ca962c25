#include "common/stats.h"

#include <fmt/format.h>

#include "common/error.h"

namespace shadowsim {
namespace {

bool valid_name(const std::string& name) {
  if (name.empty() || name.front() == '.' || name.back() == '.') return false;
  char prev = 0;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.';
    if (!ok || (c == '.' && prev == '.')) return false;
    prev = c;
  }
  return true;
}

}  // namespace

void StatsRegistry::add(Entry entry) {
  if (!valid_name(entry.name)) {
    throw Error(fmt::format("statistic name '{}': expected dot-separated [A-Za-z0-9_] segments",
                            entry.name));
  }
  if (find(entry.name)) throw Error(fmt::format("statistic '{}' registered twice", entry.name));
  entries_.push_back(std::move(entry));
}

void StatsRegistry::reset() {
  for (Entry& e : entries_) {
    if (e.counter) *e.counter = 0;
    if (e.histogram) e.histogram->reset();
  }
}

const StatsRegistry::Entry* StatsRegistry::find(const std::string& name) const {
  for (const Entry& e : entries_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

void StatsGroup::counter(const std::string& name, uint64_t* value, const char* unit,
                         const char* description) const {
  StatsRegistry::Entry e;
  e.name = join(name);
  e.kind = StatsRegistry::Kind::kCounter;
  e.unit = unit;
  e.description = description;
  e.counter = value;
  registry_->add(std::move(e));
}

void StatsGroup::histogram(const std::string& name, Histogram* h, const char* unit,
                           const char* description) const {
  StatsRegistry::Entry e;
  e.name = join(name);
  e.kind = StatsRegistry::Kind::kHistogram;
  e.unit = unit;
  e.description = description;
  e.histogram = h;
  registry_->add(std::move(e));
}

void StatsGroup::formula(const std::string& name, std::function<double()> f, const char* unit,
                         const char* description) const {
  StatsRegistry::Entry e;
  e.name = join(name);
  e.kind = StatsRegistry::Kind::kFormula;
  e.unit = unit;
  e.description = description;
  e.formula = std::move(f);
  registry_->add(std::move(e));
}

}  // namespace shadowsim
