#include "guest/kernel_memory_port.h"

#include <fmt/format.h>

#include "common/error.h"
#include "guest/guest_kernel.h"
#include "paging/guest_memory.h"

namespace shadowsim {

KernelMemoryPort::KernelMemoryPort(GuestMemory& memory, PagingMode mode, bool nxe)
    : memory_(memory), mode_(mode), nxe_(nxe) {}

void KernelMemoryPort::attach(GuestKernel* kernel) {
  kernel_ = kernel;
  layout_ = &kernel->layout();
}

void KernelMemoryPort::enter(KernelCpu* cpu) {
  cpu_ = cpu;
  if (layout_ && layout_->has_kmap()) {
    Slots& slots = slots_[cpu_->cpu_index()];
    slots[0].va = layout_->kmap_slot(cpu_->cpu_index(), KernelLayout::KmapType::kUser0);
    slots[1].va = layout_->kmap_slot(cpu_->cpu_index(), KernelLayout::KmapType::kPte0);
  }
}

void KernelMemoryPort::resume(KernelCpu* cpu) { cpu_ = cpu; }

void KernelMemoryPort::leave() {
  for (Slot& slot : slots_[cpu_->cpu_index()]) {
    if (slot.frame == ~0ULL) continue;
    set_slot_pte(slot.va, 0);  // kunmap_atomic: kpte_clear_flush
    cpu_->kernel_invlpg(slot.va);
    slot.frame = ~0ULL;
  }
  cpu_ = nullptr;
}

// The fixmap PTE is itself a page-table entry in lowmem, written through the direct map: on
// PAE as two 32-bit halves (set: high then low; clear: low then high), as set_pte does.
void KernelMemoryPort::set_slot_pte(uint64_t slot_va, uint64_t value) {
  const uint64_t entry_pa = kernel_->kmap_pte_address(slot_va);
  const uint64_t va = layout_->direct_map_address(entry_pa);
  ++stores_;
  if (mode_ == PagingMode::kPae) {
    const uint64_t lo = value & 0xffffffffULL;
    const uint64_t hi = value >> 32;
    if (value) {
      cpu_->kernel_store(va + 4, entry_pa + 4, 4, hi);
      cpu_->kernel_store(va, entry_pa, 4, lo);
    } else {
      cpu_->kernel_store(va, entry_pa, 4, lo);
      cpu_->kernel_store(va + 4, entry_pa + 4, 4, hi);
    }
    return;
  }
  cpu_->kernel_store(va, entry_pa, entry_width(mode_), value);
}

uint64_t KernelMemoryPort::address_of(uint64_t pa, KernelLayout::KmapType type) {
  const uint64_t direct = layout_->direct_map_address(pa);
  if (direct != ~0ULL) return direct;
  if (!layout_->has_kmap()) {
    throw Error(fmt::format("guest kernel: physical {:#x} is outside the direct map", pa));
  }
  Slot& slot = slots_[cpu_->cpu_index()][type == KernelLayout::KmapType::kPte0 ? 1 : 0];
  const uint64_t frame = pa >> kPageShift;
  if (slot.frame != frame) {
    if (slot.frame != ~0ULL) {  // the slot is reused: kunmap the old frame first
      set_slot_pte(slot.va, 0);
      cpu_->kernel_invlpg(slot.va);
    }
    // kmap_atomic: mk_pte(page, kmap_prot), kmap_prot = PAGE_KERNEL (2.6.24 highmem_32.c)
    uint64_t pte = (frame << kPageShift) | pte::kPresent | pte::kWritable | pte::kAccessed |
                   pte::kDirty;
    if (nxe_ && mode_ == PagingMode::kPae) pte |= pte::kExecuteDisable;
    set_slot_pte(slot.va, pte);
    slot.frame = frame;
    ++kmaps_;
  }
  return slot.va + (pa & (kPageSize - 1));
}

uint64_t KernelMemoryPort::read_entry(uint64_t pa, int width) {
  if (!cpu_ || !layout_) return memory_.read(pa, width);
  ++loads_;
  return cpu_->kernel_load(address_of(pa, KernelLayout::KmapType::kPte0), pa, width);
}

void KernelMemoryPort::write_entry(const EntryWrite& w) {
  if (!cpu_ || !layout_) {
    memory_.write(w.entry_pa, w.new_value, w.width);
    return;
  }
  ++stores_;
  const uint64_t va = address_of(w.entry_pa, KernelLayout::KmapType::kPte0);
  trapped_stores_ += cpu_->kernel_store(va, w.entry_pa, w.width, w.new_value);
}

void KernelMemoryPort::zero_frame(uint64_t frame) {
  ++frames_cleared_;
  if (cpu_ && layout_) {
    const uint64_t pa = frame << kPageShift;
    const uint64_t va = address_of(pa, KernelLayout::KmapType::kUser0);
    for (uint64_t offset = 0; offset < kPageSize; offset += 8) {
      ++stores_;
      if (!cpu_->kernel_store(va + offset, pa + offset, 8, 0)) break;
      ++trapped_stores_;
    }
  }
  memory_.zero_frame(frame);
}

void KernelMemoryPort::register_stats(StatsGroup g) {
  g.counter("loads", &loads_, "loads", "page-table entry loads by the guest kernel");
  g.counter("stores", &stores_, "stores",
            "guest kernel stores to page-table entries, kmap slots and cleared pages");
  g.counter("trapped_stores", &trapped_stores_, "stores",
            "of which trapped to the hypervisor and were emulated");
  g.counter("frames_cleared", &frames_cleared_, "pages", "pages cleared (clear_page)");
  g.counter("kmaps", &kmaps_, "maps", "kmap_atomic slot mappings (32-bit kernels, high memory)");
}

}  // namespace shadowsim
