#include "presets.h"

#include "config.h"

namespace shadowsim {

namespace {

// Intel Core 2 Duo/Quad (Penryn, 45 nm, 2008), the machines of the Xen 2008 measurements.
void core2_2008(SimConfig& c) {
  MachineParams& m = c.machine;
  m.tlb = TlbHierarchyParams::core2();
  m.psc = PscParams::core2();
  // Penryn: 32 KiB 8-way L1D with a 3-cycle load-to-use, 6 MiB 24-way L2 per die shared by two
  // cores at ~15 cycles (xbitlabs QX9650 review, research §5), no L3. Modelled as a private half
  // of the L2 per core (3 MiB, 12-way) in front of the whole die's L2 as the shared level: an
  // approximation of one shared cache. DRAM over the front-side bus: ~80-100 ns at 2.66 GHz
  // (assumption, research §5: "DRAM 60-100 ns in 2008").
  m.memory.l1d = CacheParams{32, 8, 3};
  m.memory.l2 = CacheParams{3072, 12, 15};
  m.memory.llc = CacheParams{6144, 24, 15};
  m.memory.dram_latency_cycles = 250;
  m.cpu.page_1gb = false;  // 1 GiB pages came with Nehalem/Westmere-era server parts
  m.cpu.maxphyaddr = 36;   // Penryn desktop parts: 36 physical address bits
  HypervisorParams& h = c.hypervisor;
  h.vpid = false;       // VPID came with Nehalem (2008 Q4)
  h.ipi_exits = true;   // no APIC virtualization: sending and taking an IPI exit
  // Research §5: "use 1,000-2,000 cycles for Merom/Penryn" for the round trip (assumption);
  // 1,500 split as 800 + 700.
  h.costs.vmexit_cycles = 800;
  h.costs.vmentry_cycles = 700;
  // The 2008 lock: PAUSE ~10 cycles before Skylake; moving the line between cores of one die
  // 20-40 ns (~75 cycles at 2.66 GHz) -- both research §5, assumptions.
  h.lock.pause_cycles = 10;
  h.lock.transfer_cycles = 75;
}

}  // namespace

SimConfig preset_config(HardwarePreset preset) {
  SimConfig c;
  c.preset = preset;
  if (preset == HardwarePreset::kCore2_2008) core2_2008(c);
  return c;
}

}  // namespace shadowsim
