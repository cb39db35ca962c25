// Shadow entries as pure functions: Xen's _sh_propagate (multi.c) turning a guest entry into
// the shadow entry the hardware walks, the "magic" not-present L1 entry of the fast fault path
// (types.h SH_L1E_MAGIC, sh_l1e_gnp), the 4 KiB entries a splintered superpage (FL1 shadow) is
// built from, and the bound an auditor checks every shadow entry against.
#pragma once

#include <cstdint>

#include "paging/paging_types.h"

namespace shadowsim {

namespace sentry {
// Xen types.h: magic entries have these bits set; the guest-not-present one is all ones. Both
// set reserved physical-address bits, so any access faults with #PF(P|RSVD).
constexpr uint64_t kMagicMask = 0xffffffff00000001ULL;  // SH_L1E_MAGIC
constexpr uint64_t kGuestNotPresent = ~0ULL;            // sh_l1e_gnp()
// Frame bits of a shadow entry (PAE and 4-level formats, MAXPHYADDR up to 52).
constexpr uint64_t kAddressMask = 0x000ffffffffff000ULL;

inline bool is_magic(uint64_t e) { return (e & kMagicMask) == kMagicMask; }
inline bool present(uint64_t e) { return (e & pte::kPresent) && !is_magic(e); }
inline bool writable_mapping(uint64_t e) { return present(e) && (e & pte::kWritable); }
inline uint64_t frame(uint64_t e) { return (e & kAddressMask) >> kPageShift; }
}  // namespace sentry

// What _sh_propagate needs to know besides the guest L1 entry.
struct LeafContext {
  bool target_ram = true;          // the p2m has RAM at the entry's frame
  bool target_is_page_table = false;  // that frame is promoted: map it read-only
  bool guest_reserved = false;     // the guest entry (or its superpage PDE) has reserved bits
  bool guest_nx = false;           // the guest's XD bit is honoured (EFER.NXE, not 32-bit)
  bool magic = true;               // fast fault path on: not-present -> kGuestNotPresent
};

// Shadow L1 entry for a guest 4 KiB leaf in 64-bit layout (a 32-bit guest's entry
// zero-extended; an FL1 entry from splinter_superpage). Rules of research §1.5 items 3-4:
// not present -> magic (or 0); A=0 -> not present; D=0 -> read-only; target a page table ->
// read-only; P, R/W, U/S, PWT, PCD, A, D, PAT, G and (guest_nx) XD from the guest. The
// identity p2m makes the machine frame the guest frame.
uint64_t propagate_leaf(uint64_t gl1e, const LeafContext& ctx);

// Shadow entry above L1 (shadow L2 in any mode, L3/L4 in 4-on-4) pointing at the shadow
// `child_pa` (0: no shadow exists -> empty entry). A and D are always set; A=0 in the guest
// makes it not present (empty); a guest PSE entry with D=0 is read-only (Xen: "D bits exist in
// L1es and PSE L2es"). R/W, U/S and XD come from the guest; PS never does: a guest superpage
// is shadowed by an FL1 table.
uint64_t propagate_upper(uint64_t gentry, uint64_t child_pa, bool guest_pse, bool guest_reserved,
                         bool guest_nx);

// The 4 KiB guest entry for page `index` of a guest superpage (a 32-bit 4 MiB PDE with PSE-36
// bits, or a PAE/64-bit 2 MiB PDE): frame + index, the PDE's flags without PS, PAT moved from
// bit 12 to bit 7. Xen's guest_walk_tables synthesizes the same entry.
uint64_t splinter_superpage(PagingMode guest_mode, uint64_t gl2e, unsigned index);
// First guest frame of a superpage PDE (the FL1 shadow's key).
uint64_t superpage_first_gfn(PagingMode guest_mode, uint64_t gl2e);

// The most a shadow entry may grant, given the guest's current entry: the auditor asserts
// every shadow entry stays within it.
struct ShadowBound {
  bool may_be_present = false;
  uint64_t frame = 0;      // leaf: the frame it must map when present (identity p2m)
  bool writable = false;
  bool user = false;
  bool executable = false;  // XD clear allowed
};
// level 1: gentry is a 4 KiB leaf in 64-bit layout (as propagate_leaf takes it); level > 1:
// a non-leaf guest entry (frame not bounded: the target is a shadow, checked by its key).
ShadowBound shadow_bound(uint64_t gentry, int level, bool guest_nx, bool target_is_page_table,
                         bool guest_pse = false);
// Whether a shadow entry grants no more than the bound (magic and non-present entries grant
// nothing).
bool within_bound(uint64_t shadow_entry, int level, const ShadowBound& bound);

}  // namespace shadowsim
