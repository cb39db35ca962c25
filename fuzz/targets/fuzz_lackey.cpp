// valgrind lackey output (docs/trace-format.md): the lackey trace reader over the whole input,
// then the multi-process importer (import_lackey_dir) over the input cut at form feeds ('\f')
// into up to 4 logs, each named PID.N after its own "==PID==" header (or 1.N without one), so the
// fuzzer can build fork/exec families of logs.
#include <map>
#include <string_view>

#include "fuzz_util.h"
#include "workloads/lackey_import.h"
#include "workloads/trace_formats.h"

using namespace shadowsim;
namespace fs = std::filesystem;

namespace {

uint64_t header_pid(std::string_view part) {
  if (part.size() < 3 || part[0] != '=' || part[1] != '=') return 1;
  uint64_t pid = 0;
  size_t i = 2;
  for (; i < part.size() && i < 12 && part[i] >= '0' && part[i] <= '9'; ++i) {
    pid = pid * 10 + static_cast<uint64_t>(part[i] - '0');
  }
  return i == 2 ? 1 : pid;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto reader = make_lackey_reader(fuzz::memory_buffer(data, size, "fuzz.lackey"));
    fuzz::drain(*reader);
  } catch (const Error&) {
  }

  fuzz::clear_scratch();
  const fs::path in = fuzz::scratch_dir() / "in";
  fs::create_directory(in);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::map<uint64_t, int> seq;
  size_t start = 0;
  for (int part = 0; part < 4 && start <= text.size(); ++part) {
    size_t end = text.find('\f', start);
    if (end == std::string_view::npos || part == 3) end = text.size();
    const std::string_view log = text.substr(start, end - start);
    const uint64_t pid = header_pid(log);
    const std::string name = "in/" + std::to_string(pid) + "." + std::to_string(++seq[pid]);
    fuzz::write_file(name, reinterpret_cast<const uint8_t*>(log.data()), log.size());
    start = end + 1;
  }
  try {
    LackeyImportOptions options;
    options.zstd_level = 1;
    import_lackey_dir(in.string(), (fuzz::scratch_dir() / "out" / "m.json").string(), options);
  } catch (const Error&) {
  }
  return 0;
}
