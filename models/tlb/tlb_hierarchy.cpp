#include "tlb/tlb_hierarchy.h"

#include <string>

#include <fmt/format.h>

#include "common/error.h"

namespace shadowsim {
namespace {

using Result = TlbLookup::Result;

// Sources, cited by the presets below:
//  [ORM]   Intel 64 and IA-32 Architectures Optimization Reference Manual, 248966-045 (2022),
//          Table 2-15 "TLB parameters of the Skylake microarchitecture".
//  [ORM-C] same manual, Intel Core microarchitecture, §"Intel Advanced Memory Access": DTLB0
//          (loads only) 16 x 4K + 16 x large entries, DTLB1 (stores and loads missing DTLB0)
//          256 x 4K + 32 x large entries, "all entries are 4-way associative", and "a DTLB0 miss
//          and DTLB1 hit causes a penalty of 2 cycles".
//  [CPUID] SDM vol. 2A, CPUID leaf 2 descriptors (Table 3-12): 63H data TLB 1G 4-way 4 entries,
//          76H instruction TLB 2M/4M fully associative 8 entries (both reported by Skylake);
//          B0H instruction TLB 4K 4-way 128 entries, B1H instruction TLB 2M 4-way 8 entries
//          (or 4M 4 entries) (Core 2).
//  [WC]    wikichip.org, Skylake (client): ITLB 4K 8-way, STLB 4K+2M 12-way (up from 6).
// Replacement policies are not published: LRU everywhere is an assumption.
// An L1 TLB lookup runs in parallel with the (virtually indexed) L1 cache's tag lookup, so a hit
// adds nothing beyond the load-to-use latency that machine.vcpu.cpi already covers. A non-zero
// value would count every hit as translation overhead.
constexpr uint32_t kL1Latency = 0;
constexpr uint32_t kSkylakeStlbLatency = 9;  // assumption: the ~9-cycle L1-miss/STLB-hit cost
                                             // reported for Skylake (7-cpu.com); not re-checked
constexpr uint32_t kCore2Dtlb1Latency = 2;   // [ORM-C] DTLB0 miss, DTLB1 hit: 2 cycles

TlbLevelParams level(std::initializer_list<TlbLevelArrayParams> arrays) {
  TlbLevelParams p;
  int i = 0;
  for (const TlbLevelArrayParams& a : arrays) p.arrays[i++] = a;
  return p;
}

template <typename Fn>
void rethrow_prefixed(const std::string& prefix, Fn&& fn) {
  try {
    fn();
  } catch (const ParamError& e) {
    throw ParamError(prefix + "." + e.field(), e.what());
  }
}

const TlbHierarchyParams& validated(const TlbHierarchyParams& p) {
  p.validate();
  return p;
}

}  // namespace

TlbLevelParams TlbHierarchyParams::skylake_itlb() {
  using A = TlbLevelArrayParams;
  return level({
      A::make(128, 8, kL1Latency, {PageSize::k4K}),                // [ORM] 128, 8-way; [WC]
      A::make(8, 8, kL1Latency, {PageSize::k2M, PageSize::k4M}),   // [ORM] 8/thread; [CPUID] 76H
  });                                                              // no 1G array: fractured
}

TlbLevelParams TlbHierarchyParams::skylake_dtlb() {
  using A = TlbLevelArrayParams;
  return level({
      A::make(64, 4, kL1Latency, {PageSize::k4K}),                 // [ORM] 64, 4-way
      A::make(32, 4, kL1Latency, {PageSize::k2M, PageSize::k4M}),  // [ORM] 32, 4-way
      A::make(4, 4, kL1Latency, {PageSize::k1G}),                  // [ORM] 4; [CPUID] 63H 4-way
  });
}

TlbLevelParams TlbHierarchyParams::skylake_stlb() {
  using A = TlbLevelArrayParams;
  return level({
      // [ORM] shared by 4K and 2M pages, 1536 entries, 12-way; [WC]. 4M pages (32-bit paging)
      // are not listed: they fracture into 2M entries here.
      A::make(1536, 12, kSkylakeStlbLatency, {PageSize::k4K, PageSize::k2M}),
      A::make(16, 4, kSkylakeStlbLatency, {PageSize::k1G}),  // [ORM] 16, 4-way
  });
}

TlbHierarchyParams TlbHierarchyParams::skylake() { return TlbHierarchyParams{}; }

TlbHierarchyParams TlbHierarchyParams::core2() {
  using A = TlbLevelArrayParams;
  TlbHierarchyParams p;
  p.itlb = level({
      A::make(128, 4, kL1Latency, {PageSize::k4K}),  // [CPUID] B0H
      // [CPUID] B1H: 8 x 2M, 4-way (its 4M variant has 4 entries; one 8-entry array here).
      A::make(8, 4, kL1Latency, {PageSize::k2M, PageSize::k4M}),
  });
  // DTLB0 as the L1 DTLB: [ORM-C] 16 x 4K, 16 x large, 4-way.
  p.dtlb = level({
      A::make(16, 4, kL1Latency, {PageSize::k4K}),
      A::make(16, 4, kL1Latency, {PageSize::k2M, PageSize::k4M}),
  });
  // DTLB1 as a data-only second level: [ORM-C] 256 x 4K, 32 x large, 4-way, 2 cycles.
  p.stlb = level({
      A::make(256, 4, kCore2Dtlb1Latency, {PageSize::k4K}),
      A::make(32, 4, kCore2Dtlb1Latency, {PageSize::k2M, PageSize::k4M}),
  });
  p.stlb_enabled = true;
  p.stlb_fetches = false;  // [ORM-C]: DTLB1 serves loads and stores; ITLB misses walk
  p.dtlb_writes = false;   // [ORM-C]: DTLB0 is used for loads only
  p.vpid = false;          // VPID arrived with Nehalem (late 2008), after Penryn
  p.pcid = false;          // PCID arrived with Westmere (2010)
  return p;
}

void TlbHierarchyParams::validate() const {
  rethrow_prefixed("itlb", [&] { itlb.validate(); });
  rethrow_prefixed("dtlb", [&] { dtlb.validate(); });
  rethrow_prefixed("stlb", [&] { stlb.validate(); });
  if (!itlb.enabled()) throw ParamError("itlb.array0.entries", "the L1 ITLB needs an array");
  if (!dtlb.enabled()) throw ParamError("dtlb.array0.entries", "the L1 DTLB needs an array");
  if (stlb_enabled && !stlb.enabled()) {
    throw ParamError("stlb.array0.entries",
                     "the STLB is enabled but has no array (set stlb_enabled to false)");
  }
}

TlbHierarchy::TlbHierarchy(const TlbHierarchyParams& params, uint64_t seed)
    : params_(validated(params)),
      seeds_(seed),
      itlb_(params.itlb, seeds_),
      dtlb_(params.dtlb, seeds_),
      stlb_(params.stlb_enabled ? params.stlb : TlbLevelParams{{}}, seeds_),
      vpid_mask_(params.vpid ? 0xffff : 0),
      pcid_mask_(params.pcid ? kMaxPcid : 0) {}

void TlbHierarchy::bad_pcid(uint16_t pcid) {
  throw Error(fmt::format("PCID {:#x}: expected 12 bits (0..0xfff)", pcid));
}

TlbLookup TlbHierarchy::lookup_rest(uint64_t va, const Access& access, uint32_t asid,
                                    const PagingControls& controls, PagingMode mode,
                                    const TlbEntry* e) {
  const AccessKind kind = access.kind;
  TlbLevel& l1 = kind == AccessKind::kFetch ? itlb_ : dtlb_;
  const bool use_l1 = l1_serves(kind);
  TlbLookup r;
  TlbLevel* level = &l1;
  uint8_t at = 1;
  if (use_l1) {
    r.cycles = l1.latency();
    if (!e) l1.record_miss();
  }
  if (!e && stlb_serves(kind)) {
    r.cycles += stlb_.latency();
    e = stlb_.find(va, asid, mode);
    if (!e) {
      stlb_.record_miss();
      return r;
    }
    level = &stlb_;
    at = 2;
  }
  if (!e) return r;
  // A found entry is a hit, a fault from its cached rights, or a dirty re-walk.
  if (const uint32_t ec = check_access(e->rights, access, controls, mode)) {
    ++rights_faults_;
    r.result = Result::kFault;
    r.error_code = ec;
    r.level = at;
    return r;
  }
  if (kind == AccessKind::kWrite && !e->dirty) {
    ++dirty_rewalks_;
    r.dirty_rewalk = true;
    return r;
  }
  const PageSize size = e->size();
  level->record_hit(size);
  r.result = Result::kHit;
  r.level = at;
  r.size = size;
  r.pa = e->page_pa | (va & page_offset_mask(size));
  if (at == 2 && use_l1) {
    // Copy the whole page into the L1, which stores it at a size of its own: an STLB piece of a
    // larger page (a 4M page held as 2M pieces) would be an entry the L1 never looks for.
    TlbEntry whole = *e;
    const PageSize source = e->source_size;
    if (source != size) {
      whole.key = TlbEntry::make_key(va >> page_shift(source), source);
      whole.page_pa = e->page_pa - ((va & page_offset_mask(source)) & ~page_offset_mask(size));
    }
    l1.fill(va, whole);
  }
  return r;
}

void TlbHierarchy::fill(uint64_t va, const Translation& tr, const Access& access,
                        const TlbContext& ctx) {
  if ((va & ~page_offset_mask(tr.size)) != tr.page_va) {
    throw Error(fmt::format("TLB fill of {:#x} with the translation of the {} page at {:#x}",
                            va, to_string(tr.size), tr.page_va));
  }
  TlbEntry e;
  e.key = TlbEntry::make_key(va >> page_shift(tr.size), tr.size);
  e.page_pa = tr.page_pa;
  e.set_tags(tag(ctx), tr.global);
  e.source_size = tr.size;
  e.dirty = tr.dirty;
  e.pat_index = tr.pat_index;
  e.rights = tr.rights;
  const AccessKind kind = access.kind;
  if (l1_serves(kind)) (kind == AccessKind::kFetch ? itlb_ : dtlb_).fill(va, e);
  if (stlb_serves(kind)) stlb_.fill(va, e);
}

template <typename Pred>
void TlbHierarchy::invalidate_if(Pred&& pred) {
  itlb_.invalidate_if(pred);
  dtlb_.invalidate_if(pred);
  stlb_.invalidate_if(pred);
}

void TlbHierarchy::flush_all() {
  ++flushes_all_;
  invalidate_if([](const TlbEntry&) { return true; });
}

void TlbHierarchy::flush_vpid(uint16_t vpid) {
  ++flushes_vpid_;
  const uint16_t v = vpid & vpid_mask_;
  invalidate_if([v](const TlbEntry& e) { return e.vpid() == v; });
}

void TlbHierarchy::flush_non_global(const TlbContext& ctx) {
  ++flushes_non_global_;
  const TlbContext t = tag(ctx);
  invalidate_if([t](const TlbEntry& e) {
    return e.vpid() == t.vpid && e.pcid() == t.pcid && !e.global();
  });
}

void TlbHierarchy::invlpg(uint64_t va, const TlbContext& ctx) {
  ++invlpgs_;
  const TlbContext t = tag(ctx);
  itlb_.invalidate_address(va, t, true);
  dtlb_.invalidate_address(va, t, true);
  stlb_.invalidate_address(va, t, true);
}

void TlbHierarchy::page_fault_invalidate(uint64_t va, const TlbContext& ctx) {
  const TlbContext t = tag(ctx);
  itlb_.invalidate_address(va, t, true);
  dtlb_.invalidate_address(va, t, true);
  stlb_.invalidate_address(va, t, true);
}

void TlbHierarchy::invpcid(int type, uint64_t va, const TlbContext& ctx) {
  if (type < 0 || type > 3) {
    throw Error(fmt::format("INVPCID type {}: expected 0 (individual address), 1 (single "
                            "context), 2 (all contexts with globals) or 3 (all contexts)",
                            type));
  }
  ++invpcids_[type];
  const TlbContext t = tag(ctx);
  switch (type) {
    case 0:
      itlb_.invalidate_address(va, t, false);
      dtlb_.invalidate_address(va, t, false);
      stlb_.invalidate_address(va, t, false);
      break;
    case 1:
      invalidate_if([t](const TlbEntry& e) {
        return e.vpid() == t.vpid && e.pcid() == t.pcid && !e.global();
      });
      break;
    case 2:
      invalidate_if([t](const TlbEntry& e) { return e.vpid() == t.vpid; });
      break;
    case 3:
      invalidate_if([t](const TlbEntry& e) { return e.vpid() == t.vpid && !e.global(); });
      break;
  }
}

void TlbHierarchy::register_stats(StatsGroup g) {
  itlb_.register_stats(g.sub("itlb"));
  dtlb_.register_stats(g.sub("dtlb"));
  if (stlb_.enabled()) stlb_.register_stats(g.sub("stlb"));
  g.counter("dirty_rewalks", &dirty_rewalks_, "lookups",
            "writes that found a clean (D=0) entry and re-walk to set D");
  g.counter("rights_faults", &rights_faults_, "lookups",
            "#PF raised from an entry's cached rights, without a walk");
  const StatsGroup f = g.sub("flushes");
  f.counter("all", &flushes_all_, "flushes", "flushes of every entry of every VPID");
  f.counter("vpid", &flushes_vpid_, "flushes", "flushes of one VPID, global entries included");
  f.counter("non_global", &flushes_non_global_, "flushes",
            "flushes of one PCID's non-global entries (MOV to CR3)");
  f.counter("invlpg", &invlpgs_, "instructions", "INVLPG");
  for (int type = 0; type < 4; ++type) {
    f.counter(fmt::format("invpcid{}", type), &invpcids_[type], "instructions",
              "INVPCID of this type");
  }
}

}  // namespace shadowsim
