// The MMU of one PCPU: steps 2 and 3 of the path of a guest access (docs/architecture.md).
// A reference first looks up the TLBs (a plain function call: a hit costs the TLB latency and
// returns); on a miss the paging-structure caches say how much of the walk can be skipped, the
// walker walks the rest, and each remaining page-table reference costs what the page-table
// memory's cache model says. A/D updates are locked read-modify-writes of the entry's line.
//
// Nested mode (a NestedHost given at construction; docs/mmu.md "Nested paging"): the TLBs hold
// guest-linear -> host-physical translations, a TLB miss runs the 2-D walk of a per-PCPU
// NestedWalker (its guest PSCs replace the native paging-structure caches, which stay unused),
// and every reference of that walk, guest and host entries alike, is costed by the same
// page-table memory at its host-physical address. The NestedHost identity-maps guest RAM, so a
// host-physical address equals the guest-physical one and guest table lines keep their native
// cache sets; host table lines live above guest RAM and compete for the same caches. The TLB-hit
// path is the same code in both modes; only miss() branches.
#pragma once

#include <cstdint>
#include <memory>

#include "common/stats.h"
#include "memory/page_table_memory.h"
#include "nested/nested_walker.h"
#include "paging/paging_state.h"
#include "paging/walker.h"
#include "tlb/paging_structure_cache.h"
#include "tlb/tlb_hierarchy.h"

namespace shadowsim {

// The config lists these under machine.tlb and machine.psc (sim/config.h).
struct MmuParams {
  TlbHierarchyParams tlb;
  PscParams psc;
};

struct MmuResult {
  WalkOutcome outcome;  // kOk, kPageFault (error_code) or kNonCanonical
  uint32_t error_code;
  uint32_t cycles;      // TLB lookups + walk
  uint64_t pa;          // nested mode: host-physical, which the identity map makes the gPA
};

class NestedHost;

class Mmu {
 public:
  // `memory` holds the guest's physical memory and costs page-table references. With `nested`
  // (built for that same guest memory; Error otherwise) the MMU runs in nested-paging mode; the
  // NestedHost must outlive the MMU. `seed` seeds random replacement.
  Mmu(int pcpu, const MmuParams& params, PageTableMemory& memory, uint64_t seed,
      NestedHost* nested = nullptr);
  ~Mmu();

  // Inline: the TLB-hit path runs for every simulated reference.
  MmuResult translate(uint64_t va, const Access& access, const PagingState& state,
                      const TlbContext& ctx) {
    const TlbLookup hit = tlbs_.lookup(va, access, ctx, state.controls(), state.mode());
    if (hit.result == TlbLookup::Result::kHit) return {WalkOutcome::kOk, 0, hit.cycles, hit.pa};
    return miss(va, access, state, ctx, hit);
  }

  // The hooks below are the same calls in both modes (the caller never branches on the mode);
  // in nested mode they also invalidate the walker's guest paging-structure caches
  // (NestedWalker::flush_guest_pcid: under EPT a guest INVLPG / MOV to CR3 invalidates the
  // combined mappings and paging-structure caches of the current VPID and PCID, SDM vol. 3C
  // §28.4). The nested TLB and host PSCs hold only guest-physical mappings and survive them
  // (only INVEPT clears those, §28.4.1).
  //
  // Delivering a #PF invalidates the page's TLB entries and the PSC entries its walk would use.
  void page_fault_invalidate(uint64_t va, const TlbContext& ctx, PagingMode mode) {
    tlbs_.page_fault_invalidate(va, ctx);
    if (nested_walker_) {
      nested_walker_->flush_guest_pcid(psc_tag(ctx));
    } else {
      pscs_.page_fault_invalidate(va, ctx, mode);
    }
  }
  // What the guest's INVLPG and MOV to CR3 do to this PCPU's structures.
  void invlpg(uint64_t va, const TlbContext& ctx) {
    tlbs_.invlpg(va, ctx);
    if (nested_walker_) {
      nested_walker_->flush_guest_pcid(psc_tag(ctx));
    } else {
      pscs_.invlpg(va, ctx);
    }
  }
  void flush_non_global(const TlbContext& ctx) {
    tlbs_.flush_non_global(ctx);
    if (nested_walker_) {
      nested_walker_->flush_guest_pcid(psc_tag(ctx));
    } else {
      pscs_.flush_non_global(ctx);
    }
  }
  // Everything cached for one VPID (INVVPID single-context): TLBs, PSCs, guest PSCs of a 2-D
  // walk. A VCPU moving to this PCPU needs it (KVM's flush on migration).
  void flush_vpid(uint16_t vpid) {
    tlbs_.flush_vpid(vpid);
    pscs_.flush_vpid(vpid);
    if (nested_walker_) nested_walker_->flush_guest_vpid(vpid);
  }
  // Every linear and combined mapping of every VPID (a CPU without VPID at every VM exit and
  // entry); guest-physical mappings (the nested TLB, the host PSCs) are EPT-tagged and stay.
  void flush_all() {
    tlbs_.flush_all();
    pscs_.flush_all();
    if (nested_walker_) nested_walker_->guest_psc().flush_all();
  }

  // The guest's MOV to CR3, in either mode: loads `cr3` into `state` and, when `flush` (the
  // caller's decision: a CR3 load without PCIDs that Linux does not skip, or with PCIDs and
  // bit 63 clear), calls flush_non_global(ctx). `ctx` is the context the new CR3 runs in.
  // Returns the cycles the load itself costs: 0 natively (PagingState::load_cr3 reads the PAE
  // PDPTEs, which the native model does not cost); in nested mode the PAE PDPTE loads through
  // EPT (the PDPT's gPA translated, then four guest reads; NestedWalker::load_guest_cr3),
  // costed by the page-table memory like a walk's references — 0 for every other mode and NPT.
  // Throws Error when the load fails (a present PAE PDPTE with a reserved bit: #GP, which the
  // guest kernel model never does) or when the PDPT's host translation faults (the hypervisor
  // maps all guest RAM, so a model bug). The caller adds the cycles to the VCPU's time.
  uint64_t load_guest_cr3(PagingState& state, const TlbContext& ctx, uint64_t cr3, bool flush);

  bool nested() const { return nested_ != nullptr; }
  NestedHost* nested_host() { return nested_; }
  NestedWalker* nested_walker() { return nested_walker_.get(); }  // nullptr natively
  TlbHierarchy& tlbs() { return tlbs_; }
  const GuestMemory& memory() const { return memory_.memory(); }
  PageTableMemory& table_memory() { return memory_; }
  int pcpu() const { return pcpu_; }
  PagingStructureCaches& pscs() { return pscs_; }  // the native PSCs (unused in nested mode)
  // pcpuN.{itlb,dtlb,stlb,...}, pcpuN.walker.*; natively pcpuN.psc.*, in nested mode
  // pcpuN.nested.* (NestedWalker::register_stats, plus cr3_loads, cr3_load_refs,
  // tlb_fills_withheld) instead.
  void register_stats(StatsGroup g);

 private:
  MmuResult miss(uint64_t va, const Access& access, const PagingState& state,
                 const TlbContext& ctx, const TlbLookup& lookup);
  MmuResult walk_and_fill(uint64_t va, const Access& access, const PagingState& state,
                          const TlbContext& ctx, uint32_t cycles);
  MmuResult nested_walk_and_fill(uint64_t va, const Access& access, const PagingState& state,
                                 const TlbContext& ctx, uint32_t cycles);
  // Costs every reference (read) and A/D update (locked write) of a 2-D walk at its
  // host-physical address, applies the updates, and counts them.
  uint32_t cost_and_apply(const NestedWalk& w);
  [[noreturn]] void host_fault(uint64_t va, const Access& access, const NestedWalk& w) const;
  // The tag the guest PSCs use: the VPID and PCID as the native PSCs would keep them.
  TlbContext psc_tag(const TlbContext& ctx) const {
    return TlbContext{static_cast<uint16_t>(ctx.vpid & psc_vpid_mask_),
                      static_cast<uint16_t>(ctx.pcid & psc_pcid_mask_)};
  }

  int pcpu_;
  PageTableMemory& memory_;
  TlbHierarchy tlbs_;
  PagingStructureCaches pscs_;
  NestedHost* nested_ = nullptr;
  std::unique_ptr<NestedWalker> nested_walker_;  // nested mode only
  uint16_t psc_vpid_mask_;
  uint16_t psc_pcid_mask_;

  uint64_t walks_ = 0;
  uint64_t walk_references_ = 0;
  uint64_t walk_faults_ = 0;
  uint64_t ad_updates_ = 0;
  uint64_t stale_tlb_faults_ = 0;
  Histogram walk_cycles_;
  // Nested mode.
  uint64_t cr3_loads_ = 0;
  uint64_t cr3_load_refs_ = 0;
  uint64_t tlb_fills_withheld_ = 0;  // kOk walks whose host rights did not cover the guest's
};

}  // namespace shadowsim
