// The text trace format (.sstx, docs/trace-format.md): make_text_reader over the input bytes,
// drained to the end (or fuzz::kMaxRecords records).
#include "fuzz_util.h"
#include "workloads/trace_formats.h"

using namespace shadowsim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto reader = make_text_reader(fuzz::memory_buffer(data, size, "fuzz.sstx"));
    fuzz::drain(*reader);
  } catch (const Error&) {
  }
  return 0;
}
