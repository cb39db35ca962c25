// Hardware presets (the config's top-level "preset"): a starting point for every machine and
// hypervisor parameter, which the rest of the config then overrides key by key. docs/presets.md
// lists what each one sets and the sources.
//   modern      the defaults: a Skylake-class core with VPID, EPT and APIC virtualization
//   core2-2008  an Intel Core 2 (Penryn) of the Xen 2008 measurements: no VPID (every VM exit
//               and entry flushes the TLB), no EPT (nested paging refused), guest IPIs exit,
//               Core 2 TLBs, caches and a slower VM exit
#pragma once

namespace shadowsim {

struct SimConfig;
enum class HardwarePreset : unsigned char;

SimConfig preset_config(HardwarePreset preset);

}  // namespace shadowsim
