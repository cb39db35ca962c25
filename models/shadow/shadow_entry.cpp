#include "shadow/shadow_entry.h"

namespace shadowsim {

uint64_t propagate_leaf(uint64_t gl1e, const LeafContext& ctx) {
  if (!(gl1e & pte::kPresent)) return ctx.magic ? sentry::kGuestNotPresent : 0;
  // Bad frame or reserved bits: an empty entry sends the access to the slow path, whose guest
  // walk reports the guest's own fault (or the bad-gfn bail).
  if (!ctx.target_ram || ctx.guest_reserved) return 0;
  // Xen's pass_thru_flags are P|RW|U|A (+NX); the caching bits stand for what Xen's
  // get_pat_flags derives from the guest's; G never passes: the guest's CR3 writes reload the
  // shadow root, and its global kernel mappings go with everything else.
  constexpr uint64_t kPassThrough = pte::kPresent | pte::kWritable | pte::kUser | pte::kPwt |
                                    pte::kPcd | pte::kAccessed | pte::kDirty | pte::kPat4K;
  uint64_t flags = gl1e & kPassThrough;
  if (ctx.guest_nx) flags |= gl1e & pte::kExecuteDisable;
  if (!(gl1e & pte::kAccessed)) flags &= ~pte::kPresent;  // A emulation: fault on first use
  if (!(gl1e & pte::kDirty)) flags &= ~pte::kWritable;    // D emulation: fault on first write
  if (ctx.target_is_page_table) flags &= ~pte::kWritable;  // protect guest page tables
  if (!(flags & pte::kPresent)) return 0;
  return (gl1e & sentry::kAddressMask) | flags;
}

uint64_t propagate_upper(uint64_t gentry, uint64_t child_pa, bool guest_pse, bool guest_reserved,
                         bool guest_nx) {
  if (!(gentry & pte::kPresent) || !(gentry & pte::kAccessed) || guest_reserved ||
      child_pa == 0) {
    return 0;
  }
  uint64_t flags = pte::kPresent | pte::kAccessed | pte::kDirty |
                   (gentry & (pte::kWritable | pte::kUser));
  if (guest_nx) flags |= gentry & pte::kExecuteDisable;
  if (guest_pse && !(gentry & pte::kDirty)) flags &= ~pte::kWritable;
  return (child_pa & sentry::kAddressMask) | flags;
}

uint64_t superpage_first_gfn(PagingMode guest_mode, uint64_t gl2e) {
  if (guest_mode == PagingMode::k32Bit) {
    const uint64_t pa = (gl2e & 0xffc00000ULL) | (((gl2e >> 13) & 0xff) << 32);  // PSE-36
    return pa >> kPageShift;
  }
  return (gl2e & sentry::kAddressMask & ~((1ULL << 21) - 1)) >> kPageShift;
}

uint64_t splinter_superpage(PagingMode guest_mode, uint64_t gl2e, unsigned index) {
  const uint64_t gfn = superpage_first_gfn(guest_mode, gl2e) + index;
  uint64_t flags = gl2e & 0xfffULL & ~pte::kPageSize;
  if (gl2e & pte::kPatLarge) flags |= pte::kPat4K;
  if (guest_mode != PagingMode::k32Bit) flags |= gl2e & pte::kExecuteDisable;
  return (gfn << kPageShift) | flags;
}

ShadowBound shadow_bound(uint64_t gentry, int level, bool guest_nx, bool target_is_page_table,
                         bool guest_pse) {
  ShadowBound b;
  b.may_be_present = (gentry & pte::kPresent) && (gentry & pte::kAccessed);
  if (!b.may_be_present) return b;
  b.frame = level == 1 ? (gentry & sentry::kAddressMask) >> kPageShift : 0;
  b.writable = (gentry & pte::kWritable) != 0;
  if ((level == 1 || guest_pse) && !(gentry & pte::kDirty)) b.writable = false;
  if (level == 1 && target_is_page_table) b.writable = false;
  b.user = (gentry & pte::kUser) != 0;
  b.executable = !(guest_nx && (gentry & pte::kExecuteDisable));
  return b;
}

bool within_bound(uint64_t e, int level, const ShadowBound& b) {
  if (!sentry::present(e)) return true;
  if (!b.may_be_present) return false;
  if (level == 1 && sentry::frame(e) != b.frame) return false;
  if ((e & pte::kWritable) && !b.writable) return false;
  if ((e & pte::kUser) && !b.user) return false;
  if (!(e & pte::kExecuteDisable) && !b.executable) return false;
  return true;
}

}  // namespace shadowsim
