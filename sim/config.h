// The run's configuration: one JSON document mapped onto the modules' parameter structs.
// Defaults live in those structs (one place); the loader is strict: an unknown key, a wrong type
// or an out-of-range value is an Error naming the file, the JSON path and the expected form.
//
//   {
//     "machine":  { "paging_mode": "4level", "tlb": {...}, "psc": {...}, "memory": {...}, ... },
//     "guest":    { "zero_page": true, "fault_around_pages": 16, "costs": {...}, ... },
//     "workload": { "trace": "../workloads/traces/x.json" },
//     "run":      { "seed": 1, "quantum_cycles": 10000, "warmup_references": 0, ... }
//   }
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/params.h"
#include "guest/guest_kernel.h"
#include "hv/hv_params.h"
#include "memory/page_table_memory.h"
#include "timed/tlb_shootdown.h"
#include "tlb/paging_structure_cache.h"
#include "tlb/tlb_hierarchy.h"
#include "paging/paging_types.h"

namespace shadowsim {

struct VcpuParams {
  // Cycles per instruction without a memory reference of its own (and per fetched instruction,
  // beside its translation). 1.0 is an assumption: an in-order view of a ~1 IPC core.
  double cpi = 1.0;

  template <class V>
  void visit(V& v) {
    v.value("cpi", cpi, "cycles per instruction, excluding address translation", Limits{0, 1000},
            "cycles");
  }
};

struct MachineParams {
  PagingMode paging_mode = PagingMode::k4Level;
  Virtualization virtualization = Virtualization::kNative;
  uint32_t vcpus = 0;  // 0: one per trace stream
  uint32_t pcpus = 0;  // 0: one per VCPU
  PagingControls controls;
  CpuFeatures cpu;
  VcpuParams vcpu;
  TlbHierarchyParams tlb;
  PscParams psc;
  PageTableMemoryParams memory;
  ShootdownParams tlb_shootdown;

  template <class V>
  void visit(V& v) {
    v.choice("paging_mode", paging_mode, "paging mode simulated (wins over the trace's)",
             {{"32bit", PagingMode::k32Bit}, {"pae", PagingMode::kPae},
              {"4level", PagingMode::k4Level}, {"5level", PagingMode::k5Level}});
    v.choice("virtualization", virtualization,
             "how guest addresses are translated: the guest's tables (native), the "
             "hypervisor's shadow tables (shadow; section hypervisor), or a 2-D walk (nested)",
             {{"native", Virtualization::kNative}, {"shadow", Virtualization::kShadow},
              {"nested", Virtualization::kNested}});
    v.value("vcpus", vcpus,
            "guest VCPUs (0: one per trace stream, each stream pinned to its own; fewer: the "
            "guest scheduler time-slices the streams)", Limits{0, 1024}, "VCPUs");
    v.value("pcpus", pcpus,
            "physical CPUs (0: one per VCPU, each VCPU pinned to its own; fewer: VCPUs share "
            "them in time slices, hypervisor.scheduler; needs shadow or nested virtualization)",
            Limits{0, 1024}, "PCPUs");
    v.group("controls", controls, "control-register bits that change translation");
    v.group("cpu", cpu, "CPU features that decide entry formats");
    v.group("vcpu", vcpu, "VCPU timing");
    v.group("tlb", tlb, "TLB hierarchy of each PCPU");
    v.group("psc", psc, "paging-structure caches of each PCPU");
    v.group("memory", memory, "guest physical memory and the page-table line cache model");
    v.group("tlb_shootdown", tlb_shootdown, "costs of TLB flushes and shootdown IPIs");
  }
  void validate() const {
    const bool ia32e = paging_mode == PagingMode::k4Level || paging_mode == PagingMode::k5Level;
    if (controls.cr4_pcide && !ia32e) {
      throw ParamError("controls.cr4_pcide", "PCIDs need 4level or 5level paging");
    }
    if (memory.size_mib > (1ULL << (cpu.maxphyaddr - 20))) {
      throw ParamError("memory.size_mib", "guest memory must lie below 2^cpu.maxphyaddr");
    }
    if (virtualization == Virtualization::kShadow) {
      if (controls.cr4_pcide) {
        throw ParamError("controls.cr4_pcide",
                         "shadow paging (Xen 2008) does not give the guest PCIDs; set it false");
      }
      if (paging_mode == PagingMode::k5Level) {
        throw ParamError("paging_mode", "shadow paging has no 5-level shadows (Xen 2008 had "
                         "none); use 32bit, pae or 4level");
      }
    }
  }
};

struct WorkloadParams {
  std::string trace;  // a trace file or a multi-stream manifest; relative to the config file

  template <class V>
  void visit(V& v) {
    v.value("trace", trace, "trace file or manifest (path relative to the config file)");
  }
};

struct RunParams {
  uint64_t seed = 1;
  uint64_t quantum_cycles = 10000;
  bool audit_tlb = false;  // check every translation against the guest's current tables
  bool timeline = false;   // OUTDIR/timeline.json: spans per PCPU and VCPU (common/timeline.h)
  uint64_t timeline_max_spans = 1000000;
  uint64_t warmup_references = 0;    // statistics reset after this many references (all VCPUs)
  uint64_t max_references = 0;       // stop after this many references; 0: whole trace
  uint64_t interval_references = 0;  // snapshot statistics every N references; 0: off
  uint64_t warmup_cycles = 0;        // alternative: statistics reset at this simulated time
  uint64_t interval_cycles = 0;      // alternative: snapshot every N cycles

  template <class V>
  void visit(V& v) {
    v.value("seed", seed, "seed of every random choice in the run");
    v.value("quantum_cycles", quantum_cycles, "temporal-decoupling quantum of each VCPU",
            Limits{1, 1e12}, "cycles");
    v.value("audit_tlb", audit_tlb,
            "check every successful translation against a walk of the guest's current tables: "
            "a stale TLB entry (a flush the model missed) stops the run with an error (slow)");
    v.value("timeline", timeline,
            "write OUTDIR/timeline.json: hypervisor work, lock spinning and holding, guest "
            "kernel work per PCPU and waits per VCPU, as Chrome trace events (Perfetto)");
    v.value("timeline_max_spans", timeline_max_spans,
            "spans kept in the timeline (the first ones; the rest are counted)",
            Limits{1, 1e9}, "spans");
    v.value("warmup_references", warmup_references,
            "memory references (all VCPUs) before statistics are reset", Limits{0, 1e18},
            "references");
    v.value("max_references", max_references, "stop after this many references (0: no limit)",
            Limits{0, 1e18}, "references");
    v.value("interval_references", interval_references,
            "statistics snapshot every N references (0: none)", Limits{0, 1e18}, "references");
    v.value("warmup_cycles", warmup_cycles,
            "alternative to warmup_references: reset at this time (at a quantum boundary)",
            Limits{0, 1e18}, "cycles");
    v.value("interval_cycles", interval_cycles,
            "alternative to interval_references: snapshot every N cycles (at quantum boundaries)",
            Limits{0, 1e18}, "cycles");
  }
  void validate() const {
    if (warmup_references && warmup_cycles) {
      throw ParamError("warmup_cycles", "give warmup_references or warmup_cycles, not both");
    }
    if (interval_references && interval_cycles) {
      throw ParamError("interval_cycles", "give interval_references or interval_cycles, not both");
    }
  }
};

// The parameter set a config starts from (sim/presets.h; docs/presets.md).
enum class HardwarePreset : unsigned char { kModern, kCore2_2008 };

struct SimConfig {
  std::string description;  // free text, carried into the results
  HardwarePreset preset = HardwarePreset::kModern;
  MachineParams machine;
  GuestKernelParams guest;
  HypervisorParams hypervisor;
  WorkloadParams workload;
  RunParams run;

  template <class V>
  void visit(V& v) {
    v.value("description", description, "free text, copied into the results");
    v.choice("preset", preset,
             "hardware preset every other value starts from (docs/presets.md): a modern core "
             "with VPID, EPT and APIC virtualization, or the Core 2 of the Xen 2008 study",
             {{"modern", HardwarePreset::kModern}, {"core2-2008", HardwarePreset::kCore2_2008}});
    v.group("machine", machine, "the simulated machine");
    v.group("guest", guest, "the guest kernel model (docs/guest.md)");
    v.group("hypervisor", hypervisor,
            "the hypervisor under machine.virtualization = shadow (docs/hypervisor.md)");
    v.group("workload", workload, "what the VCPUs run");
    v.group("run", run, "seed, limits, quantum, statistics regions");
  }
};

// Reads `path`, applies `overrides` ("machine.vcpu.cpi=1.5"; the value is JSON, or a plain
// string), validates, and resolves workload.trace against the config file's folder.
SimConfig load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// Same from JSON text; `origin` names it in messages and anchors relative paths ("" = cwd).
SimConfig parse_config(const std::string& json_text, const std::string& origin,
                       const std::vector<std::string>& overrides = {});

std::string config_to_json(const SimConfig& config, int indent = 2);  // every field, resolved
std::string config_defaults_json();
std::string config_reference_markdown();  // docs/config.md

}  // namespace shadowsim
