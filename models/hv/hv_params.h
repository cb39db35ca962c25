// The hypervisor's parameters (config section `hypervisor`, docs/hypervisor.md): which walk
// strategy the shadow fault path runs, its lock, the shadow code's options, nested paging's host
// tables and caches, the VCPU scheduler, the size of the shadow pool, the cost of every step,
// and the switches that make it unsafe on purpose (to prove the auditor catches what they let
// through).
//
// Every cost is in cycles of the PCPU running the hypervisor. Sources: the research notes
// (/work/shared/research/shadow-algorithms.md §5, "research §5" below); a cost with no
// published number is marked "assumption" and is a candidate for `shadowsim sensitivity`.
#pragma once

#include <cstdint>

#include "common/params.h"
#include "hv/pcpu_scheduler.h"
#include "hv/spin_lock.h"
#include "nested/nested_host.h"
#include "shadow/shadow_paging.h"

namespace shadowsim {

// How guest addresses reach the hardware (machine.virtualization).
enum class Virtualization : uint8_t {
  kNative,  // no hypervisor: the guest's tables are walked directly
  kShadow,  // the hypervisor's shadow tables are walked; misses exit (this module)
  kNested,  // EPT/NPT: a 2-D walk of guest and host tables (models/nested)
};
const char* to_string(Virtualization v);

// The walk strategies of the shadow fault path (research §2 and §4.1; docs/hypervisor.md).
enum class StrategyKind : uint8_t {
  kLocked,           // Xen 3.2: lock, then walk; write access removed inside the walk
  kUnlocked,         // Xen Feb 2008: walk unlocked, re-check if the version moved, refault
  kUnlockedRewalk,   // Xen June 2008: as unlocked, but re-walk in the handler on a mismatch
  kUnlockedCompare,  // KVM: walk unlocked, always re-read every level after write-protecting
  kAutoUp,           // locked with one VCPU, unlocked otherwise
  kUnlockedNocheck,  // UNSAFE: walk unlocked and never re-check (shows the auditor works)
  kUnlockedRw,       // hypothetical: faults that only fill an L1 entry share a reader/writer
                     // lock and install it with compare-and-swap (after KVM's TDP MMU)
};
const char* to_string(StrategyKind kind);

// Costs of the hypervisor's steps. A fault's cost is the sum of the steps it took; nothing is
// one "shadow fault" constant (research §2 D).
struct HvCosts {
  // VM exit and VM entry, hardware only. Research §5: a modern AMD SVM trivial exit spends
  // ~1,345-1,376 cycles between VMRUN and its return (lkml 2020); split here as 700 + 650
  // (assumption: the split).
  uint32_t vmexit_cycles = 700;
  uint32_t vmentry_cycles = 650;
  // Software from the exit to the handler and back (register save, exit dispatch, paging_fault
  // → sh_page_fault, restore). Assumption: ~half of the software part of KVM's ~2,550-cycle
  // KVM_RUN round trip (research §5), since Xen handles the exit without a return to user space.
  uint32_t exit_dispatch_cycles = 600;
  // One guest page-table entry read by the hypervisor (map_domain_page through the direct map +
  // a load that usually hits the cache). Assumption.
  uint32_t guest_entry_read_cycles = 30;
  // A/D update of a guest entry: a locked cmpxchg (~20 cycles, as the lock's atomic) + the line.
  uint32_t guest_entry_cmpxchg_cycles = 40;
  // gfn -> mfn through the p2m (3-4 levels, mostly cached). Assumption.
  uint32_t p2m_lookup_cycles = 40;
  // Shadow hash: a lookup (hash, bucket load) and each shadow compared on the chain. Assumption.
  uint32_t hash_lookup_cycles = 30;
  uint32_t hash_chain_step_cycles = 10;
  uint32_t hash_update_cycles = 30;  // insert or delete
  // Shadow entries read and written (the shadow page is mapped: a plain load / store).
  uint32_t shadow_entry_read_cycles = 5;
  uint32_t shadow_entry_write_cycles = 10;
  // A shadow page taken from the pool and zeroed (4 KiB at ~32 B/cycle + bookkeeping), and one
  // given back. Assumption.
  uint32_t page_alloc_cycles = 300;
  uint32_t page_free_cycles = 100;
  // Creating or destroying a shadow (type bookkeeping, pinning, back-pointers); promoting or
  // demoting a guest frame (page_info type count). Assumption.
  uint32_t shadow_create_cycles = 150;
  uint32_t shadow_destroy_cycles = 150;
  uint32_t promotion_cycles = 100;
  // Write-access removal: one heuristic probe (a guessed linear-map slot read), one L1 shadow
  // visited by brute force, and each of its entries scanned; one writable mapping removed.
  // Assumption.
  uint32_t heuristic_probe_cycles = 50;
  uint32_t brute_force_shadow_cycles = 50;
  uint32_t brute_force_entry_cycles = 2;
  uint32_t write_mapping_removed_cycles = 20;
  // Re-validating one guest entry after an emulated write (sh_validate_guest_entry: map,
  // propagate, compare, set). Assumption.
  uint32_t validation_cycles = 100;
  // Decoding and emulating the faulting instruction (x86_emulate) for a page-table write.
  // Research §5: "exit + 1-3k cycles of emulator work" (assumption there); 1,500 here.
  uint32_t emulation_cycles = 1500;
  // Reading the version counter (atomic read + rmb) and bumping it (lock; incl). Assumption,
  // the bump as the lock's atomic.
  uint32_t version_read_cycles = 5;
  uint32_t version_bump_cycles = 20;
  // vTLB lookup or insert (13 entries, direct mapped). Assumption.
  uint32_t vtlb_cycles = 10;
  // sh_update_cr3's fixed part (besides its measured work) and sh_invlpg's. Assumption.
  uint32_t cr3_update_cycles = 500;
  uint32_t invlpg_cycles = 200;
  // flush_tlb_mask of the domain's PCPUs: the initiator sends IPIs and waits for them; each
  // other PCPU runs a flush handler in the hypervisor; a local flush. Assumption, as the guest
  // shootdown (machine.tlb_shootdown, Amit et al. ATC'17 orders of magnitude).
  uint32_t flush_ipi_cycles = 4000;
  uint32_t flush_handler_cycles = 1000;
  uint32_t local_flush_cycles = 300;

  template <class V>
  void visit(V& v) {
    auto c = [&v](const char* name, uint32_t& x, const char* what) {
      v.value(name, x, what, Limits{0, 1e9}, "cycles");
    };
    c("vmexit_cycles", vmexit_cycles, "VM exit, hardware");
    c("vmentry_cycles", vmentry_cycles, "VM entry, hardware");
    c("exit_dispatch_cycles", exit_dispatch_cycles,
      "software from the exit to the handler and back");
    c("guest_entry_read_cycles", guest_entry_read_cycles,
      "one guest page-table entry read by the hypervisor");
    c("guest_entry_cmpxchg_cycles", guest_entry_cmpxchg_cycles, "A/D cmpxchg on a guest entry");
    c("p2m_lookup_cycles", p2m_lookup_cycles, "one gfn -> mfn lookup");
    c("hash_lookup_cycles", hash_lookup_cycles, "one shadow hash lookup");
    c("hash_chain_step_cycles", hash_chain_step_cycles, "each shadow compared on a hash chain");
    c("hash_update_cycles", hash_update_cycles, "one shadow hash insert or delete");
    c("shadow_entry_read_cycles", shadow_entry_read_cycles, "one shadow entry read");
    c("shadow_entry_write_cycles", shadow_entry_write_cycles, "one shadow entry written");
    c("page_alloc_cycles", page_alloc_cycles, "a shadow page allocated and zeroed");
    c("page_free_cycles", page_free_cycles, "a shadow page freed");
    c("shadow_create_cycles", shadow_create_cycles, "a shadow created (bookkeeping)");
    c("shadow_destroy_cycles", shadow_destroy_cycles, "a shadow destroyed (bookkeeping)");
    c("promotion_cycles", promotion_cycles, "a guest frame promoted to or demoted from a table");
    c("heuristic_probe_cycles", heuristic_probe_cycles,
      "one guess of write-access removal (heuristics 1-2)");
    c("brute_force_shadow_cycles", brute_force_shadow_cycles,
      "one L1 shadow visited by brute-force write-access removal");
    c("brute_force_entry_cycles", brute_force_entry_cycles,
      "one entry scanned by brute-force write-access removal");
    c("write_mapping_removed_cycles", write_mapping_removed_cycles,
      "one writable shadow mapping made read-only");
    c("validation_cycles", validation_cycles, "one guest entry re-validated after a write");
    c("emulation_cycles", emulation_cycles, "decoding and emulating one page-table write");
    c("version_read_cycles", version_read_cycles, "reading the version counter (+ rmb)");
    c("version_bump_cycles", version_bump_cycles, "bumping the version counter (atomic)");
    c("vtlb_cycles", vtlb_cycles, "one vTLB lookup or insert");
    c("cr3_update_cycles", cr3_update_cycles, "fixed part of a shadowed guest CR3 write");
    c("invlpg_cycles", invlpg_cycles, "fixed part of a shadowed guest INVLPG");
    c("flush_ipi_cycles", flush_ipi_cycles,
      "initiator of a flush of the domain's PCPUs: IPIs and waiting");
    c("flush_handler_cycles", flush_handler_cycles, "each other PCPU's flush handler");
    c("local_flush_cycles", local_flush_cycles, "flushing the local PCPU's TLB");
  }
};

// Switches that turn off a site that bumps the version counter (research §3.1). Both on is
// Xen; turning one off makes `unlocked` unsafe, which the auditor must catch.
struct VersionBumpSites {
  bool write_access_removal = true;  // site 1: sh_page_fault after gw_remove_write_accesses
  bool emulated_write = true;        // site 2: emulate_unmap_dest, every emulated write

  template <class V>
  void visit(V& v) {
    v.value("write_access_removal", write_access_removal,
            "bump after the fault path removed write access (site 1; false is UNSAFE)");
    v.value("emulated_write", emulated_write,
            "bump after every emulated page-table write (site 2; false is UNSAFE)");
  }
};

struct HypervisorParams {
  StrategyKind strategy = StrategyKind::kUnlocked;
  LockParams lock;
  ShadowParams shadow;
  NestedHostParams nested;
  PcpuSchedulerParams scheduler;
  // Shadow pool in MiB; 0: xend's default, 1 MiB per VCPU + 8 KiB per MiB of guest RAM
  // (research §5, tools image.py), at least Xen's minimum (ShadowPaging::min_pool_pages).
  uint32_t shadow_pool_mib = 0;
  // VPID: without it every VM exit and entry flushes the PCPU's TLB (core2-2008 hardware).
  bool vpid = true;
  // Without APIC virtualization (core2-2008) a guest IPI exits: a TLB shootdown costs its
  // sender an exit and each target an exit to take the interrupt.
  bool ipi_exits = false;
  HvCosts costs;
  VersionBumpSites bump;
  // Check every committed shadow entry against the guest's current entries (docs/hypervisor.md
  // "Audit"); a violation stops the run with the interleaving that led to it.
  bool audit = false;
  // How many hypervisor steps the auditor's report shows.
  uint32_t audit_history = 48;

  void validate() const {
    if (strategy == StrategyKind::kUnlockedRw && lock.kind != LockKind::kRw) {
      throw ParamError("strategy", "unlocked-rw shares the shadow lock between faults: it needs "
                                   "hypervisor.lock.kind = \"rw\"");
    }
  }

  template <class V>
  void visit(V& v) {
    v.choice("strategy", strategy, "walk strategy of the shadow fault path",
             {{"locked", StrategyKind::kLocked},
              {"unlocked", StrategyKind::kUnlocked},
              {"unlocked-rewalk", StrategyKind::kUnlockedRewalk},
              {"unlocked-compare", StrategyKind::kUnlockedCompare},
              {"auto-up", StrategyKind::kAutoUp},
              {"unlocked-nocheck", StrategyKind::kUnlockedNocheck},
              {"unlocked-rw", StrategyKind::kUnlockedRw}});
    v.group("lock", lock, "the shadow lock (docs/lock.md)");
    v.group("shadow", shadow, "options of the shadow code (Xen SHOPT_*; docs/shadow.md)");
    v.group("nested", nested,
            "nested paging (EPT/NPT): host tables and the per-PCPU caches of the 2-D walk");
    v.group("scheduler", scheduler, "VCPUs on PCPUs when VCPUs outnumber PCPUs");
    v.value("shadow_pool_mib", shadow_pool_mib,
            "shadow pool (0: 1 MiB per VCPU + 8 KiB per MiB of guest RAM, xend's default)",
            Limits{0, 1 << 20}, "MiB");
    v.value("vpid", vpid, "VPID tags: without them every VM exit and entry flushes the TLB");
    v.value("ipi_exits", ipi_exits,
            "guest IPIs exit (no APIC virtualization): shootdowns cost exits on both sides");
    v.group("costs", costs, "cost of each hypervisor step");
    v.group("bump", bump, "version-counter bump sites (turning one off is unsafe)");
    v.value("audit", audit,
            "check every committed shadow entry against the guest's current entries (slow)");
    v.value("audit_history", audit_history, "hypervisor steps shown in an audit report",
            Limits{1, 100000}, "steps");
  }
};

}  // namespace shadowsim
