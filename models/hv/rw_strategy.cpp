// `unlocked-rw`: a hypothetical design after KVM's TDP MMU (research §4.5), where faults that
// only fill an L1 entry run in parallel under the read side of a reader/writer shadow lock and
// install that entry with compare-and-swap; a fault that must create or promote shadows (or
// remove write access) drops to the write lock and proceeds as `unlocked`. Emulated writes and
// CR3 writes always take the write lock. Xen never did this; KVM's own shadow MMU still takes
// the write lock. Needs hypervisor.lock.kind = "rw".
#include <fmt/format.h>

#include "common/error.h"
#include "hv/hypervisor.h"
#include "hv/walk_strategy.h"

namespace shadowsim {
namespace {

class RwStrategy : public WalkStrategy {
 public:
  StrategyKind kind() const override { return StrategyKind::kUnlockedRw; }

  WalkVerdict walk(Hypervisor& hv, ShadowFault& f) override {
    const uint64_t version = hv.read_version(f);
    hv.guest_walk(f);
    if (!f.walk.ok()) return WalkVerdict::kInject;
    hv.record_walk(f);
    hv.lock(f.cpu, LockMode::kShared);
    if (hv.can_fix_shared(f)) {
      // Readers do not exclude each other's fixes, but they do exclude writers: the version
      // (emulated writes and promotions, under the write lock) still tells whether the walk
      // may be stale.
      if (hv.read_version(f) == version || hv.check_walk(f, version)) {
        return WalkVerdict::kProceedShared;
      }
      hv.unlock(f.cpu);
      return WalkVerdict::kRetry;
    }
    hv.unlock(f.cpu);
    hv.lock(f.cpu);  // structural work: the write lock, then as `unlocked`
    hv.remove_write_accesses(f);
    if (hv.read_version(f) == version || hv.check_walk(f, version)) {
      return WalkVerdict::kProceed;
    }
    hv.unlock(f.cpu);
    return WalkVerdict::kRetry;
  }
};

}  // namespace

std::unique_ptr<WalkStrategy> make_rw_strategy() { return std::make_unique<RwStrategy>(); }

}  // namespace shadowsim
