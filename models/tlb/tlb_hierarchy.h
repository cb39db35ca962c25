// The TLBs of one PCPU: L1 ITLB (fetches), L1 DTLB (reads and writes) and a unified second-level
// STLB, tagged by VPID and PCID (Intel SDM vol. 3A §4.10.1-4.10.2, §4.10.4; vol. 3C §28.1).
// A functional core: lookup() is a plain call and allocates nothing; the timed VCPU model adds
// the returned cycles to its local time.
//
// The path of one access:
//   lookup()  L1 (ITLB or DTLB by access kind), then the STLB. A hit checks the access against
//             the cached rights (check_access, as a walk does): a forbidden access is kFault with
//             the #PF error code and no walk (the SDM's "spurious" fault on a stale entry with
//             fewer rights, §4.10.4.3). A write through an entry whose D is clear is reported
//             kMiss with dirty_rewalk: the hardware re-walks to set D (§4.8). An STLB hit is
//             copied into the L1.
//   fill()    after a successful walk: the L1 of the access kind and the STLB. An entry the
//             lookup would have found (e.g. the clean one of a dirty re-walk) is replaced.
#pragma once

#include <cstdint>

#include "common/params.h"
#include "common/stats.h"
#include "paging/paging_types.h"
#include "paging/walker.h"
#include "tlb/tlb_context.h"
#include "tlb/tlb_level.h"

namespace shadowsim {

struct TlbLookup {
  enum class Result : uint8_t { kHit, kMiss, kFault };
  Result result = Result::kMiss;
  uint8_t level = 0;           // kHit, kFault: 1 = L1, 2 = STLB; 0 on kMiss (dirty re-walk too)
  bool dirty_rewalk = false;   // kMiss because a write found a clean entry: re-walk to set D
  uint32_t error_code = 0;     // kFault: #PF error code computed from the cached rights
  uint32_t cycles = 0;         // lookup latency: the L1's, plus the STLB's if it was probed
  uint64_t pa = 0;             // kHit: the physical address
  PageSize size = PageSize::k4K;  // kHit: size of the entry used (after any fracturing)
};

// Defaults: Intel Skylake client (one core; the same TLBs as Skylake-SP). Sources in the
// preset functions in tlb_hierarchy.cpp and in docs/tlb.md.
struct TlbHierarchyParams {
  TlbLevelParams itlb = skylake_itlb();
  TlbLevelParams dtlb = skylake_dtlb();
  TlbLevelParams stlb = skylake_stlb();
  bool stlb_enabled = true;
  bool stlb_fetches = true;  // the STLB also caches instruction translations (unified)
  bool dtlb_writes = true;   // stores use the L1 DTLB (Core 2: DTLB0 serves loads only)
  bool vpid = true;          // entries carry the VPID tag; without, every VPID reads as 0
  bool pcid = true;          // entries carry the PCID tag; without, every PCID reads as 0

  template <class V>
  void visit(V& v) {
    v.group("itlb", itlb, "L1 instruction TLB (fetches)");
    v.group("dtlb", dtlb, "L1 data TLB (reads and writes)");
    v.group("stlb", stlb, "second-level TLB");
    v.value("stlb_enabled", stlb_enabled, "use the second-level TLB");
    v.value("stlb_fetches", stlb_fetches, "the STLB also holds instruction translations");
    v.value("dtlb_writes", dtlb_writes,
            "stores look up and fill the L1 DTLB (false: they go to the STLB only)");
    v.value("vpid", vpid, "entries are tagged with the VPID (VMX VPID support)");
    v.value("pcid", pcid, "entries are tagged with the PCID (CR4.PCIDE support)");
  }
  // Every level valid; the L1s present; the STLB present when enabled.
  void validate() const;

  static TlbHierarchyParams skylake();  // == the defaults
  static TlbHierarchyParams core2();    // Intel Core 2 (Penryn, 2008): no STLB proper, no tags
  static TlbLevelParams skylake_itlb();
  static TlbLevelParams skylake_dtlb();
  static TlbLevelParams skylake_stlb();
};

class TlbHierarchy {
 public:
  // Validates the parameters (ParamError naming the field). `seed` seeds random replacement.
  TlbHierarchy(const TlbHierarchyParams& params, uint64_t seed);

  // controls and mode are the current paging state's: they decide the access check, and the
  // mode decides which page sizes are probed. Throws Error on a PCID above 4095.
  // The L1 hit is inline (it runs on every simulated reference); the rest is out of line.
  TlbLookup lookup(uint64_t va, const Access& access, const TlbContext& ctx,
                   const PagingControls& controls, PagingMode mode) {
    const uint32_t asid = TlbEntry::make_asid(tag(ctx));
    const AccessKind kind = access.kind;
    const TlbEntry* e = nullptr;
    if (l1_serves(kind)) {
      TlbLevel& l1 = kind == AccessKind::kFetch ? itlb_ : dtlb_;
      e = l1.find(va, asid, mode);
      if (e && (kind != AccessKind::kWrite || e->dirty) &&
          check_access(e->rights, access, controls, mode) == 0) {
        l1.record_hit(e->size());
        TlbLookup r;
        r.result = TlbLookup::Result::kHit;
        r.level = 1;
        r.cycles = l1.latency();
        r.size = e->size();
        r.pa = e->page_pa | (va & page_offset_mask(r.size));
        return r;
      }
    }
    return lookup_rest(va, access, asid, controls, mode, e);
  }
  // After a successful walk for `access` at `va` (which must lie in t's page; Error otherwise).
  void fill(uint64_t va, const Translation& t, const Access& access, const TlbContext& ctx);

  // Invalidation (§4.10.4.1; vol. 3C §28.3.3). Every kind is limited to one VPID except
  // flush_all.
  void flush_all();                                  // all entries of all VPIDs, global included
  void flush_vpid(uint16_t vpid);                    // INVVPID single-context; MOV to CR4 (PGE)
  void flush_non_global(const TlbContext& ctx);      // MOV to CR3: ctx.pcid's non-global entries
  void invlpg(uint64_t va, const TlbContext& ctx);   // va's page: ctx.pcid's and global entries
  // Delivering a #PF for va invalidates the TLB entries for its page: the current PCID's and
  // global ones (SDM vol. 3A §4.10.3.1 of the 2009 edition: a page fault invalidates "any TLB
  // entry for that address's page number", so that the fault "will not recur ... if it would
  // not be caused by the contents of the paging structures in memory"; a hypervisor that makes
  // a global kernel page writable relies on it); not counted as a flush.
  void page_fault_invalidate(uint64_t va, const TlbContext& ctx);
  // INVPCID (ctx.pcid is the descriptor's PCID): 0 individual address (not global entries),
  // 1 single context (not global), 2 all contexts with globals, 3 all contexts but globals.
  // Other types: Error. The caller raises #GP for a non-canonical type-0 address.
  void invpcid(int type, uint64_t va, const TlbContext& ctx);

  // <g>.itlb.*, <g>.dtlb.*, <g>.stlb.* (TlbLevel::register_stats), <g>.dirty_rewalks,
  // <g>.rights_faults, <g>.flushes.{all,vpid,non_global,invlpg,invpcid0..invpcid3}.
  // Registers pointers to this object's counters: call it once the object has its final
  // address (a move afterwards leaves the registry pointing at the old one).
  void register_stats(StatsGroup g);

  const TlbHierarchyParams& params() const { return params_; }
  const TlbLevel& itlb() const { return itlb_; }
  const TlbLevel& dtlb() const { return dtlb_; }
  const TlbLevel& stlb() const { return stlb_; }
  uint64_t dirty_rewalks() const { return dirty_rewalks_; }
  uint64_t rights_faults() const { return rights_faults_; }

  // The tag entries carry for `ctx` on this PCPU (0 where the feature is absent).
  TlbContext tag(const TlbContext& ctx) const {
    if (ctx.pcid > kMaxPcid) bad_pcid(ctx.pcid);
    return TlbContext{static_cast<uint16_t>(ctx.vpid & vpid_mask_),
                      static_cast<uint16_t>(ctx.pcid & pcid_mask_)};
  }

 private:
  bool stlb_serves(AccessKind kind) const {
    return stlb_.enabled() && params_.stlb_enabled &&
           (kind != AccessKind::kFetch || params_.stlb_fetches);
  }
  bool l1_serves(AccessKind kind) const {
    return kind != AccessKind::kWrite || params_.dtlb_writes;
  }
  // Everything but a clean L1 hit: `l1` is the entry the L1 found (a fault or a dirty
  // re-walk), or nullptr after an L1 miss or when the L1 was not probed.
  TlbLookup lookup_rest(uint64_t va, const Access& access, uint32_t asid,
                        const PagingControls& controls, PagingMode mode, const TlbEntry* l1);
  template <typename Pred>
  void invalidate_if(Pred&& pred);
  [[noreturn]] static void bad_pcid(uint16_t pcid);

  TlbHierarchyParams params_;
  Rng seeds_;
  TlbLevel itlb_;
  TlbLevel dtlb_;
  TlbLevel stlb_;
  uint16_t vpid_mask_;
  uint16_t pcid_mask_;
  uint64_t dirty_rewalks_ = 0;
  uint64_t rights_faults_ = 0;
  uint64_t flushes_all_ = 0;
  uint64_t flushes_vpid_ = 0;
  uint64_t flushes_non_global_ = 0;
  uint64_t invlpgs_ = 0;
  uint64_t invpcids_[4] = {};
};

}  // namespace shadowsim
