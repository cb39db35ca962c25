// The race detector for shadow-paging designs (issue 5 §8; research §7): checks that what the
// hardware can use never allows more than the guest's tables allow now. Plain C++ over the
// shadow core; the Hypervisor calls it after every committed shadow change when
// `hypervisor.audit` is on, and feeds it the steps each VCPU took, so a violation is reported
// with the interleaving that led to it.
//
// Checks, for each shadow entry of the frames given (every level, L1s and FL1s included):
//  - the entry grants no more than the guest entry it mirrors, read from guest memory *now*
//    (shadow_bound / within_bound: present only with guest P and A; the leaf maps the guest's
//    frame; writable only with guest R/W and D and an unpromoted target; user only with U/S;
//    executable only without XD);
//  - an upper entry links the shadow of the frame the guest entry points at;
// and, for each frame, that a promoted frame (a shadowed page table) has no writable mapping.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace shadowsim {

class ShadowPaging;

class ShadowAuditor {
 public:
  ShadowAuditor(const ShadowPaging& shadows, unsigned history);

  // One step of one VCPU, for the report.
  void note(uint64_t time, int vcpu, std::string what);
  // Throws Error naming the first violation among the frames' shadows, `when` it was found and
  // the last steps of every VCPU.
  void check_frames(const std::vector<uint64_t>& gfns, const std::string& when) const;
  // Every shadowed frame.
  void check_all(const std::string& when) const;

  uint64_t entries_checked() const { return entries_checked_; }

 private:
  std::string violation(uint64_t gfn) const;  // "" when the frame's shadows are fine

  const ShadowPaging& shadows_;
  unsigned history_;
  std::deque<std::string> steps_;
  mutable uint64_t entries_checked_ = 0;
};

}  // namespace shadowsim
