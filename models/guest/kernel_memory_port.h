// The one door for the guest kernel's page-table accesses (docs/architecture.md, step 6). The
// page-table editor asks for entry reads and writes by physical address; this port turns each
// into what the real kernel does: a load or store of that width to the table frame's address in
// the kernel's direct map, or, for a frame in high memory (32-bit kernels), through the CPU's
// kmap_atomic slot, which it maps first by writing the slot's fixmap PTE (and unmaps, clear +
// INVLPG, when the kernel operation ends). The access itself is performed by the CPU that is in
// the kernel (KernelCpu: a VCPU translating through its MMU), so a hypervisor sees exactly the
// store the real kernel makes: in shadow mode it traps once the frame is write-protected, and
// goes straight through before. With no CPU in the kernel (boot) the port writes memory
// directly.
#pragma once

#include <array>
#include <cstdint>
#include <unordered_map>

#include "common/stats.h"
#include "guest/kernel_layout.h"
#include "paging/page_table_editor.h"

namespace shadowsim {

class GuestMemory;
class GuestKernel;

// A CPU executing guest kernel code. Each access is a supervisor access through the CPU's own
// translation; `expected_pa` is where the kernel's mapping must lead (a mismatch is a model bug).
class KernelCpu {
 public:
  virtual ~KernelCpu() = default;
  virtual int cpu_index() const = 0;
  virtual uint64_t kernel_load(uint64_t va, uint64_t expected_pa, int width) = 0;
  // Returns true when the store trapped (a hypervisor emulated it), false when it went through.
  virtual bool kernel_store(uint64_t va, uint64_t expected_pa, int width, uint64_t value) = 0;
  virtual void kernel_invlpg(uint64_t va) = 0;
};

class KernelMemoryPort : public PageTableStore {
 public:
  KernelMemoryPort(GuestMemory& memory, PagingMode mode, bool nxe);
  // The kernel whose layout and fixmap this port uses; called once the kernel is built.
  void attach(GuestKernel* kernel);

  // The CPU now in the kernel; until leave(), accesses are its loads and stores.
  void enter(KernelCpu* cpu);
  // The CPU, back from a wait inside its kernel operation (a hypervisor trap lets other CPUs
  // run, and enter the kernel), continues it: its kmap slots are as it left them.
  void resume(KernelCpu* cpu);
  // The kernel operation is over: kunmap_atomic every slot still mapped; no CPU is in the
  // kernel (accesses go to memory directly).
  void leave();

  uint64_t read_entry(uint64_t pa, int width) override;
  void write_entry(const EntryWrite& write) override;
  // clear_page: qword stores until one goes through without trapping (a frame still shadowed
  // as a page table traps until the hypervisor unshadows it); the rest of the page then goes
  // through as well, so it is cleared in one step.
  void zero_frame(uint64_t frame) override;

  void register_stats(StatsGroup g);

 private:
  // The kernel virtual address through which the CPU reaches `pa`, mapping a kmap slot first
  // for a high-memory frame.
  uint64_t address_of(uint64_t pa, KernelLayout::KmapType slot_type);
  void set_slot_pte(uint64_t slot_va, uint64_t value);  // a PTE store to the fixmap table

  GuestMemory& memory_;
  PagingMode mode_;
  bool nxe_;
  GuestKernel* kernel_ = nullptr;
  const KernelLayout* layout_ = nullptr;
  KernelCpu* cpu_ = nullptr;
  struct Slot {
    uint64_t va = 0;
    uint64_t frame = ~0ULL;  // mapped frame, ~0 when unmapped
  };
  using Slots = std::array<Slot, 2>;  // KM_USER0, KM_PTE0
  std::unordered_map<int, Slots> slots_;  // per CPU (node-based: references stay valid)

  uint64_t loads_ = 0;
  uint64_t stores_ = 0;
  uint64_t trapped_stores_ = 0;
  uint64_t frames_cleared_ = 0;
  uint64_t kmaps_ = 0;
};

}  // namespace shadowsim
