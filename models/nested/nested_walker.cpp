#include "nested/nested_walker.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/error.h"
#include "common/rng.h"
#include "paging/guest_memory.h"

namespace shadowsim {
namespace {

constexpr uint64_t kFrameMask = ~(kPageSize - 1);

// Reserved bits of a present PAE PDPTE (SDM vol. 3A table 4-8; the same list PagingState keeps
// privately for the PDPTE registers): 2:1, 8:5 and MAXPHYADDR..63. AMD's legacy-PAE PDPE
// reserves the same bits (APM vol. 2 §5.3).
uint64_t pae_pdpte_reserved(const PagingState& state) {
  const unsigned m = state.features().maxphyaddr;
  return 0x6ULL | 0x1e0ULL | (~0ULL << m);
}

PageSize host_size_of_shift(uint8_t shift) {
  return shift == 12 ? PageSize::k4K : shift == 21 ? PageSize::k2M : PageSize::k1G;
}

}  // namespace

const char* to_string(NestedOutcome outcome) {
  switch (outcome) {
    case NestedOutcome::kOk: return "ok";
    case NestedOutcome::kGuestPageFault: return "guest-page-fault";
    case NestedOutcome::kGuestNonCanonical: return "guest-non-canonical";
    case NestedOutcome::kGuestGp: return "guest-gp";
    case NestedOutcome::kHostViolation: return "host-violation";
    case NestedOutcome::kHostMisconfig: return "host-misconfig";
  }
  return "?";
}

void NestedParams::validate() const {
  try {
    nested_tlb.validate();
  } catch (const ParamError& e) {
    throw ParamError("nested_tlb." + e.field(), e.what());
  }
  try {
    host_psc.validate();
  } catch (const ParamError& e) {
    throw ParamError("host_psc." + e.field(), e.what());
  }
  try {
    guest_psc.validate();
  } catch (const ParamError& e) {
    throw ParamError("guest_psc." + e.field(), e.what());
  }
}

NestedParams NestedParams::no_caches() {
  NestedParams p;
  p.nested_tlb.entries = 0;
  for (TlbArrayParams* a : {&p.host_psc.pml4e, &p.host_psc.pdpte, &p.host_psc.pde,
                            &p.guest_psc.pml5e, &p.guest_psc.pml4e, &p.guest_psc.pdpte,
                            &p.guest_psc.pde}) {
    a->entries = 0;
  }
  return p;
}

bool NestedWalk::host_covers_guest_rights() const {
  const Rights& r = translation.rights;
  if (!(host_rwx & ept::kRead)) return false;
  if (r.writable && !(host_rwx & ept::kWrite)) return false;
  if (!r.execute_disable && !(host_rwx & ept::kExecute)) return false;
  return true;
}

// What one host translation (nested TLB hit or host walk) gives the 2-D walk.
struct NestedWalker::HostResult {
  bool ok = false;
  uint64_t hpa = 0;
  PageSize size = PageSize::k4K;
  HostRwx rwx = 0;
  bool dirty = true;
  uint8_t memory_type = 0;
  uint8_t cold_refs = 0;  // references of this host walk without any cache
};

namespace {
const NestedParams& validated(const NestedParams& params) {
  params.validate();
  return params;
}
}  // namespace

NestedWalker::NestedWalker(const NestedParams& params, uint64_t seed)
    : nested_tlb_(validated(params).nested_tlb, Rng(seed).next()),
      host_psc_(params.host_psc, Rng(seed + 1).next()),
      guest_psc_(params.guest_psc, Rng(seed + 2).next()) {}

uint32_t NestedWalker::cache_latency(PagingMode guest_mode) const {
  return std::max({nested_tlb_.latency(), host_psc_.latency(), guest_psc_.latency(guest_mode)});
}

void NestedWalker::add_guest_ref(NestedWalk& w, const PageTableRef& ref, uint64_t hpa) {
  w.refs[w.ref_count++] =
      NestedRef{hpa, ref.entry_pa, ref.value, ref.level, ref.level, ref.width, false};
  ++w.guest_ref_count;
}

void NestedWalker::add_host_update(NestedWalk& w, const EntryWrite& u) {
  // Several host walks of one 2-D walk share upper entries: one write per entry.
  for (uint8_t i = 0; i < w.update_count; ++i) {
    NestedUpdate& x = w.updates[i];
    if (x.host && x.hpa == u.entry_pa) {
      x.new_value |= u.new_value;
      return;
    }
  }
  w.updates[w.update_count++] =
      NestedUpdate{u.entry_pa, 0, u.old_value, u.new_value, u.level, u.width, true};
}

void NestedWalker::fail_host(NestedWalk& w, const HostPageTables& host, const HostTranslation& t,
                             uint64_t gpa, AccessKind kind, int guest_level) {
  w.outcome = t.outcome == HostOutcome::kMisconfig ? NestedOutcome::kHostMisconfig
                                                   : NestedOutcome::kHostViolation;
  HostFault& f = w.fault;
  f.gpa = gpa;
  f.final_access = guest_level == 0;
  f.guest_level = static_cast<int8_t>(guest_level);
  f.host_level = t.stop_level;
  f.kind = kind;
  f.allowed = host.kind() == HostPagingKind::kEpt ? t.rwx : 0;
  f.npt_error_code = t.npt_error_code;
}

NestedWalker::HostResult NestedWalker::translate_gpa(const HostPageTables& host, uint64_t gpa,
                                                     AccessKind kind, NestedWalk& w,
                                                     int guest_level) {
  HostResult r;
  if (const NestedTlb::Entry* e = nested_tlb_.lookup(host.root(), gpa, kind)) {
    r.ok = true;
    r.hpa = e->hpa(gpa);
    r.size = host_size_of_shift(e->shift);
    r.rwx = e->rwx;
    r.dirty = e->dirty;
    r.memory_type = e->memory_type;
    r.cold_refs = static_cast<uint8_t>(HostPageTables::kLevels + 1 - e->leaf_level);
    w.saved.nested_tlb = static_cast<uint16_t>(w.saved.nested_tlb + r.cold_refs);
    return r;
  }
  const HostStart start = host_psc_.enabled() ? host_psc_.lookup(host, gpa) : host.top();
  w.saved.host_psc = static_cast<uint16_t>(w.saved.host_psc + HostPageTables::kLevels -
                                           start.level);
  const HostTranslation t = host.translate_from(gpa, kind, start);
  for (uint8_t i = 0; i < t.ref_count; ++i) {
    const HostRef& ref = t.refs[i];
    w.refs[w.ref_count++] = NestedRef{ref.entry_hpa, gpa, ref.value, ref.level,
                                      static_cast<int8_t>(guest_level), 8, true};
  }
  w.host_ref_count = static_cast<uint8_t>(w.host_ref_count + t.ref_count);
  if (!t.ok()) {
    fail_host(w, host, t, gpa, kind, guest_level);
    return r;
  }
  for (uint8_t i = 0; i < t.update_count; ++i) add_host_update(w, t.updates[i]);
  host_psc_.fill(host, gpa, start, t);
  nested_tlb_.fill(host.root(), gpa, t);
  r.ok = true;
  r.hpa = t.hpa;
  r.size = t.size;
  r.rwx = t.rwx;
  r.dirty = t.dirty;
  r.memory_type = t.memory_type;
  r.cold_refs = static_cast<uint8_t>(HostPageTables::kLevels + 1 - t.stop_level);
  return r;
}

NestedWalk NestedWalker::walk(const GuestMemory& guest_memory, const PagingState& guest,
                              const HostPageTables& host, uint64_t va, const Access& access,
                              const TlbContext& ctx) {
  NestedWalk w;
  const PagingMode mode = guest.mode();
  if (guest.features().maxphyaddr > 48) {
    throw Error(fmt::format("guest MAXPHYADDR {}: a 4-level host translates at most 48 "
                            "guest-physical bits",
                            guest.features().maxphyaddr));
  }
  if (!is_canonical(mode, va)) {
    walk_from(guest_memory, guest, va, access, WalkStart{top_level(mode), 0, Rights{}});
    w.outcome = NestedOutcome::kGuestNonCanonical;  // (32-bit modes threw above)
    count(w, host.kind());
    return w;
  }
  // PAE: under EPT the PDPTEs are registers; under NPT the guest PDPT is read on every walk.
  const bool pdpt_in_memory = mode == PagingMode::kPae && host.kind() == HostPagingKind::kNpt;
  const int max_cached_level =
      mode == PagingMode::kPae ? (pdpt_in_memory ? 3 : 2) : top_level(mode);
  GuestStart start;
  if (guest_psc_.enabled()) {
    start = guest_psc_.lookup(va, ctx, guest, host.root(), max_cached_level);
  } else {
    start.walk = WalkStart{top_level(mode), guest.root_table(), Rights{}};
  }
  w.saved.guest_psc = start.cold_refs;

  // 1. The guest's walk on guest memory (native walker), giving the guest references in order.
  std::array<PageTableRef, 5> grefs;
  uint8_t gcount = 0;
  WalkResult g;
  if (pdpt_in_memory && start.walk.level == 3) {
    const uint64_t entry_gpa = guest.root_table() + 8 * level_index(mode, 3, va);
    const uint64_t pdpte = guest_memory.read64(entry_gpa);
    grefs[gcount++] = PageTableRef{entry_gpa, pdpte, 3, 8};
    const uint32_t bits = access_error_bits(access, guest.controls(), mode);
    if (!(pdpte & pte::kPresent)) {
      g.outcome = WalkOutcome::kPageFault;
      g.error_code = bits;
      g.stop_level = 3;
    } else if (pdpte & pae_pdpte_reserved(guest)) {
      g.outcome = WalkOutcome::kPageFault;
      g.error_code = pfec::kPresent | pfec::kReserved | bits;
      g.stop_level = 3;
    } else {
      g = walk_from(guest_memory, guest, va, access,
                    WalkStart{2, pdpte & guest.address_mask(), Rights{}});
    }
  } else {
    g = walk_from(guest_memory, guest, va, access, start.walk);
  }
  for (uint8_t i = 0; i < g.ref_count; ++i) grefs[gcount++] = g.refs[i];

  // 2. Each guest reference: its table's gPA through the host first, then the reference.
  std::array<uint64_t, 5> table_hpa{};
  std::array<uint8_t, 5> cold{};  // cold references of each table's host translation
  // Whether the host lets the guest write each table (A/D updates): a guest PSC entry skips the
  // host check of the table below it, so only a writable table may be cached.
  std::array<bool, 5> table_writable{};
  for (uint8_t i = 0; i < gcount; ++i) {
    const PageTableRef& ref = grefs[i];
    const uint64_t frame_gpa = ref.entry_pa & kFrameMask;
    if (i == 0 && start.cached) {
      table_hpa[i] = start.table_hpa & kFrameMask;
      table_writable[i] = true;  // only writable tables are cached
    } else {
      bool sets_ad = false;
      for (uint8_t u = 0; u < g.update_count; ++u) sets_ad |= g.updates[u].entry_pa == ref.entry_pa;
      const bool as_write = host.kind() == HostPagingKind::kNpt || host.params().ept_ad || sets_ad;
      const HostResult h = translate_gpa(host, frame_gpa,
                                         as_write ? AccessKind::kWrite : AccessKind::kRead, w,
                                         ref.level);
      if (!h.ok) {
        count(w, host.kind());
        return w;
      }
      table_hpa[i] = h.hpa;
      cold[i] = h.cold_refs;
      table_writable[i] = as_write || HostPageTables::allows(h.rwx, AccessKind::kWrite);
    }
    add_guest_ref(w, ref, table_hpa[i] | (ref.entry_pa & ~kFrameMask));
  }
  w.guest_stop_level = g.stop_level;
  if (!g.ok()) {
    w.outcome = NestedOutcome::kGuestPageFault;
    w.error_code = g.error_code;
    count(w, host.kind());
    return w;
  }

  // 3. The guest walk is complete: its A/D updates, and its upper entries for the guest PSCs.
  for (uint8_t u = 0; u < g.update_count; ++u) {
    const EntryWrite& e = g.updates[u];
    uint8_t j = 0;
    while (grefs[j].entry_pa != e.entry_pa) ++j;
    w.updates[w.update_count++] =
        NestedUpdate{table_hpa[j] | (e.entry_pa & ~kFrameMask), e.entry_pa, e.old_value,
                     e.new_value, e.level, e.width, false};
  }
  if (guest_psc_.enabled()) {
    Rights rights = start.walk.rights;
    uint16_t prefix = start.cold_refs;
    const bool nxe = guest.controls().efer_nxe;
    for (uint8_t i = 0; i + 1 < gcount; ++i) {
      const PageTableRef& ref = grefs[i];
      prefix = static_cast<uint16_t>(prefix + cold[i] + 1);
      if (!(mode == PagingMode::kPae && ref.level == 3)) {  // a PAE PDPTE has no rights bits
        rights.writable = rights.writable && (ref.value & pte::kWritable);
        rights.user = rights.user && (ref.value & pte::kUser);
        rights.execute_disable =
            rights.execute_disable || (nxe && (ref.value & pte::kExecuteDisable));
      }
      if (!table_writable[i + 1]) break;  // a later walk must see the host refuse its A/D write
      guest_psc_.insert(va, ctx, guest, host.root(), ref.level, grefs[i + 1].entry_pa & kFrameMask,
                        table_hpa[i + 1], rights, static_cast<uint16_t>(prefix + cold[i + 1]));
    }
  }

  // 4. The final guest-physical address.
  const uint64_t gpa = g.translation.pa;
  w.gpa = gpa;
  const HostResult h = translate_gpa(host, gpa, access.kind, w, 0);
  if (!h.ok) {
    count(w, host.kind());
    return w;
  }
  Translation t = g.translation;
  const uint64_t guest_bytes = page_bytes(t.size);
  const uint64_t host_bytes = page_bytes(h.size);
  const uint64_t bytes = std::min(guest_bytes, host_bytes);
  if (host_bytes < guest_bytes) t.size = h.size;
  t.pa = h.hpa;
  t.page_pa = h.hpa & ~(bytes - 1);
  t.page_va = va & ~(bytes - 1);
  t.dirty = t.dirty && h.dirty;
  w.translation = t;
  w.host_rwx = h.rwx;
  w.memory_type = h.memory_type;
  count(w, host.kind());
  return w;
}

NestedWalk NestedWalker::load_guest_cr3(PagingState& guest, const GuestMemory& guest_memory,
                                        const HostPageTables& host, uint64_t cr3) {
  NestedWalk w;
  if (guest.mode() != PagingMode::kPae || host.kind() == HostPagingKind::kNpt) {
    if (!guest.load_cr3(cr3, guest_memory)) w.outcome = NestedOutcome::kGuestGp;
    return w;
  }
  const uint64_t pdpt = cr3 & 0xffffffe0ULL;  // CR3 bits 31:5 (SDM vol. 3A §4.4.1)
  // §28.2.3.2: these loads are reads, even with EPT A/D enabled.
  const HostResult h = translate_gpa(host, pdpt & kFrameMask, AccessKind::kRead, w, 3);
  if (!h.ok) return w;
  for (uint64_t i = 0; i < 4; ++i) {
    const uint64_t entry_gpa = pdpt + 8 * i;
    const PageTableRef ref{entry_gpa, guest_memory.read64(entry_gpa), 3, 8};
    add_guest_ref(w, ref, h.hpa | (entry_gpa & ~kFrameMask));
  }
  if (!guest.load_cr3(cr3, guest_memory)) w.outcome = NestedOutcome::kGuestGp;
  return w;
}

void NestedWalker::flush_all() {
  nested_tlb_.flush_all();
  host_psc_.flush_all();
  guest_psc_.flush_all();
}

void NestedWalker::invept(uint64_t root) {
  nested_tlb_.invalidate(root);
  host_psc_.invalidate(root);
  guest_psc_.invalidate_root(root);
}

void NestedWalker::count(const NestedWalk& w, HostPagingKind kind) {
  ++walks_;
  host_refs_ += w.host_ref_count;
  guest_refs_ += w.guest_ref_count;
  refs_per_walk_.sample(w.ref_count);
  saved_nested_tlb_ += w.saved.nested_tlb;
  saved_host_psc_ += w.saved.host_psc;
  saved_guest_psc_ += w.saved.guest_psc;
  switch (w.outcome) {
    case NestedOutcome::kOk:
      ++ok_;
      break;
    case NestedOutcome::kGuestPageFault:
    case NestedOutcome::kGuestNonCanonical:
    case NestedOutcome::kGuestGp:
      ++guest_faults_;
      break;
    case NestedOutcome::kHostViolation:
      ++(kind == HostPagingKind::kEpt ? ept_violations_ : npt_faults_);
      ++(w.fault.final_access ? host_faults_final_ : host_faults_guest_table_);
      break;
    case NestedOutcome::kHostMisconfig:
      ++ept_misconfigs_;
      ++(w.fault.final_access ? host_faults_final_ : host_faults_guest_table_);
      break;
  }
}

void NestedWalker::register_stats(StatsGroup g) {
  g.counter("walks", &walks_, "walks", "2-D page walks (guest walk through host tables)");
  g.histogram("refs", &refs_per_walk_, "references", "references of one 2-D walk");
  g.counter("host_refs", &host_refs_, "references", "host (nested) page-table references");
  g.counter("guest_refs", &guest_refs_, "references", "guest page-table references");
  g.formula("refs_per_walk", [this] { return ratio(host_refs_ + guest_refs_, walks_); },
            "references", "page-table references per 2-D walk");
  g.formula("host_refs_per_walk", [this] { return ratio(host_refs_, walks_); }, "references",
            "host page-table references per 2-D walk");
  g.formula("guest_refs_per_walk", [this] { return ratio(guest_refs_, walks_); }, "references",
            "guest page-table references per 2-D walk");
  g.counter("ok", &ok_, "walks", "2-D walks that found a host-physical address");
  g.counter("guest_faults", &guest_faults_, "walks", "2-D walks ending in a guest #PF or #GP");
  g.counter("ept_violations", &ept_violations_, "walks", "2-D walks ending in an EPT violation");
  g.counter("npt_faults", &npt_faults_, "walks", "2-D walks ending in #VMEXIT(NPF)");
  g.counter("ept_misconfigs", &ept_misconfigs_, "walks",
            "2-D walks ending in an EPT misconfiguration");
  g.counter("host_faults_guest_table", &host_faults_guest_table_, "walks",
            "host faults translating a guest page-table access");
  g.counter("host_faults_final", &host_faults_final_, "walks",
            "host faults translating the final guest-physical address");
  StatsGroup s = g.sub("saved");
  s.counter("nested_tlb", &saved_nested_tlb_, "references",
            "host references avoided by nested TLB hits");
  s.counter("host_psc", &saved_host_psc_, "references",
            "host references avoided by host paging-structure-cache hits");
  s.counter("guest_psc", &saved_guest_psc_, "references",
            "guest and host references avoided by guest paging-structure-cache hits");
  if (nested_tlb_.enabled()) nested_tlb_.register_stats(g.sub("nested_tlb"));
  if (host_psc_.enabled()) host_psc_.register_stats(g.sub("host_psc"));
  if (guest_psc_.enabled()) guest_psc_.register_stats(g.sub("guest_psc"));
}

void apply_updates(GuestMemory& guest_memory, GuestMemory& host_memory, const NestedWalk& walk) {
  for (uint8_t i = 0; i < walk.update_count; ++i) {
    const NestedUpdate& u = walk.updates[i];
    if (u.host) {
      host_memory.write64(u.hpa, u.new_value);
    } else {
      guest_memory.write(u.gpa, u.new_value, u.width);
    }
  }
}

}  // namespace shadowsim
