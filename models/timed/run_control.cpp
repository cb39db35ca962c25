#include "timed/run_control.h"

#include <algorithm>

namespace shadowsim {

RunControl::RunControl(const Limits& limits, StatsRegistry& registry, IntervalFn on_interval)
    : limits_(limits), registry_(registry), on_interval_(std::move(on_interval)) {
  if (limits_.warmup_references == 0 && limits_.warmup_cycles == 0) roi_started_ = true;
  schedule_next();
}

void RunControl::start_roi(uint64_t now_cycles) {
  registry_.reset();
  roi_started_ = true;
  roi_start_references_ = references_;
  roi_start_cycles_ = now_cycles;
}

void RunControl::schedule_next() {
  uint64_t next = ~0ULL;
  if (!roi_started_ && limits_.warmup_references) next = limits_.warmup_references;
  if (roi_started_ && limits_.interval_references) {
    next = std::min(next, roi_start_references_ + next_interval_ + limits_.interval_references);
  }
  if (limits_.max_references) next = std::min(next, limits_.max_references);
  next_event_ = next;

  uint64_t next_time = ~0ULL;
  if (!roi_started_ && limits_.warmup_cycles) next_time = limits_.warmup_cycles;
  if (roi_started_ && limits_.interval_cycles) {
    next_time = roi_start_cycles_ + next_interval_cycles_ + limits_.interval_cycles;
  }
  next_time_event_ = next_time;
}

void RunControl::handle_time_event(uint64_t now_cycles) {
  if (!roi_started_) {
    start_roi(now_cycles);
  } else {
    // One snapshot per sync even if the quantum spans several intervals: the values would repeat.
    while (roi_start_cycles_ + next_interval_cycles_ + limits_.interval_cycles <= now_cycles) {
      next_interval_cycles_ += limits_.interval_cycles;
    }
    if (on_interval_) on_interval_(roi_references(), now_cycles);
  }
  schedule_next();
}

bool RunControl::handle_event(uint64_t now_cycles) {
  if (!roi_started_ && limits_.warmup_references && references_ >= limits_.warmup_references) {
    start_roi(now_cycles);
  } else if (roi_started_ && limits_.interval_references &&
             roi_references() >= next_interval_ + limits_.interval_references) {
    next_interval_ += limits_.interval_references;
    if (on_interval_) on_interval_(roi_references(), now_cycles);
  }
  if (limits_.max_references && references_ >= limits_.max_references) stopped_ = true;
  schedule_next();
  return !stopped_;
}

}  // namespace shadowsim
