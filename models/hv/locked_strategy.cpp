// `locked`: Xen 3.2's fault path (research §2 A). The shadow lock is taken before the guest
// walk, so nothing can change the guest's tables under the walk and no re-check is needed; the
// walk removes write access from each table it passes (below the top level) and flushes the
// domain's TLBs after each removal: up to three flushes per walk.
#include "hv/hypervisor.h"
#include "hv/walk_strategy.h"

namespace shadowsim {
namespace {

class LockedStrategy : public WalkStrategy {
 public:
  StrategyKind kind() const override { return StrategyKind::kLocked; }
  bool uses_version() const override { return false; }

  WalkVerdict walk(Hypervisor& hv, ShadowFault& f) override {
    hv.lock(f.cpu);           // A4
    hv.protect_and_walk(f);   // A5: each table protected (and flushed) before it is read
    if (!f.walk.ok()) {
      hv.unlock(f.cpu);
      return WalkVerdict::kInject;
    }
    hv.record_walk(f);  // A7-A8
    return WalkVerdict::kProceed;
  }
};

}  // namespace

std::unique_ptr<WalkStrategy> make_locked_strategy() { return std::make_unique<LockedStrategy>(); }

}  // namespace shadowsim
