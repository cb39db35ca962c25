// The guest kernel's per-address-space serialisation (Linux's mmap_lock and page-table locks,
// reduced to one exclusive lock per mm). Native kernel operations never wait, so they are
// atomic at the time of the kernel entry and need no lock. Under shadow paging an operation
// waits in the hypervisor at each trapped page-table store, and another VCPU may enter the
// kernel meanwhile: it must not change the same address space's tables under the first one.
// Waiters queue in arrival order and spin (guest time). Operations on different mms run
// interleaved, as they do on real CPUs. (A simplification: Linux lets page faults of threads
// of one process run in parallel under the read side of mmap_lock.)
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <unordered_map>

#include <systemc>

namespace shadowsim {

class GuestMmLocks {
 public:
  // From a VCPU's thread at its synchronised time; returns the cycles it waited (they have
  // passed in SystemC). `wake` is the caller's own event.
  // A waiter that spins on a PCPU others wait for must let the PCPU scheduler take it at its
  // slice end: with `check_every` > 0 the wait wakes that often and calls `check` (which may
  // deschedule the VCPU). The queue is FIFO, like a ticket lock: the lock goes to the next
  // waiter even while it is descheduled, and everyone behind it waits too.
  uint64_t acquire(uint32_t mm, int vcpu, sc_core::sc_event& wake, uint64_t check_every = 0,
                   const std::function<void()>& check = {}) {
    Lock& lock = locks_[mm];
    if (lock.holder < 0) {
      lock.holder = vcpu;
      return 0;
    }
    const uint64_t start = sc_core::sc_time_stamp().value();
    lock.waiters.push_back({vcpu, &wake});
    while (lock.holder != vcpu) {
      if (check_every == 0) {
        sc_core::wait(wake);
        continue;
      }
      sc_core::wait(sc_core::sc_time::from_value(check_every), wake);
      if (lock.holder != vcpu && check) check();
    }
    ++contended_;
    return sc_core::sc_time_stamp().value() - start;
  }

  // The next waiter (if any) holds the lock from now; it runs one delta later.
  void release(uint32_t mm, int vcpu) {
    Lock& lock = locks_.at(mm);
    if (lock.holder != vcpu) return;
    if (lock.waiters.empty()) {
      lock.holder = -1;
      return;
    }
    const Waiter next = lock.waiters.front();
    lock.waiters.pop_front();
    lock.holder = next.vcpu;
    next.wake->notify(sc_core::SC_ZERO_TIME);
  }

  uint64_t contended() const { return contended_; }

 private:
  struct Waiter {
    int vcpu;
    sc_core::sc_event* wake;
  };
  struct Lock {
    int holder = -1;
    std::deque<Waiter> waiters;
  };
  std::unordered_map<uint32_t, Lock> locks_;  // node-based: a Lock& survives inserts
  uint64_t contended_ = 0;
};

}  // namespace shadowsim
