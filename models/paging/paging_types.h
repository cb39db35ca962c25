// x86 paging vocabulary shared by the walker, the page-table editor, TLBs and the hypervisor:
// paging modes, entry bits, control registers, CPU features and access kinds.
// Reference: Intel SDM vol. 3A, chapter 4 ("Paging"), order of sections followed in comments.
#pragma once

#include <cstdint>
#include <string>

#include "common/params.h"

namespace shadowsim {

constexpr uint64_t kPageShift = 12;
constexpr uint64_t kPageSize = 1ULL << kPageShift;

// §4.1.1: the four paging modes. PAE/LMA/LA57 are implied by the mode, so they cannot disagree.
enum class PagingMode : uint8_t {
  k32Bit,   // CR0.PG=1, CR4.PAE=0: 2 levels of 32-bit entries, 4 KiB and (CR4.PSE) 4 MiB pages
  kPae,     // CR4.PAE=1, EFER.LMA=0: PDPTE registers + 2 levels of 64-bit entries, 4 KiB / 2 MiB
  k4Level,  // EFER.LMA=1, CR4.LA57=0: 4 levels, 48-bit linear addresses, 4 KiB / 2 MiB / 1 GiB
  k5Level,  // EFER.LMA=1, CR4.LA57=1: 5 levels, 57-bit linear addresses
};

// Config/CLI spelling: "32bit", "pae", "4level", "5level".
const char* to_string(PagingMode mode);
PagingMode paging_mode_from_string(const std::string& name);  // throws Error naming the choices

// Levels are numbered as in the SDM's tables: 1 = page table (PTE), 2 = page directory (PDE),
// 3 = page-directory-pointer table (PDPTE), 4 = PML4, 5 = PML5.
int top_level(PagingMode mode);
int entry_width(PagingMode mode);  // bytes: 4 in 32-bit paging, 8 otherwise
int linear_address_bits(PagingMode mode);  // 32, 32, 48, 57
const char* level_name(PagingMode mode, int level);  // "PTE", "PDE", "PDPTE", "PML4E", "PML5E"

enum class PageSize : uint8_t { k4K, k2M, k4M, k1G };
uint64_t page_bytes(PageSize size);
int page_level(PageSize size);  // level of the leaf entry: 1, 2, 2, 3
const char* to_string(PageSize size);  // "4K", "2M", "4M", "1G"

// Entry bits (§4.3 table 4-4 ff., §4.4, §4.5). Bit 7 is PS in a PDE/PDPTE and PAT in a PTE;
// a large-page leaf keeps PAT in bit 12.
namespace pte {
constexpr uint64_t kPresent = 1ULL << 0;
constexpr uint64_t kWritable = 1ULL << 1;
constexpr uint64_t kUser = 1ULL << 2;
constexpr uint64_t kPwt = 1ULL << 3;
constexpr uint64_t kPcd = 1ULL << 4;
constexpr uint64_t kAccessed = 1ULL << 5;
constexpr uint64_t kDirty = 1ULL << 6;
constexpr uint64_t kPageSize = 1ULL << 7;
constexpr uint64_t kPat4K = 1ULL << 7;
constexpr uint64_t kGlobal = 1ULL << 8;
constexpr uint64_t kPatLarge = 1ULL << 12;
constexpr uint64_t kExecuteDisable = 1ULL << 63;
}  // namespace pte

// Page-fault error code bits (§4.7).
namespace pfec {
constexpr uint32_t kPresent = 1u << 0;   // 0: not-present entry; 1: protection (or reserved bit)
constexpr uint32_t kWrite = 1u << 1;
constexpr uint32_t kUser = 1u << 2;
constexpr uint32_t kReserved = 1u << 3;
constexpr uint32_t kFetch = 1u << 4;
}  // namespace pfec
std::string describe_error_code(uint32_t error_code);  // e.g. "P|W|U", "NP|U|I"

// The control-register bits that change translation, besides the mode itself.
struct PagingControls {
  bool cr0_wp = true;      // supervisor writes honour R/W
  bool cr4_pse = true;     // 4 MiB pages in 32-bit paging
  bool cr4_pge = true;     // G bit honoured (global TLB entries)
  bool cr4_pcide = false;  // CR3[11:0] is a PCID (IA-32e modes only)
  bool cr4_smep = false;   // supervisor fetches from user pages fault
  bool cr4_smap = false;   // supervisor data accesses to user pages fault unless EFLAGS.AC
  bool efer_nxe = true;    // XD bit (bit 63) honoured; reserved otherwise (PAE and IA-32e only)

  template <class V>
  void visit(V& v) {
    v.value("cr0_wp", cr0_wp, "CR0.WP: supervisor writes honour R/W");
    v.value("cr4_pse", cr4_pse, "CR4.PSE: 4 MiB pages in 32-bit paging");
    v.value("cr4_pge", cr4_pge, "CR4.PGE: global pages survive CR3 writes");
    v.value("cr4_pcide", cr4_pcide, "CR4.PCIDE: CR3 carries a PCID (4level/5level only)");
    v.value("cr4_smep", cr4_smep, "CR4.SMEP: supervisor fetches from user pages fault");
    v.value("cr4_smap", cr4_smap, "CR4.SMAP: supervisor data accesses to user pages fault");
    v.value("efer_nxe", efer_nxe, "EFER.NXE: execute-disable bit honoured");
  }
};

// CPU properties that decide entry formats.
struct CpuFeatures {
  unsigned maxphyaddr = 46;  // CPUID.80000008H:EAX[7:0]; 36..52 (32-bit paging still needs ≥ 32)
  bool page_1gb = true;      // CPUID.80000001H:EDX.Page1GB[bit 26]

  template <class V>
  void visit(V& v) {
    v.value("maxphyaddr", maxphyaddr, "physical address bits (CPUID.80000008H:EAX[7:0])",
            Limits{32, 52}, "bits");
    v.value("page_1gb", page_1gb, "1 GiB pages supported (CPUID Page1GB)");
  }
};

enum class AccessKind : uint8_t { kRead, kWrite, kFetch };
const char* to_string(AccessKind kind);

struct Access {
  AccessKind kind = AccessKind::kRead;
  bool user = false;           // CPL = 3
  bool implicit = false;       // implicit supervisor access (GDT, TSS...): SMAP ignores EFLAGS.AC
  bool eflags_ac = false;      // EFLAGS.AC, lets explicit supervisor data accesses pass SMAP

  static Access read(bool user = false) { return {AccessKind::kRead, user}; }
  static Access write(bool user = false) { return {AccessKind::kWrite, user}; }
  static Access fetch(bool user = false) { return {AccessKind::kFetch, user}; }
};

// Effective rights of a translation (§4.6): R/W and U/S are the AND over every level used, XD the
// OR. TLBs cache exactly this, so a TLB hit and a walk decide permissions the same way.
struct Rights {
  bool writable = true;
  bool user = true;
  bool execute_disable = false;
};

// 0 when the access is allowed, else the page-fault error code (with P set: a protection fault).
uint32_t check_access(const Rights& rights, const Access& access, const PagingControls& controls,
                      PagingMode mode);

// Error-code bits that describe the access itself (W/R, U/S, I/D), whatever the cause (§4.7:
// I/D is reported only if SMEP, or NXE in PAE/IA-32e paging).
uint32_t access_error_bits(const Access& access, const PagingControls& controls, PagingMode mode);

}  // namespace shadowsim

namespace shadowsim {

// Bit position of the address bits a level's index comes from, and the index itself.
inline int level_shift(PagingMode mode, int level) {
  return mode == PagingMode::k32Bit ? 12 + 10 * (level - 1) : 12 + 9 * (level - 1);
}
inline uint64_t level_index(PagingMode mode, int level, uint64_t va) {
  const int bits = mode == PagingMode::k32Bit                  ? 10
                   : (mode == PagingMode::kPae && level == 3) ? 2
                                                              : 9;
  return (va >> level_shift(mode, level)) & ((1ULL << bits) - 1);
}
// Canonical: bits above the linear-address width copy its top bit (§3.3.7.1). 32-bit modes take
// 32-bit addresses; anything wider is an API error, checked by the walker.
inline bool is_canonical(PagingMode mode, uint64_t va) {
  const int bits = linear_address_bits(mode);
  if (bits == 32) return (va >> 32) == 0;
  const int unused = 64 - bits;
  return static_cast<uint64_t>(static_cast<int64_t>(va << unused) >> unused) == va;
}

}  // namespace shadowsim
