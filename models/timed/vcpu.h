// A VCPU running the guest tasks (trace streams) the guest scheduler gives it: step 1 of the
// path of a guest access (docs/architecture.md). Non-memory instructions cost `cpi` cycles each;
// every memory reference is translated through its PCPU's MMU (models/mmu/mmu.h) for every page
// it touches; a page fault invalidates what the SDM says it does and goes to the guest kernel
// (models/guest), whose work is charged at `cpi`; then the access is translated again. Switching
// tasks switches address spaces (CR3; PCIDs in IA-32e mode with CR4.PCIDE).
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
#include "common/timeline.h"
#include "guest/address_folder.h"
#include "guest/guest_kernel.h"
#include "guest/kernel_memory_port.h"
#include "hv/hv_cpu.h"
#include "hv/hypervisor.h"
#include "hv/pcpu_scheduler.h"
#include "mmu/mmu.h"
#include "paging/paging_state.h"
#include "timed/guest_mm_locks.h"
#include "timed/guest_scheduler.h"
#include "timed/run_control.h"
#include "timed/tlb_shootdown.h"
#include "workloads/trace_reader.h"

namespace shadowsim {

struct VcpuWiring {
  Mmu* mmu = nullptr;                  // the MMU of the PCPU this VCPU runs on
  GuestKernel* kernel = nullptr;       // the guest kernel
  GuestScheduler* scheduler = nullptr; // gives this VCPU its tasks (trace streams)
  AddressFolders* folders = nullptr;   // places trace addresses; one folder per address space
  RunControl* control = nullptr;
  TlbShootdown* shootdown = nullptr;   // carries out the kernel's TLB flushes on every VCPU
  KernelMemoryPort* port = nullptr;    // the kernel's page-table accesses come back here
  PagingState paging;                  // the guest's mode, controls, CR3 of the address space
  TlbContext tlb_context;
  bool audit_tlb = false;              // check every translation against the guest's tables
  Hypervisor* hv = nullptr;            // shadow paging: the hypervisor the VCPU exits to
  GuestMmLocks* mm_locks = nullptr;    // shadow paging: kernel operations per mm serialised
  // VCPUs outnumber PCPUs: the VCPU runs on whichever PCPU the scheduler gives it, with that
  // PCPU's MMU (pcpu_mmus[p]); otherwise it stays on `mmu` (PCPU = VCPU index).
  PcpuScheduler* pcpus = nullptr;
  std::vector<Mmu*> pcpu_mmus;
  Timeline* timeline = nullptr;  // run.timeline: spans of kernel work and waits
};

class Vcpu : public sc_core::sc_module, public KernelCpu, public HvCpu {
 public:
  SC_HAS_PROCESS(Vcpu);
  Vcpu(sc_core::sc_module_name name, int id, double cpi, VcpuWiring wiring);
  // The guest process (or thread) running now; 0 when idle.
  uint32_t pid() const { return task_ ? task_->pid : 0; }
  // Another VCPU's TLB shootdown interrupts this one: the handler's cycles are added to its time
  // before its next record.
  void interrupt(uint64_t cycles) { interrupt_cycles_ += cycles; }
  const TlbContext& tlb_context() const override { return w_.tlb_context; }
  // Holds a PCPU now (true unless VCPUs outnumber PCPUs and this one is waiting for one).
  bool on_pcpu() const { return !w_.pcpus || w_.pcpus->pcpu_of(id_) >= 0; }
  // A descheduled VCPU got a TLB-shootdown IPI from `initiator`: it acknowledges when it runs
  // again, and the initiator waits for that (Linux's flush_tlb_others waits for every ack).
  void request_ack(Vcpu* initiator) { ack_requests_.push_back(initiator); }
  // The initiator's side: waits (spinning, so it can be descheduled too) until every VCPU it
  // asked has acknowledged.
  void wait_for_acks(size_t count);
  Mmu& mmu() override { return *w_.mmu; }

  // The guest kernel's TLB invalidations on this VCPU (TlbShootdown). Native: the instruction's
  // effect on the PCPU. Shadow: INVLPG and the CR3 reload exit to the hypervisor. The remote
  // forms run inside another VCPU's IPI, at its time, and return the cycles this VCPU's
  // handler spends beyond the native handler (its exits).
  void guest_invlpg(uint64_t va);
  void guest_flush_tlb();
  uint64_t remote_invlpg(uint64_t va);
  uint64_t remote_flush_tlb();

  // HvCpu: the hypervisor runs on this VCPU's thread and time.
  int vcpu_index() const override { return id_; }
  int pcpu_index() const override { return w_.mmu->pcpu(); }
  void hv_sync() override { sync_now(); }
  uint64_t hv_now() const override { return now_cycles(); }
  void hv_spend(uint64_t cycles) override {
    unsynced_cycles_ += cycles;
    hypervisor_cycles_ += cycles;
  }
  void hv_lock_waited(uint64_t elapsed, uint64_t spinning) override;
  // Charged with the next record, as hypervisor time.
  void hv_interrupt(uint64_t cycles) override { hv_interrupt_cycles_ += cycles; }
  // Under shadow paging the guest's INVLPG and CR3 reload exit: the native instruction costs
  // of a shootdown are replaced by the exits (TlbShootdown asks).
  bool tlb_ops_exit() const { return w_.hv != nullptr; }
  // An IPI sent or taken exits when the hypervisor has no APIC virtualization: counts the exit
  // and returns its round trip (0 without such exits).
  uint64_t ipi_exit() { return w_.hv ? w_.hv->ipi_exit() : 0; }
  void load_hardware_state(const PagingState& state) override {
    hardware_state_ = state;
    hardware_ = &hardware_state_;
  }

  // KernelCpu: the guest kernel's own loads and stores (page-table entries through the direct
  // map or a kmap slot), translated by this VCPU's MMU as supervisor accesses and costed by the
  // page-table memory; their cycles go to local time at once.
  int cpu_index() const override { return id_; }
  uint64_t kernel_load(uint64_t va, uint64_t expected_pa, int width) override;
  bool kernel_store(uint64_t va, uint64_t expected_pa, int width, uint64_t value) override;
  void kernel_invlpg(uint64_t va) override;

  void register_stats(StatsGroup g);
  uint64_t finish_cycles() const { return finish_cycles_; }
  // Runs guest code now: a task is on it. Only such VCPUs take shootdown IPIs (Linux skips CPUs
  // not running the mm; a VCPU that switches an mm in later checks the mm's flush generation).
  bool running() const { return task_ != nullptr; }
  bool finished() const { return finished_; }
  // An Error raised while replaying stops the simulation; the system rethrows it after sc_start.
  const std::string& error() const { return error_; }

 private:
  static constexpr size_t kBatch = 4096;
  // Linux keeps TLB_NR_DYN_ASIDS = 6 address spaces' PCIDs per CPU (arch/x86/mm/tlb.c).
  static constexpr int kDynamicAsids = 6;

  enum class Stop : uint8_t { kSlice, kBlocked, kDone, kLimit };

  void run();
  void stop_on_error();  // after an error: kill the other threads (they unwind), then sc_stop
  Stop run_task(GuestTask& task);  // replays until the task stops running here
  void finish_task(GuestTask& task);
  // switch_mm: loads the task's address space (CR3; with PCIDs the mm's ASID on this CPU) and
  // flushes what the CPU may hold stale for it.
  void switch_mm(uint32_t pid);
  void sync_now();                               // global time = this VCPU's time
  // Sync, then name this VCPU the initiator. Under shadow paging a kernel operation can wait in
  // the hypervisor (at a trapped store), so it first takes the lock of the address space it
  // changes (`mm`; 0: none), as Linux's mmap_lock and page-table locks keep two CPUs apart.
  void enter_kernel(uint32_t mm = 0);
  // Back in a kernel operation after a wait in the hypervisor: this VCPU is the one in the
  // kernel again (others may have entered and left meanwhile).
  void resume_kernel();
  // PCPU scheduling (only when VCPUs outnumber PCPUs; no-ops otherwise). take_pcpu waits for a
  // PCPU and switches to its MMU; give_pcpu frees it; maybe_yield gives it up when the slice
  // is used and another VCPU waits: called on the way back to the guest (after an exit) and at
  // quantum boundaries of guest code, never inside the hypervisor.
  // take_pcpu and maybe_yield return the cycles they added: the wait and the switch.
  uint64_t take_pcpu();
  void give_pcpu();
  uint64_t maybe_yield();
  // run.timeline: a span of this VCPU (a wait: lane of VCPUs) or of its PCPU.
  void trace_wait(const char* name, uint64_t start) {
    if (w_.timeline) {
      w_.timeline->span(Timeline::Lane::kVcpu, id_, name, start, now_cycles(), id_);
    }
  }
  // Adds the kernel work and flush costs to local time (callers count the whole kernel entry by
  // the VCPU's clock: it may have waited in the hypervisor).
  void leave_kernel(uint64_t instructions);
  // A #PF delivered to the guest kernel; returns its cycles.
  uint64_t guest_page_fault(uint64_t va, uint32_t error_code);
  // The kernel's own access; true when a store trapped and the hypervisor emulated it.
  bool kernel_access(uint64_t va, uint64_t expected_pa, const Access& access,
                     const GuestStore* store);
  // A create event: the kernel makes the process; returns true when this task blocks (vfork).
  bool create_child(GuestTask& task, uint32_t stream, StreamOrigin how);
  void release_vfork_parent(GuestTask& task);
  uint64_t reference(const TraceRecord& r);  // cycles of all translations of one record
  // Translates one page and adds its cycles to local time; inline: the TLB-hit path.
  uint64_t translate_page(uint64_t va, const Access& access) {
    const MmuResult r = w_.mmu->translate(va, access, *hardware_, w_.tlb_context);
    unsynced_cycles_ += r.cycles;
    if (r.outcome != WalkOutcome::kOk) return r.cycles + handle_fault(va, access, r);
    if (w_.audit_tlb) audit_translation(va, access, r.pa);
    return r.cycles;
  }
  void audit_translation(uint64_t va, const Access& access, uint64_t pa) const;
  uint64_t handle_fault(uint64_t va, const Access& access, const MmuResult& first);
  uint64_t handle_shadow_fault(uint64_t va, const Access& access, const MmuResult& first);
  // Applies a recorded OS event; returns its cycles; sets *blocked when the task must wait.
  uint64_t os_event(GuestTask& task, const OsEvent& e, bool* blocked);
  uint64_t now_cycles() const;
  // Statistics cover the region of interest: a wait that began before it counts from its start.
  uint64_t roi_start() const { return w_.control->roi_start_cycles(); }
  bool sync_if_quantum_used();  // true when the quantum was used up (local time handed over)
  void reset_sync_budget();

  uint64_t instruction_cycles(uint64_t instructions);
  uint64_t kernel_cycles(uint64_t instructions);  // the same, counted as kernel work
  // A shadow fault that keeps coming back this often without progress is a model bug.
  static constexpr int kMaxFaultRounds = 64;

  int id_;
  VcpuWiring w_;
  // What the hardware walks: the guest's state (native, nested) or, under shadow paging, the
  // VCPU's shadow root the hypervisor loaded.
  PagingState hardware_state_;
  const PagingState* hardware_ = &w_.paging;
  bool in_kernel_ = false;
  uint64_t kernel_since_ = 0;  // when the current kernel operation began (timeline)
  uint32_t locked_mm_ = 0;
  sc_core::sc_event mm_lock_wake_;
  sc_core::sc_event pcpu_wake_;
  sc_core::sc_event ack_wake_;
  std::vector<Vcpu*> ack_requests_;  // initiators waiting for this VCPU's acknowledgement
  size_t acks_pending_ = 0;          // acknowledgements this VCPU still waits for
  int last_pcpu_ = -1;  // the address space whose guest lock this VCPU holds (0: none)
  GuestTask* task_ = nullptr;        // running now
  GuestTask* last_task_ = nullptr;   // ran last on this VCPU
  AddressFolder* folder_ = nullptr;  // of the current address space
  struct Asid {
    uint32_t mm = 0;          // 0: unused
    uint64_t generation = 0;  // the mm's flush generation this CPU's entries reflect
    uint64_t last_used = 0;
  };
  Asid asids_[kDynamicAsids];
  int asid_ = -1;  // slot of the mm loaded now
  uint64_t loaded_root_ = 0;  // top-level table in CR3 (0: none yet)
  uint64_t asid_clock_ = 0;

  uint64_t interrupt_cycles_ = 0;  // shootdown handlers not yet charged
  uint64_t hv_interrupt_cycles_ = 0;  // hypervisor work for other VCPUs' IPIs, not yet charged
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
  uint64_t unknown_children_ = 0;  // create events for streams the manifest does not list
  uint64_t kernel_instructions_ = 0;
  uint64_t kernel_access_cycles_total_ = 0;
  uint64_t context_switches_ = 0;
  uint64_t cr3_flushes_ = 0;  // TLB flushes caused by address-space switches
  uint64_t idle_cycles_ = 0;
  uint64_t cycles_ = 0;
  uint64_t translation_cycles_ = 0;
  uint64_t hypervisor_cycles_ = 0;  // exits, the fault path, emulation (shadow paging)
  uint64_t spin_cycles_ = 0;        // waiting for the shadow lock held by another VCPU
  uint64_t guest_lock_cycles_ = 0;  // waiting for another VCPU's kernel operation on an mm
  uint64_t preempted_cycles_ = 0;   // runnable, waiting for a PCPU
  uint64_t ack_wait_cycles_ = 0;    // waiting for descheduled VCPUs' shootdown acks
  uint64_t preemptions_ = 0;        // slices that ended with another VCPU waiting
  uint64_t pcpu_switches_ = 0;
};

}  // namespace shadowsim
