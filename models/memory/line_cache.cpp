#include "memory/line_cache.h"

#include <algorithm>

#include <fmt/format.h>

namespace shadowsim {

GeometryProblem cache_geometry_problem(const CacheParams& params, uint32_t line_bytes) {
  const uint64_t lines = static_cast<uint64_t>(params.size_kib) * 1024 / line_bytes;
  if (params.ways == 0 || lines % params.ways != 0) {
    return {"ways", fmt::format("{} ways must divide the {} lines of {} KiB", params.ways, lines,
                                params.size_kib)};
  }
  const uint64_t sets = lines / params.ways;
  if (sets == 0 || (sets & (sets - 1)) != 0) {
    return {"size_kib", fmt::format("{} KiB in {} ways gives {} sets: expected a power of two",
                                    params.size_kib, params.ways, sets)};
  }
  return {};
}

LineCache::LineCache(const CacheParams& params, uint32_t line_bytes) : ways_(params.ways) {
  const GeometryProblem problem = cache_geometry_problem(params, line_bytes);
  if (problem.field) throw ParamError(problem.field, problem.message);
  const uint64_t sets = static_cast<uint64_t>(params.size_kib) * 1024 / line_bytes / params.ways;
  set_mask_ = sets - 1;
  tags_.assign(sets * ways_, kEmpty);
}

bool LineCache::access(uint64_t line) {
  uint64_t* set = &tags_[(line & set_mask_) * ways_];
  uint64_t* end = set + ways_;
  uint64_t* found = std::find(set, end, line);
  const bool hit = found != end;
  if (!hit) found = end - 1;  // evict the least recently used way
  std::move_backward(set, found, found + 1);
  set[0] = line;
  return hit;
}

bool LineCache::contains(uint64_t line) const {
  const uint64_t* set = &tags_[(line & set_mask_) * ways_];
  return std::find(set, set + ways_, line) != set + ways_;
}

void LineCache::invalidate(uint64_t line) {
  uint64_t* set = &tags_[(line & set_mask_) * ways_];
  uint64_t* end = set + ways_;
  uint64_t* found = std::find(set, end, line);
  if (found == end) return;
  std::move(found + 1, end, found);  // close the gap; the freed way becomes least recent
  end[-1] = kEmpty;
}

void LineCache::clear() { std::fill(tags_.begin(), tags_.end(), kEmpty); }

}  // namespace shadowsim
