#include "nested/host_paging.h"

#include <fmt/format.h>

#include "common/error.h"
#include "paging/guest_memory.h"

namespace shadowsim {
namespace {

// Bits hi..lo inclusive; empty when hi < lo.
constexpr uint64_t bits(int hi, int lo) {
  if (hi < lo) return 0;
  const uint64_t upper = hi >= 63 ? ~0ULL : ((1ULL << (hi + 1)) - 1);
  return upper & ~((1ULL << lo) - 1);
}

constexpr int host_shift(int level) { return 12 + 9 * (level - 1); }

PageSize size_of_level(int level) {
  return level == 1 ? PageSize::k4K : level == 2 ? PageSize::k2M : PageSize::k1G;
}

// NPT rights in R/W/X form: every NPT access is a user access (APM vol. 2 §15.25.5).
HostRwx npt_rwx(const Rights& r) {
  if (!r.user) return 0;
  return static_cast<HostRwx>(ept::kRead | (r.writable ? ept::kWrite : 0) |
                              (r.execute_disable ? 0 : ept::kExecute));
}

// The walker refuses non-canonical addresses; a gPA is not a linear address, so bit 47 is copied
// upwards: the level indices (bits 47:12) and the page offset are unchanged.
uint64_t canonical(uint64_t gpa) {
  return static_cast<uint64_t>(static_cast<int64_t>(gpa << 16) >> 16);
}

}  // namespace

const char* to_string(HostPagingKind kind) {
  return kind == HostPagingKind::kEpt ? "ept" : "npt";
}

const char* to_string(HostOutcome outcome) {
  switch (outcome) {
    case HostOutcome::kOk: return "ok";
    case HostOutcome::kViolation: return "violation";
    case HostOutcome::kMisconfig: return "misconfig";
  }
  return "?";
}

void HostPagingParams::validate() const {
  if (maxphyaddr < 32 || maxphyaddr > 52) {
    throw ParamError("maxphyaddr", fmt::format("{}: expected 32..52 bits", maxphyaddr));
  }
  if (kind == HostPagingKind::kNpt && ept_ad) {
    throw ParamError("ept_ad", "EPT A/D flags need kind ept (NPT always has A/D)");
  }
}

HostPageTables::HostPageTables(const GuestMemory& memory, const HostPagingParams& params,
                               uint64_t root_hpa)
    : memory_(&memory), params_(params), root_(root_hpa) {
  params_.validate();
  const int m = static_cast<int>(params_.maxphyaddr);
  address_mask_ = bits(m - 1, 12);
  if (root_hpa & ~address_mask_) {
    throw Error(fmt::format("host root {:#x}: expected a 4 KiB-aligned address below 2^{}",
                            root_hpa, m));
  }
  if (params_.kind == HostPagingKind::kNpt) {
    PagingControls controls;
    controls.efer_nxe = params_.npt_nxe;
    controls.cr4_smep = controls.cr4_smap = false;  // user accesses only: never apply
    npt_state_.emplace(PagingMode::k4Level, controls,
                       CpuFeatures{params_.maxphyaddr, params_.page_1gb});
    npt_state_->load_cr3(root_hpa, memory);
    return;
  }
  // SDM vol. 3C tables 28-1..28-6: bits 51:M everywhere; PML4E 7:3; a PDPTE or PDE that
  // references a table 6:3 (bit 7 selects a page); a 1 GiB leaf 29:12, a 2 MiB leaf 20:12.
  const uint64_t high = bits(51, m);
  ept_reserved_[1][0] = high;
  ept_reserved_[2][0] = high | bits(6, 3);
  ept_reserved_[2][1] = high | bits(20, 12);
  ept_reserved_[3][0] = high | bits(6, 3) | (params_.page_1gb ? 0 : ept::kLargePage);
  ept_reserved_[3][1] = high | bits(29, 12);
  ept_reserved_[4][0] = high | bits(7, 3);
  ept_large_ok_[2] = true;
  ept_large_ok_[3] = params_.page_1gb;
}

HostTranslation HostPageTables::translate_from(uint64_t gpa, AccessKind kind,
                                               const HostStart& start) const {
  if (gpa >= kGpaLimit) {
    throw Error(fmt::format("guest-physical address {:#x}: 4-level host tables translate "
                            "addresses below 2^48",
                            gpa));
  }
  if (start.level < 1 || start.level > kLevels) {
    throw Error(fmt::format("host walk of {:#x} started at level {}: expected 1..4", gpa,
                            start.level));
  }
  return params_.kind == HostPagingKind::kEpt ? ept_walk(gpa, kind, start)
                                              : npt_walk(gpa, kind, start);
}

HostTranslation HostPageTables::ept_walk(uint64_t gpa, AccessKind kind,
                                         const HostStart& start) const {
  HostTranslation t;
  HostRwx allowed = start.rwx;
  uint64_t table = start.table_hpa;
  auto stop = [&t](HostOutcome outcome, int level) -> HostTranslation& {
    t.outcome = outcome;
    t.stop_level = static_cast<int8_t>(level);
    return t;
  };
  for (int level = start.level; level >= 1; --level) {
    const uint64_t entry_hpa = table + ((gpa >> host_shift(level)) & 511) * 8;
    const uint64_t e = memory_->read64(entry_hpa);
    t.refs[t.ref_count++] = HostRef{entry_hpa, e, static_cast<int8_t>(level)};
    const HostRwx rwx = static_cast<HostRwx>(e & ept::kRwx);
    if (rwx == 0) {  // not present (§28.2.2): a violation, the entry grants nothing
      t.rwx = 0;
      return stop(HostOutcome::kViolation, level);
    }
    // §28.2.3.1: write-only and write/execute are misconfigured; execute-only needs support.
    if ((rwx & (ept::kRead | ept::kWrite)) == ept::kWrite ||
        (rwx == ept::kExecute && !params_.ept_execute_only)) {
      return stop(HostOutcome::kMisconfig, level);
    }
    const bool large = level > 1 && (e & ept::kLargePage) && ept_large_ok_[level];
    if (e & ept_reserved_[level][large]) return stop(HostOutcome::kMisconfig, level);
    allowed &= rwx;
    if (level > 1 && !large) {
      table = e & address_mask_;
      continue;
    }
    // Leaf.
    const unsigned memory_type = (e >> ept::kMemoryTypeShift) & 7;
    if (ept::memory_type_reserved(memory_type)) return stop(HostOutcome::kMisconfig, level);
    t.rwx = allowed;
    if (!allows(allowed, kind)) return stop(HostOutcome::kViolation, level);
    const uint64_t size = 1ULL << host_shift(level);
    t.stop_level = static_cast<int8_t>(level);
    t.size = size_of_level(level);
    t.page_hpa = e & address_mask_ & ~(size - 1);
    t.hpa = t.page_hpa | (gpa & (size - 1));
    t.memory_type = static_cast<uint8_t>(memory_type);
    t.ignore_pat = (e & ept::kIgnorePat) != 0;
    const bool write = kind == AccessKind::kWrite;
    t.dirty = !params_.ept_ad || write || (e & ept::kDirty);
    if (params_.ept_ad) {
      // §28.2.4: A on every entry used; D on the leaf for a write.
      for (uint8_t i = 0; i < t.ref_count; ++i) {
        const HostRef& r = t.refs[i];
        uint64_t updated = r.value | ept::kAccessed;
        if (i + 1 == t.ref_count && write) updated |= ept::kDirty;
        if (updated != r.value) {
          t.updates[t.update_count++] = EntryWrite{r.entry_hpa, r.value, updated, r.level, 8};
        }
      }
    }
    return t;
  }
  return t;  // unreachable: level 1 is always a leaf
}

HostTranslation HostPageTables::npt_walk(uint64_t gpa, AccessKind kind,
                                         const HostStart& start) const {
  HostTranslation t;
  const Access access{kind, /*user=*/true};
  const WalkResult w =
      walk_from(*memory_, *npt_state_, canonical(gpa), access,
                WalkStart{start.level, start.table_hpa, start.npt_rights});
  t.ref_count = w.ref_count;
  for (uint8_t i = 0; i < w.ref_count; ++i) {
    t.refs[i] = HostRef{w.refs[i].entry_pa, w.refs[i].value, w.refs[i].level};
  }
  t.stop_level = w.stop_level;
  if (!w.ok()) {
    t.outcome = HostOutcome::kViolation;
    t.npt_error_code = w.error_code;
    return t;
  }
  const Translation& tr = w.translation;
  t.rwx = npt_rwx(tr.rights);
  t.size = tr.size;
  t.page_hpa = tr.page_pa;
  t.hpa = tr.page_pa | (gpa & (page_bytes(tr.size) - 1));
  t.dirty = tr.dirty;
  t.update_count = w.update_count;
  for (uint8_t i = 0; i < w.update_count; ++i) t.updates[i] = w.updates[i];
  return t;
}

HostStart HostPageTables::descend(const HostStart& start, uint64_t entry) const {
  HostStart next = start;
  next.level = start.level - 1;
  if (params_.kind == HostPagingKind::kEpt) {
    next.rwx = static_cast<HostRwx>(start.rwx & entry & ept::kRwx);
    next.table_hpa = entry & address_mask_;
  } else {
    next.npt_rights.writable = start.npt_rights.writable && (entry & pte::kWritable);
    next.npt_rights.user = start.npt_rights.user && (entry & pte::kUser);
    next.npt_rights.execute_disable = start.npt_rights.execute_disable ||
                                      (params_.npt_nxe && (entry & pte::kExecuteDisable));
    next.table_hpa = entry & npt_state_->address_mask();
  }
  return next;
}

void apply_host_updates(GuestMemory& host_memory, const HostTranslation& translation) {
  for (uint8_t i = 0; i < translation.update_count; ++i) {
    const EntryWrite& u = translation.updates[i];
    host_memory.write64(u.entry_pa, u.new_value);
  }
}

}  // namespace shadowsim
