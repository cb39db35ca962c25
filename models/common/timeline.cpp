#include "common/timeline.h"

#include <set>
#include <utility>

#include <fmt/format.h>

namespace shadowsim {
namespace {

// JSON string escaping for the few characters a detail text may hold.
std::string escaped(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out;
}

}  // namespace

std::string Timeline::json() const {
  // Chrome trace events: "X" (complete) events, ts and dur in microseconds with fractions, so
  // one cycle shows as one nanosecond. pid 1 = PCPUs, pid 2 = VCPUs; tid = the index.
  std::string out = "{\"displayTimeUnit\": \"ns\", \"traceEvents\": [\n";
  std::set<std::pair<int, int>> lanes;
  bool first = true;
  for (const Span& s : spans_) {
    const int pid = s.lane == Lane::kPcpu ? 1 : 2;
    lanes.insert({pid, s.index});
    out += first ? "" : ",\n";
    first = false;
    out += fmt::format(
        "{{\"name\": \"{}\", \"ph\": \"X\", \"pid\": {}, \"tid\": {}, \"ts\": {:.3f}, "
        "\"dur\": {:.3f}, \"args\": {{\"vcpu\": {}, \"start_cycles\": {}, \"cycles\": {}{}}}}}",
        s.name, pid, s.index, static_cast<double>(s.start) / 1000.0,
        static_cast<double>(s.end - s.start) / 1000.0, s.vcpu, s.start, s.end - s.start,
        s.detail.empty() ? "" : fmt::format(", \"detail\": \"{}\"", escaped(s.detail)));
  }
  // Names for the processes and threads (lanes) that appear.
  for (int pid : {1, 2}) {
    out += first ? "" : ",\n";
    first = false;
    out += fmt::format("{{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": {}, \"args\": "
                       "{{\"name\": \"{}\"}}}}", pid, pid == 1 ? "PCPUs" : "VCPUs");
  }
  for (const auto& [pid, tid] : lanes) {
    out += fmt::format(",\n{{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": {}, \"tid\": {}, "
                       "\"args\": {{\"name\": \"{}{}\"}}}}", pid, tid, pid == 1 ? "pcpu" : "vcpu",
                       tid);
  }
  out += fmt::format("\n], \"otherData\": {{\"spans\": {}, \"dropped_spans\": {}, "
                     "\"time_unit\": \"1 ns shown = 1 simulated cycle\"}}}}\n",
                     spans_.size(), dropped_);
  return out;
}

}  // namespace shadowsim
