// Statistics. Modules keep plain integers on the hot path and register them once, with a dotted
// hierarchical name, a unit and a description (gem5 style):
//
//   void Tlb::register_stats(StatsGroup g) {
//     g.counter("hits", &hits_, "lookups", "lookups that found a translation");
//     g.formula("miss_rate", [this] { return ratio(misses_, hits_ + misses_); }, "ratio", "...");
//   }
//
// The registry resets everything at the end of warm-up and is dumped as JSON and CSV by sim/.
// Modules built without a registry (unit tests) simply never call register_stats.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace shadowsim {

inline double ratio(uint64_t num, uint64_t den) {
  return den ? static_cast<double>(num) / static_cast<double>(den) : 0.0;
}

// Power-of-two buckets: bucket 0 holds 0, bucket i holds [2^(i-1), 2^i); plus count, sum, min,
// max. Fixed size, no allocation: cheap enough to sample on the hot path.
class Histogram {
 public:
  static constexpr int kBuckets = 65;

  void sample(uint64_t v) {
    ++buckets_[v ? 64 - __builtin_clzll(v) : 0];
    ++count_;
    sum_ += v;
    if (v < min_) min_ = v;
    if (v > max_) max_ = v;
  }
  void reset() { *this = Histogram(); }

  uint64_t count() const { return count_; }
  uint64_t sum() const { return sum_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return ratio(sum_, count_); }
  const std::array<uint64_t, kBuckets>& buckets() const { return buckets_; }
  static uint64_t bucket_low(int i) { return i == 0 ? 0 : 1ULL << (i - 1); }

 private:
  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = ~0ULL;
  uint64_t max_ = 0;
};

class StatsRegistry {
 public:
  enum class Kind { kCounter, kHistogram, kFormula };
  struct Entry {
    std::string name;  // dotted, e.g. "pcpu0.dtlb.4k.misses"
    Kind kind;
    std::string unit;
    std::string description;
    uint64_t* counter = nullptr;
    Histogram* histogram = nullptr;
    std::function<double()> formula;
  };

  // Names must be unique and made of [A-Za-z0-9_] segments joined by '.'; Error otherwise.
  void add(Entry entry);
  void reset();  // zero every counter and histogram (end of warm-up, interval dumps)
  const std::vector<Entry>& entries() const { return entries_; }
  const Entry* find(const std::string& name) const;

 private:
  std::vector<Entry> entries_;
};

// A registry plus a name prefix: what a module's register_stats() receives.
class StatsGroup {
 public:
  StatsGroup(StatsRegistry& registry, std::string prefix)
      : registry_(&registry), prefix_(std::move(prefix)) {}

  StatsGroup sub(const std::string& name) const { return {*registry_, join(name)}; }
  void counter(const std::string& name, uint64_t* value, const char* unit,
               const char* description) const;
  void histogram(const std::string& name, Histogram* h, const char* unit,
                 const char* description) const;
  void formula(const std::string& name, std::function<double()> f, const char* unit,
               const char* description) const;
  const std::string& prefix() const { return prefix_; }

 private:
  std::string join(const std::string& name) const {
    return prefix_.empty() ? name : prefix_ + "." + name;
  }
  StatsRegistry* registry_;
  std::string prefix_;
};

}  // namespace shadowsim
