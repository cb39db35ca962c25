#include "shadow/shadow_paging.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/error.h"
#include "paging/guest_memory.h"

namespace shadowsim {
namespace {

constexpr uint64_t kEntriesPerPage = kPageSize / 8;

uint64_t round_up4(uint64_t n) { return (n + 3) / 4 * 4; }

// Xen common.c sh_remove_shadows masks[]: the types that can point at a shadow of `type`.
uint32_t parent_mask(ShadowType type) {
  auto bit = [](ShadowType t) { return 1u << static_cast<unsigned>(t); };
  switch (type) {
    case ShadowType::kL1_32: return bit(ShadowType::kL2_32);
    case ShadowType::kL1Pae: return bit(ShadowType::kL2Pae);
    case ShadowType::kL1_64: return bit(ShadowType::kL2_64);
    case ShadowType::kL2_64: return bit(ShadowType::kL3_64);
    case ShadowType::kL3_64: return bit(ShadowType::kL4_64);
    default: return 0;
  }
}

constexpr uint32_t kL1Mask = (1u << 1) | (1u << 2) | (1u << 4) | (1u << 5) | (1u << 8) |
                             (1u << 9);  // l1_32 fl1_32 l1_pae fl1_pae l1_64 fl1_64

// Order of sh_remove_shadows and of validation (L1s before L2s before L3s before L4s).
constexpr std::array<ShadowType, 8> kUnshadowOrder = {
    ShadowType::kL1_32, ShadowType::kL2_32, ShadowType::kL1Pae, ShadowType::kL2Pae,
    ShadowType::kL1_64, ShadowType::kL2_64, ShadowType::kL3_64, ShadowType::kL4_64};
constexpr std::array<ShadowType, 8> kValidateOrder = {
    ShadowType::kL1_32, ShadowType::kL1Pae, ShadowType::kL1_64, ShadowType::kL2_32,
    ShadowType::kL2Pae, ShadowType::kL2_64, ShadowType::kL3_64, ShadowType::kL4_64};

}  // namespace

uint64_t ShadowPaging::min_pool_pages(PagingMode guest_mode, unsigned vcpus) {
  const bool pae = shadow_paging_mode(shadow_mode_for(guest_mode)) == PagingMode::kPae;
  const uint64_t pdpt_pages = pae ? (vcpus + 127) / 128 : 0;
  return round_up4(128ULL * vcpus + pdpt_pages);
}

ShadowPaging::ShadowPaging(GuestMemory& memory, uint64_t guest_frames, uint64_t pool_first_frame,
                           uint64_t pool_pages, PagingMode guest_mode, unsigned vcpus,
                           ShadowParams params)
    : memory_(memory),
      guest_frames_(guest_frames),
      guest_mode_(guest_mode),
      mode_(shadow_mode_for(guest_mode)),
      params_(params),
      pool_(pool_first_frame, pool_pages),
      hash_(static_cast<uint32_t>(pool_pages)),
      magic_(params.fast_fault_path),
      pages_(pool_pages),
      frames_(guest_frames),
      vcpus_(vcpus),
      default_state_(guest_mode) {
  if (vcpus == 0) throw Error("shadow paging: expected at least one VCPU");
  const uint64_t min_pages = min_pool_pages(guest_mode, vcpus);
  if (pool_pages < min_pages) {
    throw Error(fmt::format("shadow pool of {} pages is too small for {} VCPUs: at least {} "
                            "(Xen shadow_min_acceptable_pages: 128 per VCPU)", pool_pages, vcpus,
                            min_pages));
  }
  if (pool_first_frame < guest_frames) {
    throw Error(fmt::format("shadow pool at frame {:#x} overlaps guest RAM (frames below {:#x})",
                            pool_first_frame, guest_frames));
  }
  if ((pool_first_frame + pool_pages) > memory.frame_count()) {
    throw Error(fmt::format("shadow pool [{:#x}, {:#x}) extends past machine memory ({:#x} "
                            "frames)", pool_first_frame, pool_first_frame + pool_pages,
                            memory.frame_count()));
  }
  if (shadow_paging_mode(mode_) == PagingMode::kPae) {
    if ((pool_first_frame + pool_pages) > (1ULL << 20)) {
      throw Error(fmt::format("shadow pool of {} pages at frame {:#x} ends above 4 GiB: PAE "
                              "shadows need a 32-bit CR3", pool_pages, pool_first_frame));
    }
    pdpt_mfn_ = pool_.alloc(0);
    for (unsigned i = 128; i < vcpus; i += 128) pool_.alloc(0);  // contiguous: lowest first
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

const PagingState& ShadowPaging::guest_state(unsigned vcpu) const {
  const Vcpu& v = vcpus_.at(vcpu);
  if (!v.guest) throw Error(fmt::format("shadow paging: VCPU {} has no CR3 loaded", vcpu));
  return *v.guest;
}

const PagingState& ShadowPaging::reserved_state(unsigned vcpu) const {
  const Vcpu& v = vcpus_.at(vcpu);
  return v.guest ? *v.guest : default_state_;
}

bool ShadowPaging::guest_nx(unsigned vcpu) const {
  return guest_mode_ != PagingMode::k32Bit && reserved_state(vcpu).controls().efer_nxe;
}

bool ShadowPaging::is_page_table(uint64_t gfn) const {
  return gfn < guest_frames_ && frames_.get(gfn).promoted();
}

FrameState ShadowPaging::frame_state(uint64_t gfn) const {
  return gfn < guest_frames_ ? frames_.get(gfn) : FrameState{};
}

uint64_t ShadowPaging::read_sentry(uint64_t pa, ShadowWork& work) const {
  ++work.shadow_entries_read;
  return memory_.read64(pa);
}

void ShadowPaging::write_sentry(uint64_t pa, uint64_t value, ShadowWork& work) {
  ++work.shadow_entries_written;
  memory_.write64(pa, value);
}

LeafContext ShadowPaging::leaf_context(unsigned vcpu, uint64_t gentry, bool reserved) const {
  LeafContext ctx;
  const uint64_t gfn = (gentry & sentry::kAddressMask) >> kPageShift;
  ctx.target_ram = gfn_is_ram(gfn);
  ctx.target_is_page_table = is_page_table(gfn);
  ctx.guest_reserved = reserved;
  ctx.guest_nx = guest_nx(vcpu);
  ctx.magic = magic_;
  return ctx;
}

// ---------------------------------------------------------------------------------------------
// Shadow lifetime: hash, allocation, promotion, references, pinning

uint32_t ShadowPaging::lookup(uint64_t gfn, ShadowType type, ShadowWork& work) const {
  ++work.hash_lookups;
  uint32_t steps = 0;
  const uint32_t id = hash_.lookup(gfn, type, &steps);
  work.hash_chain_steps += steps;
  return id;
}

std::optional<uint64_t> ShadowPaging::find_shadow(uint64_t gfn, ShadowType type) const {
  const uint32_t id = hash_.find(gfn, type);
  if (id == kNoShadow) return std::nullopt;
  return mfn_of(id);
}

uint32_t ShadowPaging::make_shadow(uint64_t gfn, ShadowType type, ShadowWork& work) {
  const int order = shadow_order(type);
  const uint32_t id = id_of(pool_.alloc(order));
  ++stats_.alloc;
  work.pages_allocated += 1u << order;
  ++work.shadows_created;
  PageInfo& p = pages_[id];
  p = PageInfo{};
  p.type = type;
  p.gfn = gfn;
  if (!is_fl1_type(type)) {  // shadow_promote; FL1 shadows stand for no guest table
    FrameState& f = frames_.at(gfn);
    if (!f.promoted()) {
      ++work.promotions;
      ++stats_.promotions;
    }
    f.shadow_flags |= shadow_flag(type);
  }
  hash_.insert(id, gfn, type);
  ++work.hash_inserts;
  return id;
}

uint32_t ShadowPaging::find_or_make(uint64_t gfn, ShadowType type, ShadowWork& work) {
  const uint32_t id = lookup(gfn, type, work);
  return id != kNoShadow ? id : make_shadow(gfn, type, work);
}

void ShadowPaging::get_ref(uint32_t id, uint64_t entry_pa) {
  PageInfo& p = pages_[id];
  ++p.count;
  // Xen sh_get_ref: remember the first entry that points at a non-top shadow (up-pointer).
  if (entry_pa != 0 && !is_top_type(p.type) && p.up == 0) p.up = entry_pa;
}

void ShadowPaging::put_ref(uint32_t id, uint64_t entry_pa, ShadowWork& work) {
  PageInfo& p = pages_[id];
  if (p.count == 0) throw Error(fmt::format("shadow {:#x}: reference count underflow", mfn_of(id)));
  if (entry_pa != 0 && p.up == entry_pa) p.up = 0;
  if (--p.count == 0) destroy_shadow(id, work);
}

void ShadowPaging::destroy_shadow(uint32_t id, ShadowWork& work) {
  const PageInfo p = pages_[id];
  const uint64_t base = pa_of(id);
  const int pages = 1 << shadow_order(p.type);
  const uint64_t entries = kEntriesPerPage * static_cast<uint64_t>(pages);
  hash_.erase(id);
  ++work.hash_deletes;
  pages_[id].type = ShadowType::kNone;
  // Drop what the entries hold: writable-mapping counts (L1) or child references (upper).
  if (is_l1_type(p.type)) {
    for (uint64_t i = 0; i < entries; ++i) {
      const uint64_t e = read_sentry(base + 8 * i, work);
      if (sentry::writable_mapping(e) && gfn_is_ram(sentry::frame(e))) {
        --frames_[sentry::frame(e)].writable_count;
      }
    }
  } else {
    const uint64_t step = p.type == ShadowType::kL2_32 ? 2 : 1;
    for (uint64_t i = 0; i < entries; i += step) {
      const uint64_t e = read_sentry(base + 8 * i, work);
      if (sentry::present(e)) put_ref(id_of(sentry::frame(e)), base + 8 * i, work);
    }
  }
  if (!is_fl1_type(p.type)) {  // shadow_demote
    FrameState& f = frames_.at(p.gfn);
    f.shadow_flags &= static_cast<uint16_t>(~shadow_flag(p.type));
    if (!f.promoted()) {
      ++work.demotions;
      ++stats_.demotions;
    }
  }
  for (int i = 0; i < pages; ++i) memory_.zero_frame(mfn_of(id) + i);
  pool_.free(mfn_of(id), shadow_order(p.type));
  work.pages_freed += pages;
  ++work.shadows_destroyed;
  ++stats_.shadows_freed;
  ++freed_generation_;
  for (Vcpu& v : vcpus_) {  // Xen shadow_free: no longer safe to search this shadow first
    if (v.last_writeable_pte_smfn >= mfn_of(id) && v.last_writeable_pte_smfn < mfn_of(id) + pages) {
      v.last_writeable_pte_smfn = 0;
    }
  }
}

void ShadowPaging::pin(uint32_t id) {
  PageInfo& p = pages_[id];
  if (p.pinned) {
    pinned_.erase(p.pin_pos);
  } else {
    p.pinned = true;
    get_ref(id, 0);
  }
  pinned_.push_front(id);
  p.pin_pos = pinned_.begin();
}

void ShadowPaging::unpin(uint32_t id, ShadowWork& work) {
  PageInfo& p = pages_[id];
  if (!p.pinned) return;
  pinned_.erase(p.pin_pos);
  p.pinned = false;
  ++work.unpins;
  put_ref(id, 0, work);
}

bool ShadowPaging::in_use_by_vcpu(uint32_t id) const {
  for (const Vcpu& v : vcpus_) {
    if (std::find(v.top.begin(), v.top.end(), id) != v.top.end()) return true;
  }
  return false;
}

void ShadowPaging::prealloc(ShadowType type, unsigned count, ShadowWork& work) {
  const int order = shadow_order(type);
  if (pool_.space_is_available(order, count)) return;
  work.reclaimed = true;
  // Stage 1: unpin top-level shadows no VCPU uses, least recently pinned first.
  ++stats_.prealloc_1;
  std::vector<uint32_t> candidates;
  for (auto it = pinned_.rbegin(); it != pinned_.rend(); ++it) {
    if (!in_use_by_vcpu(*it)) candidates.push_back(*it);
  }
  for (uint32_t id : candidates) {
    unpin(id, work);
    if (pool_.space_is_available(order, count)) return;
  }
  // Stage 2: unhook every entry of every VCPU's top-level shadows; every PCPU must flush.
  ++stats_.prealloc_2;
  work.flush_all_pcpus = true;
  for (Vcpu& v : vcpus_) {
    for (uint32_t id : v.top) {
      if (id == kNoShadow) continue;
      unhook_top(id, work);
      if (pool_.space_is_available(order, count)) return;
    }
  }
  throw Error(fmt::format("shadow pool of {} pages cannot hold {} more {} shadow(s) even after "
                          "reclaim ({} pages free)", pool_.total_pages(), count, to_string(type),
                          pool_.free_pages()));
}

void ShadowPaging::unhook_top(uint32_t id, ShadowWork& work) {
  const PageInfo& p = pages_[id];
  const bool pair = p.type == ShadowType::kL2_32;
  const uint64_t entries = kEntriesPerPage << shadow_order(p.type);
  const uint64_t base = pa_of(id);
  for (uint64_t i = 0; i < entries; i += pair ? 2 : 1) {
    if (sentry::present(read_sentry(base + 8 * i, work))) {
      set_upper(base + 8 * i, 0, pair, work);
      ++work.unhooked_entries;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Entry writes

bool ShadowPaging::set_l1e_at(uint64_t entry_pa, uint64_t value, ShadowWork& work) {
  const uint64_t old = read_sentry(entry_pa, work);
  if (old == value) return false;
  write_sentry(entry_pa, value, work);
  if (sentry::writable_mapping(value) && gfn_is_ram(sentry::frame(value))) {
    ++frames_[sentry::frame(value)].writable_count;
  }
  if (sentry::writable_mapping(old) && gfn_is_ram(sentry::frame(old))) {
    --frames_[sentry::frame(old)].writable_count;
  }
  if (!sentry::present(old)) return false;
  // Xen shadow_set_l1e: a flush unless the new entry keeps the frame and only adds rights.
  const bool same_frame = sentry::present(value) && sentry::frame(value) == sentry::frame(old);
  const uint64_t rights = pte::kWritable | pte::kUser;
  const bool more_rights = same_frame && (value & old & rights) == (old & rights) &&
                           !((value & pte::kExecuteDisable) && !(old & pte::kExecuteDisable));
  return !more_rights;
}

bool ShadowPaging::set_l1e(const ShadowL1Slot& slot, uint64_t value, ShadowWork& work) {
  const bool flush = set_l1e_at(slot.entry_pa, value, work);
  work.flush_needed = work.flush_needed || flush;
  return flush;
}

bool ShadowPaging::set_upper(uint64_t entry_pa, uint64_t value, bool pair, ShadowWork& work) {
  const uint64_t old = read_sentry(entry_pa, work);
  if (old == value) return false;
  write_sentry(entry_pa, value, work);
  // 2-on-3: one guest PDE is two PAE PDEs pointing at the two pages of the order-1 L1 shadow.
  if (pair) write_sentry(entry_pa + 8, value ? value + kPageSize : 0, work);
  if (sentry::present(value)) get_ref(id_of(sentry::frame(value)), entry_pa);
  if (sentry::present(old)) {
    put_ref(id_of(sentry::frame(old)), entry_pa, work);
    return true;  // a lower-level table disappeared or changed: always flush
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// CR3

void ShadowPaging::set_toplevel(unsigned vcpu, unsigned slot, uint64_t gfn, ShadowType type,
                                ShadowWork& work) {
  Vcpu& v = vcpus_[vcpu];
  uint32_t id = kNoShadow;
  if (type != ShadowType::kNone) {
    id = lookup(gfn, type, work);
    if (id == kNoShadow) {
      prealloc(type, 1, work);
      id = make_shadow(gfn, type, work);
    }
    pin(id);
    get_ref(id, 0);  // the VCPU's reference (v->arch.shadow_table[slot])
  }
  const uint32_t old = v.top[slot];
  v.top[slot] = id;
  if (old != kNoShadow) put_ref(old, 0, work);
}

void ShadowPaging::write_pdpt(unsigned vcpu, ShadowWork& work) {
  const Vcpu& v = vcpus_[vcpu];
  const uint64_t base = (pdpt_mfn_ << kPageShift) + 32ULL * vcpu;
  for (unsigned i = 0; i < 4; ++i) {
    uint64_t e = 0;
    if (mode_ == ShadowMode::k2on3) {
      e = (pa_of(v.top[0]) + i * kPageSize) | pte::kPresent;
    } else if (v.top[i] != kNoShadow) {
      e = pa_of(v.top[i]) | pte::kPresent;  // PDPTE: P and the address only
    }
    write_sentry(base + 8 * i, e, work);
  }
}

Cr3Result ShadowPaging::update_cr3(unsigned vcpu, const PagingState& guest, ShadowWork& work) {
  Vcpu& v = vcpus_.at(vcpu);
  if (guest.mode() != guest_mode_) {
    throw Error(fmt::format("shadow paging of a {} guest: VCPU {} loaded a {} CR3 (paging-mode "
                            "changes are not modelled)", to_string(guest_mode_), vcpu,
                            to_string(guest.mode())));
  }
  const uint64_t pool_end = (pool_.first_frame() + pool_.total_pages()) << kPageShift;
  if (pool_end > (1ULL << guest.features().maxphyaddr)) {
    throw Error(fmt::format("shadow pool ends at {:#x}, beyond MAXPHYADDR {} bits", pool_end,
                            guest.features().maxphyaddr));
  }
  // Magic entries need reserved address bits (Xen HEAD types.h sh_l1e_gnp).
  magic_ = params_.fast_fault_path &&
           (mode_ != ShadowMode::k4on4 || guest.features().maxphyaddr < 52);
  ++stats_.cr3_updates;
  v.guest = guest;
  v.vtlb.flush();
  bool flush = false;
  const uint64_t root_gfn = guest.root_table() >> kPageShift;
  switch (mode_) {
    case ShadowMode::k2on3:
      flush = remove_write_access(vcpu, root_gfn, 2, 0, work);
      set_toplevel(vcpu, 0, root_gfn, ShadowType::kL2_32, work);
      break;
    case ShadowMode::k3on3: {
      std::array<uint64_t, 4> gfns{};
      for (unsigned i = 0; i < 4; ++i) {
        const uint64_t e = guest.pdpte(i);
        gfns[i] = (e & pte::kPresent) ? (e & guest.address_mask()) >> kPageShift : kNoGfn;
        if (gfns[i] != kNoGfn && !gfn_is_ram(gfns[i])) gfns[i] = kNoGfn;
        ++work.p2m_lookups;
        if (gfns[i] != kNoGfn) flush = remove_write_access(vcpu, gfns[i], 2, 0, work) || flush;
      }
      for (unsigned i = 0; i < 4; ++i) {
        set_toplevel(vcpu, i, gfns[i], gfns[i] == kNoGfn ? ShadowType::kNone : ShadowType::kL2Pae,
                     work);
      }
      break;
    }
    case ShadowMode::k4on4:
      flush = remove_write_access(vcpu, root_gfn, 4, 0, work);
      set_toplevel(vcpu, 0, root_gfn, ShadowType::kL4_64, work);
      break;
  }
  if (shadow_paging_mode(mode_) == PagingMode::kPae) {
    write_pdpt(vcpu, work);
    v.shadow_cr3 = (pdpt_mfn_ << kPageShift) + 32ULL * vcpu;
  } else {
    v.shadow_cr3 = pa_of(v.top[0]);
  }
  work.flush_needed = work.flush_needed || flush;
  return Cr3Result{v.shadow_cr3, flush};
}

PagingState ShadowPaging::shadow_state(unsigned vcpu) const {
  const PagingState& g = guest_state(vcpu);
  PagingControls controls = g.controls();
  controls.cr4_pcide = false;
  CpuFeatures features = g.features();
  features.page_1gb = false;
  PagingState s(shadow_paging_mode(mode_), controls, features);
  if (!s.load_cr3(vcpus_[vcpu].shadow_cr3, memory_)) {
    throw Error(fmt::format("shadow PDPT of VCPU {} has reserved bits set", vcpu));
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Guest walk and its re-check

GuestWalk ShadowPaging::guest_walk(unsigned vcpu, uint64_t va, const Access& access,
                                   ShadowWork& work) const {
  const PagingState& g = guest_state(vcpu);
  ++stats_.guest_walk;
  GuestWalk w;
  w.vcpu = vcpu;
  w.va = va;
  w.access = access;
  w.result = walk(memory_, g, va, access);
  WalkResult& r = w.result;
  // A table outside guest RAM: Xen's walk finds no RAM behind the gfn and treats the entry
  // pointing at it as not present (the walk stops there and the fault goes to the guest).
  for (uint8_t i = 0; i < r.ref_count; ++i) {
    if (gfn_is_ram(r.refs[i].entry_pa >> kPageShift)) continue;
    r.outcome = WalkOutcome::kPageFault;
    r.error_code = access_error_bits(access, g.controls(), guest_mode_);
    r.stop_level = static_cast<int8_t>(r.refs[i].level + 1);
    r.ref_count = i;
    r.update_count = 0;
    break;
  }
  if (guest_mode_ == PagingMode::kPae && r.outcome != WalkOutcome::kNonCanonical) {
    const unsigned i = static_cast<unsigned>(level_index(guest_mode_, 3, va));
    GuestWalkLevel& l3 = w.levels[3];
    l3.valid = true;
    l3.table_gfn = g.root_table() >> kPageShift;
    l3.entry_pa = g.root_table() + 8 * i;
    l3.value = g.pdpte(i);
  }
  for (uint8_t i = 0; i < r.ref_count; ++i) {
    const PageTableRef& ref = r.refs[i];
    GuestWalkLevel& l = w.levels[ref.level];
    l.valid = true;
    l.table_gfn = ref.entry_pa >> kPageShift;
    l.entry_pa = ref.entry_pa;
    l.value = ref.value;
    l.width = ref.width;
  }
  for (uint8_t i = 0; i < r.update_count; ++i) w.levels[r.updates[i].level].value =
      r.updates[i].new_value;
  work.guest_entries_read += r.ref_count;
  // One gfn -> mfn per table below the (mapped) top one, and one for the target.
  work.p2m_lookups += r.ref_count > 0 ? r.ref_count - (guest_mode_ == PagingMode::kPae ? 0 : 1)
                                      : 0;
  if (!w.ok()) return w;
  ++work.p2m_lookups;
  const Translation& t = r.translation;
  if (t.size == PageSize::k1G) {
    throw Error(fmt::format("guest 1 GiB page at {:#x}: Xen does not offer 1 GiB pages to "
                            "shadowed guests (set cpu.page_1gb=false)", va));
  }
  w.gfn = t.pa >> kPageShift;
  w.pse = t.size != PageSize::k4K;
  if (w.pse) {
    const unsigned index = static_cast<unsigned>((va - t.page_va) >> kPageShift);
    w.l1e = splinter_superpage(guest_mode_, w.levels[2].value, index);
  } else {
    w.l1e = w.levels[1].value;
  }
  return w;
}

unsigned ShadowPaging::apply_walk_ad(const GuestWalk& walk, ShadowWork& work) {
  unsigned written = 0;
  for (uint8_t i = 0; i < walk.result.update_count; ++i) {
    const EntryWrite& u = walk.result.updates[i];
    if (memory_.read(u.entry_pa, u.width) != u.old_value) continue;  // cmpxchg failed
    memory_.write(u.entry_pa, u.new_value, u.width);
    ++written;
  }
  work.guest_entries_written += written;
  return written;
}

bool ShadowPaging::check_gwalk(const GuestWalk& walk, ShadowWork& work) const {
  ++stats_.check_gwalk;
  const PagingState& g = guest_state(walk.vcpu);
  bool same = true;
  for (int level = top_level(guest_mode_); level >= 1 && same; --level) {
    const GuestWalkLevel& l = walk.levels[level];
    if (!l.valid || (level == 1 && walk.pse)) continue;
    uint64_t now;
    if (guest_mode_ == PagingMode::kPae && level == 3) {
      now = g.pdpte(static_cast<unsigned>(level_index(guest_mode_, 3, walk.va)));
    } else {
      now = memory_.read(l.entry_pa, l.width);
      ++work.guest_entries_read;
    }
    same = now == l.value;
  }
  if (!same) ++stats_.inconsistent_gwalk;
  return same;
}

// ---------------------------------------------------------------------------------------------
// Write-access removal (sh_remove_write_access and its heuristics)

std::optional<uint64_t> ShadowPaging::shadow_l1e_pa(unsigned vcpu, uint64_t va,
                                                    ShadowWork& work) const {
  const Vcpu& v = vcpus_[vcpu];
  if (v.top[0] == kNoShadow && mode_ != ShadowMode::k3on3) return std::nullopt;
  uint64_t l2e_pa = 0;
  switch (mode_) {
    case ShadowMode::k4on4: {
      if (!is_canonical(PagingMode::k4Level, va)) return std::nullopt;
      uint64_t table = pa_of(v.top[0]);
      for (int level = 4; level >= 3; --level) {
        const uint64_t e = read_sentry(table + 8 * level_index(PagingMode::k4Level, level, va),
                                       work);
        if (!sentry::present(e)) return std::nullopt;
        table = e & sentry::kAddressMask;
      }
      l2e_pa = table + 8 * level_index(PagingMode::k4Level, 2, va);
      break;
    }
    case ShadowMode::k3on3: {
      if (va >> 32) return std::nullopt;
      const uint32_t top = v.top[(va >> 30) & 3];
      if (top == kNoShadow) return std::nullopt;
      l2e_pa = pa_of(top) + 8 * ((va >> 21) & 511);
      break;
    }
    case ShadowMode::k2on3:
      if (va >> 32) return std::nullopt;
      l2e_pa = pa_of(v.top[0]) + 8 * (va >> 21);
      break;
  }
  const uint64_t l2e = read_sentry(l2e_pa, work);
  if (!sentry::present(l2e)) return std::nullopt;
  return (l2e & sentry::kAddressMask) + 8 * ((va >> 12) & 511);
}

bool ShadowPaging::guess_wrmap(unsigned vcpu, uint64_t va, uint64_t gfn, ShadowWork& work) {
  ++work.heuristic_probes;
  const auto pa = shadow_l1e_pa(vcpu, va, work);
  if (!pa) return false;
  const uint64_t e = read_sentry(*pa, work);
  if (!sentry::writable_mapping(e) || sentry::frame(e) != gfn) return false;
  set_l1e_at(*pa, e & ~pte::kWritable, work);
  ++work.write_mappings_removed;
  return true;
}

bool ShadowPaging::rm_write_access_from_l1(unsigned vcpu, uint32_t id, uint64_t gfn,
                                           ShadowWork& work) {
  const uint64_t base = pa_of(id);
  const uint64_t entries = kEntriesPerPage << shadow_order(pages_[id].type);
  bool found = false;
  for (uint64_t i = 0; i < entries; ++i) {
    ++work.bf_entries_scanned;
    const uint64_t e = read_sentry(base + 8 * i, work);
    if (!sentry::writable_mapping(e) || sentry::frame(e) != gfn) continue;
    set_l1e_at(base + 8 * i, e & ~pte::kWritable, work);
    ++work.write_mappings_removed;
    vcpus_[vcpu].last_writeable_pte_smfn = mfn_of(id);
    found = true;
    if (frames_[gfn].writable_count == 0) break;  // Xen: "done = 1"
  }
  return found;
}

bool ShadowPaging::remove_write_access(unsigned vcpu, uint64_t gfn, int level, uint64_t fault_va,
                                       ShadowWork& work) {
  if (!gfn_is_ram(gfn)) return false;
  FrameState& f = frames_[gfn];
  if (f.promoted() || f.writable_count == 0) return false;  // early exit: the common case
  ++stats_.writeable;
  auto done = [&](WriteHeuristic h) {
    work.heuristic_hit = h;
    work.flush_needed = true;
    return true;
  };
  if (params_.writable_heuristic && level != 0 && params_.guess_list != WriteGuessList::kNone) {
    // Heuristic 1: the mapping is probably in the current tables, in the guest's linear map.
    const bool head = params_.guess_list == WriteGuessList::kXenHead;
    const uint64_t gaddr = gfn << kPageShift;
    const uint64_t fva = head ? fault_va & ((1ULL << 48) - 1) : fault_va;  // HEAD: VADDR_MASK
    bool stop = false;
    auto guess = [&](uint64_t va, int h) {
      if (stop) return;
      if (guess_wrmap(vcpu, va, gfn, work)) ++stats_.writeable_h[h];
      if (f.writable_count == 0) {
        work.heuristic_hit = static_cast<WriteHeuristic>(h);
        stop = true;
      }
    };
    switch (guest_mode_) {
      case PagingMode::k32Bit:
        if (level == 1) guess(0xC0000000ULL + (fault_va >> 10), 1);  // w2k3 linear map
        if (gfn < 0x38000) guess(0xC0000000ULL + gaddr, 4);          // Linux lowmem (896 MiB)
        if (head && level == 1) guess(0xBFC00000ULL + (fva >> 10), 6);  // FreeBSD linear map
        break;
      case PagingMode::kPae:
        if (level == 1) guess(0xC0000000ULL + (fault_va >> 9), 2);
        if (level == 2) guess(0xC0600000ULL + (fault_va >> 18), 2);
        if (gfn < 0x38000) guess(0xC0000000ULL + gaddr, 4);
        if (head && level == 1) guess(0xBF800000ULL + (fva >> 9), 6);
        if (head && level == 2) guess(0xBFDFC000ULL + (fva >> 18), 6);
        break;
      case PagingMode::k4Level:
        if (head) {
          if (level == 1) guess(0xfffff68000000000ULL + (fva >> 9), 3);
          if (level == 2) guess(0xfffff6fb40000000ULL + (fva >> 18), 3);
          if (level == 3) guess(0xfffff6fb7da00000ULL + (fva >> 27), 3);
          guess(0xffff880000000000ULL + gaddr, 4);
        } else {
          if (level == 1) guess(0x70000000000ULL + (fault_va >> 9), 3);
          if (level == 2) guess(0x70380000000ULL + (fault_va >> 18), 3);
          if (level == 3) guess(0x70381C00000ULL + (fault_va >> 27), 3);
        }
        guess(0xffff810000000000ULL + gaddr, 4);
        guess(0x0000010000000000ULL + gaddr, 4);
        if (head) {
          guess(0xfffffe0000000000ULL + gaddr, 4);  // Solaris kpm
          if (level == 1) guess(0xffff800000000000ULL + (fva >> 9), 6);
          if (level == 2) guess(0xffff804000000000ULL + (fva >> 18), 6);
          if (level == 3) guess(0xffff804020000000ULL + (fva >> 27), 6);
          guess(0xffffff0000000000ULL + gaddr, 6);  // FreeBSD direct map
        }
        break;
      case PagingMode::k5Level:
        break;
    }
    if (f.writable_count == 0) {
      work.flush_needed = true;
      return true;
    }
  }
  if (params_.writable_heuristic) {
    // Heuristic 2: the shadow L1 where the last brute-force search found a mapping.
    const uint64_t last = vcpus_[vcpu].last_writeable_pte_smfn;
    if (last != 0 && is_l1_type(pages_[id_of(last)].type)) {
      ++work.heuristic_probes;
      const uint32_t before = f.writable_count;
      rm_write_access_from_l1(vcpu, id_of(last), gfn, work);
      if (f.writable_count != before) ++stats_.writeable_h[5];
      if (f.writable_count == 0) return done(WriteHeuristic::kH5);
    }
  }
  // Brute force over every L1 and FL1 shadow of the domain.
  ++stats_.writeable_bf;
  hash_.for_each(kL1Mask, [&](uint32_t id) {
    ++work.bf_shadows_scanned;
    rm_write_access_from_l1(vcpu, id, gfn, work);
    return f.writable_count == 0;
  });
  if (f.writable_count != 0) {
    throw Error(fmt::format("shadow: {} writable mappings of frame {:#x} not found in any "
                            "shadow L1", f.writable_count, gfn));
  }
  return done(WriteHeuristic::kBruteForce);
}

bool ShadowPaging::gw_remove_write_accesses(const GuestWalk& walk, ShadowWork& work) {
  bool flush = false;
  const auto& l = walk.levels;
  if (mode_ == ShadowMode::k4on4 && l[3].valid) {
    flush = remove_write_access(walk.vcpu, l[3].table_gfn, 3, walk.va, work) || flush;
  }
  if (mode_ != ShadowMode::k2on3 && l[2].valid) {
    flush = remove_write_access(walk.vcpu, l[2].table_gfn, 2, walk.va, work) || flush;
  }
  if (!walk.pse && l[1].valid) {
    flush = remove_write_access(walk.vcpu, l[1].table_gfn, 1, walk.va, work) || flush;
  }
  return flush;
}

// ---------------------------------------------------------------------------------------------
// Creating and filling shadow entries

ShadowL1Slot ShadowPaging::get_and_create_l1e(const GuestWalk& walk, ShadowWork& work) {
  if (!walk.ok()) throw Error("get_and_create_l1e: the guest walk faulted");
  const Vcpu& v = vcpus_[walk.vcpu];
  const uint64_t va = walk.va;
  const bool nx = guest_nx(walk.vcpu);
  const auto& gl = walk.levels;
  uint64_t l2_table = 0;  // machine address of the shadow L2 (2-on-3: of all four pages)
  uint64_t l2_offset = 0;
  switch (mode_) {
    case ShadowMode::k4on4: {
      uint64_t table = pa_of(v.top[0]);
      for (int level = 4; level >= 3; --level) {
        const uint64_t epa = table + 8 * level_index(PagingMode::k4Level, level, va);
        uint64_t e = read_sentry(epa, work);
        if (!sentry::present(e)) {
          const ShadowType child_type = table_type(mode_, level - 1);
          const uint32_t child = find_or_make(gl[level - 1].table_gfn, child_type, work);
          set_upper(epa, propagate_upper(gl[level].value, pa_of(child), false, false, nx), false,
                    work);
          e = memory_.read64(epa);
        }
        table = e & sentry::kAddressMask;
      }
      l2_table = table;
      l2_offset = 8 * level_index(PagingMode::k4Level, 2, va);
      break;
    }
    case ShadowMode::k3on3:
      l2_table = pa_of(v.top[(va >> 30) & 3]);
      l2_offset = 8 * ((va >> 21) & 511);
      break;
    case ShadowMode::k2on3:
      l2_table = pa_of(v.top[0]);
      l2_offset = 8 * (va >> 21);
      break;
  }
  const bool pair = mode_ == ShadowMode::k2on3;
  const uint64_t l2e_pa = l2_table + l2_offset;
  uint64_t l2e = read_sentry(l2e_pa, work);
  // Re-do the L2 entry if absent, or to fix a read-only PSE entry on a write (Xen: "if we need
  // to re-do it to fix a PSE dirty bit").
  const bool write = walk.access.kind == AccessKind::kWrite;
  if (!sentry::present(l2e) || (write && walk.pse && !(l2e & pte::kWritable))) {
    const uint32_t child =
        walk.pse ? find_or_make(superpage_first_gfn(guest_mode_, gl[2].value), fl1_type(mode_),
                                work)
                 : find_or_make(gl[1].table_gfn, l1_type(mode_), work);
    // Both 2-on-3 halves are written from the first entry of the pair.
    const uint64_t pair_pa = pair ? l2_table + 16 * (va >> 22) : l2e_pa;
    set_upper(pair_pa, propagate_upper(gl[2].value, pa_of(child), walk.pse, false, nx), pair,
              work);
    l2e = memory_.read64(l2e_pa);
  }
  const uint64_t l1_page = l2e & sentry::kAddressMask;
  ShadowL1Slot slot;
  slot.entry_pa = l1_page + 8 * ((va >> 12) & 511);
  // L1 and FL1 shadows of a mode have the same order; the pool is aligned to four pages.
  const uint64_t order_mask = (1ULL << shadow_order(l1_type(mode_))) - 1;
  slot.shadow_mfn = (l1_page >> kPageShift) & ~order_mask;
  return slot;
}

uint64_t ShadowPaging::propagate_l1e(const GuestWalk& walk, ShadowWork& work) const {
  ++work.p2m_lookups;
  return propagate_leaf(walk.l1e, leaf_context(walk.vcpu, walk.l1e, false));
}

unsigned ShadowPaging::prefetch(const ShadowL1Slot& slot, const GuestWalk& walk,
                                ShadowWork& work) {
  if (!params_.prefetch) return 0;
  const uint64_t dist = std::min<uint64_t>((kPageSize - (slot.entry_pa & (kPageSize - 1))) / 8,
                                           params_.prefetch_distance);
  const int gw = guest_entry_width();
  const uint64_t reserved = reserved_state(walk.vcpu).reserved_mask(1, false);
  const unsigned sp_entries = guest_mode_ == PagingMode::k32Bit ? 1024 : 512;
  const unsigned sp_index = static_cast<unsigned>((walk.va >> 12) & (sp_entries - 1));
  unsigned filled = 0;
  for (uint64_t i = 1; i < dist; ++i) {
    const uint64_t spa = slot.entry_pa + 8 * i;
    if (read_sentry(spa, work) != 0) break;  // no point if there is already a shadow
    uint64_t g;
    bool bad = false;
    if (!walk.pse) {
      g = memory_.read(walk.levels[1].entry_pa + gw * i, gw);
      ++work.guest_entries_read;
      const bool p = g & pte::kPresent;
      if (p && (!(g & pte::kAccessed) || ((g & pte::kWritable) && !(g & pte::kDirty)))) break;
      bad = p && (g & reserved);
    } else {
      if (sp_index + i >= sp_entries) break;
      g = splinter_superpage(guest_mode_, walk.levels[2].value,
                             static_cast<unsigned>(sp_index + i));
    }
    ++work.p2m_lookups;
    set_l1e_at(spa, propagate_leaf(g, leaf_context(walk.vcpu, g, bad)), work);
    ++filled;
  }
  work.prefetched += filled;
  stats_.prefetched += filled;
  return filled;
}

void ShadowPaging::reset_early_unshadow(unsigned vcpu) {
  vcpus_.at(vcpu).last_emulated_gfn = kNoGfn;
}

// ---------------------------------------------------------------------------------------------
// Emulated writes: validation, early unshadow, unshadowing

uint64_t ShadowPaging::upper_value(unsigned vcpu, int level, uint64_t gentry,
                                   ShadowWork& work) const {
  const PagingState& rs = reserved_state(vcpu);
  const bool nx = guest_nx(vcpu);
  if (!(gentry & pte::kPresent)) return 0;
  const bool large = level > 1 && (gentry & pte::kPageSize) && rs.large_page_level(level);
  if (level == 3 && large) return 0;  // 1 GiB guest pages are not shadowed
  const bool reserved = (gentry & rs.reserved_mask(level, large)) != 0;
  uint32_t child = kNoShadow;
  ++work.p2m_lookups;
  if (large) {
    child = lookup(superpage_first_gfn(guest_mode_, gentry), fl1_type(mode_), work);
  } else {
    const uint64_t gfn = (gentry & rs.address_mask()) >> kPageShift;
    if (gfn_is_ram(gfn)) child = lookup(gfn, table_type(mode_, level - 1), work);
  }
  if (child == kNoShadow) return 0;
  return propagate_upper(gentry, pa_of(child), large, reserved, nx);
}

void ShadowPaging::validate_entry(unsigned vcpu, ShadowType type, uint64_t gfn, uint64_t index,
                                  ValidateResult& result, ShadowWork& work) {
  const uint32_t id = lookup(gfn, type, work);
  if (id == kNoShadow) return;
  const int gw = guest_entry_width();
  const uint64_t gentry = memory_.read((gfn << kPageShift) + index * gw, gw);
  ++work.guest_entries_read;
  ++work.validations;
  const int level = shadow_level(type);
  bool flush;
  if (level == 1) {
    ++stats_.validate_gl1e_calls;
    const bool reserved = (gentry & reserved_state(vcpu).reserved_mask(1, false)) != 0;
    ++work.p2m_lookups;
    flush = set_l1e_at(pa_of(id) + 8 * index,
                       propagate_leaf(gentry, leaf_context(vcpu, gentry, reserved)), work);
  } else {
    (level == 2 ? stats_.validate_gl2e_calls
     : level == 3 ? stats_.validate_gl3e_calls : stats_.validate_gl4e_calls)++;
    const bool pair = type == ShadowType::kL2_32;
    flush = set_upper(pa_of(id) + 8 * index * (pair ? 2 : 1), upper_value(vcpu, level, gentry,
                                                                           work),
                      pair, work);
  }
  result.flush_needed = result.flush_needed || flush;
}

ValidateResult ShadowPaging::validate_guest_write(unsigned vcpu, uint64_t gfn, uint64_t offset,
                                                  int width, uint64_t old_value,
                                                  ShadowWork& work) {
  ValidateResult result;
  Vcpu& v = vcpus_.at(vcpu);
  if (!gfn_is_ram(gfn) || offset + width > kPageSize || (width != 4 && width != 8) ||
      offset % width != 0) {
    throw Error(fmt::format("validate_guest_write: {}-byte write at offset {:#x} of frame {:#x}: "
                            "expected an aligned 4- or 8-byte write inside guest RAM", width,
                            offset, gfn));
  }
  const uint64_t written = memory_.read((gfn << kPageShift) + offset, width);
  const int gw = guest_entry_width();
  // Early unshadow: two PTE-aligned zero writes to one frame in a row (Xen
  // check_for_early_unshadow; is_lo_pte: the low half of a PAE/64-bit entry).
  if (params_.early_unshadow) {
    const bool lo_pte = gw == 4 || (offset & 4) == 0;
    if ((written & 0xffffffffULL) == 0 && lo_pte) {
      if (v.last_emulated_gfn == gfn && frames_[gfn].promoted()) {
        ++stats_.early_unshadow;
        result.early_unshadowed = true;
        const RemoveShadowsResult r = remove_shadows(gfn, true, work);
        result.flush_needed = r.flush_needed;
      }
      v.last_emulated_gfn = gfn;
    } else {
      v.last_emulated_gfn = kNoGfn;
    }
  }
  const uint16_t flags = frames_[gfn].shadow_flags;
  if (flags == 0) return result;
  // SKIP_VERIFY: PTE-sized aligned write with P clear before and after.
  if (params_.skip_verify && !(old_value & pte::kPresent) && !(written & pte::kPresent)) {
    const uint16_t shf32 = shadow_flag(ShadowType::kL1_32) | shadow_flag(ShadowType::kL2_32);
    const bool ok64 = !(flags & shf32) && offset % 8 == 0 && width <= 8;
    const bool ok32 = (flags & ~shf32) == 0 && offset % 4 == 0 && width <= 4;
    if (ok64 || ok32) {
      ++stats_.validate_skipped;
      result.skipped = true;
      return result;
    }
  }
  const uint64_t first = offset / gw;
  const uint64_t last = (offset + width - 1) / gw;
  for (uint64_t index = first; index <= last; ++index) {
    for (ShadowType t : kValidateOrder) {
      if (frames_[gfn].shadow_flags & shadow_flag(t)) validate_entry(vcpu, t, gfn, index, result,
                                                                     work);
    }
  }
  work.flush_needed = work.flush_needed || result.flush_needed;
  return result;
}

void ShadowPaging::remove_references_to(uint32_t id, ShadowWork& work) {
  const uint64_t target = mfn_of(id);
  const uint32_t mask = parent_mask(pages_[id].type);
  std::vector<std::pair<uint64_t, bool>> refs;  // parent entry, pair
  hash_.for_each(mask, [&](uint32_t parent) {
    const bool pair = pages_[parent].type == ShadowType::kL2_32;
    const uint64_t entries = kEntriesPerPage << shadow_order(pages_[parent].type);
    for (uint64_t i = 0; i < entries; i += pair ? 2 : 1) {
      const uint64_t e = read_sentry(pa_of(parent) + 8 * i, work);
      if (sentry::present(e) && sentry::frame(e) == target) {
        refs.emplace_back(pa_of(parent) + 8 * i, pair);
      }
    }
    return false;
  });
  for (const auto& [pa, pair] : refs) {
    set_upper(pa, 0, pair, work);
    ++work.unhooked_entries;
  }
}

RemoveShadowsResult ShadowPaging::remove_shadows(uint64_t gfn, bool fast, ShadowWork& work) {
  RemoveShadowsResult result;
  if (!is_page_table(gfn)) {
    result.removed_all = true;
    return result;
  }
  ++stats_.unshadow;
  for (ShadowType t : kUnshadowOrder) {
    if (!(frames_[gfn].shadow_flags & shadow_flag(t))) continue;
    const uint32_t id = lookup(gfn, t, work);
    if (id == kNoShadow) throw Error(fmt::format("frame {:#x}: flag {} without a shadow", gfn,
                                                 to_string(t)));
    if (is_top_type(t)) {
      unpin(id, work);
    } else if (pages_[id].up != 0) {
      // sh_remove_shadow_via_pointer: clear the first parent entry that links it.
      const uint64_t up = pages_[id].up;
      const uint32_t parent = id_of(up >> kPageShift);
      const uint32_t parent_head = pages_[parent].type != ShadowType::kNone
                                       ? parent
                                       : parent & ~3u;  // a page inside an l2_32 shadow
      const bool pair = pages_[parent_head].type == ShadowType::kL2_32;
      set_upper(up, 0, pair, work);
      ++work.unhooked_entries;
    }
    // Still shadowed (no up-pointer, or more parents): every reference goes (Xen's
    // DO_UNSHADOW reuses the shadow it found; nothing was freed in between).
    if (!fast && (frames_[gfn].shadow_flags & shadow_flag(t))) remove_references_to(id, work);
  }
  result.removed_all = !is_page_table(gfn);
  result.flush_needed = true;  // Xen flushes after every sh_remove_shadows
  work.flush_needed = true;
  return result;
}

// ---------------------------------------------------------------------------------------------
// invlpg

InvlpgResult ShadowPaging::invlpg(unsigned vcpu, uint64_t va, ShadowWork& work) {
  ++stats_.invlpg;
  vcpus_.at(vcpu).vtlb.flush();
  InvlpgResult r;
  const Vcpu& v = vcpus_[vcpu];
  uint64_t l2e = 0;
  if (mode_ == ShadowMode::k4on4) {
    if (!is_canonical(PagingMode::k4Level, va) || v.top[0] == kNoShadow) return r;
    uint64_t table = pa_of(v.top[0]);
    for (int level = 4; level >= 2; --level) {
      const uint64_t e = read_sentry(table + 8 * level_index(PagingMode::k4Level, level, va),
                                     work);
      if (!sentry::present(e)) return r;  // no shadow below: nothing to invalidate
      table = e & sentry::kAddressMask;
      l2e = e;
    }
  } else {
    if (va >> 32) return r;
    const uint64_t pdpte =
        read_sentry((pdpt_mfn_ << kPageShift) + 32ULL * vcpu + 8 * ((va >> 30) & 3), work);
    if (!(pdpte & pte::kPresent)) return r;
    l2e = read_sentry((pdpte & sentry::kAddressMask) + 8 * ((va >> 21) & 511), work);
    if (!sentry::present(l2e)) return r;
  }
  const uint32_t child = id_of(sentry::frame(l2e));
  const uint32_t head = pages_[child].type != ShadowType::kNone ? child : child & ~1u;
  if (is_fl1_type(pages_[head].type)) {
    r.local_flush = true;  // splintered superpage: flush the whole local TLB
  } else {
    r.hardware_invlpg = true;
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Audit support

void ShadowPaging::for_each_shadow(const std::function<void(const ShadowInfo&)>& fn) const {
  for (uint32_t id = 0; id < pages_.size(); ++id) {
    const PageInfo& p = pages_[id];
    if (p.type == ShadowType::kNone) continue;
    fn(ShadowInfo{mfn_of(id), p.type, p.gfn, p.count, p.pinned});
  }
}

void ShadowPaging::for_each_shadow_entry_of(
    uint64_t gfn, const std::function<void(const ShadowEntryView&)>& fn) const {
  const int gw = guest_entry_width();
  std::vector<uint32_t> ids;  // the frame's table shadows, then an FL1 keyed by it
  const uint16_t flags = frame_state(gfn).shadow_flags;
  for (ShadowType t : kValidateOrder) {
    if (flags & shadow_flag(t)) ids.push_back(hash_.find(gfn, t));
  }
  const uint32_t fl1 = hash_.find(gfn, fl1_type(mode_));
  if (fl1 != kNoShadow) ids.push_back(fl1);
  for (uint32_t id : ids) {
    const PageInfo& p = pages_.at(id);
    const uint64_t entries = kEntriesPerPage << shadow_order(p.type);
    const int level = shadow_level(p.type);
    for (uint64_t i = 0; i < entries; ++i) {
      ShadowEntryView view;
      view.type = p.type;
      view.shadow_mfn = mfn_of(id);
      view.level = level;
      view.sentry_pa = pa_of(id) + 8 * i;
      view.sentry = memory_.read64(view.sentry_pa);
      if (is_fl1_type(p.type)) {
        view.gentry = ((gfn + i) << kPageShift) | pte::kPresent | pte::kWritable | pte::kUser |
                      pte::kAccessed | pte::kDirty;
      } else {
        const uint64_t gi = p.type == ShadowType::kL2_32 ? i / 2 : i;
        view.gentry_pa = (gfn << kPageShift) + gi * gw;
        view.gentry = memory_.read(view.gentry_pa, gw);
        if (level == 2) {
          view.guest_pse = (view.gentry & pte::kPageSize) &&
                           reserved_state(0).large_page_level(2);
        }
      }
      if (level > 1 && sentry::present(view.sentry)) {
        uint32_t child = id_of(sentry::frame(view.sentry));
        if (pages_[child].type == ShadowType::kNone) child &= ~1u;  // second half of order 1
        view.child_gfn = pages_[child].gfn;
        view.child_type = pages_[child].type;
      }
      fn(view);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Statistics

void ShadowPaging::register_stats(StatsGroup g) {
  auto c = [&g](const char* name, uint64_t* v, const char* unit, const char* what) {
    g.counter(name, v, unit, what);
  };
  c("shadow_guest_walk", &stats_.guest_walk, "walks", "guest walks by the shadow code");
  c("shadow_check_gwalk", &stats_.check_gwalk, "checks", "guest walks re-read and compared");
  c("shadow_inconsistent_gwalk", &stats_.inconsistent_gwalk, "checks",
    "re-checks that found a changed guest entry");
  c("shadow_prealloc_1", &stats_.prealloc_1, "calls", "reclaims that unpinned shadows");
  c("shadow_prealloc_2", &stats_.prealloc_2, "calls",
    "reclaims that unhooked the VCPUs' top-level shadows (flush all PCPUs)");
  c("shadow_writeable", &stats_.writeable, "calls",
    "write-access removals past the early exit");
  static const char* const h_names[7] = {"", "shadow_writeable_h_1", "shadow_writeable_h_2",
                                         "shadow_writeable_h_3", "shadow_writeable_h_4",
                                         "shadow_writeable_h_5", "shadow_writeable_h_6"};
  static const char* const h_what[7] = {
      "", "writable mappings found by the 32-bit w2k3 linear-map guess",
      "writable mappings found by the PAE w2k3 linear-map guess",
      "writable mappings found by the 64-bit w2k3 linear-map guess",
      "writable mappings found by the Linux (Solaris) direct-map guess",
      "writable mappings found in the last brute-force hit's shadow L1",
      "writable mappings found by the FreeBSD guesses"};
  for (int h = 1; h <= 6; ++h) c(h_names[h], &stats_.writeable_h[h], "hits", h_what[h]);
  c("shadow_writeable_bf", &stats_.writeable_bf, "calls",
    "brute-force searches of all L1 shadows");
  c("shadow_early_unshadow", &stats_.early_unshadow, "calls", "early unshadows");
  c("shadow_unshadow", &stats_.unshadow, "calls", "removals of a shadowed frame's shadows");
  c("shadow_validate_gl1e_calls", &stats_.validate_gl1e_calls, "calls",
    "guest L1 entries re-validated");
  c("shadow_validate_gl2e_calls", &stats_.validate_gl2e_calls, "calls",
    "guest L2 entries re-validated");
  c("shadow_validate_gl3e_calls", &stats_.validate_gl3e_calls, "calls",
    "guest L3 entries re-validated");
  c("shadow_validate_gl4e_calls", &stats_.validate_gl4e_calls, "calls",
    "guest L4 entries re-validated");
  c("validate_skipped", &stats_.validate_skipped, "writes",
    "emulated writes not re-validated (SKIP_VERIFY)");
  c("shadow_alloc", &stats_.alloc, "shadows", "shadows allocated");
  c("shadows_freed", &stats_.shadows_freed, "shadows", "shadows freed");
  c("promotions", &stats_.promotions, "frames", "guest frames that became page tables");
  c("demotions", &stats_.demotions, "frames", "guest frames that stopped being page tables");
  c("prefetched", &stats_.prefetched, "entries", "shadow L1 entries filled by prefetch");
  c("shadow_invlpg", &stats_.invlpg, "calls", "guest invlpg handled");
  c("cr3_updates", &stats_.cr3_updates, "calls", "guest CR3 loads shadowed");
  c("shadow_hash_lookups", &hash_.lookups, "lookups", "calls to shadow_hash_lookup");
  c("shadow_hash_lookup_head", &hash_.lookup_head, "lookups", "hash hits in the bucket head");
  c("shadow_hash_lookup_miss", &hash_.lookup_miss, "lookups", "hash misses");
  c("shadow_hash_inserts", &hash_.inserts, "calls", "calls to shadow_hash_insert");
  c("shadow_hash_deletes", &hash_.deletes, "calls", "calls to shadow_hash_delete");
  g.formula("pool_pages_in_use", [this] { return static_cast<double>(pool_.used_pages()); },
            "pages", "shadow pool pages in use (now)");
  g.formula("pool_pages_peak", [this] { return static_cast<double>(pool_.peak_used_pages()); },
            "pages", "most shadow pool pages in use at once");
  g.formula("pool_pages", [this] { return static_cast<double>(pool_.total_pages()); }, "pages",
            "shadow pool size");
}

}  // namespace shadowsim
