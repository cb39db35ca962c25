// The x86 page-table walker (Intel SDM vol. 3A §4.3-4.8) as a pure function: it reads the
// guest's tables and reports what a walk would do; it changes nothing. The caller applies the
// Accessed/Dirty updates it reports (apply_updates) when its model of the walk says they happen.
//
// Documented choice where the SDM leaves one (§4.8): A and D are reported only for a walk that
// succeeds; a faulting walk reports no updates. Xen's and KVM's software walkers behave this way
// (they set A/D after the whole walk passed its checks), so the hardware walk and the
// hypervisor's guest walk share one rule.
//
// Used by the TLB-miss path, the guest kernel, the hypervisor's guest walk and re-check, and the
// shadow auditor.
#pragma once

#include <array>
#include <cstdint>

#include "paging/paging_state.h"
#include "paging/paging_types.h"

namespace shadowsim {

class GuestMemory;

// One page-table entry read by a walk, in walk order. PAE PDPTEs come from registers and make
// no reference.
struct PageTableRef {
  uint64_t entry_pa;
  uint64_t value;
  int8_t level;
  uint8_t width;
};

// One entry write: Accessed/Dirty updates of the walker and the page-table editor's writes.
struct EntryWrite {
  uint64_t entry_pa;
  uint64_t old_value;
  uint64_t new_value;
  int8_t level;   // level of the entry written (1 = PTE)
  uint8_t width;  // 4 or 8 bytes
};

struct Translation {
  uint64_t pa;        // physical address the linear address maps to
  uint64_t page_pa;   // physical base of the page
  uint64_t page_va;   // linear base of the page
  PageSize size;
  Rights rights;      // effective rights over all levels
  bool global;        // G on the leaf and CR4.PGE
  bool dirty;         // D of the leaf once this walk's updates are applied
  uint8_t pat_index;  // PAT<<2 | PCD<<1 | PWT of the leaf: selects the memory type
};

enum class WalkOutcome : uint8_t {
  kOk,
  kPageFault,     // #PF with error_code
  kNonCanonical,  // #GP: the linear address is not canonical (IA-32e modes)
};

struct WalkResult {
  WalkOutcome outcome = WalkOutcome::kOk;
  uint32_t error_code = 0;  // #PF error code (§4.7)
  int8_t stop_level = 0;    // level of the entry the walk ended on (leaf or faulting entry)
  uint8_t ref_count = 0;
  uint8_t update_count = 0;
  Translation translation{};  // valid when ok()
  std::array<PageTableRef, 5> refs;
  std::array<EntryWrite, 5> updates;  // A/D updates, in walk order (only when ok())

  bool ok() const { return outcome == WalkOutcome::kOk; }
};

// Where a walk starts: the top (walk()) or below a level whose entries a paging-structure cache
// supplied, with the rights accumulated above it.
struct WalkStart {
  int level;
  uint64_t table_pa;  // table of `level` (ignored for a PAE level-3 start: PDPTE registers)
  Rights rights;
};

WalkResult walk(const GuestMemory& memory, const PagingState& state, uint64_t va,
                const Access& access);
WalkResult walk_from(const GuestMemory& memory, const PagingState& state, uint64_t va,
                     const Access& access, const WalkStart& start);

// Writes the walk's Accessed/Dirty updates into memory (the SDM's locked read-modify-write).
void apply_updates(GuestMemory& memory, const WalkResult& result);

}  // namespace shadowsim
