// `unlocked-compare`: KVM's shadow MMU from 2008 on (research §4.1). The guest walk runs
// without the lock; under the lock the walked tables are write-protected and then every level's
// entry is re-read and compared, unconditionally (KVM chose re-reads over a generation counter:
// "the pte will be in the processor cache"). Any difference returns to the guest to fault again
// (RET_PF_RETRY). There is no version counter, so write-protection does not bump one.
#include "hv/hypervisor.h"
#include "hv/walk_strategy.h"

namespace shadowsim {
namespace {

class CompareStrategy : public WalkStrategy {
 public:
  StrategyKind kind() const override { return StrategyKind::kUnlockedCompare; }
  bool uses_version() const override { return false; }

  WalkVerdict walk(Hypervisor& hv, ShadowFault& f) override {
    hv.guest_walk(f);
    if (!f.walk.ok()) return WalkVerdict::kInject;
    hv.record_walk(f);
    hv.lock(f.cpu);
    hv.remove_write_accesses(f);
    if (hv.check_walk(f, ~0ULL)) return WalkVerdict::kProceed;
    hv.unlock(f.cpu);
    return WalkVerdict::kRetry;
  }
};

}  // namespace

std::unique_ptr<WalkStrategy> make_compare_strategy() {
  return std::make_unique<CompareStrategy>();
}

}  // namespace shadowsim
