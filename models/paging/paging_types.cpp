#include "paging/paging_types.h"

#include <fmt/format.h>

#include "common/error.h"

namespace shadowsim {

const char* to_string(PagingMode mode) {
  switch (mode) {
    case PagingMode::k32Bit: return "32bit";
    case PagingMode::kPae: return "pae";
    case PagingMode::k4Level: return "4level";
    case PagingMode::k5Level: return "5level";
  }
  return "?";
}

PagingMode paging_mode_from_string(const std::string& name) {
  for (PagingMode m : {PagingMode::k32Bit, PagingMode::kPae, PagingMode::k4Level,
                       PagingMode::k5Level}) {
    if (name == to_string(m)) return m;
  }
  throw Error(fmt::format("unknown paging mode '{}': expected one of 32bit, pae, 4level, 5level",
                          name));
}

int top_level(PagingMode mode) {
  switch (mode) {
    case PagingMode::k32Bit: return 2;
    case PagingMode::kPae: return 3;
    case PagingMode::k4Level: return 4;
    case PagingMode::k5Level: return 5;
  }
  return 0;
}

int entry_width(PagingMode mode) { return mode == PagingMode::k32Bit ? 4 : 8; }

int linear_address_bits(PagingMode mode) {
  switch (mode) {
    case PagingMode::k32Bit:
    case PagingMode::kPae: return 32;
    case PagingMode::k4Level: return 48;
    case PagingMode::k5Level: return 57;
  }
  return 0;
}

const char* level_name(PagingMode mode, int level) {
  switch (level) {
    case 1: return "PTE";
    case 2: return "PDE";
    case 3: return "PDPTE";
    case 4: return "PML4E";
    case 5: return "PML5E";
  }
  (void)mode;
  return "?";
}

uint64_t page_bytes(PageSize size) {
  switch (size) {
    case PageSize::k4K: return 4ULL << 10;
    case PageSize::k2M: return 2ULL << 20;
    case PageSize::k4M: return 4ULL << 20;
    case PageSize::k1G: return 1ULL << 30;
  }
  return 0;
}

int page_level(PageSize size) {
  switch (size) {
    case PageSize::k4K: return 1;
    case PageSize::k2M:
    case PageSize::k4M: return 2;
    case PageSize::k1G: return 3;
  }
  return 0;
}

const char* to_string(PageSize size) {
  switch (size) {
    case PageSize::k4K: return "4K";
    case PageSize::k2M: return "2M";
    case PageSize::k4M: return "4M";
    case PageSize::k1G: return "1G";
  }
  return "?";
}

const char* to_string(AccessKind kind) {
  switch (kind) {
    case AccessKind::kRead: return "read";
    case AccessKind::kWrite: return "write";
    case AccessKind::kFetch: return "fetch";
  }
  return "?";
}

std::string describe_error_code(uint32_t ec) {
  std::string s = (ec & pfec::kPresent) ? "P" : "NP";
  if (ec & pfec::kWrite) s += "|W";
  if (ec & pfec::kUser) s += "|U";
  if (ec & pfec::kReserved) s += "|RSVD";
  if (ec & pfec::kFetch) s += "|I";
  return s;
}

uint32_t access_error_bits(const Access& access, const PagingControls& controls, PagingMode mode) {
  uint32_t ec = 0;
  if (access.kind == AccessKind::kWrite) ec |= pfec::kWrite;
  if (access.user) ec |= pfec::kUser;
  if (access.kind == AccessKind::kFetch &&
      (controls.cr4_smep || (mode != PagingMode::k32Bit && controls.efer_nxe))) {
    ec |= pfec::kFetch;
  }
  return ec;
}

// §4.6.1. The XD right only exists with NXE (without it bit 63 is reserved, caught earlier).
uint32_t check_access(const Rights& r, const Access& a, const PagingControls& c, PagingMode mode) {
  bool allowed = true;
  if (a.user) {
    allowed = r.user && (a.kind != AccessKind::kWrite || r.writable) &&
              (a.kind != AccessKind::kFetch || !r.execute_disable);
  } else if (a.kind == AccessKind::kFetch) {
    allowed = !r.execute_disable && !(r.user && c.cr4_smep);
  } else {
    const bool smap_blocks = r.user && c.cr4_smap && (a.implicit || !a.eflags_ac);
    const bool wp_blocks = a.kind == AccessKind::kWrite && !r.writable && c.cr0_wp;
    allowed = !smap_blocks && !wp_blocks;
  }
  return allowed ? 0 : (pfec::kPresent | access_error_bits(a, c, mode));
}

}  // namespace shadowsim
