// The run configuration (JSON, sim/config.h): parse_config over the input up to its first NUL
// byte, with each further NUL-separated piece as a --set PATH=VALUE override. An accepted config
// must survive config_to_json -> parse_config.
#include <string>
#include <vector>

#include "common/error.h"
#include "config.h"

using namespace shadowsim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> pieces;
  size_t start = 0;
  for (;;) {
    const size_t nul = input.find('\0', start);
    pieces.push_back(input.substr(start, nul == std::string::npos ? nul : nul - start));
    if (nul == std::string::npos || pieces.size() == 8) break;
    start = nul + 1;
  }
  const std::vector<std::string> overrides(pieces.begin() + 1, pieces.end());
  SimConfig config;
  try {
    config = parse_config(pieces[0], "fuzz.json", overrides);
  } catch (const Error&) {
    return 0;
  }
  const std::string json = config_to_json(config);
  const SimConfig back = parse_config(json, "fuzz.json");  // must not throw
  if (config_to_json(back) != json) std::abort();
  return 0;
}
