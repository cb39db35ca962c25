// The address-space tags of TLB and paging-structure-cache entries (Intel SDM vol. 3A §4.10.1,
// vol. 3C §28.1): a VPID (16 bits; 0 is the host / VMX root) and a PCID (12 bits; 0 unless
// CR4.PCIDE). Both come from the current VCPU; a PCPU without the feature ignores the tag.
#pragma once

#include <cstdint>

namespace shadowsim {

struct TlbContext {
  uint16_t vpid = 0;
  uint16_t pcid = 0;  // 0..4095
};

constexpr uint16_t kMaxPcid = 0xfff;

}  // namespace shadowsim
