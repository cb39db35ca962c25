// The 2-D page walk of nested paging (Intel EPT, AMD NPT): the guest's own walk (the native
// walker, paging/walker.h, with its entry formats, permission rules and error codes), where
// every guest page-table reference first translates the guest-physical address of its table
// through the host tables, and the final guest-physical address is translated last.
//
// Memory model: guest tables and data live in the guest's GuestMemory, indexed by guest-physical
// address, as everywhere else in the simulator; host tables live in a host GuestMemory indexed by
// host-physical address. A guest reference reads the guest memory at its gPA and is reported
// with the hPA the host tables give it, which is what the page-table memory model costs.
//
// Reference counts with cold caches: a guest walk of n levels on a 4-level host makes
// n * (4 + 1) + 4 references: 24 for a 4-level guest, 29 for 5-level, 14 for 32-bit paging. A PAE
// guest under EPT reads no PDPT (the PDPTEs are registers, loaded at MOV to CR3 through EPT:
// load_guest_cr3) and makes 14; under NPT the guest PDPT is read on every walk (legacy PAE under
// nested paging), 19. A 2 MiB / 1 GiB host page shortens each host walk by one / two references.
//
// Permissions of guest-table accesses: EPT treats them as reads, as writes when the walk sets
// an A or D bit in the entry, and always as writes with EPT A/D enabled (SDM vol. 3C §28.2.3.2);
// NPT always as user writes (AMD APM vol. 2 §15.25.6).
//
// A/D: each host translation that succeeds reports its host A/D updates (EPT with A/D, NPT),
// as the hardware sets them while it walks; the guest's A/D updates are reported when the guest
// walk completed and every guest-table access passed the host checks (the native rule: only a
// guest walk that finds a translation sets A/D), even if the final access then takes an EPT
// violation. apply_updates() writes them, whatever the outcome.
#pragma once

#include <array>
#include <cstdint>

#include "common/params.h"
#include "common/stats.h"
#include "nested/host_paging.h"
#include "nested/nested_caches.h"
#include "paging/paging_state.h"
#include "paging/walker.h"
#include "tlb/tlb_context.h"

namespace shadowsim {

class GuestMemory;

struct NestedParams {
  // assumption: 16 entries, fully associative, 1 cycle. Bhargava et al. (ASPLOS 2008) propose a
  // small nested TLB beside the page walk cache; no vendor publishes its size.
  TlbArrayParams nested_tlb{16, 16, Replacement::kLru, 1};
  HostPscParams host_psc;
  GuestPscParams guest_psc;

  template <class V>
  void visit(V& v) {
    v.group("nested_tlb", nested_tlb, "nested TLB: guest-physical -> host-physical pages");
    v.group("host_psc", host_psc, "paging-structure caches of the host (nested) walk");
    v.group("guest_psc", guest_psc,
            "paging-structure caches of the guest walk holding host-physical table addresses");
  }
  void validate() const;

  static NestedParams no_caches();  // every cache disabled: the architectural 2-D walk
};

enum class NestedOutcome : uint8_t {
  kOk,
  kGuestPageFault,     // the guest walk raised #PF (error_code as the native walker gives it)
  kGuestNonCanonical,  // #GP: non-canonical linear address
  kGuestGp,            // load_guest_cr3 only: a present PAE PDPTE with a reserved bit
  kHostViolation,      // EPT violation / #VMEXIT(NPF)
  kHostMisconfig,      // EPT misconfiguration
};
const char* to_string(NestedOutcome outcome);

// One reference of a 2-D walk, in walk order.
struct NestedRef {
  uint64_t hpa;         // host-physical address of the entry read (what the memory model costs)
  uint64_t gpa;         // guest ref: the entry's guest-physical address; host ref: the gPA
                        // being translated
  uint64_t value;
  int8_t level;         // level of the entry in its own tables (host: 4..1, guest: 5..1)
  int8_t guest_level;   // host ref: level of the guest table being translated, 0 for the final
                        // gPA; guest ref: == level
  uint8_t width;        // 4 or 8 bytes
  bool host;
};

// One entry write: guest A/D (written in guest memory at gpa) or host A/D (host memory at hpa).
struct NestedUpdate {
  uint64_t hpa;
  uint64_t gpa;  // guest entries only
  uint64_t old_value;
  uint64_t new_value;
  int8_t level;
  uint8_t width;
  bool host;
};

// An EPT violation / NPT fault / EPT misconfiguration.
struct HostFault {
  uint64_t gpa = 0;           // guest-physical address being translated
  bool final_access = false;  // the final gPA (else a guest paging-structure access)
  int8_t guest_level = 0;     // guest table level being accessed (0 for the final access)
  int8_t host_level = 0;      // host level the walk stopped at
  AccessKind kind = AccessKind::kRead;  // the access as checked against the host tables
  HostRwx allowed = 0;        // EPT violation: R/W/X the entries granted (exit qual. 5:3)
  uint32_t npt_error_code = 0;  // NPT: EXITINFO1[31:0]

  // AMD EXITINFO1: the error code, bit 32 for the final gPA, bit 33 for a guest-table access.
  uint64_t npt_exitinfo1() const {
    return npt_error_code | (final_access ? 1ULL << 32 : 1ULL << 33);
  }
};

// References each cache saved on this walk: what the walk would have made without that cache's
// hits (given the tables when the entries were filled). refs + the three == the cold count.
struct CacheSavings {
  uint16_t nested_tlb = 0;
  uint16_t host_psc = 0;
  uint16_t guest_psc = 0;
  uint16_t total() const { return static_cast<uint16_t>(nested_tlb + host_psc + guest_psc); }
};

struct NestedWalk {
  static constexpr int kMaxRefs = 32;     // 5-level guest: 5 * 5 + 4 = 29
  static constexpr int kMaxUpdates = 32;  // 5 guest + at most 24 distinct host entries

  NestedOutcome outcome = NestedOutcome::kOk;
  uint32_t error_code = 0;  // guest #PF error code
  int8_t guest_stop_level = 0;
  // ok(): pa and page_pa are host-physical; size is the smaller of the guest and host pages
  // (the page a TLB may cache), page_va its linear base; rights are the guest's; dirty is the
  // guest leaf's D and, with EPT A/D or NPT, the host leaf's D.
  Translation translation{};
  uint64_t gpa = 0;         // final guest-physical address (ok, or a final host fault)
  HostRwx host_rwx = 0;     // host rights of the final page (ok)
  uint8_t memory_type = 0;  // EPT memory type of the final page (ok)
  HostFault fault;          // kHostViolation / kHostMisconfig
  uint8_t ref_count = 0;
  uint8_t host_ref_count = 0;
  uint8_t guest_ref_count = 0;
  uint8_t update_count = 0;
  CacheSavings saved;
  std::array<NestedRef, kMaxRefs> refs;
  std::array<NestedUpdate, kMaxUpdates> updates;

  bool ok() const { return outcome == NestedOutcome::kOk; }
  // Whether a TLB entry holding the guest rights is exact: the host grants every access the
  // guest rights allow (read; write if writable; fetch unless XD).
  bool host_covers_guest_rights() const;
};

class NestedWalker {
 public:
  NestedWalker(const NestedParams& params, uint64_t seed);

  // The 2-D walk of `va` for `access`. Pure with respect to memory (apply_updates() writes);
  // updates the caches and the statistics. Throws Error on a guest state whose MAXPHYADDR
  // exceeds 48 bits, and whatever the native walker throws (a 32-bit address too wide, a guest
  // table beyond guest memory).
  NestedWalk walk(const GuestMemory& guest_memory, const PagingState& guest,
                  const HostPageTables& host, uint64_t va, const Access& access,
                  const TlbContext& ctx = {});

  // Guest MOV to CR3. PAE under EPT: the PDPT's gPA is translated through EPT (as a read, even
  // with EPT A/D: §28.2.3.2) and the four PDPTEs loaded; the result lists those references
  // (host refs, then four guest refs of level 3) and is kHostViolation / kHostMisconfig (state
  // unchanged), kGuestGp (reserved PDPTE bit; state unchanged) or kOk. Every other case loads
  // CR3 without a memory access (under NPT the PDPT is read by each walk instead).
  NestedWalk load_guest_cr3(PagingState& guest, const GuestMemory& guest_memory,
                            const HostPageTables& host, uint64_t cr3);

  // Invalidations. INVEPT: flush_all / invept(root) (nested TLB, host and guest PSCs of that
  // root); guest MOV to CR3 / INVLPG / INVPCID: flush_guest_pcid; INVVPID: flush_guest_vpid.
  void flush_all();
  void invept(uint64_t root);
  void flush_guest_pcid(const TlbContext& ctx) { guest_psc_.flush_pcid(ctx); }
  void flush_guest_vpid(uint16_t vpid) { guest_psc_.flush_vpid(vpid); }

  NestedTlb& nested_tlb() { return nested_tlb_; }
  HostPsc& host_psc() { return host_psc_; }
  GuestPsc& guest_psc() { return guest_psc_; }
  // Lookup latency the caches add to a walk: probed in parallel, so the slowest one present.
  uint32_t cache_latency(PagingMode guest_mode) const;

  uint64_t walks() const { return walks_; }
  uint64_t host_refs() const { return host_refs_; }
  uint64_t guest_refs() const { return guest_refs_; }
  uint64_t host_violations() const { return ept_violations_ + npt_faults_; }

  // <g>.walks, .refs (histogram), .host_refs, .guest_refs, .refs_per_walk,
  // .host_refs_per_walk, .guest_refs_per_walk, .ok, .guest_faults, .ept_violations,
  // .npt_faults, .ept_misconfigs, .host_faults_guest_table, .host_faults_final,
  // .saved.{nested_tlb,host_psc,guest_psc}, <g>.nested_tlb.*, <g>.host_psc.*, <g>.guest_psc.*
  void register_stats(StatsGroup g);

 private:
  struct HostResult;
  HostResult translate_gpa(const HostPageTables& host, uint64_t gpa, AccessKind kind,
                           NestedWalk& w, int guest_level);
  void fail_host(NestedWalk& w, const HostPageTables& host, const HostTranslation& t,
                 uint64_t gpa, AccessKind kind, int guest_level);
  void add_guest_ref(NestedWalk& w, const PageTableRef& ref, uint64_t hpa);
  void add_host_update(NestedWalk& w, const EntryWrite& u);
  void count(const NestedWalk& w, HostPagingKind kind);

  NestedTlb nested_tlb_;
  HostPsc host_psc_;
  GuestPsc guest_psc_;

  uint64_t walks_ = 0;
  uint64_t host_refs_ = 0;
  uint64_t guest_refs_ = 0;
  uint64_t ok_ = 0;
  uint64_t guest_faults_ = 0;
  uint64_t ept_violations_ = 0;
  uint64_t npt_faults_ = 0;
  uint64_t ept_misconfigs_ = 0;
  uint64_t host_faults_guest_table_ = 0;
  uint64_t host_faults_final_ = 0;
  uint64_t saved_nested_tlb_ = 0;
  uint64_t saved_host_psc_ = 0;
  uint64_t saved_guest_psc_ = 0;
  Histogram refs_per_walk_;
};

// Writes the walk's guest A/D updates into guest memory and its host A/D updates into host
// memory.
void apply_updates(GuestMemory& guest_memory, GuestMemory& host_memory, const NestedWalk& walk);

}  // namespace shadowsim
