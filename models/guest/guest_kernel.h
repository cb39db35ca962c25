// The guest kernel model: processes and their address spaces (Linux mm_struct with VMAs) whose
// page tables live in guest memory and are edited the way Linux 6.1 edits them
// (../shared research notes, workloads.md §4; docs/guest.md):
//   - demand paging: anonymous read -> the shared zero page, read-only; anonymous write -> a new
//     zeroed frame, writable and dirty; file-backed read -> fault-around (up to 16 PTEs of the
//     same page table, inside the VMA); tables allocated on the way down;
//   - fork: page tables copied only for VMAs with anonymous pages (vma_needs_copy), private
//     writable PTEs write-protected in parent and child (COW), then the parent's TLB flushed;
//     vfork and threads share the mm; COW break reuses an exclusively owned frame, else copies
//     (clear, flush, set); exec gives a new mm; exit and munmap clear PTEs one by one, free empty
//     tables after the flush; mprotect rewrites present PTEs and flushes; brk grows and shrinks.
// A plain C++ core: every page-table write goes through the PageTableStore (the one door), and
// every TLB invalidation the kernel needs is asked of a TlbShootdownSink at the point Linux does
// it. The timed layer implements both (stores through the VCPU, shootdown IPIs to the VCPUs that
// run the mm).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/params.h"
#include "common/stats.h"
#include "guest/kernel_layout.h"
#include "paging/frame_allocator.h"
#include "paging/page_table_editor.h"
#include "paging/paging_state.h"

namespace shadowsim {

namespace prot {
constexpr uint8_t kRead = 1;
constexpr uint8_t kWrite = 2;
constexpr uint8_t kExec = 4;
}  // namespace prot

struct Vma {
  uint64_t start = 0;  // [start, end), page aligned
  uint64_t end = 0;
  uint8_t prot = 0;          // prot::k*
  bool shared = false;       // MAP_SHARED
  bool file = false;         // file-backed (page cache); else anonymous
  bool grows_down = false;   // a stack
  bool has_anon = false;     // has anonymous pages (Linux anon_vma): fork copies its tables
};

// Kernel work charged to the VCPU, in instructions. Assumptions (no single published source):
// orders of magnitude of Linux 6.1 paths on a ~3 GHz core (a minor fault ~0.5-1 us, fork of a
// small process ~50-100 us, exec ~300 us).
struct KernelCosts {
  uint32_t fault = 1000;          // exception entry/exit and the fault handler
  uint32_t page_copy = 700;       // clear_page / copy_page of 4 KiB
  uint32_t syscall = 1500;        // mmap, munmap, mprotect, brk: entry, VMA work, exit
  uint32_t per_pte = 15;          // each PTE visited by fork, munmap, mprotect, exit
  uint32_t fork = 30000;
  uint32_t exec = 100000;
  uint32_t exit = 20000;

  template <class V>
  void visit(V& v) {
    v.value("fault", fault, "page-fault entry, handler and exit", Limits{0, 1e9}, "instructions");
    v.value("page_copy", page_copy, "zeroing or copying one 4 KiB page", Limits{0, 1e9},
            "instructions");
    v.value("syscall", syscall, "mmap/munmap/mprotect/brk base cost", Limits{0, 1e9},
            "instructions");
    v.value("per_pte", per_pte, "each PTE visited by fork, munmap, mprotect, exit",
            Limits{0, 1e9}, "instructions");
    v.value("fork", fork, "fork base cost", Limits{0, 1e9}, "instructions");
    v.value("exec", exec, "exec base cost", Limits{0, 1e9}, "instructions");
    v.value("exit", exit, "exit base cost", Limits{0, 1e9}, "instructions");
  }
};

// Time-slice and context-switch parameters. Assumptions: CFS's minimum granularity is 0.75-3 ms
// depending on the CPU count (sched_min_granularity_ns); 1 ms at 3 GHz. A context switch costs
// ~1-2 us (lmbench lat_ctx on recent x86), ~3000 instructions here beside its TLB effects.
// Placement: kQueue, the guest scheduler's own (one run queue, any VCPU takes the next task);
// kRecorded, each task stays on the VCPU of the CPU its recording ran it on (the manifest's
// per-stream "cpu"; a run queue per VCPU). docs/vcpu.md.
enum class GuestPlacement : uint8_t { kQueue, kRecorded };

struct SchedulerParams {
  uint64_t slice_cycles = 3000000;
  uint32_t context_switch_instructions = 3000;
  GuestPlacement placement = GuestPlacement::kQueue;

  template <class V>
  void visit(V& v) {
    v.value("slice_cycles", slice_cycles,
            "a task runs this long before yielding to a waiting one (fewer VCPUs than streams)",
            Limits{1000, 1e15}, "cycles");
    v.value("context_switch_instructions", context_switch_instructions,
            "kernel work of one context switch (schedule, switch_mm, switch_to)", Limits{0, 1e9},
            "instructions");
    v.choice("placement", placement,
             "which VCPU runs a task: queue (one run queue, any VCPU) or recorded (the VCPU of "
             "the CPU the recording ran it on most: the manifest's per-stream cpu; needs as many "
             "VCPUs as the recording had CPUs)",
             {{"queue", GuestPlacement::kQueue}, {"recorded", GuestPlacement::kRecorded}});
  }
};

struct GuestKernelParams {
  bool zero_page = true;              // anonymous reads map the shared zero page
  uint32_t fault_around_pages = 16;   // fault_around_bytes = 64 KiB
  uint32_t flush_ceiling_pages = 33;  // tlb_single_page_flush_ceiling: INVLPG up to this
  // Traces without memory-management events touch memory no VMA describes: with this on, such a
  // touch creates an anonymous read/write/exec VMA for its 64 KiB region (merged with
  // neighbours); off, it is a segmentation fault (an Error).
  bool implicit_vmas = true;
  bool random_frames = false;  // seeded random physical placement instead of lowest-free
  KernelLayoutParams layout;
  SchedulerParams scheduler;  // used by the timed layer's guest scheduler
  KernelCosts costs;

  template <class V>
  void visit(V& v) {
    v.value("zero_page", zero_page, "anonymous read faults map the shared zero page");
    v.value("fault_around_pages", fault_around_pages, "file read faults map up to this many PTEs",
            Limits{1, 512}, "pages");
    v.value("flush_ceiling_pages", flush_ceiling_pages,
            "ranges up to this many pages are flushed page by page, larger ones fully",
            Limits{0, 1 << 20}, "pages");
    v.value("implicit_vmas", implicit_vmas,
            "a touch outside every VMA creates an anonymous VMA (traces without mm events)");
    v.value("random_frames", random_frames,
            "seeded random physical frame placement (else lowest free frame first)");
    v.group("layout", layout, "where the kernel maps physical memory and its page tables");
    v.group("scheduler", scheduler, "the guest scheduler (streams on VCPUs)");
    v.group("costs", costs, "kernel work charged to the VCPU");
  }
  void validate() const {
    if (fault_around_pages & (fault_around_pages - 1)) {
      throw ParamError("fault_around_pages", "must be a power of two (Linux rounds it down)");
    }
  }
};

// TLB invalidation requests, made where Linux makes them. The timed layer applies them to every
// CPU that runs the mm (a shootdown when that is more than the current one).
class TlbShootdownSink {
 public:
  virtual ~TlbShootdownSink() = default;
  virtual void flush_pages(uint32_t mm, const std::vector<uint64_t>& pages) = 0;  // INVLPG each
  virtual void flush_mm(uint32_t mm) = 0;  // full non-global flush
};

enum class FaultKind : uint8_t {
  kZeroPage,    // anonymous read: the zero page mapped read-only
  kAnonymous,   // anonymous write (or read without the zero page): a new frame
  kFileAround,  // file read: fault-around
  kFileCow,     // private file write: a copy
  kCowReuse,    // write-protect fault on an exclusively owned frame: made writable in place
  kCowCopy,     // write-protect fault on a shared frame (or the zero page): copied
  kSharedWrite, // write to a shared file page: made writable in place
  kSpurious,    // the entry already allows the access (stale TLB entry, or mapped by another CPU)
  kCount
};
const char* to_string(FaultKind kind);

struct FaultOutcome {
  FaultKind kind;
  uint64_t instructions;  // kernel work to charge
};

class GuestKernel {
 public:
  GuestKernel(PagingMode mode, PagingControls controls, CpuFeatures features,
              const GuestKernelParams& params, FrameAllocator& frames, PageTableStore& store,
              TlbShootdownSink& tlb);
  ~GuestKernel();

  // Processes. Each returns the new pid; the kernel work is added to *instructions if given.
  uint32_t create_process();
  uint32_t fork(uint32_t parent, uint64_t* instructions = nullptr);
  uint32_t vfork(uint32_t parent);         // shares the parent's mm until exec or exit
  uint32_t clone_thread(uint32_t parent);  // shares the mm for good
  uint64_t exec(uint32_t pid);             // a new, empty mm; the old one dropped
  uint64_t exit(uint32_t pid);
  // wait4 for a child: the system call's work (the scheduler blocks the caller if the child
  // has not exited yet).
  uint64_t wait(uint32_t pid);

  // Memory-management system calls; `addr` is where the mapping is (the syscall's result).
  // Each returns the kernel work in instructions. Throws Error on a malformed range.
  uint64_t mmap(uint32_t pid, uint64_t addr, uint64_t length, uint8_t prot, bool shared,
                bool file, bool grows_down = false);
  uint64_t munmap(uint32_t pid, uint64_t addr, uint64_t length);
  uint64_t mprotect(uint32_t pid, uint64_t addr, uint64_t length, uint8_t prot);
  uint64_t brk(uint32_t pid, uint64_t new_brk);
  // mremap: [addr, +length) becomes [new_addr, +new_length). Present PTEs move with their frames
  // (move_ptes: cleared at the old address, set at the new one, the old range flushed); a
  // shrink unmaps the tail; growth extends the VMA.
  uint64_t mremap(uint32_t pid, uint64_t addr, uint64_t length, uint64_t new_addr,
                  uint64_t new_length);

  // A CPU loaded `new_root` in CR3 in place of `old_root` (0: none). Linux frees an mm's top
  // level (pgd_free, at mmdrop) only once no CPU has it loaded (lazy TLB mode keeps it), so a
  // dead address space's top level is freed here when its last CPU switches away.
  void switch_root(uint64_t old_root, uint64_t new_root);

  // A #PF the hardware raised for `pid` at `va` with `error_code`. Throws Error on a
  // segmentation fault (an access no VMA allows): a trace and the model disagree.
  FaultOutcome page_fault(uint32_t pid, uint64_t va, uint32_t error_code);

  // State.
  uint64_t cr3(uint32_t pid) const;
  uint32_t mm_of(uint32_t pid) const;
  bool alive(uint32_t pid) const;
  std::vector<Vma> vmas(uint32_t pid) const;
  uint32_t mapcount(uint64_t frame) const;  // PTEs mapping a data frame
  uint64_t zero_page_frame() const { return zero_frame_; }
  const KernelLayout& layout() const { return layout_; }
  uint64_t kernel_root() const { return kernel_root_; }  // swapper_pg_dir: the kernel template
  // The fixmap PTE that maps a kmap slot (32-bit kernels), for the kernel's store path.
  uint64_t kmap_pte_address(uint64_t slot_va) const;
  uint64_t live_table_pages() const { return table_pages_allocated_ - table_pages_freed_; }
  uint64_t kernel_table_pages() const { return kernel_table_pages_; }
  void register_stats(StatsGroup g);

 private:
  struct Mm;
  struct Process {
    uint32_t pid;
    std::shared_ptr<Mm> mm;
  };
  enum Cause : uint8_t { kCauseFault, kCauseFork, kCauseCow, kCauseUnmap, kCauseProtect,
                         kCauseTeardown, kCauseKernel, kCauses };
  class CountingStore;

  Process& process(uint32_t pid);
  const Process& process(uint32_t pid) const;
  std::shared_ptr<Mm> new_mm();
  void drop_mm(std::shared_ptr<Mm>& mm);  // last user: exit_mmap
  void free_root(uint64_t root);          // pgd_free
  void flush_mm(uint32_t mm);             // tlb_, keeping this operation's PTE-write cause
  void flush_pages(uint32_t mm, const std::vector<uint64_t>& pages);
  Vma* find_vma(Mm& mm, uint64_t va);
  void insert_vma(Mm& mm, Vma vma);
  void split_at(Mm& mm, uint64_t address);
  uint64_t unmap_range(Mm& mm, uint64_t start, uint64_t end, bool free_tables);
  void flush_range(Mm& mm, const std::vector<uint64_t>& pages);
  uint64_t allocate_frame();       // a data frame the mode's leaf entries can reach
  uint64_t new_frame(bool anon);   // allocated, cleared, mapcount 1
  void put_frame(uint64_t frame);  // one PTE fewer maps it
  uint64_t leaf_flags(const Vma& vma, bool writable, bool dirty) const;
  void map_page(Mm& mm, uint64_t va, uint64_t frame, uint64_t flags);
  void build_kernel_address_space();
  void check_range(uint64_t addr, uint64_t length, const char* what) const;
  uint64_t frame_of(uint64_t entry) const { return (entry & address_mask_) >> kPageShift; }
  std::vector<std::pair<uint64_t, uint64_t>> present_leaves(const Mm& mm, uint64_t start,
                                                            uint64_t end);

  PagingMode mode_;
  PagingControls controls_;
  GuestKernelParams params_;
  FrameAllocator& frames_;
  std::unique_ptr<CountingStore> store_;
  KernelLayout layout_;
  PageTableEditor editor_;
  uint64_t kernel_root_ = 0;
  std::unordered_map<uint64_t, uint64_t> kmap_ptes_;  // kmap slot address -> its fixmap PTE
  TlbShootdownSink& tlb_;
  std::map<uint32_t, Process> processes_;
  uint32_t next_pid_ = 1;
  uint32_t next_mm_ = 1;
  uint64_t address_mask_;  // frame bits of an entry
  uint64_t zero_frame_;
  struct FrameInfo {
    uint32_t mapcount = 0;  // PTEs mapping the frame
    bool anon = false;      // anonymous (vs page cache): mprotect may make it writable again
  };
  std::unordered_map<uint64_t, FrameInfo> frame_info_;
  std::unordered_map<uint64_t, int> root_cpus_;  // top level -> CPUs with it in CR3
  std::unordered_set<uint64_t> dead_roots_;      // of exited mms, waiting for those CPUs

  uint64_t faults_[static_cast<int>(FaultKind::kCount)] = {};
  uint64_t error_codes_[32] = {};  // by P|W|U|RSVD|I
  uint64_t pte_writes_[kCauses] = {};
  uint64_t kernel_table_pages_ = 0;  // the kernel's own tables (direct map, fixmap), shared
  uint64_t table_pages_allocated_ = 0;
  uint64_t table_pages_freed_ = 0;
  uint64_t cow_breaks_ = 0;
  uint64_t flush_requests_ = 0;
  uint64_t full_flush_requests_ = 0;
  uint64_t forks_ = 0, vforks_ = 0, threads_ = 0, execs_ = 0, exits_ = 0, waits_ = 0;
  uint64_t implicit_vmas_ = 0;
  uint64_t refused_brks_ = 0;
  Histogram table_pages_per_mm_;
};

}  // namespace shadowsim
