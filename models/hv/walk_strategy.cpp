#include "hv/walk_strategy.h"

#include "common/error.h"

namespace shadowsim {

// `auto-up` is not a class of its own: it is `locked` for a uniprocessor guest and `unlocked`
// otherwise, decided once (the RFC's open question about UP guests).
std::unique_ptr<WalkStrategy> make_walk_strategy(StrategyKind kind, unsigned vcpus) {
  switch (kind) {
    case StrategyKind::kLocked: return make_locked_strategy();
    case StrategyKind::kAutoUp:
      return vcpus == 1 ? make_locked_strategy() : make_unlocked_strategy(StrategyKind::kUnlocked);
    case StrategyKind::kUnlocked:
    case StrategyKind::kUnlockedRewalk:
    case StrategyKind::kUnlockedNocheck: return make_unlocked_strategy(kind);
    case StrategyKind::kUnlockedCompare: return make_compare_strategy();
    case StrategyKind::kUnlockedRw: return make_rw_strategy();
  }
  throw Error("hypervisor.strategy: unknown strategy");
}

}  // namespace shadowsim
