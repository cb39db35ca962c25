// Run-wide bookkeeping shared by the VCPUs: how many references have been replayed, when the
// warm-up ends (statistics reset: what follows is the region of interest), when an interval
// snapshot is due, and when the reference limit stops the run. The hot path is one increment and
// one compare per reference; everything else happens at those rare events.
// Warm-up and intervals may be given in references (exact, counted over all VCPUs) or in cycles
// (checked when a VCPU synchronises with the kernel, so they take effect at the first quantum
// boundary at or after the given time).
#pragma once

#include <cstdint>
#include <functional>

#include "common/stats.h"

namespace shadowsim {

class RunControl {
 public:
  struct Limits {
    uint64_t warmup_references = 0;
    uint64_t max_references = 0;       // 0: none
    uint64_t interval_references = 0;  // 0: none
    uint64_t warmup_cycles = 0;        // alternative to warmup_references
    uint64_t interval_cycles = 0;      // alternative to interval_references
  };
  // on_interval(roi_references, now_cycles) takes a statistics snapshot.
  using IntervalFn = std::function<void(uint64_t, uint64_t)>;

  RunControl(const Limits& limits, StatsRegistry& registry, IntervalFn on_interval);

  // Call once per replayed reference: true when an event is due, and then handle_event() must
  // be called with the current time (kept apart so the caller computes the time only then).
  bool count_reference() { return ++references_ >= next_event_; }
  // Handles a due event; false when the run must stop.
  bool handle_event(uint64_t now_cycles);
  // Called by a VCPU whenever it has synchronised with the kernel (global time = now_cycles).
  void at_sync(uint64_t now_cycles) {
    if (now_cycles >= next_time_event_) handle_time_event(now_cycles);
  }
  bool stopped() const { return stopped_; }

  uint64_t roi_references() const { return references_ - roi_start_references_; }
  uint64_t roi_start_cycles() const { return roi_start_cycles_; }
  bool in_roi() const { return roi_started_; }

 private:
  void schedule_next();
  void handle_time_event(uint64_t now_cycles);
  void start_roi(uint64_t now_cycles);

  Limits limits_;
  StatsRegistry& registry_;
  IntervalFn on_interval_;
  uint64_t references_ = 0;
  uint64_t next_event_ = 0;
  bool roi_started_ = false;
  uint64_t roi_start_references_ = 0;
  uint64_t roi_start_cycles_ = 0;
  uint64_t next_interval_ = 0;
  uint64_t next_time_event_ = ~0ULL;
  uint64_t next_interval_cycles_ = 0;
  bool stopped_ = false;
};

}  // namespace shadowsim
