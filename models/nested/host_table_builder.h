// Builds host (EPT or NPT) page tables in host memory, the way a hypervisor sets up a VM's
// guest-physical address space: map guest-physical ranges to host-physical ranges with 4 KiB,
// 2 MiB or 1 GiB pages (identity maps and arbitrary ones), unmap, and change rights. Used by
// tests, benchmarks and the simulator's system assembly.
//
// Entries written: EPT tables R|W|X (rights are restricted at the leaf), leaves rights | memory
// type << 3 | (large page); NPT tables P|RW|U/S, leaves P|U/S|(RW)|(XD) — every NPT access is a
// user access. A and D start clear (the walks set them). New tables are zeroed, then linked.
#pragma once

#include <cstdint>
#include <optional>

#include "nested/host_paging.h"
#include "paging/paging_types.h"

namespace shadowsim {

class FrameAllocator;
class GuestMemory;

class HostTableBuilder {
 public:
  // Table frames come from `frames` (frames of `memory`). Allocates and zeroes the root.
  HostTableBuilder(GuestMemory& memory, FrameAllocator& frames, const HostPagingParams& params);

  uint64_t root() const { return root_; }
  HostPageTables tables() const { return HostPageTables(memory_, params_, root_); }

  // Maps [gpa, gpa+bytes) to [hpa, hpa+bytes) with pages of `size` and rights `rwx` (ept::k*).
  // Throws Error, before writing anything, on unaligned or out-of-range addresses, a page size
  // the host lacks (1 GiB without page_1gb; 4 MiB always), rights the format cannot hold
  // (EPT: write without read; NPT: no read), a reserved EPT memory type, or a conflict with an
  // existing mapping of another size. An existing leaf of the same size is overwritten.
  void map(uint64_t gpa, uint64_t hpa, uint64_t bytes, PageSize size,
           HostRwx rwx = ept::kRwx, uint8_t memory_type = ept::kWriteBack);
  void identity_map(uint64_t gpa, uint64_t bytes, PageSize size, HostRwx rwx = ept::kRwx) {
    map(gpa, gpa, bytes, size, rwx);
  }
  // Clears every leaf in the range (tables stay). Error if a large page straddles an end.
  void unmap(uint64_t gpa, uint64_t bytes);
  // Sets the rights of every leaf in the range (frame, memory type, A and D kept). Same rules.
  void protect(uint64_t gpa, uint64_t bytes, HostRwx rwx);

  // Host-physical address of the entry at `level` that translates `gpa`, when the tables down
  // to that level exist (tests use it to write raw entries).
  std::optional<uint64_t> entry_hpa(uint64_t gpa, int level) const;
  uint64_t table_frames() const { return table_frames_; }

 private:
  uint64_t new_table();
  uint64_t table_entry(uint64_t table_hpa) const;
  uint64_t leaf_entry(uint64_t hpa, int level, HostRwx rwx, uint8_t memory_type) const;
  bool present(uint64_t entry) const;
  bool is_leaf(uint64_t entry, int level) const;
  uint64_t frame_of(uint64_t entry) const { return entry & address_mask_; }
  void check_rights(HostRwx rwx) const;
  // Calls fn(entry_hpa, entry, level, page_gpa, page_bytes) for each present leaf covering part
  // of [gpa, gpa+bytes), in address order.
  template <typename Fn>
  void for_each_leaf(uint64_t gpa, uint64_t bytes, Fn&& fn);

  GuestMemory& memory_;
  FrameAllocator& frames_;
  HostPagingParams params_;
  uint64_t address_mask_;
  uint64_t root_;
  uint64_t table_frames_ = 0;
};

}  // namespace shadowsim
