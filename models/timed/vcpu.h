// A VCPU replaying one trace stream: step 1 of the path of a guest access
// (docs/architecture.md). Non-memory instructions cost `cpi` cycles each; every memory reference
// is translated through its PCPU's MMU (models/mmu/mmu.h) for every page it touches; a page
// fault invalidates what the SDM says it does and goes to the guest kernel (models/guest), whose
// work is charged at `cpi`; then the access is translated again.
//
// Time, TLM-2.0 loosely-timed style: the VCPU runs ahead of the SystemC kernel with a local time
// offset and yields only at the quantum boundary (tlm_utils::tlm_quantumkeeper). One SystemC time
// unit (1 ns, the kernel's resolution) is one core cycle. Local time is kept as an integer count
// of cycles and handed to the quantum keeper only when the quantum is used up, so a TLB hit stays
// a plain function call with no kernel interaction.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <systemc>
#include <tlm_utils/tlm_quantumkeeper.h>

#include "common/stats.h"
#include "guest/address_folder.h"
#include "guest/guest_kernel.h"
#include "guest/kernel_memory_port.h"
#include "mmu/mmu.h"
#include "paging/paging_state.h"
#include "timed/run_control.h"
#include "timed/tlb_shootdown.h"
#include "workloads/trace_reader.h"

namespace shadowsim {

struct VcpuWiring {
  std::unique_ptr<TraceReader> trace;
  Mmu* mmu = nullptr;                  // the MMU of the PCPU this VCPU runs on
  GuestKernel* kernel = nullptr;       // the guest kernel
  uint32_t pid = 0;                    // its guest process (or thread); 0 until created
  AddressFolders* folders = nullptr;   // places trace addresses; one folder per address space
  RunControl* control = nullptr;
  TlbShootdown* shootdown = nullptr;   // carries out the kernel's TLB flushes on every VCPU
  KernelMemoryPort* port = nullptr;    // the kernel's page-table accesses come back here
  PagingState paging;                  // mode, controls, CR3 of the VCPU's address space
  TlbContext tlb_context;
};

class Vcpu : public sc_core::sc_module, public KernelCpu {
 public:
  SC_HAS_PROCESS(Vcpu);
  Vcpu(sc_core::sc_module_name name, int id, double cpi, VcpuWiring wiring);
  uint32_t pid() const { return w_.pid; }
  // A child stream's VCPU starts when this VCPU's process creates it: at the matching create
  // event in this stream or, for traces without one, when this stream ends.
  void add_child(uint32_t stream, StreamOrigin origin, Vcpu* child);
  // Another VCPU's TLB shootdown interrupts this one: the handler's cycles are added to its time
  // before its next record.
  void interrupt(uint64_t cycles) { interrupt_cycles_ += cycles; }
  const TlbContext& tlb_context() const { return w_.tlb_context; }

  // KernelCpu: the guest kernel's own loads and stores (page-table entries through the direct
  // map or a kmap slot), translated by this VCPU's MMU as supervisor accesses and costed by the
  // page-table memory; their cycles go to local time at once.
  int cpu_index() const override { return id_; }
  uint64_t kernel_load(uint64_t va, uint64_t expected_pa, int width) override;
  bool kernel_store(uint64_t va, uint64_t expected_pa, int width, uint64_t value) override;
  void kernel_invlpg(uint64_t va) override;
  Mmu& mmu() { return *w_.mmu; }

  void register_stats(StatsGroup g);
  uint64_t finish_cycles() const { return finish_cycles_; }
  // Runs guest code now: started, not finished, not suspended in a vfork. Only such VCPUs take
  // shootdown IPIs (Linux skips CPUs not running the mm).
  bool running() const { return w_.pid != 0 && !finished_ && !waiting_; }
  bool finished() const { return finished_; }
  // An Error raised while replaying stops the simulation; the system rethrows it after sc_start.
  const std::string& error() const { return error_; }

 private:
  static constexpr size_t kBatch = 4096;

  void run();
  void replay();
  void start(uint32_t pid, Vcpu* vfork_parent);  // called by the parent, at the parent's time
  void sync_now();                               // global time = this VCPU's time
  void enter_kernel();                           // sync, then name this VCPU the initiator
  // Adds the kernel work and flush costs to local time; returns every cycle of this kernel
  // entry (those and the kernel's own memory accesses), for accounting.
  uint64_t leave_kernel(uint64_t instructions);
  uint64_t kernel_translate(uint64_t va, uint64_t expected_pa, const Access& access);
  void create_child(uint32_t stream, StreamOrigin how);
  void release_vfork_parent();
  uint64_t reference(const TraceRecord& r);  // cycles of all translations of one record
  // Translates one page and adds its cycles to local time; inline: the TLB-hit path.
  uint64_t translate_page(uint64_t va, const Access& access) {
    const MmuResult r = w_.mmu->translate(va, access, w_.paging, w_.tlb_context);
    unsynced_cycles_ += r.cycles;
    return r.outcome == WalkOutcome::kOk ? r.cycles : r.cycles + handle_fault(va, access, r);
  }
  uint64_t handle_fault(uint64_t va, const Access& access, const MmuResult& first);
  uint64_t os_event(const OsEvent& e);  // applies a recorded OS event; returns its cycles
  uint64_t now_cycles() const;
  void sync_if_quantum_used();
  void reset_sync_budget();

  uint64_t instruction_cycles(uint64_t instructions);
  uint64_t kernel_cycles(uint64_t instructions);  // the same, counted as kernel work
  int id_;
  VcpuWiring w_;
  AddressFolder* folder_ = nullptr;  // of the current address space
  bool exited_ = false;
  bool waiting_ = false;  // a vfork parent suspended until its child execs or exits

  struct Child {
    uint32_t stream;
    StreamOrigin origin;
    Vcpu* vcpu;
    bool created = false;
  };
  std::vector<Child> children_;
  sc_core::sc_event start_event_;
  sc_core::sc_event vfork_done_;   // notified by a vfork child at its exec or exit
  Vcpu* vfork_parent_ = nullptr;   // the parent waiting for this VCPU's exec or exit
  uint64_t unknown_children_ = 0;  // create events for streams the manifest does not list
  uint64_t interrupt_cycles_ = 0;  // shootdown handlers not yet charged
  uint64_t interrupts_ = 0;
  uint64_t interrupt_cycles_total_ = 0;
  tlm_utils::tlm_quantumkeeper quantum_keeper_;
  uint64_t unsynced_cycles_ = 0;  // local time not yet handed to the quantum keeper
  uint64_t sync_budget_ = 0;      // cycles left until the next quantum boundary
  uint64_t cpi_fixed_;             // cpi in 1/65536 cycles: integer, so exact and fast
  uint64_t fractional_cycles_ = 0;  // carry of cpi * instructions, in 1/65536 cycles
  uint64_t finish_cycles_ = 0;
  bool finished_ = false;
  std::string error_;

  uint64_t instructions_ = 0;
  uint64_t references_[3] = {0, 0, 0};
  uint64_t page_crossings_ = 0;
  uint64_t page_faults_ = 0;
  uint64_t os_events_[kOsEventKinds] = {};
  uint64_t kernel_instructions_ = 0;
  uint64_t kernel_access_cycles_ = 0;  // this kernel entry's own memory accesses, so far
  uint64_t kernel_access_cycles_total_ = 0;
  uint64_t cycles_ = 0;
  uint64_t translation_cycles_ = 0;
};

}  // namespace shadowsim
