// The walk strategies of the shadow fault path: how the guest walk, the shadow lock, write-access
// removal and the re-check are ordered (research §2 A/B/C and §4.1; docs/hypervisor.md). Each
// strategy is one small class in its own file; the Hypervisor calls walk() after the lock-free
// fast paths and runs the common tail (create, propagate, prefetch, emulate) when it returns
// kProceed. Adding a strategy is one file, one enum value and one config name
// (hv/hv_params.h, make_walk_strategy below).
#pragma once

#include <cstdint>
#include <memory>

#include "hv/hv_params.h"
#include "shadow/shadow_paging.h"

namespace shadowsim {

class Hypervisor;
class HvCpu;

// One shadow fault in progress.
struct ShadowFault {
  HvCpu& cpu;
  unsigned vcpu;
  uint64_t va;
  Access access;
  GuestWalk walk;  // filled by the strategy
};

enum class WalkVerdict : uint8_t {
  kProceed,  // the walk is good and the shadow lock is held: run the common tail
  kProceedShared,  // the walk is good, the lock is held shared and every shadow the fault
                   // needs exists: install the L1 entry with compare-and-swap
  kInject,   // a real guest fault (walk.result.error_code); the lock is not held
  kRetry,    // the walk went stale: return to the guest, which faults again; lock not held
};

class WalkStrategy {
 public:
  virtual ~WalkStrategy() = default;
  virtual StrategyKind kind() const = 0;
  virtual WalkVerdict walk(Hypervisor& hv, ShadowFault& fault) = 0;
  // Whether the design has Xen's version counter (gtable_dirty_version, Feb 2008 on): Xen 3.2's
  // locked path and KVM had none, so their emulated writes bump nothing.
  virtual bool uses_version() const { return true; }
};

std::unique_ptr<WalkStrategy> make_walk_strategy(StrategyKind kind, unsigned vcpus);

// The strategies (one file each).
std::unique_ptr<WalkStrategy> make_locked_strategy();
// unlocked (refault on a mismatch), unlocked-rewalk, unlocked-nocheck.
std::unique_ptr<WalkStrategy> make_unlocked_strategy(StrategyKind kind);
std::unique_ptr<WalkStrategy> make_compare_strategy();
std::unique_ptr<WalkStrategy> make_rw_strategy();

}  // namespace shadowsim
