#include "system.h"

#include <chrono>
#include <map>

#include <fmt/format.h>
#include <systemc>
#include <tlm>

#include "common/error.h"
#include "guest/address_folder.h"
#include "guest/guest_kernel.h"
#include "guest/kernel_memory_port.h"
#include "hv/hypervisor.h"
#include "hv/pcpu_scheduler.h"
#include "memory/page_table_memory.h"
#include "mmu/mmu.h"
#include "nested/nested_host.h"
#include "paging/frame_allocator.h"
#include "timed/run_control.h"
#include "timed/systemc_context.h"
#include "timed/vcpu.h"
#include "version.h"
#include "workloads/trace_manifest.h"
#include "workloads/trace_reader.h"

namespace shadowsim {
namespace {

constexpr uint64_t kReservedLowFrames = 256;  // the first 1 MiB: firmware, never handed out

// The shadow pool in 4 KiB pages: hypervisor.shadow_pool_mib, or xend's default of 1 MiB per
// VCPU + 8 KiB per MiB of guest RAM (research §5), rounded up to the pool's 4-page unit; an
// explicit size below what one fault can need is refused.
uint64_t shadow_pool_pages(const SimConfig& config, unsigned vcpus) {
  const PagingMode mode = config.machine.paging_mode;
  const uint64_t minimum = ShadowPaging::min_pool_pages(mode, vcpus);
  const uint32_t mib = config.hypervisor.shadow_pool_mib;
  if (mib == 0) {
    const uint64_t xend = uint64_t{vcpus} * 256 + config.machine.memory.size_mib * 2;
    return std::max(minimum, (xend + 3) / 4 * 4);
  }
  const uint64_t pages = uint64_t{mib} * 256;
  if (pages < minimum) {
    throw Error(fmt::format("hypervisor.shadow_pool_mib: {} MiB ({} pages) cannot hold the "
                            "shadows one fault may need with {} VCPUs: at least {} pages ({} "
                            "MiB)", mib, pages, vcpus, minimum, (minimum + 255) / 256));
  }
  return pages;
}

}  // namespace

struct System::Impl {
  ScContext context;  // declared first: the modules go before the context they live in
  SimConfig config;
  std::string config_path;
  StatsRegistry registry;
  RunRecord record;
  TraceManifest manifest;
  std::unique_ptr<PageTableMemory> memory;
  std::unique_ptr<FrameAllocator> frames;
  std::unique_ptr<KernelMemoryPort> port;
  std::unique_ptr<TlbShootdown> shootdown;
  std::unique_ptr<GuestKernel> kernel;
  std::unique_ptr<Hypervisor> hypervisor;  // shadow paging only
  std::unique_ptr<GuestMmLocks> mm_locks;  // shadow paging only
  std::unique_ptr<NestedHost> nested_host;  // nested paging only; outlives the MMUs
  std::unique_ptr<PcpuScheduler> pcpus;     // VCPUs outnumber PCPUs only
  std::unique_ptr<Timeline> timeline;       // run.timeline only
  std::unique_ptr<AddressFolders> folders;
  std::unique_ptr<RunControl> control;
  std::unique_ptr<GuestScheduler> scheduler;
  std::vector<std::unique_ptr<GuestTask>> tasks;
  std::vector<std::unique_ptr<Mmu>> mmus;
  std::vector<std::unique_ptr<Vcpu>> vcpus;
  uint64_t makespan_cycles = 0;
  uint64_t roi_references = 0;
};

// A configuration the assembly refuses (impossible together, or a workload that does not fit)
// is reported with the config file's name before the message, which names the JSON path.
System::System(const SimConfig& config, std::string config_path) try : impl_(new Impl) {
  Impl& s = *impl_;
  s.config = config;
  s.config_path = config_path;
  const MachineParams& m = config.machine;

  s.manifest = load_workload(config.workload.trace);
  const int streams = static_cast<int>(s.manifest.streams.size());
  const int vcpus = m.vcpus ? static_cast<int>(m.vcpus) : streams;  // 0: one per stream
  const bool shadow = m.virtualization == Virtualization::kShadow;
  // PCPUs: one per VCPU (pinned) unless machine.pcpus says fewer; then they are shared.
  const int pcpus = m.pcpus ? static_cast<int>(m.pcpus) : vcpus;
  if (pcpus < vcpus && m.virtualization == Virtualization::kNative) {
    throw Error(fmt::format("machine.pcpus: {} PCPUs for {} VCPUs: sharing PCPUs needs a "
                            "hypervisor (machine.virtualization shadow or nested)", pcpus,
                            vcpus));
  }
  // Shadow paging: machine memory is guest RAM, then the shadow pool above it.
  const uint64_t frames = m.memory.size_mib * 256;  // guest RAM
  const uint64_t pool_pages = shadow ? shadow_pool_pages(config, static_cast<unsigned>(vcpus)) : 0;
  PageTableMemoryParams machine_memory = m.memory;
  machine_memory.size_mib += (pool_pages + 255) / 256;
  if (machine_memory.size_mib * (1ull << 20) > GuestMemory::kMaxBytes) {
    throw Error(fmt::format("machine.memory.size_mib: {} MiB of guest RAM plus a {} MiB shadow "
                            "pool (hypervisor.shadow_pool_mib) exceed the {} MiB of machine "
                            "memory the model holds", m.memory.size_mib, (pool_pages + 255) / 256,
                            GuestMemory::kMaxBytes >> 20));
  }
  if (shadow && m.paging_mode != PagingMode::k4Level && machine_memory.size_mib > 4096) {
    throw Error(fmt::format("machine.memory.size_mib: {} MiB of guest RAM plus a {}-page shadow "
                            "pool do not fit below 4 GiB, where a PAE shadow's CR3 must point "
                            "(32bit and pae guests); use at most {} MiB", m.memory.size_mib,
                            pool_pages, 4096 - (pool_pages + 255) / 256));
  }
  s.memory = std::make_unique<PageTableMemory>(machine_memory, pcpus);
  // What the guest sees in CPUID: Xen hides 1 GiB pages from shadowed guests (its shadow code
  // has no 1 GiB shadows), so the guest kernel maps its direct map with 2 MiB pages instead.
  CpuFeatures guest_cpu = m.cpu;
  if (shadow) guest_cpu.page_1gb = false;
  if (frames <= kReservedLowFrames) {
    throw Error(fmt::format("machine.memory.size_mib: {} MiB leaves no frame above the first "
                            "MiB", m.memory.size_mib));
  }
  s.frames = std::make_unique<FrameAllocator>(
      kReservedLowFrames, frames - kReservedLowFrames,
      config.guest.random_frames ? FrameAllocator::Placement::kRandom
                                 : FrameAllocator::Placement::kLowestFree,
      config.run.seed);
  // Every guest page-table access goes through the kernel memory port: at boot straight to
  // memory, afterwards as the kernel's stores through the VCPU in the kernel.
  s.port = std::make_unique<KernelMemoryPort>(s.memory->memory(), m.paging_mode,
                                              m.controls.efer_nxe);
  s.shootdown = std::make_unique<TlbShootdown>(m.tlb_shootdown);
  s.kernel = std::make_unique<GuestKernel>(m.paging_mode, m.controls, guest_cpu, config.guest,
                                           *s.frames, *s.port, *s.shootdown);
  s.port->attach(s.kernel.get());
  s.shootdown->attach(s.kernel.get(), &s.vcpus);
  s.control = std::make_unique<RunControl>(
      RunControl::Limits{config.run.warmup_references, config.run.max_references,
                         config.run.interval_references, config.run.warmup_cycles,
                         config.run.interval_cycles},
      s.registry, [&s](uint64_t roi_references, uint64_t now) {
        IntervalSnapshot snap{roi_references, now, {}};
        for (const FlatStat& f : flatten(s.registry)) snap.values.push_back(f.value);
        s.record.intervals.push_back(std::move(snap));
      });
  tlm::tlm_global_quantum::instance().set(
      sc_core::sc_time::from_value(config.run.quantum_cycles));

  // One guest task per stream: a stream without a parent is a process from time 0; a child
  // stream's task is created when its parent creates it (models/timed/vcpu.h). The guest
  // scheduler places the tasks on the VCPUs (one each, pinned, unless machine.vcpus says fewer).
  s.folders = std::make_unique<AddressFolders>(m.paging_mode);
  // guest.scheduler.placement "recorded": each task on the VCPU of its recorded CPU.
  const bool recorded = config.guest.scheduler.placement == GuestPlacement::kRecorded;
  if (recorded && !s.manifest.has_cpus()) {
    throw Error(fmt::format("guest.scheduler.placement: recorded needs the CPU each stream ran on "
                            "(\"cpu\" in the manifest's streams); {} has none (use placement "
                            "queue, or re-import the recording)", config.workload.trace));
  }
  if (recorded && s.manifest.recorded_cpus() != static_cast<uint32_t>(vcpus)) {
    throw Error(fmt::format("guest.scheduler.placement: recorded: the recording ran on {} CPUs "
                            "but the run has {} VCPUs; expected machine.vcpus = {}",
                            s.manifest.recorded_cpus(), vcpus, s.manifest.recorded_cpus()));
  }
  const bool pinned = vcpus == streams || recorded;
  if (m.paging_mode != PagingMode::k4Level && m.paging_mode != PagingMode::k5Level &&
      vcpus > KernelLayout::kMaxKmapCpus) {
    throw Error(fmt::format("machine.vcpus: {} VCPUs; a 32-bit guest kernel has kmap slots for "
                            "at most {} CPUs", vcpus, KernelLayout::kMaxKmapCpus));
  }
  s.scheduler = std::make_unique<GuestScheduler>(config.guest.scheduler, pinned);
  std::map<uint32_t, GuestTask*> task_of_stream;
  for (int i = 0; i < streams; ++i) {
    const TraceStream& stream = s.manifest.streams[static_cast<size_t>(i)];
    auto task = std::make_unique<GuestTask>();
    // Opened here to check it (a bad file is an error before the run), then released: the
    // task opens it again when it first runs (models/timed/guest_scheduler.h).
    open_trace(stream.path);
    task->trace_path = stream.path;
    task->pinned_vcpu = recorded ? static_cast<int>(*stream.cpu) : pinned ? i : -1;
    s.scheduler->add(task.get());
    task_of_stream[stream.id] = task.get();
    s.tasks.push_back(std::move(task));
  }
  for (const TraceStream& stream : s.manifest.streams) {
    GuestTask* task = task_of_stream.at(stream.id);
    if (stream.parent) {
      task_of_stream.at(*stream.parent)->children.push_back({stream.id, stream.created, task});
    } else {
      task->pid = s.kernel->create_process();
      s.scheduler->wake(task);
    }
  }
  if (shadow) {
    s.hypervisor = std::make_unique<Hypervisor>(
        s.memory->memory(), frames, frames, pool_pages, m.paging_mode,
        static_cast<unsigned>(vcpus), config.hypervisor, config.run.seed * 7919 + 17);
    s.mm_locks = std::make_unique<GuestMmLocks>();
  }
  if (config.run.timeline) {
    s.timeline = std::make_unique<Timeline>(config.run.timeline_max_spans);
    if (s.hypervisor) s.hypervisor->set_timeline(s.timeline.get());
  }
  if (m.virtualization == Virtualization::kNested) {
    s.nested_host = std::make_unique<NestedHost>(s.memory->memory(), config.hypervisor.nested);
  }
  const MmuParams mmu_params{m.tlb, m.psc};
  std::vector<Mmu*> pcpu_mmus;
  for (int p = 0; p < pcpus; ++p) {
    s.mmus.push_back(std::make_unique<Mmu>(p, mmu_params, *s.memory,
                                           config.run.seed * 1000003 + static_cast<uint64_t>(p),
                                           s.nested_host.get()));
    pcpu_mmus.push_back(s.mmus.back().get());
  }
  const bool free_placement =
      !config.hypervisor.scheduler.pinned && m.virtualization != Virtualization::kNative;
  if (pcpus < vcpus || free_placement) {
    s.pcpus = std::make_unique<PcpuScheduler>(static_cast<unsigned>(pcpus),
                                              static_cast<unsigned>(vcpus),
                                              config.hypervisor.scheduler);
  }
  for (int i = 0; i < vcpus; ++i) {
    TlbContext tlb_context;
    // Under a hypervisor with VPIDs each VCPU tags its TLB entries with its own VPID (KVM's
    // allocate_vpid), so VCPUs sharing a PCPU keep apart; without, 0.
    if (m.virtualization != Virtualization::kNative && config.hypervisor.vpid) {
      tlb_context.vpid = static_cast<uint16_t>(i + 1);
    }
    VcpuWiring wiring{pcpu_mmus[static_cast<size_t>(i % pcpus)], s.kernel.get(),
                      s.scheduler.get(), s.folders.get(), s.control.get(), s.shootdown.get(),
                      s.port.get(), PagingState(m.paging_mode, m.controls, guest_cpu),
                      tlb_context, config.run.audit_tlb, s.hypervisor.get(), s.mm_locks.get(),
                      s.pcpus.get(), s.pcpus ? pcpu_mmus : std::vector<Mmu*>{},
                      s.timeline.get()};
    s.vcpus.push_back(std::make_unique<Vcpu>(fmt::format("vcpu{}", i).c_str(), i, m.vcpu.cpi,
                                             std::move(wiring)));
    if (s.hypervisor) s.hypervisor->attach(s.vcpus.back().get());
  }

  // Statistics: per VCPU, per PCPU, shared memory, run-wide.
  for (int i = 0; i < vcpus; ++i) {
    s.vcpus[static_cast<size_t>(i)]->register_stats(
        StatsGroup(s.registry, fmt::format("vcpu{}", i)));
  }
  for (int p = 0; p < pcpus; ++p) {
    s.mmus[static_cast<size_t>(p)]->register_stats(
        StatsGroup(s.registry, fmt::format("pcpu{}", p)));
  }
  if (s.pcpus) s.pcpus->register_stats(StatsGroup(s.registry, "hv.scheduler"));
  s.memory->register_stats(StatsGroup(s.registry, "ptmem"));
  s.kernel->register_stats(StatsGroup(s.registry, "guest"));
  s.shootdown->register_stats(StatsGroup(s.registry, "guest.tlb"));
  s.port->register_stats(StatsGroup(s.registry, "guest.port"));
  s.scheduler->register_stats(StatsGroup(s.registry, "guest.scheduler"));
  if (s.hypervisor) s.hypervisor->register_stats(StatsGroup(s.registry, "hv"));
  StatsGroup sim(s.registry, "sim");
  sim.formula("makespan_cycles", [&s] { return static_cast<double>(s.makespan_cycles); },
              "cycles", "end of the last VCPU minus the start of the region of interest");
  sim.formula("references", [&s] { return static_cast<double>(s.control->roi_references()); },
              "references", "references replayed in the region of interest");
} catch (const Error& e) {
  const std::string what = e.what();
  if (config_path.empty() || what.rfind(config_path, 0) == 0) throw;
  throw Error(fmt::format("{}: {}", config_path, what));
}

System::~System() = default;

void System::run() {
  Impl& s = *impl_;
  const auto start = std::chrono::steady_clock::now();
  sc_core::sc_start();
  for (const auto& vcpu : s.vcpus) {
    if (!vcpu->error().empty()) throw Error(vcpu->error());
  }
  for (const auto& vcpu : s.vcpus) {  // the simulation ran out of events with work left
    if (!vcpu->finished()) {
      throw Error(fmt::format("{} never finished: the VCPUs waited for each other (a model bug)",
                              vcpu->name()));
    }
  }
  if (s.hypervisor) s.hypervisor->audit_all();  // hypervisor.audit: every shadow, at the end
  const auto end = std::chrono::steady_clock::now();
  uint64_t last = 0;
  for (const auto& vcpu : s.vcpus) last = std::max(last, vcpu->finish_cycles());
  s.makespan_cycles = last - s.control->roi_start_cycles();

  RunRecord& r = s.record;
  r.version = kVersion;
  r.git_hash = kGitHash;
  r.config_path = s.config_path;
  r.resolved_config_json = config_to_json(s.config);
  r.seed = s.config.run.seed;
  r.roi_references = s.control->roi_references();
  r.roi_start_cycles = s.control->roi_start_cycles();
  r.end_cycles = last;
  r.host_seconds = std::chrono::duration<double>(end - start).count();
  if (!s.control->in_roi()) {
    throw Error(fmt::format("run.warmup_{}: the workload ended (after {} references, {} cycles) "
                            "before the warm-up was over",
                            s.config.run.warmup_cycles ? "cycles" : "references",
                            s.control->roi_references(), last));
  }
}

const StatsRegistry& System::stats() const { return impl_->registry; }
std::string System::timeline_json() const {
  return impl_->timeline ? impl_->timeline->json() : std::string();
}
const RunRecord& System::record() const { return impl_->record; }

std::string System::summary() const {
  const Impl& s = *impl_;
  auto value = [&s](const std::string& name) {
    const StatsRegistry::Entry* e = s.registry.find(name);
    if (!e) return 0.0;
    return e->counter ? static_cast<double>(*e->counter) : e->formula ? e->formula() : 0.0;
  };
  std::string out = fmt::format(
      "shadowsim: {} VCPU(s), {} paging, {} references in the region of interest, {} cycles\n",
      s.vcpus.size(), to_string(s.config.machine.paging_mode), s.record.roi_references,
      s.makespan_cycles);
  // A VCPU's references and a PCPU's MMU are separate lines: with machine.pcpus below the
  // VCPU count, VCPUs share PCPUs and their MMUs.
  const size_t pcpus = s.mmus.size();
  const size_t shown = std::min<size_t>(s.vcpus.size(), 4);  // the rest: stats.csv
  for (size_t i = 0; i < shown; ++i) {
    const std::string v = fmt::format("vcpu{}", i);
    out += fmt::format(
        "  {}: {:.0f} instructions, {:.0f} R / {:.0f} W / {:.0f} X references, {:.0f} cycles "
        "({:.1f}% translating)\n",
        v, value(v + ".instructions"), value(v + ".references.read"),
        value(v + ".references.write"), value(v + ".references.fetch"), value(v + ".cycles"),
        100 * value(v + ".translation_share"));
  }
  if (shown < s.vcpus.size()) {
    double faults = 0;
    for (size_t i = 0; i < s.vcpus.size(); ++i) faults += value(fmt::format("vcpu{}.page_faults", i));
    out += fmt::format("  ... {} more VCPUs; all VCPUs: {:.0f} page faults (per-VCPU figures in "
                       "stats.csv)\n", s.vcpus.size() - shown, faults);
  }
  const size_t shown_pcpus = std::min<size_t>(pcpus, 4);
  for (size_t i = 0; i < shown_pcpus; ++i) {
    const std::string p = fmt::format("pcpu{}", i);
    out += fmt::format(
        "  {}: DTLB miss rate {:.2f}%, ITLB {:.2f}%, STLB {:.2f}%; {:.0f} walks, {:.2f} "
        "page-table references per walk\n",
        p, 100 * value(p + ".dtlb.miss_rate"), 100 * value(p + ".itlb.miss_rate"),
        100 * value(p + ".stlb.miss_rate"), value(p + ".walker.walks"),
        value(p + ".walker.references_per_walk"));
  }
  if (shown_pcpus < pcpus) {
    double walks = 0;
    for (size_t i = 0; i < pcpus; ++i) walks += value(fmt::format("pcpu{}.walker.walks", i));
    out += fmt::format("  ... {} more PCPUs; all PCPUs: {:.0f} walks\n", pcpus - shown_pcpus,
                       walks);
  }
  out += fmt::format(
      "  page-table lines: L1D hit rate {:.1f}%, LLC {:.1f}%, {:.0f} DRAM accesses\n",
                     100 * value("ptmem.pcpu0.l1d.hit_rate"), 100 * value("ptmem.llc.hit_rate"),
                     value("ptmem.dram_accesses"));
  return out;
}

}  // namespace shadowsim
