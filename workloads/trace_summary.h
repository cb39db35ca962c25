// What a trace stream contains: counts by kind (OS events by their kind), instructions, pages
// touched, address range.
// Behind `shadowsim trace info`; also handy for checking a workload against a configuration.
#pragma once

#include <cstdint>

#include "workloads/trace_reader.h"

namespace shadowsim {

struct TraceSummary {
  uint64_t records = 0;               // every record, OS events included
  uint64_t by_kind[kRefKinds] = {};  // memory references, indexed by RefKind
  uint64_t events = 0;               // OS-event records
  uint64_t by_event[kOsEventKinds] = {};  // indexed by OsEventKind
  uint64_t instructions = 0;         // sum of gaps + fetch records
  // Distinct 4 KiB pages touched (an access that crosses a page boundary touches both pages):
  // all, by fetches, by reads or writes.
  uint64_t pages = 0;
  uint64_t code_pages = 0;
  uint64_t data_pages = 0;
  uint64_t min_va = 0;  // lowest byte touched (0 when there are no references)
  uint64_t max_va = 0;  // highest byte touched

  void add(const TraceSummary& other);  // pages become a sum: streams need not share a space
};

// Reads the stream to its end.
TraceSummary summarize_trace(TraceReader& reader);

}  // namespace shadowsim
