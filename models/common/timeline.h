// A timeline of a run for people to look at (run.timeline; docs/statistics.md "Timeline"):
// spans of simulated time on lanes -- one lane per PCPU for the hypervisor work that runs there
// (exits, spinning on the shadow lock, holding it; hypervisor code runs to completion, so these
// nest) and one per VCPU for its guest kernel operations (which may be descheduled and resumed
// elsewhere) and its waits (for a PCPU, for another VCPU's kernel operation, for shootdown
// acknowledgements) -- written as Chrome trace-event JSON, which
// Perfetto (ui.perfetto.dev) and chrome://tracing open. Time stamps are cycles shown as
// nanoseconds (the model's one time unit is one cycle): a lock convoy is seen, not read about.
//
// Spans are appended in simulation order, so a run's timeline is as deterministic as its
// statistics. A run keeps at most `max_spans` spans (the first ones); the rest are counted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shadowsim {

class Timeline {
 public:
  enum class Lane : uint8_t { kPcpu, kVcpu };

  explicit Timeline(uint64_t max_spans) : max_spans_(max_spans) {}

  // A span [start, end) of `name` on a lane; `vcpu` (or -1) and `detail` go into its arguments.
  void span(Lane lane, int index, const char* name, uint64_t start, uint64_t end, int vcpu,
            std::string detail = {}) {
    if (end <= start) return;
    if (spans_.size() >= max_spans_) {
      ++dropped_;
      return;
    }
    spans_.push_back({lane, index, name, start, end, vcpu, std::move(detail)});
  }

  // The trace-event JSON document ({"traceEvents": [...], ...}).
  std::string json() const;

 private:
  struct Span {
    Lane lane;
    int index;
    const char* name;  // a string literal
    uint64_t start;
    uint64_t end;
    int vcpu;
    std::string detail;
  };
  uint64_t max_spans_;
  uint64_t dropped_ = 0;
  std::vector<Span> spans_;
};

}  // namespace shadowsim
