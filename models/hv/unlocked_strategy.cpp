// `unlocked` (Xen commit 948397ecb8, Feb 2008; research §2 B), `unlocked-rewalk` (June 2008,
// §2 C) and the unsafe `unlocked-nocheck`. The guest walk runs without the lock after reading
// the version counter; under the lock the walk's tables lose their writable mappings in one
// batch (a removal bumps the version and flushes once), and the walk is re-checked only if the
// version moved since it was read -- which includes this VCPU's own bump (research §3.2).
#include <fmt/format.h>

#include "common/error.h"
#include "hv/hypervisor.h"
#include "hv/walk_strategy.h"

namespace shadowsim {
namespace {

class UnlockedStrategy : public WalkStrategy {
 public:
  explicit UnlockedStrategy(StrategyKind kind) : kind_(kind) {}
  StrategyKind kind() const override { return kind_; }

  WalkVerdict walk(Hypervisor& hv, ShadowFault& f) override {
    // A walk keeps going stale only while other VCPUs keep writing its tables; a thousand
    // re-walks in a row means the model is stuck, not the guest.
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const uint64_t version = hv.read_version(f);  // B4: version, rmb, walk
      hv.guest_walk(f);
      if (!f.walk.ok()) return WalkVerdict::kInject;
      hv.record_walk(f);  // B5-B7 before the lock
      hv.lock(f.cpu);     // B8
      hv.remove_write_accesses(f);  // B9: bump + one flush if anything was removed
      if (kind_ == StrategyKind::kUnlockedNocheck) return WalkVerdict::kProceed;
      // B10: one atomic read decides whether the walk must be compared at all.
      if (hv.read_version(f) == version || hv.check_walk(f, version)) {
        return WalkVerdict::kProceed;
      }
      hv.unlock(f.cpu);  // B11: inconsistent
      if (kind_ != StrategyKind::kUnlockedRewalk) return WalkVerdict::kRetry;
      hv.count_rewalk();
    }
    throw Error(fmt::format("vcpu{}: the guest walk of {:#x} went stale 1000 times in a row",
                            f.vcpu, f.va));
  }

 private:
  StrategyKind kind_;
};

}  // namespace

std::unique_ptr<WalkStrategy> make_unlocked_strategy(StrategyKind kind) {
  return std::make_unique<UnlockedStrategy>(kind);
}

}  // namespace shadowsim
