#include "hv/shadow_auditor.h"

#include <set>

#include <fmt/format.h>

#include "common/error.h"
#include "shadow/shadow_entry.h"
#include "shadow/shadow_paging.h"

namespace shadowsim {

ShadowAuditor::ShadowAuditor(const ShadowPaging& shadows, unsigned history)
    : shadows_(shadows), history_(history) {}

void ShadowAuditor::note(uint64_t time, int vcpu, std::string what) {
  steps_.push_back(fmt::format("  t={} vcpu{}: {}", time, vcpu, what));
  if (steps_.size() > history_) steps_.pop_front();
}

std::string ShadowAuditor::violation(uint64_t gfn) const {
  const bool nx = shadows_.guest_nx(0);
  std::string found;
  shadows_.for_each_shadow_entry_of(gfn, [&](const ShadowEntryView& v) {
    ++entries_checked_;
    if (!found.empty()) return;
    const uint64_t target = (v.gentry & sentry::kAddressMask) >> kPageShift;
    const bool target_is_table = v.level == 1 && shadows_.frame_state(target).promoted();
    const ShadowBound bound = shadow_bound(v.gentry, v.level, nx, target_is_table, v.guest_pse);
    if (!within_bound(v.sentry, v.level, bound)) {
      found = fmt::format("{} shadow of guest frame {:#x}: entry at machine {:#x} is {:#x}, but "
                          "the guest entry{} is now {:#x}: the shadow grants more than the guest",
                          to_string(v.type), gfn, v.sentry_pa, v.sentry,
                          v.gentry_pa ? fmt::format(" at {:#x}", v.gentry_pa) : "", v.gentry);
    } else if (v.level > 1 && sentry::present(v.sentry) && !v.guest_pse &&
               v.child_gfn != target) {
      found = fmt::format("{} shadow of guest frame {:#x}: entry at machine {:#x} links the "
                          "shadow of frame {:#x}, but the guest entry now points at {:#x}",
                          to_string(v.type), gfn, v.sentry_pa, v.child_gfn, target);
    }
  });
  if (found.empty()) {
    const FrameState fs = shadows_.frame_state(gfn);
    if (fs.promoted() && fs.writable_count != 0) {
      found = fmt::format("guest frame {:#x} is a shadowed page table but keeps {} writable "
                          "shadow mapping(s)", gfn, fs.writable_count);
    }
  }
  return found;
}

void ShadowAuditor::check_frames(const std::vector<uint64_t>& gfns,
                                 const std::string& when) const {
  for (uint64_t gfn : gfns) {
    const std::string v = violation(gfn);
    if (v.empty()) continue;
    std::string history;
    for (const std::string& s : steps_) history += s + "\n";
    throw Error(fmt::format("shadow audit: {} ({}).\nLast hypervisor steps, oldest first:\n{}",
                            v, when, history));
  }
}

void ShadowAuditor::check_all(const std::string& when) const {
  std::set<uint64_t> frames;
  shadows_.for_each_shadow([&](const ShadowInfo& s) { frames.insert(s.gfn); });
  check_frames(std::vector<uint64_t>(frames.begin(), frames.end()), when);
}

}  // namespace shadowsim
