// Fitted locality models (JSON, workloads/locality_model.h): the input as a file, read by
// load_locality_model; an accepted model must survive save_locality_model -> load_locality_model.
#include "fuzz_util.h"
#include "workloads/locality_model.h"

using namespace shadowsim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("model.json", data, size);
  LocalityModel m;
  try {
    m = load_locality_model(path);
  } catch (const Error&) {
    return 0;
  }
  const std::string saved = (fuzz::scratch_dir() / "saved.json").string();
  save_locality_model(m, saved);
  load_locality_model(saved);  // must not throw
  return 0;
}
