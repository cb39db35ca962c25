// The compact binary trace format (.sst, docs/trace-format.md): make_binary_reader over the
// input bytes, drained to the end (or fuzz::kMaxRecords records).
#include "fuzz_util.h"
#include "workloads/trace_formats.h"

using namespace shadowsim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto reader = make_binary_reader(fuzz::memory_buffer(data, size, "fuzz.sst"));
    fuzz::drain(*reader);
  } catch (const Error&) {
  }
  return 0;
}
