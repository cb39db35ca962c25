// Vocabulary of the shadow page-table core: shadow modes, Xen's shadow types with their
// allocation orders, and the work record every step fills in for the timed layer.
// Source of the types and orders: Xen common.c shadow_order() (type_to_order table; commit
// 001e8c5cd8, the 2008 tree of X-LOCKED/X-UNLOCKED in the research notes).
#pragma once

#include <cstdint>

#include "paging/paging_types.h"

namespace shadowsim {

// Guest paging mode on shadow format: Xen's sh_paging_mode(3,2), (3,3), (4,4).
enum class ShadowMode : uint8_t {
  k2on3,  // 32-bit guest on PAE shadows
  k3on3,  // PAE guest on PAE shadows (guest L3 snapshotted at CR3 load, not shadowed)
  k4on4,  // 4-level guest on 4-level shadows
};
const char* to_string(ShadowMode mode);
// Throws Error for 5-level guests (Xen 2008 had no 5-level shadows).
ShadowMode shadow_mode_for(PagingMode guest_mode);
// Paging mode of the shadow tables the hardware walks: PAE or 4-level.
PagingMode shadow_paging_mode(ShadowMode mode);

// Xen's shadow types with Xen's numbers (they enter the hash key, so the numbers matter).
// l2h types exist in Xen for its own mappings in a PAE L2; an HVM guest on 64-bit Xen does not
// need them, so this model never creates them (the numbers are kept).
enum class ShadowType : uint8_t {
  kNone = 0,
  kL1_32 = 1,    // guest L1 of a 32-bit guest: order 1 (two PAE L1 pages)
  kFl1_32 = 2,   // splintered 4 MiB guest superpage: order 1
  kL2_32 = 3,    // guest L2 of a 32-bit guest: order 2 (four PAE L2 pages)
  kL1Pae = 4,
  kFl1Pae = 5,   // splintered 2 MiB PAE superpage
  kL2Pae = 6,
  kL2hPae = 7,   // unused here
  kL1_64 = 8,
  kFl1_64 = 9,   // splintered 2 MiB 64-bit superpage
  kL2_64 = 10,
  kL2h_64 = 11,  // unused here
  kL3_64 = 12,
  kL4_64 = 13,
};
constexpr int kShadowTypeCount = 14;
const char* to_string(ShadowType type);

// Allocation order (pages = 1 << order), Xen common.c type_to_order.
int shadow_order(ShadowType type);
// Level of the entries a shadow of this type holds (1 for L1 and FL1 shadows).
int shadow_level(ShadowType type);
bool is_l1_type(ShadowType type);   // L1 or FL1: holds leaf entries
bool is_fl1_type(ShadowType type);
// Top-level types are pinnable (Xen sh_type_is_pinnable for HVM guests): l2_32, l2_pae, l4_64.
bool is_top_type(ShadowType type);
// Bit of a type in a frame's shadow_flags (Xen SHF_*): 1 << type.
constexpr uint16_t shadow_flag(ShadowType type) {
  return static_cast<uint16_t>(1u << static_cast<unsigned>(type));
}

// The shadow types one mode uses, by guest level (index 1..4), and its FL1 type.
ShadowType l1_type(ShadowMode mode);
ShadowType fl1_type(ShadowMode mode);
ShadowType table_type(ShadowMode mode, int guest_level);  // type shadowing a guest table

// Which heuristic of sh_remove_write_access found the writable mapping (Xen perf counters
// shadow_writeable_h_1..6 and shadow_writeable_bf). kNone: nothing to remove (early exit).
enum class WriteHeuristic : uint8_t {
  kNone = 0,
  kH1 = 1,  // 32-bit Windows 2003 linear map
  kH2 = 2,  // PAE Windows 2003 linear map
  kH3 = 3,  // 64-bit Windows 2003 linear map
  kH4 = 4,  // Linux lowmem / direct map (and Solaris kpm in Xen HEAD)
  kH5 = 5,  // the shadow L1 of the last brute-force hit (HIGHPTE kmap slots)
  kH6 = 6,  // FreeBSD maps (Xen HEAD only)
  kBruteForce = 7,
};

// The work one step did, in units the timed layer turns into cycles. Steps add to it, so one
// record can collect a whole fault. Nothing here is time.
struct ShadowWork {
  uint32_t hash_lookups = 0;
  uint32_t hash_chain_steps = 0;       // shadows compared while searching chains
  uint32_t hash_inserts = 0;
  uint32_t hash_deletes = 0;
  uint32_t p2m_lookups = 0;            // gfn -> mfn (identity here, still charged)
  uint32_t guest_entries_read = 0;     // guest page-table entries read (walk, check, prefetch)
  uint32_t guest_entries_written = 0;  // A/D cmpxchgs that succeeded
  uint32_t shadow_entries_read = 0;
  uint32_t shadow_entries_written = 0;
  uint32_t pages_allocated = 0;        // 4 KiB shadow pages
  uint32_t pages_freed = 0;
  uint32_t shadows_created = 0;
  uint32_t shadows_destroyed = 0;
  uint32_t promotions = 0;             // guest frames that became page tables
  uint32_t demotions = 0;
  uint32_t heuristic_probes = 0;       // guesses tried by sh_guess_wrmap (and h5 scans)
  WriteHeuristic heuristic_hit = WriteHeuristic::kNone;  // last removal's successful method
  uint32_t bf_shadows_scanned = 0;     // L1/FL1 shadows visited by brute force
  uint32_t bf_entries_scanned = 0;     // their entries read
  uint32_t write_mappings_removed = 0;
  uint32_t prefetched = 0;             // shadow L1 entries filled by prefetch
  uint32_t validations = 0;            // guest entries re-validated after an emulated write
  uint32_t unhooked_entries = 0;       // entries cleared by reclaim stage 2 or unshadowing
  uint32_t unpins = 0;
  bool flush_needed = false;           // a shadow change needs a TLB flush of the domain's PCPUs
  bool flush_all_pcpus = false;        // reclaim stage 2 ran: flush every PCPU of the domain
  bool reclaimed = false;              // prealloc had to free shadows

  void add(const ShadowWork& other);
};

}  // namespace shadowsim
