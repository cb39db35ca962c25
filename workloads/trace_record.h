// One memory reference of a recorded program: the unit every trace format, reader, importer and
// the VCPU's replay loop share. Kept to 16 bytes so a batch of a few thousand stays in L1/L2.
#pragma once

#include <cstdint>

namespace shadowsim {

// Values are the binary format's kind field (docs/trace-format.md), so they are fixed. OS events
// (process create/exec/exit, mmap/munmap/mprotect/brk/mremap, context switch) come in a later
// format version as records of their own, not as further kinds here.
enum class RefKind : uint8_t { kRead = 0, kWrite = 1, kFetch = 2 };

struct TraceRecord {
  RefKind kind;
  uint8_t size;  // bytes accessed, 1..255
  uint32_t gap;  // instructions retired since the previous record that have no record of their own
  uint64_t va;   // virtual address
};

constexpr int kRefKinds = 3;

// A stream's instruction count is the sum of its gaps plus its fetch records (a fetch record
// stands for its instruction).
inline uint64_t instructions_of(const TraceRecord& r) {
  return uint64_t{r.gap} + (r.kind == RefKind::kFetch ? 1 : 0);
}

inline bool operator==(const TraceRecord& a, const TraceRecord& b) {
  return a.kind == b.kind && a.size == b.size && a.gap == b.gap && a.va == b.va;
}
inline bool operator!=(const TraceRecord& a, const TraceRecord& b) { return !(a == b); }

// "R", "W", "F": the letters of the text format.
char kind_letter(RefKind kind);
const char* to_string(RefKind kind);  // "read", "write", "fetch"

}  // namespace shadowsim
