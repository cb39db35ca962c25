// The page-table editor: map / unmap / protect ranges in one address space, allocating and
// freeing table pages, doing exactly the entry writes Linux 6.1 on x86 does, in its order:
//   - a new table page is zeroed, then linked by one write to the entry above it
//     (pgd/p4d/pud/pmd_populate): P|RW|U/S|A|D below the kernel base (_PAGE_TABLE),
//     P|RW|A|D above it (_KERNPG_TABLE); so a user mapping above the kernel base is refused;
//   - map: one write of the leaf (set_pte / set_pmd);
//   - unmap: every present leaf in the range cleared (ptep_get_and_clear), then, if asked, every
//     table left empty is unlinked (pmd_clear & co.) bottom-up and handed back to the caller,
//     which frees it after its TLB flush (free_pgtables; "flush before free");
//   - protect: per present leaf, a clear then the new value (ptep_modify_prot_start/commit),
//     keeping frame, A, D and memory type; a large leaf is first made not-present
//     (pmdp_invalidate).
// PAE: a PTE is two 32-bit stores (set: high half then low; clear: low then high, as
// pgtable-3level.h does); PMD and PDPT entries are single 64-bit stores. All four page
// directories are allocated with the PDPT and stay until the address space is destroyed
// (pgd_prepopulate_pmd), so PDPTEs never change under a loaded CR3.
//
// Every access to table memory goes through a PageTableStore: the default writes guest memory
// and logs; the guest OS model instead issues each write as a kernel store through the VCPU, so a
// hypervisor sees it exactly as it would see the real kernel's store.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "paging/paging_types.h"
#include "paging/walker.h"

namespace shadowsim {

class FrameAllocator;
class GuestMemory;

class PageTableStore {
 public:
  virtual ~PageTableStore() = default;
  virtual uint64_t read_entry(uint64_t pa, int width) = 0;
  virtual void write_entry(const EntryWrite& write) = 0;
  virtual void zero_frame(uint64_t frame) = 0;  // the kernel's clear_page() of a new table
};

// Writes guest memory directly and, with keep_log, records every write in order (tests, the
// demo); a long simulation turns the log off so memory stays flat.
class DirectPageTableStore : public PageTableStore {
 public:
  explicit DirectPageTableStore(GuestMemory& memory, bool keep_log = true)
      : memory_(memory), keep_log_(keep_log) {}
  uint64_t read_entry(uint64_t pa, int width) override;
  void write_entry(const EntryWrite& write) override;
  void zero_frame(uint64_t frame) override;

  std::vector<EntryWrite> writes;      // every entry write so far
  std::vector<uint64_t> zeroed_frames;  // every table frame zeroed so far

 private:
  GuestMemory& memory_;
  bool keep_log_;
};

// What a leaf maps with. PAT index = PAT<<2 | PCD<<1 | PWT.
struct PageFlags {
  bool writable = false;
  bool user = false;
  bool execute_disable = false;
  bool global = false;
  bool accessed = false;
  bool dirty = false;
  uint8_t pat_index = 0;
};

class PageTableEditor {
 public:
  // mode and features decide formats; controls.cr4_pse / efer_nxe decide which pages and bits
  // exist. Table frames come from `frames`.
  PageTableEditor(PagingMode mode, PagingControls controls, CpuFeatures features,
                  FrameAllocator& frames, PageTableStore& store);

  // Lowest kernel address: 0xC0000000 (Linux's 3G/1G PAGE_OFFSET) in the 32-bit modes, the
  // upper canonical half in IA-32e modes. Settable for other splits.
  uint64_t kernel_base() const { return kernel_base_; }
  void set_kernel_base(uint64_t kernel_base);

  // Allocates and zeroes a top-level table (PAE: the PDPT and its four page directories) and
  // returns its physical address, which is also the CR3 value to load (PCID 0). With a kernel
  // template, the kernel part is shared instead (below).
  uint64_t create_address_space();
  // Unmaps everything, frees every table page including the top one; with a kernel template,
  // only the user part: the kernel's tables are shared. The same as destroy_tables() then
  // free_top_level().
  void destroy_address_space(uint64_t root);
  // The two halves, as Linux splits them: exit_mmap frees the tables below the top level (the
  // top level and, on PAE, its preallocated page directories stay, emptied), and pgd_free frees
  // those once no CPU has the address space loaded.
  void destroy_tables(uint64_t root);
  void free_top_level(uint64_t root);

  // The kernel's own address space (Linux's swapper_pg_dir), built before any process. From
  // then on every new address space shares its kernel part, as pgd_alloc does: the present
  // top-level entries above the kernel base are copied (clone_pgd_range), and on PAE the page
  // directories of the kernel quarters are the template's own (SHARED_KERNEL_PMD).
  void set_kernel_template(uint64_t root);
  // Table frames of `level` come from below `frame_limit` (e.g. lowmem: a 32-bit kernel reaches
  // its tables through its direct map), from `preferred_first` up when frames are free there
  // (HIGHPTE: high memory first). Default: anything the mode's entries can address.
  void set_table_frame_placement(int level, uint64_t frame_limit, uint64_t preferred_first = 0);

  // Maps [va, va+bytes) to [pa, pa+bytes) with pages of `size`. All three must be aligned to the
  // page size. Throws Error, before writing anything, on a page size this mode lacks, a range
  // outside the linear or physical address space, or a conflict with existing mappings of
  // another size (a large page where tables are needed, or tables where a large page goes).
  // An existing leaf of the same size is overwritten.
  void map(uint64_t root, uint64_t va, uint64_t pa, uint64_t bytes, PageSize size,
           const PageFlags& flags);

  // Clears every present leaf in [va, va+bytes). With free_empty_tables, tables left with no
  // entry are unlinked and returned; the caller calls release_tables() after its TLB flush.
  // Throws Error, before writing anything, if a large page straddles an end of the range.
  std::vector<uint64_t> unmap(uint64_t root, uint64_t va, uint64_t bytes,
                              bool free_empty_tables = true);

  // Sets writable/user/execute_disable/global of every present leaf in the range (frame, A, D
  // and memory type are kept). Same range rules as unmap.
  void protect(uint64_t root, uint64_t va, uint64_t bytes, const PageFlags& rights);

  void release_tables(const std::vector<uint64_t>& table_frames);

  // Single-entry operations on 4 KiB leaves, as the kernel's fault, COW and fork paths do them.
  // A leaf entry: its address and value, or nullopt when the tables down to it do not exist.
  struct Leaf {
    uint64_t entry_pa;
    uint64_t value;
  };
  std::optional<Leaf> leaf(uint64_t root, uint64_t va);
  // set_pte / set_pte_at on an existing page table (PAE: high half, then low).
  void set_leaf(uint64_t root, uint64_t va, uint64_t value);
  // ptep_get_and_clear (PAE: low half, then high). Returns the old value.
  uint64_t clear_leaf(uint64_t root, uint64_t va);
  // One locked read-modify-write clearing `bits` (ptep_set_wrprotect: clear_bit of R/W). On PAE
  // it is a 32-bit write of the half holding the bits (all in one half).
  void clear_leaf_bits(uint64_t root, uint64_t va, uint64_t bits);
  // Present 4 KiB leaves in [va, va+bytes), in address order: fn(va, value).
  void for_each_present_leaf(uint64_t root, uint64_t va, uint64_t bytes,
                             const std::function<void(uint64_t, uint64_t)>& fn);
  // The leaf value map() writes for a 4 KiB page (for callers that set entries themselves).
  uint64_t leaf_value(uint64_t pa, const PageFlags& flags) const {
    return leaf_entry(pa, PageSize::k4K, flags);
  }

  PagingMode mode() const { return mode_; }

 private:
  struct Slot {  // one entry of one table
    uint64_t entry_pa;
    uint64_t value;
    int level;
  };

  uint64_t new_table(int level);
  uint64_t table_entry(uint64_t table_pa, uint64_t va) const;
  uint64_t leaf_entry(uint64_t pa, PageSize size, const PageFlags& flags) const;
  void store(int level, uint64_t entry_pa, uint64_t old_value, uint64_t new_value);
  bool is_leaf(const Slot& slot) const;
  // Descends from the root to the entry for `va` at `stop_level`, or to the first
  // not-present entry or leaf above it.
  Slot find(uint64_t root, uint64_t va, int stop_level);
  void check_range(uint64_t va, uint64_t bytes, uint64_t align, const char* what) const;
  void check_no_straddle(uint64_t root, uint64_t va, uint64_t bytes, const char* what);
  void check_flags(uint64_t va, uint64_t bytes, const PageFlags& flags) const;
  // Calls fn(slot, first, last) for each entry of the table that covers part of [first, last],
  // with the part it covers.
  template <typename Fn>
  void for_each_entry(uint64_t table_pa, int level, uint64_t first, uint64_t last, Fn&& fn);
  template <typename Fn>
  // fn(slot, va) for each present leaf covering part of [first, last].
  void for_each_leaf(uint64_t table_pa, int level, uint64_t first, uint64_t last, Fn&& fn);
  void prune(uint64_t table_pa, int level, uint64_t first, uint64_t last,
             std::vector<uint64_t>& detached);
  bool table_empty(uint64_t table_pa);

  PagingMode mode_;
  PagingControls controls_;
  CpuFeatures features_;
  FrameAllocator& frames_;
  PageTableStore& store_;
  int width_;
  int entries_per_table_;
  uint64_t address_mask_;
  uint64_t kernel_base_;
  uint64_t kernel_template_ = 0;  // 0: none
  uint64_t table_frame_limit_[6] = {~0ULL, ~0ULL, ~0ULL, ~0ULL, ~0ULL, ~0ULL};
  uint64_t table_frame_preferred_[6] = {};
};

}  // namespace shadowsim
