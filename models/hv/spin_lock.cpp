#include "hv/spin_lock.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/error.h"

namespace shadowsim {

SpinLock::SpinLock(sc_core::sc_module_name name, const LockParams& params, uint64_t seed)
    : sc_module(name), params_(params), rng_(seed) {
  if (params_.pause_cycles == 0) {
    throw Error(fmt::format("{}: pause_cycles must be at least 1", this->name()));
  }
  SC_METHOD(run_arbiter);
  sensitive << arbitrate_event_;
  dont_initialize();
}

uint64_t SpinLock::now() { return sc_core::sc_time_stamp().value(); }

bool SpinLock::held_by(int vcpu) const {
  return std::any_of(holders_.begin(), holders_.end(),
                     [&](const Holder& h) { return h.who.vcpu == vcpu; });
}

const SpinLock::Request* SpinLock::waiting_of(int vcpu) const {
  for (const Request* r : waiting_) {
    if (r->who.vcpu == vcpu) return r;
  }
  return nullptr;
}

uint64_t SpinLock::acquire(LockRequester who, LockMode mode) {
  const sc_core::sc_process_handle self = sc_core::sc_get_current_process_handle();
  if (!self.valid() || self.proc_kind() == sc_core::SC_METHOD_PROC_) {
    throw Error(fmt::format("{}: acquire by vcpu{} outside a SystemC thread (it has to wait)",
                            name(), who.vcpu));
  }
  if (mode == LockMode::kShared && !supports_shared()) {
    throw Error(fmt::format("{}: vcpu{} asks for shared access, but this lock kind is "
                            "exclusive only (use kind \"rw\")", name(), who.vcpu));
  }
  if (held_by(who.vcpu)) {
    throw Error(fmt::format("{}: vcpu{} acquires the lock it already holds (recursive "
                            "acquire: a model bug)", name(), who.vcpu));
  }
  if (waiting_of(who.vcpu)) {
    throw Error(fmt::format("{}: vcpu{} acquires the lock while already waiting for it (two "
                            "processes with one VCPU id: a model bug)", name(), who.vcpu));
  }
  Request r;
  r.who = who;
  r.mode = mode;
  r.requested_at = now();
  r.sequence = next_sequence_++;
  r.uncontended = params_.atomic_cycles + transfer_to(who.pcpu);
  requested(r);
  // Requests arrive in time order; same-time ones are kept in PCPU order (the tie rule).
  const auto at = std::find_if(waiting_.begin(), waiting_.end(), [&](const Request* w) {
    return w->requested_at == r.requested_at && w->who.pcpu > who.pcpu;
  });
  waiting_.insert(at, &r);
  arbitrate_at(r.requested_at);
  wait(r.granted);
  return now() - r.requested_at;
}

uint64_t SpinLock::release(LockRequester who) {
  const auto it = std::find_if(holders_.begin(), holders_.end(),
                               [&](const Holder& h) { return h.who.vcpu == who.vcpu; });
  if (it == holders_.end()) {
    std::string holders;
    for (const Holder& h : holders_) holders += fmt::format(" vcpu{}", h.who.vcpu);
    throw Error(fmt::format("{}: vcpu{} releases a lock it does not hold (holders:{}): a model "
                            "bug", name(), who.vcpu, holders.empty() ? " none" : holders));
  }
  const uint64_t t = now();
  if (t < it->since) {
    throw Error(fmt::format("{}: vcpu{} releases the lock at {} before its acquire returned "
                            "at {}: a model bug", name(), who.vcpu, t, it->since));
  }
  const Holder h = *it;
  holders_.erase(it);
  hold_cycles_.sample(t - h.since);
  held_cycles_ += t - h.since;
  line_pcpu_ = who.pcpu;  // the releasing store leaves the line in the releaser's cache
  released_at_ = t;
  released_by_pcpu_ = who.pcpu;
  released(h);
  arbitrate_at(t);
  return params_.release_cycles;
}

void SpinLock::grant(Request& r, uint64_t at) {
  if (at < now()) {
    throw Error(fmt::format("{}: internal error: vcpu{} granted at {}, in the past (now {})",
                            name(), r.who.vcpu, at, now()));
  }
  waiting_.erase(std::find(waiting_.begin(), waiting_.end(), &r));
  holders_.push_back(Holder{r.who, r.mode, at});
  const uint64_t wait = at - r.requested_at;
  const uint64_t spin = wait > r.uncontended ? wait - r.uncontended : 0;
  ++acquisitions_;
  ++(r.mode == LockMode::kShared ? read_acquisitions_ : write_acquisitions_);
  contended_ += spin > 0;
  spin_cycles_ += spin;
  spins_ += spin / params_.pause_cycles;
  acquire_cycles_ += wait;
  transfers_ += r.transfers;
  wait_cycles_.sample(wait);
  r.granted.notify(sc_core::sc_time::from_value(at - now()));
}

void SpinLock::arbitrate_at(uint64_t at) {
  const uint64_t t = now();
  // An earlier notification replaces a later pending one (SystemC event semantics).
  if (at <= t) {
    arbitrate_event_.notify(sc_core::SC_ZERO_TIME);
  } else {
    arbitrate_event_.notify(sc_core::sc_time::from_value(at - t));
  }
}

void SpinLock::run_arbiter() {
  arbitrate();
  // What is left waiting after a decision while someone holds the lock is spinning (on a free
  // lock, a TTAS request may still be waiting for its line: that is part of its acquire).
  if (!holders_.empty()) max_waiters_ = std::max<uint64_t>(max_waiters_, waiting_.size());
}

void SpinLock::register_stats(StatsGroup g) {
  g.counter("acquisitions", &acquisitions_, "acquisitions", "acquisitions of the lock");
  if (supports_shared()) {
    g.counter("read_acquisitions", &read_acquisitions_, "acquisitions",
              "shared (reader) acquisitions");
    g.counter("write_acquisitions", &write_acquisitions_, "acquisitions",
              "exclusive (writer) acquisitions");
  }
  g.counter("contended", &contended_, "acquisitions",
            "acquisitions that took longer than on a free lock (they spun)");
  g.counter("spins", &spins_, "iterations",
            "spin-loop iterations: each contended acquire's spin cycles / pause_cycles");
  g.counter("spin_cycles", &spin_cycles_, "cycles",
            "cycles spinning: acquire time beyond an uncontended acquire's cost");
  g.counter("acquire_cycles", &acquire_cycles_, "cycles",
            "cycles in acquire, uncontended cost and spinning");
  g.counter("transfers", &transfers_, "transfers",
            "cache-line transfers of the lock word charged to acquisitions");
  g.counter("held_cycles", &held_cycles_, "cycles", "total time the lock was held");
  g.counter("max_waiters", &max_waiters_, "requests", "most requests spinning at once");
  g.histogram("wait_cycles", &wait_cycles_, "cycles", "cycles of one acquire");
  g.histogram("hold_cycles", &hold_cycles_, "cycles", "cycles from one acquire to its release");
}

// --- TTAS ---------------------------------------------------------------------------------------

// A request to a free lock tries its RMW at once: it reaches the line after a transfer unless its
// PCPU wrote it last. A request to a held lock spins until the release (released()).
void TtasLock::requested(Request& r) {
  if (!holders_.empty()) return;
  const uint64_t transfer = transfer_to(r.who.pcpu);
  r.claim_at = now() + transfer;
  r.claim_transfer = transfer > 0;
}

// The releasing store invalidates the spinners' copies: each re-reads the line, then RMWs.
void TtasLock::released(const Holder&) {
  for (Request* r : waiting_) {
    const uint64_t transfer = transfer_to(r->who.pcpu);
    r->claim_at = now() + transfer;
    r->claim_transfer = transfer > 0;
  }
}

// The first RMW to reach the free line wins; the others see it taken and go on spinning. The
// decision waits until the earliest claim, because a later request from the PCPU that has the
// line can still get there first.
void TtasLock::arbitrate() {
  if (!holders_.empty() || waiting_.empty()) return;
  uint64_t first = kNever;
  for (const Request* r : waiting_) first = std::min(first, r->claim_at);
  if (first > now()) {
    arbitrate_at(first);
    return;
  }
  std::vector<Request*> racing;
  for (Request* r : waiting_) {
    if (r->claim_at <= now()) racing.push_back(r);
  }
  Request* winner = racing.front();
  if (racing.size() > 1) {
    if (params_.race_winner == RaceWinner::kRandom) {
      winner = racing[rng_.below(racing.size())];
    } else {
      for (Request* r : racing) {
        if (r->who.pcpu < winner->who.pcpu) winner = r;
      }
    }
  }
  winner->transfers += winner->claim_transfer;
  line_pcpu_ = winner->who.pcpu;
  grant(*winner, now() + params_.atomic_cycles);
}

// --- ticket ------------------------------------------------------------------------------------

void TicketLock::arbitrate() {
  // New arrivals take their tickets (lock; xadd) in queue order: time, then PCPU.
  for (Request* r : waiting_) {
    if (r->ticket != kNever) continue;
    const uint64_t transfer = transfer_to(r->who.pcpu);
    r->ticket = next_ticket_++;
    r->ready_at = now() + transfer + params_.atomic_cycles;
    r->transfers += transfer > 0;
    line_pcpu_ = r->who.pcpu;
  }
  if (!holders_.empty()) return;
  const auto next = std::find_if(waiting_.begin(), waiting_.end(),
                                 [&](const Request* r) { return r->ticket == serving_; });
  if (next == waiting_.end()) return;
  Request& r = **next;
  // It sees the head reach its ticket when the releasing store's line reaches it.
  const uint64_t handoff = released_by_pcpu_ == kNoPcpu || released_by_pcpu_ == r.who.pcpu
                               ? 0 : params_.transfer_cycles;
  uint64_t at = r.ready_at;
  if (released_at_ + handoff > at) {
    at = released_at_ + handoff;
    r.transfers += handoff > 0;
  }
  ++serving_;
  grant(r, at);
}

// --- reader/writer -----------------------------------------------------------------------------

void RwLock::enter(Request& r) {
  const uint64_t transfer = transfer_to(r.who.pcpu);
  r.transfers += transfer > 0;
  line_pcpu_ = r.who.pcpu;
  grant(r, now() + transfer + params_.atomic_cycles);
}

void RwLock::arbitrate() {
  const bool writer_holds = std::any_of(holders_.begin(), holders_.end(), [](const Holder& h) {
    return h.mode == LockMode::kExclusive;
  });
  if (writer_holds || waiting_.empty()) return;
  Request* first_writer = nullptr;
  std::vector<Request*> readers;
  for (Request* r : waiting_) {
    if (r->mode == LockMode::kShared) {
      readers.push_back(r);
    } else if (!first_writer) {
      first_writer = r;
    }
  }
  const bool readers_hold = !holders_.empty();
  const bool writer_first = params_.writer_preference ? first_writer != nullptr
                                                      : readers.empty();
  if (writer_first) {
    if (!readers_hold) enter(*first_writer);
    return;
  }
  for (Request* r : readers) enter(*r);
}

std::unique_ptr<SpinLock> make_spin_lock(sc_core::sc_module_name name, const LockParams& params,
                                         uint64_t seed) {
  switch (params.kind) {
    case LockKind::kTtas: return std::make_unique<TtasLock>(name, params, seed);
    case LockKind::kTicket: return std::make_unique<TicketLock>(name, params, seed);
    case LockKind::kRw: return std::make_unique<RwLock>(name, params, seed);
  }
  throw Error("make_spin_lock: unknown lock kind");
}

}  // namespace shadowsim
