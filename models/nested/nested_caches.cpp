#include "nested/nested_caches.h"

#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "common/error.h"
#include "common/rng.h"

namespace shadowsim {
namespace {

constexpr int host_shift(int level) { return 12 + 9 * (level - 1); }

const char* host_level_name(int level) {
  return level == 4 ? "pml4e" : level == 3 ? "pdpte" : "pde";
}
const char* guest_level_name(int level) {
  return level == 5 ? "pml5e" : level == 4 ? "pml4e" : level == 3 ? "pdpte" : "pde";
}

void validate_named(const TlbArrayParams& p, const char* name) {
  try {
    p.validate();
  } catch (const ParamError& e) {
    throw ParamError(std::string(name) + "." + e.field(), e.what());
  }
}

uint64_t linear_bits(PagingMode mode, uint64_t va) {
  const int bits = linear_address_bits(mode);
  return va & ((1ULL << bits) - 1);
}

}  // namespace

void HostPscParams::validate() const {
  validate_named(pml4e, "pml4e");
  validate_named(pdpte, "pdpte");
  validate_named(pde, "pde");
}

void GuestPscParams::validate() const {
  validate_named(pml5e, "pml5e");
  validate_named(pml4e, "pml4e");
  validate_named(pdpte, "pdpte");
  validate_named(pde, "pde");
}

// ---- NestedTlb -------------------------------------------------------------------------------

NestedTlb::NestedTlb(const TlbArrayParams& params, uint64_t seed) {
  params.validate();
  if (params.entries != 0) array_.emplace(params, seed);
}

NestedTlb::Entry* NestedTlb::find(uint64_t root, uint64_t gpa) {
  if (array_->sets() == 1) {  // fully associative: one pass; the smallest page wins, as below
    Entry* best = nullptr;
    array_->find(0, [&](Entry& x) {
      if (x.valid && x.root == root && (gpa >> x.shift) == x.key &&
          (!best || x.shift < best->shift)) {
        best = &x;
      }
      return false;
    });
    return best;
  }
  for (uint8_t shift : {12, 21, 30}) {
    const uint64_t key = gpa >> shift;
    Entry* e = array_->find(array_->set_of(key), [&](const Entry& x) {
      return x.key == key && x.shift == shift && x.root == root;
    });
    if (e) return e;
  }
  return nullptr;
}

const NestedTlb::Entry* NestedTlb::lookup(uint64_t root, uint64_t gpa, AccessKind kind) {
  if (!array_) return nullptr;
  Entry* e = find(root, gpa);
  if (!e || !HostPageTables::allows(e->rwx, kind) || (kind == AccessKind::kWrite && !e->dirty)) {
    ++misses_;
    return nullptr;
  }
  array_->touch(e);
  ++hits_;
  return e;
}

void NestedTlb::fill(uint64_t root, uint64_t gpa, const HostTranslation& t) {
  if (!array_ || !t.ok()) return;
  const uint8_t shift = static_cast<uint8_t>(12 + 9 * (t.stop_level - 1));
  const uint64_t key = gpa >> shift;
  Entry* e = array_->find(array_->set_of(key), [&](const Entry& x) {
    return x.key == key && x.shift == shift && x.root == root;
  });
  if (!e) {
    e = &array_->victim(array_->set_of(key));
    if (e->valid) ++evictions_;
  }
  *e = Entry{key, root, t.page_hpa, shift, t.rwx, t.memory_type, t.dirty, t.stop_level, true};
  array_->touch(e);
  ++fills_;
}

void NestedTlb::flush_all() {
  if (array_) invalidations_ += array_->invalidate_if([](const Entry&) { return true; });
}

void NestedTlb::invalidate(uint64_t root) {
  if (array_) {
    invalidations_ += array_->invalidate_if([root](const Entry& e) { return e.root == root; });
  }
}

void NestedTlb::register_stats(StatsGroup g) {
  g.counter("hits", &hits_, "lookups", "guest-physical translations found (host walk skipped)");
  g.counter("misses", &misses_, "lookups", "guest-physical translations not found");
  g.counter("fills", &fills_, "entries", "entries written after a host walk");
  g.counter("evictions", &evictions_, "entries", "valid entries replaced");
  g.counter("invalidations", &invalidations_, "entries", "entries removed by INVEPT");
}

// ---- HostPsc ---------------------------------------------------------------------------------

HostPsc::HostPsc(const HostPscParams& params, uint64_t seed) {
  params.validate();
  Rng seeds(seed);
  const TlbArrayParams* by_level[5] = {nullptr, nullptr, &params.pde, &params.pdpte,
                                       &params.pml4e};
  for (int level = 2; level <= 4; ++level) {
    const uint64_t s = seeds.next();
    if (by_level[level]->entries != 0) caches_[level].emplace(*by_level[level], s);
  }
}

bool HostPsc::enabled() const {
  return std::any_of(caches_.begin(), caches_.end(), [](const auto& c) { return c.has_value(); });
}

uint32_t HostPsc::latency() const {
  uint32_t l = 0;
  for (const auto& c : caches_) {
    if (c) l = std::max(l, c->latency());
  }
  return l;
}

HostStart HostPsc::lookup(const HostPageTables& host, uint64_t gpa) {
  ++lookups_;
  for (int level = 2; level <= 4; ++level) {
    auto& cache = caches_[level];
    if (!cache) continue;
    const uint64_t key = gpa >> host_shift(level);
    Entry* e = cache->find(cache->set_of(key), [&](const Entry& x) {
      return x.key == key && x.root == host.root();
    });
    if (e) {
      cache->touch(e);
      ++hits_[level];
      return e->next;
    }
  }
  ++misses_;
  return host.top();
}

void HostPsc::fill(const HostPageTables& host, uint64_t gpa, const HostStart& start,
                   const HostTranslation& t) {
  if (!t.ok()) return;
  HostStart at = start;
  for (uint8_t i = 0; i < t.ref_count; ++i) {
    const HostRef& ref = t.refs[i];
    if (ref.level <= t.stop_level) break;  // the leaf
    const HostStart next = host.descend(at, ref.value);
    auto& cache = caches_[ref.level];
    if (cache) {
      const uint64_t key = gpa >> host_shift(ref.level);
      Entry* e = cache->find(cache->set_of(key), [&](const Entry& x) {
        return x.key == key && x.root == host.root();
      });
      if (!e) {
        e = &cache->victim(cache->set_of(key));
        if (e->valid) ++evictions_[ref.level];
      }
      *e = Entry{key, host.root(), next, true};
      cache->touch(e);
      ++fills_[ref.level];
    }
    at = next;
  }
}

void HostPsc::flush_all() {
  for (auto& c : caches_) {
    if (c) c->invalidate_if([](const Entry&) { return true; });
  }
}

void HostPsc::invalidate(uint64_t root) {
  for (auto& c : caches_) {
    if (c) c->invalidate_if([root](const Entry& e) { return e.root == root; });
  }
}

uint64_t HostPsc::valid_count(int level) const {
  return level >= 2 && level <= 4 && caches_[level] ? caches_[level]->valid_count() : 0;
}

void HostPsc::register_stats(StatsGroup g) {
  g.counter("lookups", &lookups_, "lookups", "host paging-structure-cache lookups");
  g.counter("misses", &misses_, "lookups", "lookups with no hit at any level");
  for (int level = 2; level <= 4; ++level) {
    if (!caches_[level]) continue;
    StatsGroup l = g.sub(host_level_name(level));
    l.counter("hits", &hits_[level], "lookups", "deepest hit at this level");
    l.counter("fills", &fills_[level], "entries", "entries written");
    l.counter("evictions", &evictions_[level], "entries", "valid entries replaced");
  }
}

// ---- GuestPsc --------------------------------------------------------------------------------

GuestPsc::GuestPsc(const GuestPscParams& params, uint64_t seed) {
  params.validate();
  Rng seeds(seed);
  const TlbArrayParams* by_level[6] = {nullptr, nullptr, &params.pde, &params.pdpte,
                                       &params.pml4e, &params.pml5e};
  for (int level = 2; level <= 5; ++level) {
    const uint64_t s = seeds.next();
    if (by_level[level]->entries != 0) caches_[level].emplace(*by_level[level], s);
  }
}

bool GuestPsc::enabled() const {
  return std::any_of(caches_.begin(), caches_.end(), [](const auto& c) { return c.has_value(); });
}

uint32_t GuestPsc::latency(PagingMode mode) const {
  uint32_t l = 0;
  for (int level = 2; level <= top_level(mode); ++level) {
    if (caches_[level]) l = std::max(l, caches_[level]->latency());
  }
  return l;
}

GuestStart GuestPsc::lookup(uint64_t va, const TlbContext& ctx, const PagingState& state,
                            uint64_t host_root, int max_level) {
  const PagingMode mode = state.mode();
  const uint64_t linear = linear_bits(mode, va);
  ++lookups_;
  for (int level = 2; level <= max_level; ++level) {
    auto& cache = caches_[level];
    if (!cache) continue;
    const uint64_t key = linear >> level_shift(mode, level);
    Entry* e = cache->find(cache->set_of(key), [&](const Entry& x) {
      return x.key == key && x.root == host_root && x.mode == mode && x.vpid == ctx.vpid &&
             x.pcid == ctx.pcid;
    });
    if (e) {
      cache->touch(e);
      ++hits_[level];
      GuestStart s;
      s.walk = WalkStart{level - 1, e->table_gpa, e->rights};
      s.table_hpa = e->table_hpa;
      s.cached = true;
      s.cold_refs = e->cold_refs;
      return s;
    }
  }
  ++misses_;
  GuestStart s;
  s.walk = WalkStart{top_level(mode), state.root_table(), Rights{}};
  return s;
}

void GuestPsc::insert(uint64_t va, const TlbContext& ctx, const PagingState& state,
                      uint64_t host_root, int level, uint64_t next_table_gpa,
                      uint64_t next_table_hpa, const Rights& rights, uint16_t cold_refs) {
  auto& cache = caches_[level];
  if (level < 2 || level > 5 || !cache) return;
  const PagingMode mode = state.mode();
  const uint64_t key = linear_bits(mode, va) >> level_shift(mode, level);
  Entry* e = cache->find(cache->set_of(key), [&](const Entry& x) {
    return x.key == key && x.root == host_root && x.mode == mode && x.vpid == ctx.vpid &&
           x.pcid == ctx.pcid;
  });
  if (!e) {
    e = &cache->victim(cache->set_of(key));
    if (e->valid) ++evictions_[level];
  }
  *e = Entry{key,      host_root, next_table_gpa, next_table_hpa, ctx.vpid,
             ctx.pcid, mode,      cold_refs,      rights,         true};
  cache->touch(e);
  ++fills_[level];
}

template <typename Pred>
void GuestPsc::invalidate_if(Pred&& pred) {
  for (auto& c : caches_) {
    if (c) c->invalidate_if(pred);
  }
}

void GuestPsc::flush_all() {
  invalidate_if([](const Entry&) { return true; });
}
void GuestPsc::flush_vpid(uint16_t vpid) {
  invalidate_if([vpid](const Entry& e) { return e.vpid == vpid; });
}
void GuestPsc::flush_pcid(const TlbContext& ctx) {
  invalidate_if([ctx](const Entry& e) { return e.vpid == ctx.vpid && e.pcid == ctx.pcid; });
}
void GuestPsc::invalidate_root(uint64_t host_root) {
  invalidate_if([host_root](const Entry& e) { return e.root == host_root; });
}

uint64_t GuestPsc::valid_count(int level) const {
  return has_cache(level) ? caches_[level]->valid_count() : 0;
}

void GuestPsc::register_stats(StatsGroup g) {
  g.counter("lookups", &lookups_, "lookups", "guest paging-structure-cache lookups");
  g.counter("misses", &misses_, "lookups", "lookups with no hit at any level");
  for (int level = 2; level <= 5; ++level) {
    if (!caches_[level]) continue;
    StatsGroup l = g.sub(guest_level_name(level));
    l.counter("hits", &hits_[level], "lookups", "deepest hit at this level");
    l.counter("fills", &fills_[level], "entries", "entries written");
    l.counter("evictions", &evictions_[level], "entries", "valid entries replaced");
  }
}

}  // namespace shadowsim
