#include "paging/page_table_editor.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/error.h"
#include "paging/frame_allocator.h"
#include "paging/guest_memory.h"

namespace shadowsim {

uint64_t DirectPageTableStore::read_entry(uint64_t pa, int width) {
  return memory_.read(pa, width);
}

void DirectPageTableStore::write_entry(const EntryWrite& write) {
  memory_.write(write.entry_pa, write.new_value, write.width);
  if (keep_log_) writes.push_back(write);
}

void DirectPageTableStore::zero_frame(uint64_t frame) {
  memory_.zero_frame(frame);
  if (keep_log_) zeroed_frames.push_back(frame);
}

namespace {

bool is_ia32e(PagingMode mode) {
  return mode == PagingMode::k4Level || mode == PagingMode::k5Level;
}

// Last address of the lower canonical half (IA-32e) or of the 32-bit space.
uint64_t lower_half_last(PagingMode mode) {
  return is_ia32e(mode) ? (1ULL << (linear_address_bits(mode) - 1)) - 1 : 0xffffffffULL;
}

}  // namespace

PageTableEditor::PageTableEditor(PagingMode mode, PagingControls controls, CpuFeatures features,
                                 FrameAllocator& frames, PageTableStore& store)
    : mode_(mode), controls_(controls), features_(features), frames_(frames), store_(store),
      width_(entry_width(mode)), entries_per_table_(mode == PagingMode::k32Bit ? 1024 : 512),
      address_mask_(PagingState(mode, PagingControls{}, features).address_mask()),
      kernel_base_(is_ia32e(mode) ? ~lower_half_last(mode) : 0xc0000000ULL) {}

void PageTableEditor::set_kernel_base(uint64_t kernel_base) {
  if (!is_canonical(mode_, kernel_base) || kernel_base % kPageSize) {
    throw Error(fmt::format("kernel base {:#x}: expected a page-aligned {} linear address",
                            kernel_base, to_string(mode_)));
  }
  kernel_base_ = kernel_base;
}

void PageTableEditor::set_table_frame_placement(int level, uint64_t frame_limit,
                                                uint64_t preferred_first) {
  if (level < 1 || level > top_level(mode_)) {
    throw Error(fmt::format("table frame limit for level {}: {} paging has levels 1..{}", level,
                            to_string(mode_), top_level(mode_)));
  }
  table_frame_limit_[level] = frame_limit;
  table_frame_preferred_[level] = preferred_first;
}

void PageTableEditor::set_kernel_template(uint64_t root) { kernel_template_ = root; }

uint64_t PageTableEditor::new_table(int level) {
  // 32-bit entries reach only the first 4 GiB; so does a PAE CR3 (the PDPT).
  constexpr uint64_t k4GFrames = 1ULL << 20;
  const bool below_4g = mode_ == PagingMode::k32Bit || (mode_ == PagingMode::kPae && level == 3);
  const uint64_t limit =
      std::min<uint64_t>(table_frame_limit_[level], below_4g ? k4GFrames : ~0ULL);
  uint64_t frame = table_frame_preferred_[level]
                       ? frames_.allocate_preferring(table_frame_preferred_[level])
                       : limit == ~0ULL ? frames_.allocate() : frames_.allocate_below(limit);
  if (frame >= limit) {  // the preferred frames lie above the limit: take one below it
    frames_.free(frame);
    frame = frames_.allocate_below(limit);
  }
  if (((frame << kPageShift) & ~address_mask_) != 0 ||
      (mode_ == PagingMode::k32Bit && (frame >> 20) != 0)) {
    frames_.free(frame);
    throw Error(fmt::format("table frame {:#x} is not addressable by {} entries", frame,
                            to_string(mode_)));
  }
  store_.zero_frame(frame);
  return frame << kPageShift;
}

uint64_t PageTableEditor::table_entry(uint64_t table_pa, uint64_t va) const {
  uint64_t e = table_pa | pte::kPresent | pte::kWritable | pte::kAccessed | pte::kDirty;
  if (va < kernel_base_) e |= pte::kUser;
  return e;
}

uint64_t PageTableEditor::leaf_entry(uint64_t pa, PageSize size, const PageFlags& f) const {
  uint64_t e = pte::kPresent;
  if (f.writable) e |= pte::kWritable;
  if (f.user) e |= pte::kUser;
  if (f.accessed) e |= pte::kAccessed;
  if (f.dirty) e |= pte::kDirty;
  if (f.global) e |= pte::kGlobal;
  if (f.execute_disable) e |= pte::kExecuteDisable;
  if (f.pat_index & 1) e |= pte::kPwt;
  if (f.pat_index & 2) e |= pte::kPcd;
  if (size == PageSize::k4K) {
    if (f.pat_index & 4) e |= pte::kPat4K;
    return e | pa;
  }
  e |= pte::kPageSize;
  if (f.pat_index & 4) e |= pte::kPatLarge;
  if (size == PageSize::k4M) return e | (pa & 0xffc00000ULL) | ((pa >> 32) << 13);
  return e | pa;
}

void PageTableEditor::store(int level, uint64_t entry_pa, uint64_t old_value, uint64_t new_value) {
  const auto lvl = static_cast<int8_t>(level);
  if (mode_ == PagingMode::kPae && level == 1) {
    const EntryWrite low{entry_pa, old_value & 0xffffffffULL, new_value & 0xffffffffULL, lvl, 4};
    const EntryWrite high{entry_pa + 4, old_value >> 32, new_value >> 32, lvl, 4};
    if (new_value == 0) {  // native_ptep_get_and_clear / native_pte_clear: low, then high
      store_.write_entry(low);
      store_.write_entry(high);
    } else {  // native_set_pte: high, then low (the low half holds P)
      store_.write_entry(high);
      store_.write_entry(low);
    }
    return;
  }
  store_.write_entry(EntryWrite{entry_pa, old_value, new_value, lvl, static_cast<uint8_t>(width_)});
}

bool PageTableEditor::is_leaf(const Slot& s) const {
  if (s.level == 1) return true;
  if (!(s.value & pte::kPageSize)) return false;
  switch (mode_) {
    case PagingMode::k32Bit: return s.level == 2 && controls_.cr4_pse;
    case PagingMode::kPae: return s.level == 2;
    default: return s.level == 2 || (s.level == 3 && features_.page_1gb);
  }
}

PageTableEditor::Slot PageTableEditor::find(uint64_t root, uint64_t va, int stop_level) {
  uint64_t table = root;
  for (int level = top_level(mode_);; --level) {
    const uint64_t entry_pa = table + level_index(mode_, level, va) * width_;
    const Slot s{entry_pa, store_.read_entry(entry_pa, width_), level};
    if (level == stop_level || !(s.value & pte::kPresent) || is_leaf(s)) return s;
    table = s.value & address_mask_;
  }
}

void PageTableEditor::check_range(uint64_t va, uint64_t bytes, uint64_t align,
                                  const char* what) const {
  if (bytes == 0 || va % align || bytes % align) {
    throw Error(fmt::format("{} of {:#x} bytes at {:#x}: address and length must be non-zero "
                            "multiples of {:#x}", what, bytes, va, align));
  }
  const uint64_t last = va + bytes - 1;
  const bool fits = last >= va && is_canonical(mode_, va) && is_canonical(mode_, last) &&
                    (va <= lower_half_last(mode_)) == (last <= lower_half_last(mode_));
  if (!fits) {
    throw Error(fmt::format("{} of {:#x} bytes at {:#x}: the range leaves the {} linear address "
                            "space (or crosses its non-canonical hole)", what, bytes, va,
                            to_string(mode_)));
  }
}

void PageTableEditor::check_flags(uint64_t va, uint64_t bytes, const PageFlags& flags) const {
  if (flags.execute_disable && (mode_ == PagingMode::k32Bit || !controls_.efer_nxe)) {
    throw Error(fmt::format("execute-disable page at {:#x}: needs PAE or IA-32e paging with "
                            "EFER.NXE", va));
  }
  if (flags.user && va + bytes - 1 >= kernel_base_) {
    throw Error(fmt::format("user page at {:#x}: above the kernel base {:#x}, where tables are "
                            "linked without U/S", va + bytes - 1, kernel_base_));
  }
  if (flags.pat_index > 7) {
    throw Error(fmt::format("PAT index {}: expected 0..7", flags.pat_index));
  }
}

void PageTableEditor::check_no_straddle(uint64_t root, uint64_t va, uint64_t bytes,
                                        const char* what) {
  for (const uint64_t probe : {va, va + bytes - 1}) {
    const Slot s = find(root, probe, 1);
    if (!(s.value & pte::kPresent) || s.level == 1) continue;
    const uint64_t size = 1ULL << level_shift(mode_, s.level);
    const uint64_t base = probe & ~(size - 1);
    if (base < va || base + size - 1 > va + bytes - 1) {
      throw Error(fmt::format("{} of [{:#x}, {:#x}): the large page at {:#x} ({:#x} bytes) lies "
                              "only partly inside; splitting large pages is not supported", what,
                              va, va + bytes, base, size));
    }
  }
}

uint64_t PageTableEditor::create_address_space() {
  const int top = top_level(mode_);
  const uint64_t root = new_table(top);
  if (mode_ == PagingMode::kPae) {
    for (uint64_t i = 0; i < 4; ++i) {  // pgd_prepopulate_pmd: PDPTEs hold only P and the address
      const bool shared = kernel_template_ && (i << 30) >= kernel_base_;
      const uint64_t pdpte = shared ? store_.read_entry(kernel_template_ + 8 * i, 8)
                                    : new_table(2) | pte::kPresent;
      store(3, root + 8 * i, 0, pdpte);
    }
  } else if (kernel_template_) {  // clone_pgd_range: the kernel's top-level entries
    const uint64_t first = level_index(mode_, top, kernel_base_);
    for (uint64_t i = first; i < static_cast<uint64_t>(entries_per_table_); ++i) {
      const uint64_t entry = store_.read_entry(kernel_template_ + i * width_, width_);
      if (entry) store(top, root + i * width_, 0, entry);
    }
  }
  return root;
}

void PageTableEditor::destroy_address_space(uint64_t root) {
  destroy_tables(root);
  free_top_level(root);
}

void PageTableEditor::destroy_tables(uint64_t root) {
  if (kernel_template_) {  // the user part only: the kernel's tables are shared
    const uint64_t user_end = is_ia32e(mode_) ? lower_half_last(mode_) + 1 : kernel_base_;
    release_tables(unmap(root, 0, user_end, true));
    return;
  }
  std::vector<uint64_t> detached = unmap(root, 0, lower_half_last(mode_) + 1, true);
  if (is_ia32e(mode_)) {
    const uint64_t first = ~lower_half_last(mode_);
    const std::vector<uint64_t> upper = unmap(root, first, 0 - first, true);
    detached.insert(detached.end(), upper.begin(), upper.end());
  }
  release_tables(detached);
}

// pgd_free: on PAE the page directories go with the PDPT (pgd_mop_up_pmds); the kernel's shared
// one stays.
void PageTableEditor::free_top_level(uint64_t root) {
  std::vector<uint64_t> detached;
  if (mode_ == PagingMode::kPae) {
    for (uint64_t i = 0; i < 4; ++i) {
      if (kernel_template_ && (i << 30) >= kernel_base_) break;
      const uint64_t pdpte = store_.read_entry(root + 8 * i, 8);
      if (!(pdpte & pte::kPresent)) continue;
      store(3, root + 8 * i, pdpte, 0);
      detached.push_back((pdpte & address_mask_) >> kPageShift);
    }
  }
  detached.push_back(root >> kPageShift);
  release_tables(detached);
}

void PageTableEditor::map(uint64_t root, uint64_t va, uint64_t pa, uint64_t bytes, PageSize size,
                          const PageFlags& flags) {
  const bool size_exists =
      size == PageSize::k4K || (size == PageSize::k4M && mode_ == PagingMode::k32Bit &&
                                controls_.cr4_pse) ||
      (size == PageSize::k2M && mode_ != PagingMode::k32Bit) ||
      (size == PageSize::k1G && is_ia32e(mode_) && features_.page_1gb);
  if (!size_exists) {
    throw Error(fmt::format("{} pages do not exist in {} paging{}", to_string(size),
                            to_string(mode_),
                            size == PageSize::k4M ? " without CR4.PSE" : ""));
  }
  const uint64_t align = page_bytes(size);
  check_range(va, bytes, align, "map");
  check_flags(va, bytes, flags);
  const int phys_bits = mode_ != PagingMode::k32Bit ? static_cast<int>(features_.maxphyaddr)
                        : size == PageSize::k4M
                            ? std::min(40, static_cast<int>(features_.maxphyaddr))
                                                : 32;
  if (pa % align || pa + bytes < pa || pa + bytes > (1ULL << phys_bits)) {
    throw Error(fmt::format("map of {:#x} bytes to physical {:#x}: expected a {}-aligned range "
                            "below 2^{}", bytes, pa, to_string(size), phys_bits));
  }
  const int leaf_level = page_level(size);

  for (uint64_t offset = 0; offset < bytes; offset += align) {  // check everything first
    const Slot s = find(root, va + offset, leaf_level);
    if (!(s.value & pte::kPresent)) continue;
    if (s.level > leaf_level || (s.level == leaf_level && !is_leaf(s))) {
      throw Error(fmt::format("map of a {} page at {:#x}: the address is already covered by {}",
                              to_string(size), va + offset,
                              s.level > leaf_level ? "a larger page" : "a page table of smaller "
                                                                       "pages"));
    }
  }
  for (uint64_t offset = 0; offset < bytes; offset += align) {
    const uint64_t page_va = va + offset;
    uint64_t table = root;
    for (int level = top_level(mode_); level > leaf_level; --level) {
      const uint64_t entry_pa = table + level_index(mode_, level, page_va) * width_;
      const uint64_t entry = store_.read_entry(entry_pa, width_);
      if (entry & pte::kPresent) {
        table = entry & address_mask_;
      } else {
        table = new_table(level - 1);
        store(level, entry_pa, entry, table_entry(table, page_va));
      }
    }
    const uint64_t entry_pa = table + level_index(mode_, leaf_level, page_va) * width_;
    store(leaf_level, entry_pa, store_.read_entry(entry_pa, width_),
          leaf_entry(pa + offset, size, flags));
  }
}

template <typename Fn>
void PageTableEditor::for_each_entry(uint64_t table_pa, int level, uint64_t first, uint64_t last,
                                     Fn&& fn) {
  const uint64_t span_mask = (1ULL << level_shift(mode_, level)) - 1;
  for (uint64_t va = first;;) {
    const uint64_t entry_pa = table_pa + level_index(mode_, level, va) * width_;
    const uint64_t slot_last = va | span_mask;
    fn(Slot{entry_pa, store_.read_entry(entry_pa, width_), level}, va, std::min(slot_last, last));
    if (slot_last >= last) return;
    va = slot_last + 1;
  }
}

template <typename Fn>
void PageTableEditor::for_each_leaf(uint64_t table_pa, int level, uint64_t first, uint64_t last,
                                    Fn&& fn) {
  for_each_entry(table_pa, level, first, last, [&](const Slot& s, uint64_t lo, uint64_t hi) {
    if (!(s.value & pte::kPresent)) return;
    if (is_leaf(s)) {
      fn(s, lo);
    } else {
      for_each_leaf(s.value & address_mask_, level - 1, lo, hi, fn);
    }
  });
}

bool PageTableEditor::table_empty(uint64_t table_pa) {
  for (int i = 0; i < entries_per_table_; ++i) {
    if (store_.read_entry(table_pa + static_cast<uint64_t>(i) * width_, width_) != 0) return false;
  }
  return true;
}

void PageTableEditor::prune(uint64_t table_pa, int level, uint64_t first, uint64_t last,
                            std::vector<uint64_t>& detached) {
  for_each_entry(table_pa, level, first, last, [&](const Slot& s, uint64_t lo, uint64_t hi) {
    if (!(s.value & pte::kPresent) || is_leaf(s)) return;
    const uint64_t child = s.value & address_mask_;
    prune(child, level - 1, lo, hi, detached);
    const bool permanent = mode_ == PagingMode::kPae && level == 3;  // preallocated PDs
    if (!permanent && table_empty(child)) {
      store(level, s.entry_pa, s.value, 0);
      detached.push_back(child >> kPageShift);
    }
  });
}

std::vector<uint64_t> PageTableEditor::unmap(uint64_t root, uint64_t va, uint64_t bytes,
                                             bool free_empty_tables) {
  check_range(va, bytes, kPageSize, "unmap");
  check_no_straddle(root, va, bytes, "unmap");
  const uint64_t last = va + bytes - 1;
  for_each_leaf(root, top_level(mode_), va, last,
                [&](const Slot& s, uint64_t) { store(s.level, s.entry_pa, s.value, 0); });
  std::vector<uint64_t> detached;
  if (free_empty_tables) prune(root, top_level(mode_), va, last, detached);
  return detached;
}

void PageTableEditor::protect(uint64_t root, uint64_t va, uint64_t bytes,
                              const PageFlags& rights) {
  check_range(va, bytes, kPageSize, "protect");
  check_flags(va, bytes, rights);
  check_no_straddle(root, va, bytes, "protect");
  constexpr uint64_t kRightsBits =
      pte::kWritable | pte::kUser | pte::kGlobal | pte::kExecuteDisable;
  uint64_t new_rights = 0;
  if (rights.writable) new_rights |= pte::kWritable;
  if (rights.user) new_rights |= pte::kUser;
  if (rights.global) new_rights |= pte::kGlobal;
  if (rights.execute_disable) new_rights |= pte::kExecuteDisable;
  for_each_leaf(root, top_level(mode_), va, va + bytes - 1, [&](const Slot& s, uint64_t) {
    const uint64_t updated = (s.value & ~kRightsBits) | new_rights;
    // 4 KiB: ptep_modify_prot_start clears, commit sets. Large: pmdp_invalidate keeps the entry
    // but clears P, then set_pmd_at.
    const uint64_t interim = s.level == 1 ? 0 : (s.value & ~pte::kPresent);
    store(s.level, s.entry_pa, s.value, interim);
    store(s.level, s.entry_pa, interim, updated);
  });
}

std::optional<PageTableEditor::Leaf> PageTableEditor::leaf(uint64_t root, uint64_t va) {
  const Slot s = find(root, va, 1);
  if (s.level != 1) return std::nullopt;
  return Leaf{s.entry_pa, s.value};
}

void PageTableEditor::set_leaf(uint64_t root, uint64_t va, uint64_t value) {
  const std::optional<Leaf> l = leaf(root, va);
  if (!l) throw Error(fmt::format("set_leaf at {:#x}: no page table maps that address", va));
  store(1, l->entry_pa, l->value, value);
}

uint64_t PageTableEditor::clear_leaf(uint64_t root, uint64_t va) {
  const std::optional<Leaf> l = leaf(root, va);
  if (!l) throw Error(fmt::format("clear_leaf at {:#x}: no page table maps that address", va));
  store(1, l->entry_pa, l->value, 0);
  return l->value;
}

void PageTableEditor::clear_leaf_bits(uint64_t root, uint64_t va, uint64_t bits) {
  const std::optional<Leaf> l = leaf(root, va);
  if (!l) throw Error(fmt::format("clear_leaf_bits at {:#x}: no page table maps that address", va));
  const uint64_t updated = l->value & ~bits;
  if (mode_ == PagingMode::kPae) {
    const bool high = (bits >> 32) != 0;
    if (high && (bits & 0xffffffffULL)) {
      throw Error("clear_leaf_bits: on PAE the bits must lie in one 32-bit half");
    }
    const unsigned shift = high ? 32 : 0;
    store_.write_entry(EntryWrite{l->entry_pa + (high ? 4 : 0), (l->value >> shift) & 0xffffffffULL,
                                  (updated >> shift) & 0xffffffffULL, 1, 4});
    return;
  }
  store_.write_entry(EntryWrite{l->entry_pa, l->value, updated, 1, static_cast<uint8_t>(width_)});
}

void PageTableEditor::for_each_present_leaf(
    uint64_t root, uint64_t va, uint64_t bytes, const std::function<void(uint64_t, uint64_t)>& fn) {
  check_range(va, bytes, kPageSize, "leaf walk");
  for_each_leaf(root, top_level(mode_), va, va + bytes - 1, [&](const Slot& s, uint64_t at) {
    if (s.level != 1) {
      throw Error(fmt::format("leaf walk of [{:#x}, {:#x}): a large page is mapped there", va,
                              va + bytes));
    }
    fn(at, s.value);
  });
}

void PageTableEditor::release_tables(const std::vector<uint64_t>& table_frames) {
  for (const uint64_t frame : table_frames) frames_.free(frame);
}

}  // namespace shadowsim
