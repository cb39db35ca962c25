#include "workloads/trace_summary.h"

#include <algorithm>
#include <unordered_map>
#include <vector>

namespace shadowsim {

namespace {
uint64_t references(const TraceSummary& s) { return s.records - s.events; }
}  // namespace

void TraceSummary::add(const TraceSummary& o) {
  if (references(o)) {
    min_va = references(*this) ? std::min(min_va, o.min_va) : o.min_va;
    max_va = references(*this) ? std::max(max_va, o.max_va) : o.max_va;
  }
  records += o.records;
  for (int k = 0; k < kRefKinds; ++k) by_kind[k] += o.by_kind[k];
  events += o.events;
  for (int k = 0; k < kOsEventKinds; ++k) by_event[k] += o.by_event[k];
  instructions += o.instructions;
  pages += o.pages;
  code_pages += o.code_pages;
  data_pages += o.data_pages;
}

TraceSummary summarize_trace(TraceReader& reader) {
  constexpr uint8_t kCode = 1, kData = 2;
  TraceSummary s;
  std::unordered_map<uint64_t, uint8_t> pages;  // page number -> kCode | kData
  uint64_t last_page[2] = {~0ULL, ~0ULL};       // skip the map for runs on one page
  uint64_t lo = ~0ULL, hi = 0;
  std::vector<TraceRecord> batch(4096);
  while (const size_t n = reader.read(batch.data(), batch.size())) {
    for (size_t i = 0; i < n; ++i) {
      const TraceRecord& r = batch[i];
      s.instructions += instructions_of(r);
      if (r.kind == RefKind::kEvent) {
        ++s.events;
        ++s.by_event[static_cast<int>(reader.events()[r.va].kind)];
        continue;
      }
      ++s.by_kind[static_cast<int>(r.kind)];
      const uint64_t last = r.va + r.size - 1 < r.va ? ~0ULL : r.va + r.size - 1;
      lo = std::min(lo, r.va);
      hi = std::max(hi, last);
      const int code = r.kind == RefKind::kFetch ? 0 : 1;
      for (uint64_t page = r.va >> 12; page <= last >> 12; ++page) {
        if (page == last_page[code]) continue;
        last_page[code] = page;
        pages[page] |= code == 0 ? kCode : kData;
      }
    }
    s.records += n;
  }
  if (references(s)) {
    s.min_va = lo;
    s.max_va = hi;
  }
  s.pages = pages.size();
  for (const auto& [page, bits] : pages) {
    s.code_pages += (bits & kCode) != 0;
    s.data_pages += (bits & kData) != 0;
  }
  return s;
}

}  // namespace shadowsim
