// The shadow lock (models/hv/spin_lock.h) in simulated time: uncontended and hand-off costs,
// the TTAS race rule and its determinism, ticket FIFO order, reader/writer sharing and writer
// preference, statistics against hand-computed values, and model-bug errors. Every test
// elaborates its own SystemC context; the VCPUs are spawned threads following a script.
#define SC_INCLUDE_DYNAMIC_PROCESSES
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/error.h"
#include "common/rng.h"
#include "common/stats.h"
#include "timed/systemc_context.h"
#include "hv/spin_lock.h"

namespace shadowsim {
namespace {

constexpr uint32_t kAtomic = 20;
constexpr uint32_t kTransfer = 60;
constexpr uint32_t kRelease = 10;
constexpr uint32_t kPause = 10;

LockParams params(LockKind kind) {
  LockParams p;
  p.kind = kind;
  p.atomic_cycles = kAtomic;
  p.transfer_cycles = kTransfer;
  p.release_cycles = kRelease;
  p.pause_cycles = kPause;
  p.race_winner = RaceWinner::kLowestPcpu;
  return p;
}

// One acquire of a script: at absolute time `at` (or at once if the VCPU is already later),
// hold for `hold` cycles, release.
struct Step {
  uint64_t at;
  uint64_t hold;
  LockMode mode = LockMode::kExclusive;
};

struct Grant {
  int vcpu;
  uint64_t requested;
  uint64_t granted;
  uint64_t cycles;  // what acquire() returned
  uint64_t released;
  uint64_t release_cycles;
  bool operator==(const Grant& o) const {
    return vcpu == o.vcpu && requested == o.requested && granted == o.granted &&
           cycles == o.cycles && released == o.released && release_cycles == o.release_cycles;
  }
};

uint64_t now() { return sc_core::sc_time_stamp().value(); }

void wait_until(uint64_t t) {
  if (t > now()) sc_core::wait(sc_core::sc_time::from_value(t - now()));
}

// A lock in a fresh SystemC context, with VCPU threads that follow scripts.
class LockSim {
 public:
  explicit LockSim(const LockParams& p, uint64_t seed = 1)
      : lock_(make_spin_lock("lock", p, seed)) {
    lock_->register_stats(StatsGroup(registry_, "lock"));
  }

  void actor(int vcpu, int pcpu, std::vector<Step> steps) {
    thread(fmt::format("vcpu{}", vcpu), [this, vcpu, pcpu, steps](SpinLock& lock) {
      for (const Step& s : steps) {
        wait_until(s.at);
        Grant g{vcpu, now(), 0, 0, 0, 0};
        g.cycles = lock.acquire(LockRequester{vcpu, pcpu}, s.mode);
        g.granted = now();
        sc_core::wait(sc_core::sc_time::from_value(s.hold));
        g.released = now();
        g.release_cycles = lock.release(LockRequester{vcpu, pcpu});
        grants_.push_back(g);
      }
    });
  }
  // A free-form thread; an Error it throws is recorded in errors().
  void thread(const std::string& name, std::function<void(SpinLock&)> body) {
    sc_core::sc_spawn(
        [this, body] {
          try {
            body(*lock_);
          } catch (const Error& e) {
            errors_.push_back(e.what());
          }
        },
        name.c_str());
  }
  void run() { sc_core::sc_start(); }

  // Grants in the order the lock was handed out.
  std::vector<Grant> grants() const {
    std::vector<Grant> g = grants_;
    std::sort(g.begin(), g.end(), [](const Grant& a, const Grant& b) {
      return a.granted != b.granted ? a.granted < b.granted : a.vcpu < b.vcpu;
    });
    return g;
  }
  std::vector<int> order() const {
    std::vector<int> o;
    for (const Grant& g : grants()) o.push_back(g.vcpu);
    return o;
  }
  const Grant& grant_of(int vcpu, int nth = 0) const {
    for (const Grant& g : grants_) {
      if (g.vcpu == vcpu && nth-- == 0) return g;
    }
    throw Error(fmt::format("no grant {} for vcpu{}", nth, vcpu));
  }
  uint64_t counter(const std::string& name) const {
    const StatsRegistry::Entry* e = registry_.find("lock." + name);
    if (!e || !e->counter) throw Error("no counter lock." + name);
    return *e->counter;
  }
  const Histogram& histogram(const std::string& name) const {
    const StatsRegistry::Entry* e = registry_.find("lock." + name);
    if (!e || !e->histogram) throw Error("no histogram lock." + name);
    return *e->histogram;
  }
  const std::vector<std::string>& errors() const { return errors_; }
  SpinLock& lock() { return *lock_; }

 private:
  ScContext context_;  // first: made before the lock, deleted after it
  std::unique_ptr<SpinLock> lock_;
  StatsRegistry registry_;
  std::vector<Grant> grants_;
  std::vector<std::string> errors_;
};

const LockKind kKinds[] = {LockKind::kTtas, LockKind::kTicket, LockKind::kRw};

TEST(SpinLock, UncontendedCostIsAnAtomicPlusATransferFromAnotherPcpu) {
  for (LockKind kind : kKinds) {
    SCOPED_TRACE(static_cast<int>(kind));
    LockSim sim(params(kind));
    sim.actor(0, 0, {{100, 100}});
    sim.actor(1, 1, {{1000, 100}, {2000, 50}});
    sim.run();
    EXPECT_TRUE(sim.errors().empty());
    // The line was never written: no transfer. Then pcpu1 takes it from pcpu0, then keeps it.
    EXPECT_EQ(sim.grant_of(0).cycles, kAtomic);
    EXPECT_EQ(sim.grant_of(0).granted, 100 + kAtomic);
    EXPECT_EQ(sim.grant_of(1, 0).cycles, kAtomic + kTransfer);
    EXPECT_EQ(sim.grant_of(1, 1).cycles, kAtomic);
    EXPECT_EQ(sim.grant_of(1, 1).release_cycles, kRelease);
    EXPECT_EQ(sim.counter("acquisitions"), 3);
    EXPECT_EQ(sim.counter("contended"), 0);
    EXPECT_EQ(sim.counter("spins"), 0);
    EXPECT_EQ(sim.counter("spin_cycles"), 0);
    EXPECT_EQ(sim.counter("transfers"), 1);
    EXPECT_EQ(sim.counter("max_waiters"), 0);
    EXPECT_EQ(sim.counter("acquire_cycles"), 3 * kAtomic + kTransfer);
    EXPECT_EQ(sim.counter("held_cycles"), 250);
    EXPECT_FALSE(sim.lock().held_by(0));
    EXPECT_EQ(sim.lock().holder_count(), 0);
  }
}

TEST(SpinLock, LaterAcquirerWaitsUntilReleasePlusHandOff) {
  // A (pcpu0) holds from 20 to 520; B (pcpu1) asks at 100. TTAS and rw: B re-reads the line
  // and RMWs after the release. Ticket: B took its ticket at 100; it needs only the transfer.
  const std::pair<LockKind, uint64_t> cases[] = {
      {LockKind::kTtas, 520 + kTransfer + kAtomic},
      {LockKind::kTicket, 520 + kTransfer},
      {LockKind::kRw, 520 + kTransfer + kAtomic},
  };
  for (const auto& [kind, expected] : cases) {
    SCOPED_TRACE(static_cast<int>(kind));
    LockSim sim(params(kind));
    sim.actor(0, 0, {{0, 500}});
    sim.actor(1, 1, {{100, 10}});
    sim.run();
    EXPECT_EQ(sim.grant_of(0).released, 520);
    EXPECT_EQ(sim.grant_of(1).granted, expected);
    EXPECT_EQ(sim.grant_of(1).cycles, expected - 100);
    EXPECT_EQ(sim.counter("contended"), 1);
    // Spin cycles: the wait beyond B's uncontended cost (atomic + transfer, line at pcpu0).
    EXPECT_EQ(sim.counter("spin_cycles"), expected - 100 - kAtomic - kTransfer);
    EXPECT_EQ(sim.counter("max_waiters"), 1);
  }
}

TEST(SpinLock, HolderThatNeverRunsKeepsTheLockAndSpinnersKeepSpinning) {
  // A descheduled holder is just a long hold: nothing is granted before its release.
  LockSim sim(params(LockKind::kTtas));
  sim.actor(0, 0, {{0, 5'000'000}});
  sim.actor(1, 1, {{10, 1}});
  sim.run();
  EXPECT_EQ(sim.grant_of(1).granted, 5'000'020 + kTransfer + kAtomic);
  EXPECT_EQ(sim.counter("spins"), (5'000'020 + kTransfer + kAtomic - 10 - kAtomic - kTransfer) /
                                      kPause);
}

// TTAS with a holder on pcpu0 and three spinners arriving in the order pcpu3, pcpu1, pcpu2.
void three_contenders(LockSim& sim) {
  sim.actor(0, 0, {{0, 1000}});
  sim.actor(3, 3, {{100, 100}});
  sim.actor(1, 1, {{200, 100}});
  sim.actor(2, 2, {{300, 100}});
}

TEST(SpinLock, TtasLowestPcpuRuleAndHandComputedStatistics) {
  LockSim sim(params(LockKind::kTtas));
  three_contenders(sim);
  sim.run();
  EXPECT_EQ(sim.order(), (std::vector<int>{0, 1, 2, 3}));
  // Release at 1020; all three reach the line at 1080; pcpu1 wins, holds 1100..1200; pcpu2 and
  // pcpu3 reach it at 1260, pcpu2 wins (1280..1380); pcpu3 at 1440 + 20.
  EXPECT_EQ(sim.grant_of(0).granted, 20);
  EXPECT_EQ(sim.grant_of(1).granted, 1100);
  EXPECT_EQ(sim.grant_of(2).granted, 1280);
  EXPECT_EQ(sim.grant_of(3).granted, 1460);
  // Waits 20, 900, 980, 1360; each spinner's uncontended cost was 80 (line at pcpu0).
  EXPECT_EQ(sim.counter("acquisitions"), 4);
  EXPECT_EQ(sim.counter("contended"), 3);
  EXPECT_EQ(sim.counter("spin_cycles"), 820 + 900 + 1280);
  EXPECT_EQ(sim.counter("spins"), 82 + 90 + 128);
  EXPECT_EQ(sim.counter("acquire_cycles"), 20 + 900 + 980 + 1360);
  EXPECT_EQ(sim.counter("transfers"), 3);
  EXPECT_EQ(sim.counter("held_cycles"), 1300);
  EXPECT_EQ(sim.counter("max_waiters"), 3);
  const Histogram& wait = sim.histogram("wait_cycles");
  EXPECT_EQ(wait.count(), 4);
  EXPECT_EQ(wait.sum(), 3260);
  EXPECT_EQ(wait.min(), 20);
  EXPECT_EQ(wait.max(), 1360);
  EXPECT_EQ(wait.buckets()[5], 1);   // 20 in [16, 32)
  EXPECT_EQ(wait.buckets()[10], 2);  // 900, 980 in [512, 1024)
  EXPECT_EQ(wait.buckets()[11], 1);  // 1360 in [1024, 2048)
  const Histogram& hold = sim.histogram("hold_cycles");
  EXPECT_EQ(hold.count(), 4);
  EXPECT_EQ(hold.sum(), 1300);
  EXPECT_EQ(hold.min(), 100);
  EXPECT_EQ(hold.max(), 1000);
}

std::vector<int> ttas_random_order(uint64_t seed) {
  LockParams p = params(LockKind::kTtas);
  p.race_winner = RaceWinner::kRandom;
  LockSim sim(p, seed);
  three_contenders(sim);
  sim.run();
  return sim.order();
}

TEST(SpinLock, TtasRandomRaceIsRepeatableForASeed) {
  std::set<std::vector<int>> orders;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const std::vector<int> order = ttas_random_order(seed);
    EXPECT_EQ(ttas_random_order(seed), order) << "seed " << seed;
    ASSERT_EQ(order.size(), 4u);
    EXPECT_EQ(order[0], 0);
    EXPECT_TRUE(std::is_permutation(order.begin(), order.end(),
                                    std::vector<int>{0, 1, 2, 3}.begin()));
    orders.insert(order);
  }
  EXPECT_GT(orders.size(), 1u) << "the seed never changed who won a race";
}

TEST(SpinLock, SameTimeRequestsAreBrokenByPcpuNotByProcessOrder) {
  LockSim sim(params(LockKind::kTtas));
  sim.actor(7, 5, {{100, 10}});  // spawned first, higher PCPU
  sim.actor(8, 2, {{100, 10}});
  sim.run();
  EXPECT_EQ(sim.order(), (std::vector<int>{8, 7}));
}

TEST(SpinLock, TtasIsUnfairTheReleasingPcpuReacquiresFirst) {
  // vcpu0 releases at 1020 and asks again at once: its PCPU has the line, the spinner needs a
  // transfer, so vcpu0 wins although vcpu1 has waited since 100.
  LockSim sim(params(LockKind::kTtas));
  sim.actor(0, 0, {{0, 1000}, {0, 100}});
  sim.actor(1, 1, {{100, 10}});
  sim.run();
  EXPECT_EQ(sim.order(), (std::vector<int>{0, 0, 1}));
  EXPECT_EQ(sim.grant_of(0, 1).granted, 1020 + kAtomic);
  EXPECT_EQ(sim.grant_of(1).granted, 1140 + kTransfer + kAtomic);
}

TEST(SpinLock, TicketLockServesInArrivalOrder) {
  LockSim sim(params(LockKind::kTicket));
  sim.actor(0, 0, {{0, 1000}, {0, 100}});  // asks again right after its release
  sim.actor(3, 3, {{100, 100}});
  sim.actor(1, 1, {{200, 100}});
  sim.actor(2, 2, {{300, 100}});
  sim.actor(5, 5, {{400, 100}});  // same time as vcpu4: tickets go in PCPU order
  sim.actor(4, 4, {{400, 100}});
  sim.run();
  EXPECT_EQ(sim.order(), (std::vector<int>{0, 3, 1, 2, 4, 5, 0}));
  // Release at 1020; each next holder sees the head after one transfer.
  EXPECT_EQ(sim.grant_of(3).granted, 1020 + kTransfer);
  EXPECT_EQ(sim.grant_of(1).granted, 1020 + kTransfer + 100 + kTransfer);
  EXPECT_EQ(sim.counter("contended"), 6);
  EXPECT_EQ(sim.counter("max_waiters"), 5);
}

// Readers on pcpu0 (0..), pcpu1 (100..), a writer on pcpu2 at 200, a reader on pcpu3 at 300.
void rw_scenario(LockSim& sim) {
  sim.actor(1, 0, {{0, 1000, LockMode::kShared}});
  sim.actor(2, 1, {{100, 1000, LockMode::kShared}});
  sim.actor(3, 2, {{200, 100, LockMode::kExclusive}});
  sim.actor(4, 3, {{300, 1000, LockMode::kShared}});
  sim.run();
}

TEST(SpinLock, RwWriterPreference) {
  LockSim sim(params(LockKind::kRw));
  rw_scenario(sim);
  // Readers overlap: the second enters at 180 while the first holds until 1020.
  EXPECT_EQ(sim.grant_of(1).granted, kAtomic);
  EXPECT_EQ(sim.grant_of(2).granted, 100 + kTransfer + kAtomic);
  EXPECT_LT(sim.grant_of(2).granted, sim.grant_of(1).released);
  // The writer waits for both readers (the last releases at 1180 on pcpu1).
  EXPECT_EQ(sim.grant_of(3).granted, 1180 + kTransfer + kAtomic);
  // The late reader is held off by the waiting writer and enters after its release (1360).
  EXPECT_EQ(sim.grant_of(4).granted, 1360 + kTransfer + kAtomic);
  EXPECT_EQ(sim.order(), (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(sim.counter("read_acquisitions"), 3);
  EXPECT_EQ(sim.counter("write_acquisitions"), 1);
  EXPECT_EQ(sim.counter("contended"), 2);
  EXPECT_EQ(sim.counter("transfers"), 3);
}

TEST(SpinLock, RwReaderPreferenceLetsReadersPassAWaitingWriter) {
  LockParams p = params(LockKind::kRw);
  p.writer_preference = false;
  LockSim sim(p);
  rw_scenario(sim);
  // The late reader joins the readers at once (line at pcpu1: one transfer) ...
  EXPECT_EQ(sim.grant_of(4).granted, 300 + kTransfer + kAtomic);
  // ... and the writer waits for it too (released at 1380 on pcpu3).
  EXPECT_EQ(sim.grant_of(3).granted, 1380 + kTransfer + kAtomic);
  EXPECT_EQ(sim.order(), (std::vector<int>{1, 2, 4, 3}));
  EXPECT_EQ(sim.counter("contended"), 1);
}

// Many VCPUs with random scripts: the run depends only on the scripts and the lock's seed.
std::pair<std::vector<Grant>, uint64_t> random_run(uint64_t lock_seed) {
  LockParams p = params(LockKind::kTtas);
  p.race_winner = RaceWinner::kRandom;
  LockSim sim(p, lock_seed);
  Rng rng(42);
  for (int v = 0; v < 8; ++v) {
    std::vector<Step> steps;
    uint64_t t = 0;
    for (int i = 0; i < 40; ++i) {
      t += rng.below(300);
      steps.push_back(Step{t, 20 + rng.below(200)});
    }
    sim.actor(v, v, steps);
  }
  sim.run();
  EXPECT_TRUE(sim.errors().empty());
  for (const Grant& g : sim.grants()) EXPECT_EQ(g.cycles, g.granted - g.requested);
  return {sim.grants(), sim.counter("spin_cycles")};
}

TEST(SpinLock, SameSeedGivesIdenticalRuns) {
  const auto a = random_run(7);
  const auto b = random_run(7);
  EXPECT_EQ(a.first.size(), 8u * 40u);
  EXPECT_TRUE(a.first == b.first);
  EXPECT_EQ(a.second, b.second);
  EXPECT_FALSE(random_run(8).first == a.first) << "the lock's seed changed nothing";
}

TEST(SpinLock, RecursiveAcquireIsAnError) {
  for (LockKind kind : kKinds) {
    LockSim sim(params(kind));
    sim.thread("vcpu0", [](SpinLock& lock) {
      lock.acquire(LockRequester{0, 0});
      lock.acquire(LockRequester{0, 0});
    });
    sim.run();
    ASSERT_EQ(sim.errors().size(), 1u);
    EXPECT_NE(sim.errors()[0].find("vcpu0 acquires the lock it already holds"),
              std::string::npos) << sim.errors()[0];
    EXPECT_TRUE(sim.lock().held_by(0));
  }
}

TEST(SpinLock, ReleaseByANonHolderIsAnError) {
  LockSim sim(params(LockKind::kTicket));
  sim.thread("vcpu0", [](SpinLock& lock) {
    lock.acquire(LockRequester{0, 0});
    sc_core::wait(sc_core::sc_time::from_value(1000));
    lock.release(LockRequester{0, 0});
    lock.release(LockRequester{0, 0});  // no longer holds it
  });
  sim.thread("vcpu1", [](SpinLock& lock) {
    sc_core::wait(sc_core::sc_time::from_value(500));
    lock.release(LockRequester{1, 1});  // vcpu0 holds it
  });
  sim.run();
  ASSERT_EQ(sim.errors().size(), 2u);
  EXPECT_NE(sim.errors()[0].find("vcpu1 releases a lock it does not hold (holders: vcpu0)"),
            std::string::npos) << sim.errors()[0];
  EXPECT_NE(sim.errors()[1].find("vcpu0 releases a lock it does not hold (holders: none)"),
            std::string::npos) << sim.errors()[1];
}

TEST(SpinLock, SharedAcquireOfAnExclusiveLockIsAnError) {
  LockSim sim(params(LockKind::kTtas));
  sim.thread("vcpu0", [](SpinLock& lock) {
    lock.acquire(LockRequester{0, 0}, LockMode::kShared);
  });
  sim.run();
  ASSERT_EQ(sim.errors().size(), 1u);
  EXPECT_NE(sim.errors()[0].find("exclusive only"), std::string::npos);
}

// ScContext (models/timed/systemc_context.h): deleting the current context leaves a fresh one
// current, and the next ScContext takes it instead of making (and leaking) another, as
// LeakSanitizer found (docs/sanitizers.md).
TEST(ScContextReuse, TheNextContextTakesTheFreshOneADeletionLeft) {
  { ScContext a; }  // the process's first (kept), or one of its own
  { ScContext b; }  // its own: deleted, leaving a fresh one current
  sc_core::sc_simcontext* const left = sc_core::sc_get_curr_simcontext();
  {
    ScContext c;
    EXPECT_EQ(sc_core::sc_get_curr_simcontext(), left);
  }
  EXPECT_NE(sc_core::sc_get_curr_simcontext(), left);  // c deleted it, leaving another
}

}  // namespace
}  // namespace shadowsim
