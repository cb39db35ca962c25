// The hypervisor's shadow lock as a timed object (docs/lock.md). In Xen 2008 every shadow fault
// takes one per-domain spinlock (research notes §1.2); this models its cost in simulated time:
// an uncontended acquire costs an atomic read-modify-write, plus a cache-line transfer when
// another PCPU wrote the lock word last; a contended acquire spins, burning its PCPU's cycles,
// until the lock is handed over.
//
// Callers are SystemC threads (VCPUs) that have synchronised their local time with the kernel
// (docs/architecture.md, "sync before touching shared state"), so acquire() starts at
// sc_time_stamp() = the requester's time. acquire() returns when the lock is held, having waited
// in simulated time, and returns the cycles it took. release() does not wait: it returns the
// releasing store's cycles for the caller to add to its local time.
//
// Decisions are taken by one arbiter process one delta cycle after the event that prompts them
// (a request or a release), so every request made at the same time and delta is seen together
// and ties are broken by a fixed rule, never by process scheduling order. Nothing assumes the
// holder makes progress: a holder that is descheduled keeps the lock and its spinners keep
// spinning until it releases.
//
// Variants (LockParams::kind): "ttas" (test-and-test-and-set, unfair: Xen until 2015), "ticket"
// (FIFO: Xen since commit e10784ac42, 2015), "rw" (readers share, a writer excludes: modelled on
// KVM's mmu_lock rwlock, research §4.5). Each is a class derived from SpinLock that implements
// arbitrate(); make_spin_lock() picks one. Adding a variant is one class and one choice name.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include <systemc>

#include "common/params.h"
#include "common/rng.h"
#include "common/stats.h"

namespace shadowsim {

enum class LockKind { kTtas, kTicket, kRw };

// How a TTAS lock picks among spinners that reach the freed lock word in the same cycle.
enum class RaceWinner {
  kRandom,      // uniformly, from the lock's seeded generator (deterministic for a seed)
  kLowestPcpu,  // the lowest PCPU index
};

// Costs in cycles. Sources: research notes §5 (shadow-algorithms.md) unless said otherwise.
struct LockParams {
  LockKind kind = LockKind::kTtas;
  // An atomic RMW on a line already in this PCPU's cache (lock; decb / lock; xadd). Assumption,
  // informed by: ~17 cycles for a locked CMPXCHG (LLVM's AMD Jaguar scheduling model, commit
  // "[X86][Btver2] Fix latency and throughput of CMPXCHG instructions", 2019) and 16-21 ns for an
  // uncontended lock xadd measured on the development machine (§5, noisy VM).
  uint32_t atomic_cycles = 20;
  // Moving the lock's cache line from the PCPU that wrote it last. Assumption from §5: 20-40 ns
  // on one 2008 die (~50-100 cycles at 2.5 GHz); 15-19 ns inside a Zen 4 CCX (AnandTech
  // core-to-core latency), ~60-75 cycles at 4 GHz.
  uint32_t transfer_cycles = 60;
  // The releasing store (TTAS: movb $1; ticket: increment of the head). Assumption from §5's
  // development-machine measurement: acquire+release 24-28 ns against 16-21 ns for the xadd
  // alone, so ~5-10 ns for the release; low reliability.
  uint32_t release_cycles = 10;
  // One spin-loop iteration (PAUSE, a plain load, compare, branch); only turns spin time into a
  // spin count, never time. Assumption: PAUSE is ~140 cycles from Skylake on and ~10 before
  // (Intel 64 and IA-32 Architectures Optimization Reference Manual, as commonly quoted; not
  // checked here); 140 matches the project's Skylake-like machine (docs/memory.md). Use 10 for
  // 2008 (Core 2) hardware.
  uint32_t pause_cycles = 140;
  RaceWinner race_winner = RaceWinner::kRandom;  // ttas only
  bool writer_preference = true;                 // rw only: a waiting writer holds off readers

  template <class V>
  void visit(V& v) {
    v.choice("kind", kind, "lock algorithm",
             {{"ttas", LockKind::kTtas}, {"ticket", LockKind::kTicket}, {"rw", LockKind::kRw}});
    v.value("atomic_cycles", atomic_cycles, "atomic read-modify-write on a local cache line",
            Limits{0, 1e6}, "cycles");
    v.value("transfer_cycles", transfer_cycles,
            "moving the lock's cache line from the PCPU that wrote it last", Limits{0, 1e6},
            "cycles");
    v.value("release_cycles", release_cycles, "the releasing store", Limits{0, 1e6}, "cycles");
    v.value("pause_cycles", pause_cycles, "one spin-loop iteration (PAUSE and a load)",
            Limits{1, 1e6}, "cycles");
    v.choice("race_winner", race_winner,
             "ttas: which spinner wins when several reach the freed lock in the same cycle",
             {{"random", RaceWinner::kRandom}, {"lowest_pcpu", RaceWinner::kLowestPcpu}});
    v.value("writer_preference", writer_preference,
            "rw: a waiting writer holds off new readers (otherwise readers go first)");
  }
};

// Who asks: the VCPU (the lock's notion of owner) and the PCPU it runs on (whose cache holds
// the line). A VCPU may move between PCPUs between acquisitions.
struct LockRequester {
  int vcpu = 0;
  int pcpu = 0;
};

enum class LockMode { kExclusive, kShared };  // kShared: readers of an rw lock only

class SpinLock : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(SpinLock);
  SpinLock(sc_core::sc_module_name name, const LockParams& params, uint64_t seed);

  // From a SystemC thread, at the requester's synchronised time. Returns when the lock is held;
  // the result is the cycles from the call to holding it (the caller's time has advanced by
  // exactly that much). Throws Error on recursion, on a shared request to an exclusive-only
  // lock, and when not called from a thread.
  uint64_t acquire(LockRequester who, LockMode mode = LockMode::kExclusive);
  // At the holder's synchronised time; the lock is free from now. Returns the cycles of the
  // releasing store (not waited for). Throws Error if `who` does not hold the lock.
  uint64_t release(LockRequester who);

  bool held_by(int vcpu) const;
  size_t holder_count() const { return holders_.size(); }
  size_t waiter_count() const { return waiting_.size(); }
  const LockParams& params() const { return params_; }

  void register_stats(StatsGroup g);

 protected:
  static constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();
  static constexpr int kNoPcpu = -1;

  // One pending acquire; lives on the requesting thread's stack until granted.
  struct Request {
    LockRequester who;
    LockMode mode = LockMode::kExclusive;
    uint64_t requested_at = 0;
    uint64_t sequence = 0;     // arrival order
    uint64_t uncontended = 0;  // what the acquire would cost on a free lock
    uint64_t transfers = 0;    // cache-line transfers so far (set by the variant)
    uint64_t claim_at = kNever;  // variant scratch (ttas: when its RMW reaches the free line)
    uint64_t ticket = kNever;    // variant scratch (ticket)
    uint64_t ready_at = 0;       // variant scratch (ticket: when its xadd completed)
    bool claim_transfer = false;
    sc_core::sc_event granted;
  };
  struct Holder {
    LockRequester who;
    LockMode mode;
    uint64_t since;  // when its acquire returned
  };

  // The variant's decision at the current time: grant() zero or more requests, or
  // arbitrate_at() a later time. Called one delta after every request and release.
  virtual void arbitrate() = 0;
  // Hooks, at the current time: a new request (before it is queued), a release (after the
  // holder is removed and the line has moved to its PCPU).
  virtual void requested(Request&) {}
  virtual void released(const Holder&) {}
  virtual bool supports_shared() const { return false; }

  // The request holds the lock from now; its acquire returns at `at` (>= now).
  void grant(Request& r, uint64_t at);
  void arbitrate_at(uint64_t at);  // calls arbitrate() then (one delta later if at == now)
  // Cycles to bring the lock's line to `pcpu` (0 if it wrote it last, or nobody has).
  uint64_t transfer_to(int pcpu) const {
    return line_pcpu_ == kNoPcpu || line_pcpu_ == pcpu ? 0 : params_.transfer_cycles;
  }
  static uint64_t now();

  LockParams params_;
  Rng rng_;
  std::vector<Request*> waiting_;  // in order of (request time, PCPU, arrival)
  std::vector<Holder> holders_;
  int line_pcpu_ = kNoPcpu;  // the PCPU that last wrote the lock word
  uint64_t released_at_ = 0;
  int released_by_pcpu_ = kNoPcpu;

 private:
  void run_arbiter();
  const Request* waiting_of(int vcpu) const;

  sc_core::sc_event arbitrate_event_;
  uint64_t next_sequence_ = 0;

  uint64_t acquisitions_ = 0;
  uint64_t read_acquisitions_ = 0;
  uint64_t write_acquisitions_ = 0;
  uint64_t contended_ = 0;
  uint64_t spins_ = 0;
  uint64_t spin_cycles_ = 0;
  uint64_t acquire_cycles_ = 0;
  uint64_t transfers_ = 0;
  uint64_t held_cycles_ = 0;
  uint64_t max_waiters_ = 0;
  Histogram wait_cycles_;
  Histogram hold_cycles_;
};

// Test-and-test-and-set, unfair (Xen's x86 spinlock until 2015: lock; decb, spin on a plain
// read with PAUSE, release stores 1). A freed lock goes to the first requester whose RMW reaches
// the line: at the release, spinners reach it after a transfer; the releasing PCPU (which still
// has the line) would reach it at once. Same-cycle ties follow LockParams::race_winner.
class TtasLock : public SpinLock {
 public:
  TtasLock(sc_core::sc_module_name name, const LockParams& params, uint64_t seed)
      : SpinLock(name, params, seed) {}

 protected:
  void arbitrate() override;
  void requested(Request& r) override;
  void released(const Holder& h) override;
};

// Ticket lock, FIFO (Xen since 2015): an acquire takes a ticket with lock; xadd at its arrival,
// then spins until the head reaches it; the release increments the head, and the next in line
// sees it after a cache-line transfer. Tickets of same-time arrivals go in PCPU order.
class TicketLock : public SpinLock {
 public:
  TicketLock(sc_core::sc_module_name name, const LockParams& params, uint64_t seed)
      : SpinLock(name, params, seed) {}

 protected:
  void arbitrate() override;

 private:
  uint64_t next_ticket_ = 0;
  uint64_t serving_ = 0;
};

// Reader/writer spinlock (hypothetical read-mostly shadow fault path after KVM's TDP MMU,
// research §4.5). Readers share the lock, a writer excludes everyone. With writer preference a
// waiting writer stops new readers from entering and goes first when the lock frees; without
// it, readers join whenever no writer holds, and waiting readers go before waiting writers.
// Every acquire is an RMW on the one lock word: each pays a transfer when another PCPU wrote it
// last, so readers on different PCPUs still bounce the line.
class RwLock : public SpinLock {
 public:
  RwLock(sc_core::sc_module_name name, const LockParams& params, uint64_t seed)
      : SpinLock(name, params, seed) {}

 protected:
  void arbitrate() override;
  bool supports_shared() const override { return true; }

 private:
  void enter(Request& r);  // grant after a transfer (if needed) and the RMW
};

// The variant LockParams::kind names.
std::unique_ptr<SpinLock> make_spin_lock(sc_core::sc_module_name name, const LockParams& params,
                                         uint64_t seed);

}  // namespace shadowsim
