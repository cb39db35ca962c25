// The guest scheduler: places guest tasks (one per trace stream: a process or a thread) on the
// VCPUs. With as many VCPUs as streams (the default) every task is pinned to its own VCPU and
// runs whenever it is runnable. With fewer VCPUs the tasks share one FIFO run queue: a VCPU runs
// a task until it blocks (a vfork parent waits for its child's exec or exit), finishes, or uses
// up its time slice while another task is waiting, and then takes the task at the head of the
// queue (a round-robin approximation of CFS with equal weights). With
// guest.scheduler.placement "recorded" each task is pinned to the VCPU of the CPU its recording
// ran it on, and a VCPU takes only its own tasks from the queue, in the same FIFO order: a run
// queue per VCPU. docs/vcpu.md.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include <systemc>

#include "common/params.h"
#include "common/stats.h"
#include "guest/address_folder.h"
#include "guest/guest_kernel.h"
#include "timed/run_control.h"
#include "workloads/os_event.h"
#include "workloads/trace_reader.h"

namespace shadowsim {

// One trace stream and the guest process or thread that replays it.
struct GuestTask {
  enum class State : uint8_t { kNotStarted, kRunnable, kRunning, kBlocked, kDone };
  struct Child {
    uint32_t stream;
    StreamOrigin origin;
    GuestTask* task;
    bool created = false;
  };

  // Opened when the task first runs and released when it ends, so a workload of thousands of
  // processes keeps only the live ones' decoders and read-ahead in memory.
  std::string trace_path;
  std::unique_ptr<TraceReader> trace;
  std::vector<TraceRecord> batch;  // read ahead; [next, count) not yet replayed
  size_t next = 0;
  size_t count = 0;
  bool trace_ended = false;
  uint32_t pid = 0;                  // 0 until created
  AddressFolder* folder = nullptr;   // of its address space
  std::vector<Child> children;
  GuestTask* vfork_parent = nullptr;  // blocked until this task execs or exits
  GuestTask* waiter = nullptr;        // its parent, blocked in wait4 until this task exits
  bool exited = false;
  State state = State::kNotStarted;
  int pinned_vcpu = -1;  // -1: any VCPU (pinned schedulers only)
};

class GuestScheduler {
 public:
  // pinned: every task runs only on its pinned_vcpu (one VCPU per task, task i on VCPU i; or
  // the recorded placement, several tasks per VCPU).
  GuestScheduler(const SchedulerParams& params, bool pinned)
      : params_(params), pinned_(pinned) {}
  const SchedulerParams& params() const { return params_; }

  void add(GuestTask* task) { tasks_.push_back(task); }
  // The task may run (created, or woken from a block).
  void wake(GuestTask* task);
  // The next task for `vcpu`, waiting in simulated time while there is none; nullptr when
  // every task is done or the run has stopped. Called from the VCPU's thread.
  // `idle` runs once before the VCPU first waits for work (it gives up its PCPU; it may wait
  // itself, so the queue is looked at again after it).
  GuestTask* next(int vcpu, const RunControl& control, const std::function<void()>& idle = {});
  // A running task gave up its VCPU: runnable again (preempted), blocked, or done.
  void preempt(GuestTask* task);
  void block(GuestTask* task) { task->state = GuestTask::State::kBlocked; }
  void done(GuestTask* task);
  // Another task waits for a VCPU that `vcpu` could give it.
  bool someone_waiting(int vcpu) const;
  // The simulation stops: wake every idle VCPU so it can finish.
  void stop_all() { work_.notify(sc_core::SC_ZERO_TIME); }

  void register_stats(StatsGroup g);

 private:
  bool all_done() const { return done_ == tasks_.size(); }

  SchedulerParams params_;
  bool pinned_;
  std::vector<GuestTask*> tasks_;
  std::deque<GuestTask*> queue_;  // runnable, in FIFO order
  size_t done_ = 0;               // tasks finished
  sc_core::sc_event work_;
  uint64_t preemptions_ = 0;
  uint64_t wakeups_ = 0;
};

}  // namespace shadowsim
