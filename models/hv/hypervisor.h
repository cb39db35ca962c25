// The hypervisor of one shadow-paged domain (Xen 2008's shadow code in time): step 4 of the path
// of a guest access (docs/architecture.md). A VCPU whose hardware walk of the shadow tables
// faults exits here; the fault path runs the lock-free fast paths (fast emulation, the magic
// not-present entry), then the configured walk strategy (hv/walk_strategy.h), then the common
// tail under the shadow lock (preallocate, find or create the shadows, propagate, prefetch) and
// either resumes the guest, reflects a #PF to it, or emulates its page-table write. Guest CR3
// writes and INVLPGs exit here too.
//
// The functional work is models/shadow/ShadowPaging's; this class owns what its docs leave to
// "the timed layer": the shadow lock (hv/spin_lock.h), the version counter
// (gtable_dirty_version), flushes of the domain's PCPUs, the fast-emulation memory, exits and the
// cost of every step (hv/hv_params.h). It runs on the faulting VCPU's thread; every step on
// shared state is preceded by a sync of that VCPU (HvCpu::hv_sync), so steps of different VCPUs
// happen in simulated-time order and an unlocked walk has a real race window before the lock.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/stats.h"
#include "common/timeline.h"
#include "hv/hv_cpu.h"
#include "hv/hv_params.h"
#include "hv/shadow_auditor.h"
#include "hv/spin_lock.h"
#include "hv/walk_strategy.h"
#include "shadow/shadow_paging.h"

namespace shadowsim {

class GuestMemory;

// A guest kernel store that trapped: what the emulator writes.
struct GuestStore {
  uint64_t pa;  // guest-physical address the guest's own mapping leads to
  int width;    // bytes
  uint64_t value;
};

struct HvFaultResult {
  enum class Kind : uint8_t {
    kFixed,     // resume the guest: the access is retried (it may fault again)
    kInject,    // reflect #PF(error_code) to the guest kernel
    kEmulated,  // the guest's store was emulated: the instruction is done
  };
  Kind kind;
  uint32_t error_code = 0;
};

// Why a VCPU exited (statistics).
enum class ExitReason : uint8_t { kPageFault, kCr3Write, kInvlpg, kIpi, kCount };

// Why the version counter moved (the re-check cause statistics).
enum class BumpCause : uint8_t { kWriteAccessRemoval, kEmulatedWrite };

class Hypervisor {
 public:
  // Shadows live in `memory`: guest RAM is frames [0, guest_frames), the pool the
  // `pool_pages` frames from `pool_first_frame`. Throws Error on a pool smaller than one walk
  // needs (ShadowPaging::min_pool_pages) and on a guest mode shadowing does not support.
  Hypervisor(GuestMemory& memory, uint64_t guest_frames, uint64_t pool_first_frame,
             uint64_t pool_pages, PagingMode guest_mode, unsigned vcpus,
             const HypervisorParams& params, uint64_t seed);
  ~Hypervisor();

  // Each VCPU registers once, before the simulation starts (flushes reach every VCPU).
  void attach(HvCpu* cpu);

  // --- the exits ---
  // The hardware walk of the shadow tables faulted with `error_code`. `store` is the guest
  // kernel's store that faulted (nullptr for other accesses): what emulation writes.
  HvFaultResult page_fault(HvCpu& cpu, uint64_t va, const Access& access, uint32_t error_code,
                           const GuestStore* store);
  // Guest MOV to CR3 (with `guest` the VCPU's guest paging state after the load, PAE PDPTEs
  // included): the VCPU's hardware state becomes its shadow root.
  void cr3_write(HvCpu& cpu, const PagingState& guest);
  // Guest INVLPG (an exit).
  void invlpg(HvCpu& cpu, uint64_t va);
  // The same two, run by another VCPU's flush IPI on `cpu` (at the sender's time, on the
  // sender's thread): nothing waits and nothing is added to `cpu`'s time; the result is the
  // cycles `cpu` must be charged (its exit round trip and the handler's work). The CR3 reload
  // keeps the shadow root, so only the VCPU's TLB and vTLB are flushed and the lock is not taken
  // (a simplification: Xen's sh_update_cr3 takes it).
  uint64_t remote_invlpg(HvCpu& cpu, uint64_t va);
  // A guest IPI sent or taken: without APIC virtualization (hypervisor.ipi_exits) an exit,
  // counted; returns its round trip for the caller to charge (0 otherwise).
  uint64_t ipi_exit() {
    if (!params_.ipi_exits) return 0;
    ++stats_.exits[static_cast<int>(ExitReason::kIpi)];
    return exit_round_trip();
  }
  uint64_t remote_cr3_reload(HvCpu& cpu);

  // --- steps the walk strategies call (hv/walk_strategy.h) ---
  void lock(HvCpu& cpu, LockMode mode = LockMode::kExclusive);
  void unlock(HvCpu& cpu);
  uint64_t read_version(ShadowFault& f);
  // Guest walk with the VCPU's guest state; its A/D bits applied (cmpxchg, lock-free in Xen).
  void guest_walk(ShadowFault& f);
  // The walk's tables lose their writable mappings (gw_remove_write_accesses, one batch): on a
  // removal, bump the version (site 1; not for a strategy without one, KVM's compare) and flush
  // the domain's PCPUs once. Returns true if any.
  bool remove_write_accesses(ShadowFault& f);
  // Xen 3.2's walk under the lock: each table below the top level loses its writable mappings
  // (with a flush of the domain's TLBs after each removal: up to three a walk) *before* its
  // entry is read, so no guest store can change what was read. No version bump (there is no
  // counter before the Feb 2008 patch).
  void protect_and_walk(ShadowFault& f);
  // shadow_check_gwalk's compare; `since` is the version the walk started at (for the cause
  // statistics; ~0: no version was read). true: still consistent.
  bool check_walk(ShadowFault& f, uint64_t since);
  uint64_t version() const { return version_; }
  void count_rewalk() { ++stats_.rewalks; }
  // PAE emulate-ahead is armed for the VCPU: its next store is the other half of a PTE, to be
  // emulated in the same exit (nothing may deschedule the VCPU in between).
  bool emulate_ahead_armed(int vcpu) const {
    return vcpus_.at(static_cast<size_t>(vcpu)).emulate_ahead_pa != kNoAhead;
  }
  // unlocked-rw: whether only the L1 entry will change: every shadow the fault needs exists and
  // it is not a write to a page table (emulated or unshadowed under the write lock).
  bool can_fix_shared(ShadowFault& f);
  // After a good walk: the frame is RAM and the vTLB remembers the translation.
  void record_walk(ShadowFault& f);

  ShadowPaging& shadows() { return shadows_; }
  const HypervisorParams& params() const { return params_; }
  SpinLock& shadow_lock() { return *lock_; }
  StrategyKind strategy() const { return strategy_->kind(); }

  // Auditor: every shadow of every frame checked now (run end, tests).
  void audit_all();
  // Auditor: a guest store to `pa` went through without trapping; with the audit on, that must
  // not be a shadowed page table (a writable mapping survived write-access removal).
  void check_direct_store(HvCpu& cpu, uint64_t pa);

  void register_stats(StatsGroup g);
  // run.timeline: hypervisor work, lock spinning and lock holding as spans on PCPU lanes.
  void set_timeline(Timeline* timeline) { timeline_ = timeline; }

  struct Stats {  // named after Xen's perf counters where one exists
    uint64_t shadow_fault = 0;
    uint64_t fast_gnp = 0;
    uint64_t fast_mmio = 0;  // always 0: the model has no MMIO; kept so tables line up with Xen
    uint64_t fast_emulate = 0;
    uint64_t fast_fail = 0;
    uint64_t bail_real_fault = 0;
    uint64_t fault_fixed = 0;
    uint64_t fault_emulate_write = 0;  // shadow_fault_emulate_write
    uint64_t refaults = 0;             // kRetry: inconsistent walks returned to the guest
    uint64_t rewalks = 0;              // inconsistent walks re-done in the handler
    uint64_t shared_fixes = 0;         // unlocked-rw: fixed under the read lock
    uint64_t cas_failures = 0;         // unlocked-rw: the install lost a race
    uint64_t emulate_write = 0;        // emulated page-table writes (every path)
    uint64_t emulate_ahead = 0;        // PAE second halves emulated in the same exit
    uint64_t user_unshadow = 0;        // user-mode writes to a page table: unshadowed
    uint64_t misaligned_unshadow = 0;
    uint64_t rm_write_flush_tlb = 0;
    uint64_t domain_flushes = 0;
    uint64_t version_bumps[2] = {0, 0};
    // Re-checks by what moved the version in the walk's window: [cause][other VCPU]. A window
    // with several bumps counts each cause (and each of self / other) once.
    uint64_t recheck_cause[2][2] = {{0, 0}, {0, 0}};
    uint64_t recheck_unknown_cause = 0;  // the window outgrew the bump log
    uint64_t exits[static_cast<int>(ExitReason::kCount)] = {};
    uint64_t cr3_writes = 0;
    uint64_t invlpgs = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  static constexpr uint64_t kNoAhead = ~0ULL;
  struct VcpuState {
    HvCpu* cpu = nullptr;
    // Xen's last_emulated_frame / last_emulated_mfn, valid while the shadow-freed generation
    // is unchanged (research §1.6).
    bool emulated_valid = false;
    uint64_t emulated_page = 0;
    uint64_t emulated_generation = 0;
    // PAE emulate-ahead: the half-PTE store just emulated; the next store to its other half
    // is emulated in the same exit.
    uint64_t emulate_ahead_pa = kNoAhead;
    uint64_t lock_since = 0;  // when it got the shadow lock (timeline)
  };
  struct Bump {
    BumpCause cause;
    unsigned vcpu;
  };
  static constexpr size_t kBumpLog = 4096;
  // With the audit on, every shadow is checked this often (faults), besides the frames each
  // commit touches: changes made to other shadows (prefetch, validation, reclaim) are covered.
  static constexpr uint64_t kFullAuditEvery = 1000;

  void vm_exit(HvCpu& cpu, ExitReason reason);
  void vm_entry(HvCpu& cpu);
  // A whole exit of another VCPU (IPI handler): counted, its no-VPID flush done, cycles returned.
  uint64_t remote_exit(HvCpu& cpu, ExitReason reason);
  void flush_pcpu_tlb(HvCpu& cpu);  // every entry of the PCPU's TLB and PSCs
  uint32_t access_pfec(const Access& access) const;
  void charge(HvCpu& cpu, const ShadowWork& work);  // prices the work, adds it to local time
  void flush_domain(HvCpu& cpu);                   // flush_tlb_mask(domain_dirty_cpumask)
  void bump(HvCpu& cpu, BumpCause cause);
  HvFaultResult fast_not_present(HvCpu& cpu, uint64_t va, const Access& access,
                                 uint32_t error_code);
  // Common tail (lock held on entry, released on return).
  HvFaultResult fix(ShadowFault& f, const GuestStore* store);
  // unlocked-rw's tail under the read lock (releases it).
  HvFaultResult fix_shared(ShadowFault& f);
  // Emulation of a guest page-table store (research §1.6); takes the lock itself.
  void emulate(HvCpu& cpu, uint64_t va, const GuestStore& store);
  void forget_emulation(unsigned vcpu) { vcpus_.at(vcpu).emulated_valid = false; }
  void note(HvCpu& cpu, const std::string& what);  // auditor history
  void audit_frames(HvCpu& cpu, const std::vector<uint64_t>& gfns, const char* when);
  void audit_commit(ShadowFault& f, const char* when);
  // VM exit, the dispatch to the handler and back, VM entry.
  uint64_t exit_round_trip() const {
    return uint64_t{params_.costs.vmexit_cycles} + params_.costs.exit_dispatch_cycles +
           params_.costs.vmentry_cycles;
  }

  GuestMemory& memory_;
  HypervisorParams params_;
  ShadowPaging shadows_;
  std::unique_ptr<SpinLock> lock_;
  std::unique_ptr<WalkStrategy> strategy_;
  std::unique_ptr<ShadowAuditor> auditor_;  // null unless params.audit
  std::vector<VcpuState> vcpus_;
  uint64_t version_ = 0;
  std::array<Bump, kBumpLog> bumps_{};  // bump n is at [n % kBumpLog]
  Stats stats_;
  Histogram fault_cycles_;
  Timeline* timeline_ = nullptr;
  void trace(HvCpu& cpu, const char* name, uint64_t start, std::string detail = {}) {
    if (timeline_) {
      timeline_->span(Timeline::Lane::kPcpu, cpu.pcpu_index(), name, start, cpu.hv_now(),
                      cpu.vcpu_index(), std::move(detail));
    }
  }
};

}  // namespace shadowsim
