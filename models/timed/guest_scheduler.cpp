#include "timed/guest_scheduler.h"

#include <algorithm>

namespace shadowsim {

void GuestScheduler::wake(GuestTask* task) {
  task->state = GuestTask::State::kRunnable;
  queue_.push_back(task);
  ++wakeups_;
  work_.notify(sc_core::SC_ZERO_TIME);
}

GuestTask* GuestScheduler::next(int vcpu, const RunControl& control,
                                 const std::function<void()>& idle) {
  bool idled = false;
  for (;;) {
    if (control.stopped()) return nullptr;
    const auto it = std::find_if(queue_.begin(), queue_.end(), [&](const GuestTask* t) {
      return !pinned_ || t->pinned_vcpu == vcpu;
    });
    if (it != queue_.end()) {
      GuestTask* task = *it;
      queue_.erase(it);
      task->state = GuestTask::State::kRunning;
      return task;
    }
    if (all_done()) {
      work_.notify(sc_core::SC_ZERO_TIME);  // the other idle VCPUs finish too
      return nullptr;
    }
    if (idle && !idled) {  // its wait may miss a notification: look at the queue again
      idle();
      idled = true;
      continue;
    }
    sc_core::wait(work_);
  }
}

bool GuestScheduler::someone_waiting(int vcpu) const {
  return std::any_of(queue_.begin(), queue_.end(),
                     [&](const GuestTask* t) { return !pinned_ || t->pinned_vcpu == vcpu; });
}

void GuestScheduler::preempt(GuestTask* task) {
  ++preemptions_;
  task->state = GuestTask::State::kRunnable;
  queue_.push_back(task);
  work_.notify(sc_core::SC_ZERO_TIME);
}

void GuestScheduler::done(GuestTask* task) {
  task->state = GuestTask::State::kDone;
  ++done_;
  if (all_done()) work_.notify(sc_core::SC_ZERO_TIME);
}

void GuestScheduler::register_stats(StatsGroup g) {
  g.counter("preemptions", &preemptions_, "switches",
            "tasks that used up their time slice while another waited");
  g.counter("wakeups", &wakeups_, "wakeups", "tasks made runnable (created or unblocked)");
}

}  // namespace shadowsim
