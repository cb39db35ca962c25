// `perf script` text (docs/trace-format.md, "perf script import"): the input as a file, read by
// PerfScriptReader, summarised (summarize_perf_script) and imported (import_perf_script) into a
// scratch folder; inputs of odd length are imported with the repository's fitted locality model
// (workloads/traces/kbuild-locality.json), so the synthetic-reference path is fuzzed too.
#include "fuzz_util.h"
#include "workloads/perf_script.h"

using namespace shadowsim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::clear_scratch();
  const std::string path = fuzz::write_file("in.perf.txt", data, size);
  try {
    PerfScriptReader reader(path);
    PerfRecord r;
    for (uint64_t n = 0; n < fuzz::kMaxRecords && reader.next(&r); ++n) {
      if (static_cast<int>(r.kind) >= kPerfEventKinds || r.nargs < 0 || r.nargs > 6) std::abort();
    }
    summarize_perf_script(path);
  } catch (const Error&) {
    return 0;  // the importer reads the same lines: it would stop at the same error
  }
  try {
    PerfImportOptions options;
    options.zstd_level = 1;
    if (size & 1) {
      options.locality = SHADOWSIM_SOURCE_DIR "/workloads/traces/kbuild-locality.json";
      options.refs_per_event = 4;
    }
    import_perf_script(path, (fuzz::scratch_dir() / "out" / "m.json").string(), options);
  } catch (const Error&) {
  }
  return 0;
}
