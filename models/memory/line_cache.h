// A set-associative, LRU, tags-only cache of memory lines: one level of the page-table memory's
// cache model. Small on purpose: it answers "is this line here?" and keeps recency.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/params.h"

namespace shadowsim {

struct CacheParams {
  uint32_t size_kib = 32;
  uint32_t ways = 8;
  uint32_t latency_cycles = 5;  // load-to-use latency of a hit at this level

  template <class V>
  void visit(V& v) {
    v.value("size_kib", size_kib, "capacity", Limits{1, 1 << 20}, "KiB");
    v.value("ways", ways, "associativity", Limits{1, 64});
    v.value("latency_cycles", latency_cycles, "load-to-use latency of a hit", Limits{0, 10000},
            "cycles");
  }
};

// What is wrong with a cache's geometry ("" if nothing): the field to blame and why.
struct GeometryProblem {
  const char* field = nullptr;
  std::string message;
};
GeometryProblem cache_geometry_problem(const CacheParams& params, uint32_t line_bytes);

class LineCache {
 public:
  // Throws ParamError when size/ways/line do not give a power-of-two number of sets.
  LineCache(const CacheParams& params, uint32_t line_bytes);

  // Looks the line up; on a miss inserts it (evicting the LRU line). Returns whether it hit.
  bool access(uint64_t line);
  bool contains(uint64_t line) const;
  void invalidate(uint64_t line);
  void clear();

 private:
  uint32_t ways_;
  uint64_t set_mask_;
  // Per set, `ways_` tags ordered most- to least-recently used; kEmpty marks a free way.
  std::vector<uint64_t> tags_;
  static constexpr uint64_t kEmpty = ~0ULL;
};

}  // namespace shadowsim
