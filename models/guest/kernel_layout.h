// Where the guest kernel maps what it needs to reach page-table pages: its direct map of
// physical memory, and, with HIGHPTE on 32-bit guests, one kmap slot per CPU. Page-table writes
// are kernel stores to these addresses (the one door, docs/guest.md), and a hypervisor's
// write-access-removal heuristics guess them, so the layout decides whether a promotion is a
// cheap guess or a brute-force search (research: shadow-algorithms.md §1.5).
//
// Two layouts (docs/guest.md has the sources):
//   linux-6.1 — x86-64: direct map at 0xffff888000000000 (page_offset_base without KASLR,
//               Documentation/x86/x86_64/mm.rst), 1 GiB pages when the CPU has them, else 2 MiB;
//   linux-2.6 — x86-64: direct map at 0xffff810000000000 (2.6.24 __PAGE_OFFSET), 2 MiB pages.
// Both, 32-bit and PAE: lowmem mapped 1:1 at PAGE_OFFSET 0xC0000000 up to 896 MiB (the 128 MiB
// vmalloc reserve below 4 GiB), with 4 MiB (32-bit) or 2 MiB (PAE) pages when CR4.PSE allows,
// else 4 KiB pages; HIGHPTE puts PTE pages in any frame and reaches them through the CPU's
// KM_PTE0 fixmap slot (kmap_atomic sets the slot's PTE, kunmap_atomic clears it and INVLPGs).
#pragma once

#include <cstdint>
#include <vector>

#include "common/params.h"
#include "paging/paging_types.h"

namespace shadowsim {

enum class LayoutKind : uint8_t { kLinux61, kLinux26 };
const char* to_string(LayoutKind kind);

struct KernelLayoutParams {
  LayoutKind kind = LayoutKind::kLinux61;
  bool highpte = false;  // 32-bit and PAE guests: PTE pages in high memory, reached by kmap

  template <class V>
  void visit(V& v) {
    v.choice("kind", kind, "guest kernel address layout (direct-map base; see docs/guest.md)",
             {{"linux-6.1", LayoutKind::kLinux61}, {"linux-2.6", LayoutKind::kLinux26}});
    v.value("highpte", highpte,
            "32-bit and PAE guests: PTE pages in high memory, mapped through a per-CPU kmap slot");
  }
};

class KernelLayout {
 public:
  // ram_bytes: the guest's physical memory (the direct map covers it, up to lowmem on 32-bit).
  KernelLayout(PagingMode mode, const PagingControls& controls, const CpuFeatures& features,
               const KernelLayoutParams& params, uint64_t ram_bytes);

  LayoutKind kind() const { return kind_; }
  uint64_t kernel_base() const { return kernel_base_; }        // lowest kernel address
  uint64_t direct_map_base() const { return direct_map_base_; }
  uint64_t lowmem_bytes() const { return lowmem_bytes_; }       // physical bytes direct-mapped
  PageSize direct_map_page() const { return direct_map_page_; }  // the largest page used
  // The direct map as the kernel maps it: the largest pages where they fit, smaller ones for
  // the tail (as kernel_physical_mapping_init splits a range).
  struct Piece {
    uint64_t pa;
    uint64_t bytes;
    PageSize size;
  };
  std::vector<Piece> direct_map_pieces() const;
  bool highpte() const { return highpte_; }
  // 32-bit kernels reach high memory (above lowmem) through per-CPU kmap_atomic slots:
  // KM_USER0 for data pages (clear_highpage, copy_user_highpage), KM_PTE0 for HIGHPTE tables.
  enum class KmapType : uint8_t { kUser0 = 0, kPte0 = 3 };  // 2.6.24 km_type values
  bool has_kmap() const { return !is_64bit_; }
  uint64_t kmap_slot(int cpu, KmapType type) const;
  // Direct-map address of a physical address, or ~0 when it is not direct-mapped (high memory).
  uint64_t direct_map_address(uint64_t pa) const {
    return pa < lowmem_bytes_ ? direct_map_base_ + pa : ~0ULL;
  }
  // Frames page tables of `level` may use (exclusive bound): lowmem, except PTE pages under
  // HIGHPTE, which only need to be reachable by the mode's entries.
  uint64_t table_frame_limit(int level) const;
  // Where allocations that may use high memory start looking (__GFP_HIGHMEM: the highmem zone
  // first): the first frame above lowmem on 32-bit kernels, 0 (no preference) on 64-bit ones.
  uint64_t highmem_first_frame() const { return is_64bit_ ? 0 : lowmem_bytes_ >> kPageShift; }

  static constexpr int kMaxKmapCpus = 64;

 private:
  LayoutKind kind_;
  PagingMode mode_;
  uint64_t kernel_base_;
  uint64_t direct_map_base_;
  uint64_t lowmem_bytes_;
  PageSize direct_map_page_;
  bool highpte_;
  bool is_64bit_;
};

}  // namespace shadowsim
