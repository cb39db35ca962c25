// One memory reference of a recorded program: the unit every trace format, reader, importer and
// the VCPU's replay loop share. Kept to 16 bytes so a batch of a few thousand stays in L1/L2.
#pragma once

#include <cstdint>

namespace shadowsim {

// kRead/kWrite/kFetch are the binary format's kind field (docs/trace-format.md), so they are
// fixed. kEvent exists only in memory: an OS event (workloads/os_event.h) at its position among
// the references; its `va` is the event's index in TraceReader::events() for the current batch,
// its size 0, its gap the instructions before it as for any record. A replay loop handles it with
// one predictable branch per record: `if (r.kind == RefKind::kEvent) { ... continue; }`.
enum class RefKind : uint8_t { kRead = 0, kWrite = 1, kFetch = 2, kEvent = 3 };

struct TraceRecord {
  RefKind kind;
  uint8_t size;  // bytes accessed, 1..255 (0 for kEvent)
  uint32_t gap;  // instructions retired since the previous record that have no record of their own
  uint64_t va;   // virtual address (kEvent: index into TraceReader::events())
};
static_assert(sizeof(TraceRecord) == 16, "a batch of a few thousand must stay in L1/L2");

constexpr int kRefKinds = 3;  // the memory-reference kinds: arrays indexed by RefKind skip kEvent

// A stream's instruction count is the sum of its gaps plus its fetch records (a fetch record
// stands for its instruction; an event record stands for none: the system call instruction has
// its own fetch, or is in a gap).
inline uint64_t instructions_of(const TraceRecord& r) {
  return uint64_t{r.gap} + (r.kind == RefKind::kFetch ? 1 : 0);
}

inline bool operator==(const TraceRecord& a, const TraceRecord& b) {
  return a.kind == b.kind && a.size == b.size && a.gap == b.gap && a.va == b.va;
}
inline bool operator!=(const TraceRecord& a, const TraceRecord& b) { return !(a == b); }

// "R", "W", "F", "E": the letters of the text format.
char kind_letter(RefKind kind);
const char* to_string(RefKind kind);  // "read", "write", "fetch", "event"

}  // namespace shadowsim
