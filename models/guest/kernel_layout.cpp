#include "guest/kernel_layout.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/error.h"

namespace shadowsim {
namespace {

constexpr uint64_t kPageOffset32 = 0xc0000000ULL;     // PAGE_OFFSET, 3G/1G split
constexpr uint64_t kLowmemBytes32 = 896ULL << 20;      // 1 GiB minus the 128 MiB vmalloc reserve
constexpr uint64_t kDirectMap61 = 0xffff888000000000ULL;  // page_offset_base, no KASLR
constexpr uint64_t kDirectMap26 = 0xffff810000000000ULL;  // 2.6.24 __PAGE_OFFSET
// 2.6.24 fixmap: FIXADDR_TOP 0xfffff000, fix_to_virt(i) = FIXADDR_TOP - (i << PAGE_SHIFT); the
// kmap slots start at FIX_KMAP_BEGIN, KM_TYPE_NR slots per CPU, KM_PTE0 = 3. FIX_KMAP_BEGIN
// depends on the configuration; 16 (the fixed slots below it) is an assumption.
constexpr uint64_t kFixaddrTop = 0xfffff000ULL;
constexpr uint64_t kFixKmapBegin = 16;
constexpr uint64_t kKmTypeNr = 14;

bool is_ia32e(PagingMode mode) {
  return mode == PagingMode::k4Level || mode == PagingMode::k5Level;
}

}  // namespace

const char* to_string(LayoutKind kind) {
  return kind == LayoutKind::kLinux61 ? "linux-6.1" : "linux-2.6";
}

KernelLayout::KernelLayout(PagingMode mode, const PagingControls& controls,
                           const CpuFeatures& features, const KernelLayoutParams& params,
                           uint64_t ram_bytes)
    : kind_(params.kind), mode_(mode), highpte_(params.highpte), is_64bit_(is_ia32e(mode)) {
  if (is_ia32e(mode)) {
    if (params.highpte) {
      throw ParamError("highpte", "exists only for 32-bit and PAE guests (64-bit kernels have no "
                                  "high memory)");
    }
    kernel_base_ = ~((1ULL << (linear_address_bits(mode) - 1)) - 1);
    direct_map_base_ = kind_ == LayoutKind::kLinux61 ? kDirectMap61 : kDirectMap26;
    if (mode == PagingMode::k5Level && kind_ == LayoutKind::kLinux26) {
      throw ParamError("kind", "linux-2.6 has no 5-level paging layout");
    }
    if (mode == PagingMode::k5Level) direct_map_base_ = 0xff11000000000000ULL;  // LA57 mm.rst
    lowmem_bytes_ = ram_bytes;
    direct_map_page_ = kind_ == LayoutKind::kLinux61 && features.page_1gb ? PageSize::k1G
                                                                           : PageSize::k2M;
    // The direct map must fit below the next region (64 TiB in the 4-level layout).
    if (ram_bytes > (1ULL << 46)) {
      throw ParamError("kind", fmt::format("{} maps at most 64 TiB directly", to_string(kind_)));
    }
  } else {
    kernel_base_ = kPageOffset32;
    direct_map_base_ = kPageOffset32;
    lowmem_bytes_ = std::min(ram_bytes, kLowmemBytes32);
    direct_map_page_ = !controls.cr4_pse && mode == PagingMode::k32Bit ? PageSize::k4K
                       : mode == PagingMode::k32Bit                    ? PageSize::k4M
                                                                       : PageSize::k2M;
  }
  lowmem_bytes_ &= ~(kPageSize - 1);
}

std::vector<KernelLayout::Piece> KernelLayout::direct_map_pieces() const {
  // The sizes below the largest that the mode has: 1G > 2M > 4K, 4M > 4K, 2M > 4K.
  std::vector<PageSize> sizes{direct_map_page_};
  if (direct_map_page_ == PageSize::k1G) sizes.push_back(PageSize::k2M);
  if (direct_map_page_ != PageSize::k4K) sizes.push_back(PageSize::k4K);
  std::vector<Piece> pieces;
  uint64_t pa = 0;
  for (const PageSize size : sizes) {
    const uint64_t end = lowmem_bytes_ & ~(page_bytes(size) - 1);
    if (end > pa) {
      pieces.push_back(Piece{pa, end - pa, size});
      pa = end;
    }
  }
  return pieces;
}

uint64_t KernelLayout::kmap_slot(int cpu, KmapType type) const {
  if (is_64bit_ || cpu < 0 || cpu >= kMaxKmapCpus) {
    throw Error(fmt::format("kmap slot of cpu {}: {}", cpu,
                            is_64bit_ ? "64-bit kernels have no kmap slots"
                                      : "at most 64 CPUs have slots"));
  }
  const uint64_t index = kFixKmapBegin + kKmTypeNr * static_cast<uint64_t>(cpu) +
                         static_cast<uint64_t>(type);
  return kFixaddrTop - (index << kPageShift);
}

uint64_t KernelLayout::table_frame_limit(int level) const {
  constexpr uint64_t k4GFrames = 1ULL << 20;
  if (level == 1 && highpte_) return mode_ == PagingMode::k32Bit ? k4GFrames : ~0ULL;
  return lowmem_bytes_ >> kPageShift;
}

}  // namespace shadowsim
