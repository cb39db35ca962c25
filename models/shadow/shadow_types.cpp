#include "shadow/shadow_types.h"

#include <fmt/format.h>

#include "common/error.h"

namespace shadowsim {

const char* to_string(ShadowMode mode) {
  switch (mode) {
    case ShadowMode::k2on3: return "2-on-3";
    case ShadowMode::k3on3: return "3-on-3";
    case ShadowMode::k4on4: return "4-on-4";
  }
  return "?";
}

ShadowMode shadow_mode_for(PagingMode guest_mode) {
  switch (guest_mode) {
    case PagingMode::k32Bit: return ShadowMode::k2on3;
    case PagingMode::kPae: return ShadowMode::k3on3;
    case PagingMode::k4Level: return ShadowMode::k4on4;
    case PagingMode::k5Level: break;
  }
  throw Error(fmt::format("shadow paging of a {} guest: Xen (2008) shadows 32bit, pae and "
                          "4level guests only", to_string(guest_mode)));
}

PagingMode shadow_paging_mode(ShadowMode mode) {
  return mode == ShadowMode::k4on4 ? PagingMode::k4Level : PagingMode::kPae;
}

const char* to_string(ShadowType type) {
  static const char* const names[kShadowTypeCount] = {
      "none",   "l1_32",  "fl1_32", "l2_32",  "l1_pae", "fl1_pae", "l2_pae",
      "l2h_pae", "l1_64", "fl1_64", "l2_64",  "l2h_64", "l3_64",   "l4_64"};
  const auto i = static_cast<unsigned>(type);
  return i < kShadowTypeCount ? names[i] : "?";
}

int shadow_order(ShadowType type) {
  switch (type) {
    case ShadowType::kL1_32:
    case ShadowType::kFl1_32: return 1;
    case ShadowType::kL2_32: return 2;
    default: return 0;
  }
}

int shadow_level(ShadowType type) {
  switch (type) {
    case ShadowType::kL1_32: case ShadowType::kFl1_32: case ShadowType::kL1Pae:
    case ShadowType::kFl1Pae: case ShadowType::kL1_64: case ShadowType::kFl1_64: return 1;
    case ShadowType::kL2_32: case ShadowType::kL2Pae: case ShadowType::kL2hPae:
    case ShadowType::kL2_64: case ShadowType::kL2h_64: return 2;
    case ShadowType::kL3_64: return 3;
    case ShadowType::kL4_64: return 4;
    case ShadowType::kNone: break;
  }
  return 0;
}

bool is_l1_type(ShadowType type) { return shadow_level(type) == 1; }
bool is_fl1_type(ShadowType type) {
  return type == ShadowType::kFl1_32 || type == ShadowType::kFl1Pae ||
         type == ShadowType::kFl1_64;
}
bool is_top_type(ShadowType type) {
  return type == ShadowType::kL2_32 || type == ShadowType::kL2Pae || type == ShadowType::kL4_64;
}

ShadowType l1_type(ShadowMode mode) {
  switch (mode) {
    case ShadowMode::k2on3: return ShadowType::kL1_32;
    case ShadowMode::k3on3: return ShadowType::kL1Pae;
    case ShadowMode::k4on4: return ShadowType::kL1_64;
  }
  return ShadowType::kNone;
}

ShadowType fl1_type(ShadowMode mode) {
  switch (mode) {
    case ShadowMode::k2on3: return ShadowType::kFl1_32;
    case ShadowMode::k3on3: return ShadowType::kFl1Pae;
    case ShadowMode::k4on4: return ShadowType::kFl1_64;
  }
  return ShadowType::kNone;
}

ShadowType table_type(ShadowMode mode, int guest_level) {
  switch (mode) {
    case ShadowMode::k2on3:
      return guest_level == 1 ? ShadowType::kL1_32
             : guest_level == 2 ? ShadowType::kL2_32 : ShadowType::kNone;
    case ShadowMode::k3on3:
      return guest_level == 1 ? ShadowType::kL1Pae
             : guest_level == 2 ? ShadowType::kL2Pae : ShadowType::kNone;
    case ShadowMode::k4on4:
      switch (guest_level) {
        case 1: return ShadowType::kL1_64;
        case 2: return ShadowType::kL2_64;
        case 3: return ShadowType::kL3_64;
        case 4: return ShadowType::kL4_64;
        default: return ShadowType::kNone;
      }
  }
  return ShadowType::kNone;
}

void ShadowWork::add(const ShadowWork& o) {
  hash_lookups += o.hash_lookups;
  hash_chain_steps += o.hash_chain_steps;
  hash_inserts += o.hash_inserts;
  hash_deletes += o.hash_deletes;
  p2m_lookups += o.p2m_lookups;
  guest_entries_read += o.guest_entries_read;
  guest_entries_written += o.guest_entries_written;
  shadow_entries_read += o.shadow_entries_read;
  shadow_entries_written += o.shadow_entries_written;
  pages_allocated += o.pages_allocated;
  pages_freed += o.pages_freed;
  shadows_created += o.shadows_created;
  shadows_destroyed += o.shadows_destroyed;
  promotions += o.promotions;
  demotions += o.demotions;
  heuristic_probes += o.heuristic_probes;
  if (o.heuristic_hit != WriteHeuristic::kNone) heuristic_hit = o.heuristic_hit;
  bf_shadows_scanned += o.bf_shadows_scanned;
  bf_entries_scanned += o.bf_entries_scanned;
  write_mappings_removed += o.write_mappings_removed;
  prefetched += o.prefetched;
  validations += o.validations;
  unhooked_entries += o.unhooked_entries;
  unpins += o.unpins;
  flush_needed = flush_needed || o.flush_needed;
  flush_all_pcpus = flush_all_pcpus || o.flush_all_pcpus;
  reclaimed = reclaimed || o.reclaimed;
}

}  // namespace shadowsim
