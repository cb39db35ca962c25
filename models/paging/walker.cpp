#include "paging/walker.h"

#include <fmt/format.h>

#include "common/error.h"
#include "paging/guest_memory.h"

namespace shadowsim {
namespace {

WalkResult& page_fault(WalkResult& r, int level, uint32_t error_code) {
  r.outcome = WalkOutcome::kPageFault;
  r.error_code = error_code;
  r.stop_level = static_cast<int8_t>(level);
  return r;
}

// Physical base of the page a leaf entry maps.
uint64_t leaf_frame(const PagingState& state, uint64_t entry, int level, uint64_t size) {
  if (state.mode() == PagingMode::k32Bit && level == 2) {
    // 4 MiB page with PSE-36: PA bits 39:32 sit in entry bits 20:13 (reserved ones are zero).
    return (entry & 0xffc00000ULL) | (((entry >> 13) & 0xff) << 32);
  }
  return entry & state.address_mask() & ~(size - 1);
}

}  // namespace

WalkResult walk(const GuestMemory& memory, const PagingState& state, uint64_t va,
                const Access& access) {
  return walk_from(memory, state, va, access,
                   WalkStart{top_level(state.mode()), state.root_table(), Rights{}});
}

WalkResult walk_from(const GuestMemory& memory, const PagingState& state, uint64_t va,
                     const Access& access, const WalkStart& start) {
  WalkResult r;
  const PagingMode mode = state.mode();
  if (!is_canonical(mode, va)) {
    if (linear_address_bits(mode) == 32) {
      throw Error(fmt::format("linear address {:#x} does not fit {} paging's 32 bits", va,
                              to_string(mode)));
    }
    r.outcome = WalkOutcome::kNonCanonical;
    return r;
  }
  if (start.level < 1 || start.level > top_level(mode)) {
    throw Error(fmt::format("walk of {:#x} started at level {}: expected 1..{}", va, start.level,
                            top_level(mode)));
  }
  const PagingControls& controls = state.controls();
  const uint8_t width = static_cast<uint8_t>(entry_width(mode));
  const uint32_t access_bits = access_error_bits(access, controls, mode);
  Rights rights = start.rights;
  uint64_t table = start.table_pa;

  for (int level = start.level; level >= 1; --level) {
    const uint64_t index = (va >> state.shift(level)) & state.index_mask(level);
    uint64_t entry;
    if (mode == PagingMode::kPae && level == 3) {
      entry = state.pdpte(static_cast<unsigned>(index));  // no memory reference, no rights
      if (!(entry & pte::kPresent)) return page_fault(r, level, access_bits);
      table = entry & state.address_mask();
      continue;
    }
    const uint64_t entry_pa = table + index * width;
    entry = width == 8 ? memory.read64(entry_pa) : memory.read32(entry_pa);
    r.refs[r.ref_count++] = PageTableRef{entry_pa, entry, static_cast<int8_t>(level), width};
    if (!(entry & pte::kPresent)) return page_fault(r, level, access_bits);
    const bool large = level > 1 && (entry & pte::kPageSize) && state.large_page_level(level);
    if (entry & state.reserved_mask(level, large)) {
      return page_fault(r, level, pfec::kPresent | pfec::kReserved | access_bits);
    }
    rights.writable = rights.writable && (entry & pte::kWritable);
    rights.user = rights.user && (entry & pte::kUser);
    rights.execute_disable = rights.execute_disable ||
                             (controls.efer_nxe && (entry & pte::kExecuteDisable));
    if (level > 1 && !large) {
      table = entry & state.address_mask();
      continue;
    }

    // Leaf.
    if (const uint32_t ec = check_access(rights, access, controls, mode)) {
      return page_fault(r, level, ec);
    }
    const int shift = state.shift(level);
    const uint64_t size = 1ULL << shift;
    Translation& t = r.translation;
    t.page_pa = leaf_frame(state, entry, level, size);
    t.page_va = va & ~(size - 1);
    t.pa = t.page_pa | (va & (size - 1));
    t.size = level == 1 ? PageSize::k4K
             : level == 3 ? PageSize::k1G
             : mode == PagingMode::k32Bit ? PageSize::k4M
                                          : PageSize::k2M;
    t.rights = rights;
    t.global = controls.cr4_pge && (entry & pte::kGlobal);
    const bool write = access.kind == AccessKind::kWrite;
    t.dirty = write || (entry & pte::kDirty);
    const uint64_t pat = level == 1 ? pte::kPat4K : pte::kPatLarge;
    t.pat_index = static_cast<uint8_t>(((entry & pat) ? 4 : 0) | ((entry & pte::kPcd) ? 2 : 0) |
                                       ((entry & pte::kPwt) ? 1 : 0));
    r.stop_level = static_cast<int8_t>(level);

    // §4.8: A on every entry used, D on the leaf for a write.
    for (uint8_t i = 0; i < r.ref_count; ++i) {
      const PageTableRef& ref = r.refs[i];
      uint64_t updated = ref.value | pte::kAccessed;
      if (i + 1 == r.ref_count && write) updated |= pte::kDirty;
      if (updated != ref.value) {
        r.updates[r.update_count++] =
            EntryWrite{ref.entry_pa, ref.value, updated, ref.level, width};
      }
    }
    return r;
  }
  return r;  // unreachable: level 1 is always a leaf
}

void apply_updates(GuestMemory& memory, const WalkResult& result) {
  for (uint8_t i = 0; i < result.update_count; ++i) {
    const EntryWrite& u = result.updates[i];
    memory.write(u.entry_pa, u.new_value, u.width);
  }
}

}  // namespace shadowsim
