// Multi-stream manifests (JSON, docs/trace-format.md): parse_manifest over the input text (the
// stream files' existence is not checked); an accepted manifest must survive manifest_to_json ->
// parse_manifest.
#include "fuzz_util.h"
#include "workloads/trace_manifest.h"

using namespace shadowsim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  TraceManifest m;
  try {
    m = parse_manifest(text, "fuzz/manifest.json", /*check_files=*/false);
  } catch (const Error&) {
    return 0;
  }
  const std::string again = manifest_to_json(m);
  const TraceManifest back = parse_manifest(again, "fuzz/manifest.json", false);  // must not throw
  if (back.streams.size() != m.streams.size() || manifest_to_json(back) != again) std::abort();
  return 0;
}
