#include "tlb/paging_structure_cache.h"

#include <algorithm>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "common/error.h"

namespace shadowsim {
namespace {

const char* cache_name(int level) {
  switch (level) {
    case 2: return "pde";
    case 3: return "pdpte";
    case 4: return "pml4e";
    case 5: return "pml5e";
  }
  return "?";
}

// The highest level whose entries are cached in `mode`: PAE's level 3 are PDPTE registers.
int highest_cached_level(PagingMode mode) {
  return mode == PagingMode::kPae ? 2 : top_level(mode);
}

uint64_t linear_bits(PagingMode mode, uint64_t va) {
  return va & ((1ULL << linear_address_bits(mode)) - 1);
}

}  // namespace

void PscParams::validate() const {
  const std::pair<const char*, const TlbArrayParams*> caches[] = {
      {"pml5e", &pml5e}, {"pml4e", &pml4e}, {"pdpte", &pdpte}, {"pde", &pde}};
  for (const auto& [name, cache] : caches) {
    try {
      cache->validate();
    } catch (const ParamError& e) {
      throw ParamError(std::string(name) + "." + e.field(), e.what());
    }
  }
}

PscParams PscParams::skylake() { return PscParams{}; }

PscParams PscParams::core2() {
  PscParams p;
  p.pml5e.entries = 0;  // no 5-level paging
  // assumption: Core 2's paging-structure caches are undocumented; the PML4E / PDPTE / PDE
  // caches keep the Skylake-generation sizes.
  p.vpid = false;  // VPID arrived with Nehalem (late 2008)
  p.pcid = false;  // PCID arrived with Westmere (2010)
  return p;
}

PagingStructureCaches::PagingStructureCaches(const PscParams& params, uint64_t seed)
    : vpid_mask_(params.vpid ? 0xffff : 0), pcid_mask_(params.pcid ? kMaxPcid : 0) {
  params.validate();
  Rng seeds(seed);
  const TlbArrayParams* by_level[6] = {nullptr, nullptr, &params.pde, &params.pdpte,
                                       &params.pml4e, &params.pml5e};
  for (int level = 2; level <= 5; ++level) {
    const uint64_t s = seeds.next();
    if (by_level[level]->entries != 0) caches_[level].emplace(*by_level[level], s);
  }
}

TlbContext PagingStructureCaches::tag(const TlbContext& ctx) const {
  if (ctx.pcid > kMaxPcid) {
    throw Error(fmt::format("PCID {:#x}: expected 12 bits (0..0xfff)", ctx.pcid));
  }
  return TlbContext{static_cast<uint16_t>(ctx.vpid & vpid_mask_),
                    static_cast<uint16_t>(ctx.pcid & pcid_mask_)};
}

WalkStart PagingStructureCaches::lookup(uint64_t va, const TlbContext& ctx,
                                        const PagingState& state) {
  const PagingMode mode = state.mode();
  const TlbContext t = tag(ctx);
  const uint64_t linear = linear_bits(mode, va);
  ++lookups_;
  for (int level = 2; level <= highest_cached_level(mode); ++level) {
    std::optional<Cache>& cache = caches_[level];
    if (!cache) continue;
    const uint64_t key = linear >> level_shift(mode, level);
    PscEntry* e = cache->find(cache->set_of(key), [&](const PscEntry& x) {
      return x.key == key && x.mode == mode && x.vpid == t.vpid && x.pcid == t.pcid;
    });
    if (e) {
      cache->touch(e);
      ++counters_[level].hits;
      return WalkStart{level - 1, e->table_pa, e->rights};
    }
  }
  ++misses_;
  return WalkStart{top_level(mode), state.root_table(), Rights{}};
}

void PagingStructureCaches::fill(uint64_t va, const TlbContext& ctx, const PagingState& state,
                                 const WalkStart& start, const WalkResult& walk) {
  if (walk.outcome == WalkOutcome::kNonCanonical || walk.ref_count == 0) return;
  const PagingMode mode = state.mode();
  // PAE's level 3 is a register: a walk started there reads level 2 first.
  const int first = (mode == PagingMode::kPae && start.level == 3) ? 2 : start.level;
  if (walk.refs[0].level != first) {
    throw Error(fmt::format("paging-structure-cache fill for {:#x}: the walk's first reference "
                            "is at level {} but its start is level {}; pass the WalkStart "
                            "that lookup() returned",
                            va, walk.refs[0].level, start.level));
  }
  const TlbContext t = tag(ctx);
  const uint64_t linear = linear_bits(mode, va);
  const bool nxe = state.controls().efer_nxe;
  Rights rights = start.rights;
  for (uint8_t i = 0; i < walk.ref_count; ++i) {
    const PageTableRef& ref = walk.refs[i];
    if (ref.level <= walk.stop_level) break;  // the leaf, or the entry the walk faulted on
    // §4.10.3.1: no entry unless A is 1 in memory. A successful walk sets it (the caller
    // applies the updates); a faulting one sets none.
    if (!walk.ok() && !(ref.value & pte::kAccessed)) break;
    rights.writable = rights.writable && (ref.value & pte::kWritable);
    rights.user = rights.user && (ref.value & pte::kUser);
    rights.execute_disable = rights.execute_disable || (nxe && (ref.value & pte::kExecuteDisable));
    std::optional<Cache>& cache = caches_[ref.level];
    if (!cache) continue;
    PscEntry e;
    e.key = linear >> level_shift(mode, ref.level);
    e.table_pa = ref.value & state.address_mask();
    e.vpid = t.vpid;
    e.pcid = t.pcid;
    e.mode = mode;
    e.valid = true;
    e.rights = rights;
    insert(*cache, ref.level, e);
  }
}

void PagingStructureCaches::fill(uint64_t va, const TlbContext& ctx, const PagingState& state,
                                 const WalkResult& walk) {
  fill(va, ctx, state, WalkStart{top_level(state.mode()), state.root_table(), Rights{}}, walk);
}

void PagingStructureCaches::insert(Cache& cache, int level, const PscEntry& entry) {
  const uint32_t set = cache.set_of(entry.key);
  PscEntry* slot = cache.find(set, [&](const PscEntry& x) {
    return x.key == entry.key && x.mode == entry.mode && x.vpid == entry.vpid &&
           x.pcid == entry.pcid;
  });
  if (!slot) {
    slot = &cache.victim(set);
    if (slot->valid) ++counters_[level].evictions;
  }
  *slot = entry;
  cache.touch(slot);
  ++counters_[level].fills;
}

uint32_t PagingStructureCaches::latency(PagingMode mode) const {
  uint32_t latency = 0;
  for (int level = 2; level <= highest_cached_level(mode); ++level) {
    if (caches_[level]) latency = std::max(latency, caches_[level]->latency());
  }
  return latency;
}

uint64_t PagingStructureCaches::valid_count(int level) const {
  return has_cache(level) ? caches_[level]->valid_count() : 0;
}

template <typename Pred>
void PagingStructureCaches::invalidate_if(Pred&& pred) {
  for (std::optional<Cache>& cache : caches_) {
    if (cache) cache->invalidate_if(pred);
  }
}

void PagingStructureCaches::flush_all() {
  ++flushes_all_;
  invalidate_if([](const PscEntry&) { return true; });
}

void PagingStructureCaches::flush_vpid(uint16_t vpid) {
  ++flushes_vpid_;
  const uint16_t v = vpid & vpid_mask_;
  invalidate_if([v](const PscEntry& e) { return e.vpid == v; });
}

void PagingStructureCaches::flush_pcid(const TlbContext& ctx) {
  ++flushes_pcid_;
  const TlbContext t = tag(ctx);
  invalidate_if([t](const PscEntry& e) { return e.vpid == t.vpid && e.pcid == t.pcid; });
}

void PagingStructureCaches::invlpg(uint64_t va, const TlbContext& ctx) {
  (void)va;  // §4.10.4.1: INVLPG empties the PSCs of the current PCID, whatever the address
  flush_pcid(ctx);
}

void PagingStructureCaches::page_fault_invalidate(uint64_t va, const TlbContext& ctx,
                                                  PagingMode mode) {
  const TlbContext t = tag(ctx);
  const uint64_t linear = linear_bits(mode, va);
  for (int level = 2; level <= highest_cached_level(mode); ++level) {
    std::optional<Cache>& cache = caches_[level];
    if (!cache) continue;
    const uint64_t key = linear >> level_shift(mode, level);
    cache->invalidate_if([&](const PscEntry& e) {
      return e.key == key && e.mode == mode && e.vpid == t.vpid && e.pcid == t.pcid;
    });
  }
}

void PagingStructureCaches::invpcid(int type, uint64_t va, const TlbContext& ctx) {
  (void)va;
  switch (type) {
    case 0:
    case 1: flush_pcid(ctx); return;
    case 2:
    case 3: flush_vpid(ctx.vpid); return;
  }
  throw Error(fmt::format("INVPCID type {}: expected 0 (individual address), 1 (single "
                          "context), 2 (all contexts with globals) or 3 (all contexts)",
                          type));
}

void PagingStructureCaches::register_stats(StatsGroup g) {
  g.counter("lookups", &lookups_, "lookups", "paging-structure-cache lookups (TLB misses)");
  g.counter("misses", &misses_, "lookups", "lookups with no hit at any level: full walk");
  for (int level = 2; level <= 5; ++level) {
    if (!caches_[level]) continue;
    const StatsGroup c = g.sub(cache_name(level));
    c.counter("hits", &counters_[level].hits, "lookups",
              "lookups whose deepest hit was in this cache");
    c.counter("fills", &counters_[level].fills, "entries", "entries written");
    c.counter("evictions", &counters_[level].evictions, "entries", "valid entries replaced");
  }
  const StatsGroup f = g.sub("flushes");
  f.counter("all", &flushes_all_, "flushes", "flushes of every entry");
  f.counter("vpid", &flushes_vpid_, "flushes", "flushes of one VPID");
  f.counter("pcid", &flushes_pcid_, "flushes",
            "flushes of one PCID (MOV to CR3, INVLPG, INVPCID 0/1)");
}

}  // namespace shadowsim
