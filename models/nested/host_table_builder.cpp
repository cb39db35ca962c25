#include "nested/host_table_builder.h"

#include <fmt/format.h>

#include "common/error.h"
#include "paging/frame_allocator.h"
#include "paging/guest_memory.h"

namespace shadowsim {
namespace {

constexpr int host_shift(int level) { return 12 + 9 * (level - 1); }
uint64_t entry_offset(uint64_t gpa, int level) { return ((gpa >> host_shift(level)) & 511) * 8; }

}  // namespace

HostTableBuilder::HostTableBuilder(GuestMemory& memory, FrameAllocator& frames,
                                   const HostPagingParams& params)
    : memory_(memory), frames_(frames), params_(params) {
  params_.validate();
  address_mask_ = ((1ULL << params_.maxphyaddr) - 1) & ~(kPageSize - 1);
  root_ = new_table();
}

uint64_t HostTableBuilder::new_table() {
  const uint64_t frame = frames_.allocate();
  memory_.zero_frame(frame);
  ++table_frames_;
  return frame << kPageShift;
}

bool HostTableBuilder::present(uint64_t entry) const {
  return params_.kind == HostPagingKind::kEpt ? (entry & ept::kRwx) != 0
                                              : (entry & pte::kPresent) != 0;
}

bool HostTableBuilder::is_leaf(uint64_t entry, int level) const {
  // Bit 7 is the large-page bit in both formats.
  return level == 1 || (entry & pte::kPageSize) != 0;
}

uint64_t HostTableBuilder::table_entry(uint64_t table_hpa) const {
  if (params_.kind == HostPagingKind::kEpt) return table_hpa | ept::kRwx;
  return table_hpa | pte::kPresent | pte::kWritable | pte::kUser;
}

uint64_t HostTableBuilder::leaf_entry(uint64_t hpa, int level, HostRwx rwx,
                                      uint8_t memory_type) const {
  const uint64_t large = level > 1 ? pte::kPageSize : 0;  // bit 7 in both formats
  if (params_.kind == HostPagingKind::kEpt) {
    return hpa | rwx | (static_cast<uint64_t>(memory_type) << ept::kMemoryTypeShift) | large;
  }
  uint64_t e = hpa | pte::kPresent | pte::kUser | large;
  if (rwx & ept::kWrite) e |= pte::kWritable;
  if (!(rwx & ept::kExecute) && params_.npt_nxe) e |= pte::kExecuteDisable;
  return e;
}

void HostTableBuilder::check_rights(HostRwx rwx) const {
  if (rwx & ~ept::kRwx) throw Error(fmt::format("host rights {:#x}: expected R/W/X bits", rwx));
  if (params_.kind == HostPagingKind::kEpt) {
    if ((rwx & (ept::kRead | ept::kWrite)) == ept::kWrite) {
      throw Error("EPT rights: write without read is an EPT misconfiguration");
    }
    if (rwx == ept::kExecute && !params_.ept_execute_only) {
      throw Error("EPT rights: execute-only entries need ept_execute_only");
    }
    return;
  }
  if (!(rwx & ept::kRead)) throw Error("NPT rights: an NPT mapping is always readable");
  if (!(rwx & ept::kExecute) && !params_.npt_nxe) {
    throw Error("NPT rights: no-execute needs npt_nxe (host EFER.NXE)");
  }
}

void HostTableBuilder::map(uint64_t gpa, uint64_t hpa, uint64_t bytes, PageSize size,
                           HostRwx rwx, uint8_t memory_type) {
  if (size == PageSize::k4M) throw Error("host tables have no 4 MiB pages");
  if (size == PageSize::k1G && !params_.page_1gb) {
    throw Error("1 GiB host pages need page_1gb");
  }
  const uint64_t step = page_bytes(size);
  if (bytes == 0 || (gpa | hpa | bytes) & (step - 1)) {
    throw Error(fmt::format("host map of {:#x} -> {:#x}, {:#x} bytes: expected non-empty, {} "
                            "aligned",
                            gpa, hpa, bytes, to_string(size)));
  }
  if (gpa + bytes > HostPageTables::kGpaLimit || gpa + bytes < gpa) {
    throw Error(fmt::format("host map of {:#x}, {:#x} bytes: beyond the 2^48 guest-physical "
                            "space",
                            gpa, bytes));
  }
  if (hpa + bytes > (1ULL << params_.maxphyaddr) || hpa + bytes < hpa) {
    throw Error(fmt::format("host map to {:#x}, {:#x} bytes: beyond MAXPHYADDR {}", hpa, bytes,
                            params_.maxphyaddr));
  }
  check_rights(rwx);
  if (params_.kind == HostPagingKind::kEpt && ept::memory_type_reserved(memory_type)) {
    throw Error(fmt::format("EPT memory type {} is reserved", memory_type));
  }
  const int leaf_level = page_level(size);
  // Pass 1: conflicts with mappings of another size.
  for (uint64_t off = 0; off < bytes; off += step) {
    uint64_t table = root_;
    for (int level = HostPageTables::kLevels; level >= leaf_level; --level) {
      const uint64_t e = memory_.read64(table + entry_offset(gpa + off, level));
      if (!present(e)) break;
      const bool leaf = is_leaf(e, level);
      if (level > leaf_level && leaf) {
        throw Error(fmt::format("host map of {:#x} as {}: a larger page maps it", gpa + off,
                                to_string(size)));
      }
      if (level == leaf_level && !leaf) {
        throw Error(fmt::format("host map of {:#x} as {}: smaller pages map part of it",
                                gpa + off, to_string(size)));
      }
      table = frame_of(e);
    }
  }
  // Pass 2: write.
  for (uint64_t off = 0; off < bytes; off += step) {
    uint64_t table = root_;
    for (int level = HostPageTables::kLevels; level > leaf_level; --level) {
      const uint64_t entry_hpa = table + entry_offset(gpa + off, level);
      uint64_t e = memory_.read64(entry_hpa);
      if (!present(e)) {
        e = table_entry(new_table());
        memory_.write64(entry_hpa, e);
      }
      table = frame_of(e);
    }
    memory_.write64(table + entry_offset(gpa + off, leaf_level),
                    leaf_entry(hpa + off, leaf_level, rwx, memory_type));
  }
}

template <typename Fn>
void HostTableBuilder::for_each_leaf(uint64_t gpa, uint64_t bytes, Fn&& fn) {
  const uint64_t end = gpa + bytes;
  uint64_t p = gpa;
  while (p < end) {
    uint64_t table = root_;
    for (int level = HostPageTables::kLevels; level >= 1; --level) {
      const uint64_t span = 1ULL << host_shift(level);
      const uint64_t entry_hpa = table + entry_offset(p, level);
      const uint64_t e = memory_.read64(entry_hpa);
      const uint64_t base = p & ~(span - 1);
      if (!present(e)) {
        p = base + span;
        break;
      }
      if (is_leaf(e, level)) {
        fn(entry_hpa, e, level, base, span);
        p = base + span;
        break;
      }
      table = frame_of(e);
    }
  }
}

void HostTableBuilder::unmap(uint64_t gpa, uint64_t bytes) {
  auto check = [&](uint64_t, uint64_t, int, uint64_t base, uint64_t span) {
    if (base < gpa || base + span > gpa + bytes) {
      throw Error(fmt::format("host unmap of [{:#x}, {:#x}): the page at {:#x} straddles it",
                              gpa, gpa + bytes, base));
    }
  };
  for_each_leaf(gpa, bytes, check);
  for_each_leaf(gpa, bytes, [&](uint64_t entry_hpa, uint64_t, int, uint64_t, uint64_t) {
    memory_.write64(entry_hpa, 0);
  });
}

void HostTableBuilder::protect(uint64_t gpa, uint64_t bytes, HostRwx rwx) {
  check_rights(rwx);
  auto check = [&](uint64_t, uint64_t, int, uint64_t base, uint64_t span) {
    if (base < gpa || base + span > gpa + bytes) {
      throw Error(fmt::format("host protect of [{:#x}, {:#x}): the page at {:#x} straddles it",
                              gpa, gpa + bytes, base));
    }
  };
  for_each_leaf(gpa, bytes, check);
  for_each_leaf(gpa, bytes, [&](uint64_t entry_hpa, uint64_t e, int level, uint64_t, uint64_t) {
    uint64_t updated;
    if (params_.kind == HostPagingKind::kEpt) {
      updated = (e & ~static_cast<uint64_t>(ept::kRwx)) | rwx;
    } else {
      updated = e & ~(pte::kWritable | pte::kExecuteDisable);
      if (rwx & ept::kWrite) updated |= pte::kWritable;
      if (!(rwx & ept::kExecute)) updated |= pte::kExecuteDisable;
    }
    (void)level;
    memory_.write64(entry_hpa, updated);
  });
}

std::optional<uint64_t> HostTableBuilder::entry_hpa(uint64_t gpa, int level) const {
  if (level < 1 || level > HostPageTables::kLevels) {
    throw Error(fmt::format("host entry level {}: expected 1..4", level));
  }
  uint64_t table = root_;
  for (int l = HostPageTables::kLevels; l > level; --l) {
    const uint64_t e = memory_.read64(table + entry_offset(gpa, l));
    if (!present(e) || is_leaf(e, l)) return std::nullopt;
    table = frame_of(e);
  }
  return table + entry_offset(gpa, level);
}

}  // namespace shadowsim
