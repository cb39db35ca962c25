// Host (nested) page tables: the second dimension of a 2-D walk. Two formats:
//   - Intel EPT (SDM vol. 3C §28.2): 4 levels of 64-bit entries with R/W/X in bits 2:0, the
//     memory type in 5:3 and ignore-PAT in 6 of a leaf, large page in 7, accessed 8 / dirty 9
//     when EPT A/D is enabled (EPTP bit 6), the frame in bits 12..MAXPHYADDR-1. A not-present
//     entry (bits 2:0 = 0) or missing rights give an EPT violation; an unsupported value gives
//     an EPT misconfiguration (§28.2.3.1), which takes priority over a violation.
//   - AMD NPT (APM vol. 2 §15.25): the ordinary x86-64 4-level long-mode format, walked here by
//     the native walker (paging/walker.h) with a 4-level PagingState. Every NPT access is a user
//     access (§15.25.5), so U/S must be set at every level; a failure is a #VMEXIT(NPF) whose
//     EXITINFO1 low bits are the walker's #PF error code.
//
// A translation is a pure function of host memory: it reports the entries read (host-physical
// addresses) and the A/D updates; apply_host_updates() writes them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "common/params.h"
#include "paging/paging_state.h"
#include "paging/paging_types.h"
#include "paging/walker.h"

namespace shadowsim {

class GuestMemory;

enum class HostPagingKind : uint8_t { kEpt, kNpt };
const char* to_string(HostPagingKind kind);  // "ept", "npt"

// EPT entry bits (SDM vol. 3C tables 28-1..28-6).
namespace ept {
constexpr uint8_t kRead = 1u << 0;
constexpr uint8_t kWrite = 1u << 1;
constexpr uint8_t kExecute = 1u << 2;
constexpr uint8_t kRwx = kRead | kWrite | kExecute;
constexpr int kMemoryTypeShift = 3;           // bits 5:3 of a leaf
constexpr uint64_t kIgnorePat = 1ULL << 6;
constexpr uint64_t kLargePage = 1ULL << 7;    // PDE / PDPTE maps a page
constexpr uint64_t kAccessed = 1ULL << 8;     // with EPT A/D only
constexpr uint64_t kDirty = 1ULL << 9;        // with EPT A/D only (leaves)
constexpr uint8_t kUncacheable = 0;
constexpr uint8_t kWriteBack = 6;
// Memory types 2, 3 and 7 are reserved: a leaf holding one is misconfigured (§28.2.3.1).
inline bool memory_type_reserved(unsigned type) { return type == 2 || type == 3 || type == 7; }
}  // namespace ept

// Rights granted by host tables, as an R/W/X mask in EPT bit order (ept::kRead...). For NPT:
// R = user at every level, W = R and writable at every level, X = R and no XD at any level.
using HostRwx = uint8_t;

struct HostPagingParams {
  HostPagingKind kind = HostPagingKind::kEpt;
  unsigned maxphyaddr = 46;      // host physical-address width (assumption: as the guest default)
  bool page_1gb = true;          // EPT: IA32_VMX_EPT_VPID_CAP bit 17; NPT: CPUID Page1GB
  bool ept_ad = false;           // EPTP bit 6: EPT accessed and dirty flags
  bool ept_execute_only = true;  // IA32_VMX_EPT_VPID_CAP bit 0: bits 2:0 = 100b allowed
  bool npt_nxe = true;           // host EFER.NXE: the XD bit of NPT entries is honoured

  template <class V>
  void visit(V& v) {
    v.choice("kind", kind, "nested paging format",
             {{"ept", HostPagingKind::kEpt}, {"npt", HostPagingKind::kNpt}});
    v.value("maxphyaddr", maxphyaddr, "host physical-address bits", Limits{32, 52}, "bits");
    v.value("page_1gb", page_1gb, "1 GiB host pages supported");
    v.value("ept_ad", ept_ad, "EPT accessed/dirty flags enabled (EPTP bit 6)");
    v.value("ept_execute_only", ept_execute_only,
            "EPT execute-only entries supported (IA32_VMX_EPT_VPID_CAP bit 0)");
    v.value("npt_nxe", npt_nxe, "host EFER.NXE: NPT execute-disable bit honoured");
  }
  void validate() const;
};

// One host entry read.
struct HostRef {
  uint64_t entry_hpa;
  uint64_t value;
  int8_t level;  // 4 = PML4E ... 1 = PTE
};

enum class HostOutcome : uint8_t {
  kOk,
  kViolation,  // EPT violation / NPT fault (#VMEXIT(NPF))
  kMisconfig,  // EPT misconfiguration (EPT only)
};
const char* to_string(HostOutcome outcome);

// Where a host walk starts: the root, or below levels a paging-structure cache supplied.
struct HostStart {
  int level = 4;
  uint64_t table_hpa = 0;
  HostRwx rwx = ept::kRwx;  // EPT: rights accumulated above `level`
  Rights npt_rights{};      // NPT: rights accumulated above `level`
};

struct HostTranslation {
  HostOutcome outcome = HostOutcome::kOk;
  int8_t stop_level = 0;   // level of the leaf, or of the entry the walk stopped at
  uint8_t ref_count = 0;
  uint8_t update_count = 0;
  HostRwx rwx = 0;          // rights granted (EPT violation: by the entries read, as in the exit
                            // qualification bits 5:3); 0 for an NPT fault
  uint64_t hpa = 0;         // valid when ok()
  uint64_t page_hpa = 0;
  PageSize size = PageSize::k4K;
  uint8_t memory_type = 0;  // EPT leaf bits 5:3 (NPT: 0)
  bool ignore_pat = false;  // EPT leaf bit 6
  bool dirty = true;        // D of the leaf after this translation (true when A/D is off)
  uint32_t npt_error_code = 0;  // NPT fault: EXITINFO1[31:0] (P, RW, US, RSV, ID)
  // Not value-initialised (only [0, ref_count) and [0, update_count) are meaningful), as the
  // native WalkResult: the host walk runs up to six times per 2-D walk.
  std::array<HostRef, 4> refs;
  std::array<EntryWrite, 4> updates;  // A/D updates (EPT with ept_ad, or NPT), when ok()

  bool ok() const { return outcome == HostOutcome::kOk; }
};

class HostPageTables {
 public:
  static constexpr int kLevels = 4;

  // `root_hpa`: the EPT PML4 table (EPTP bits 51:12) or nCR3. Throws Error on a root beyond
  // MAXPHYADDR or not 4 KiB aligned, and ParamError on bad params.
  HostPageTables(const GuestMemory& memory, const HostPagingParams& params, uint64_t root_hpa);

  HostPagingKind kind() const { return params_.kind; }
  const HostPagingParams& params() const { return params_; }
  uint64_t root() const { return root_; }
  const GuestMemory& memory() const { return *memory_; }
  // Guest-physical addresses must be below 2^48 (4 levels of 9 bits above the page offset).
  static constexpr uint64_t kGpaLimit = 1ULL << 48;

  HostStart top() const { return HostStart{kLevels, root_, ept::kRwx, Rights{}}; }
  // Translates a guest-physical address for an access of `kind` (reads, writes, fetches).
  // Throws Error on a gpa at or above kGpaLimit or a start level outside 1..4.
  HostTranslation translate(uint64_t gpa, AccessKind kind) const {
    return translate_from(gpa, kind, top());
  }
  HostTranslation translate_from(uint64_t gpa, AccessKind kind, const HostStart& start) const;

  // The start below a non-leaf entry `entry` read at `start.level` (rights accumulated):
  // what a paging-structure cache keeps for that entry.
  HostStart descend(const HostStart& start, uint64_t entry) const;
  // Whether `rwx` allows an access of `kind`.
  static bool allows(HostRwx rwx, AccessKind kind) {
    const uint8_t need = kind == AccessKind::kRead    ? ept::kRead
                         : kind == AccessKind::kWrite ? ept::kWrite
                                                      : ept::kExecute;
    return (rwx & need) != 0;
  }

 private:
  HostTranslation ept_walk(uint64_t gpa, AccessKind kind, const HostStart& start) const;
  HostTranslation npt_walk(uint64_t gpa, AccessKind kind, const HostStart& start) const;

  const GuestMemory* memory_;
  HostPagingParams params_;
  uint64_t root_;
  uint64_t address_mask_;
  std::array<std::array<uint64_t, 2>, 5> ept_reserved_{};  // [level][large]
  std::array<bool, 5> ept_large_ok_{};
  std::optional<PagingState> npt_state_;  // 4-level long mode with nCR3 = root
};

// Writes the translation's A/D updates into host memory.
void apply_host_updates(GuestMemory& host_memory, const HostTranslation& translation);

}  // namespace shadowsim
