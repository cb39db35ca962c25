#include "guest/guest_kernel.h"


#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "common/error.h"

namespace shadowsim {

const char* to_string(FaultKind kind) {
  switch (kind) {
    case FaultKind::kZeroPage: return "zero_page";
    case FaultKind::kAnonymous: return "anonymous";
    case FaultKind::kFileAround: return "file_around";
    case FaultKind::kFileCow: return "file_cow";
    case FaultKind::kCowReuse: return "cow_reuse";
    case FaultKind::kCowCopy: return "cow_copy";
    case FaultKind::kSharedWrite: return "shared_write";
    case FaultKind::kSpurious: return "spurious";
    case FaultKind::kCount: break;
  }
  return "?";
}

// Counts every page-table write by the kernel path that made it, then passes it on.
class GuestKernel::CountingStore : public PageTableStore {
 public:
  CountingStore(PageTableStore& inner, uint64_t* counts) : inner_(inner), counts_(counts) {}
  // Each access may wait in a hypervisor while other CPUs run other kernel operations (which
  // set their own cause): the cause of this one is put back afterwards.
  uint64_t read_entry(uint64_t pa, int width) override {
    const Cause mine = cause;
    const uint64_t value = inner_.read_entry(pa, width);
    cause = mine;
    return value;
  }
  void write_entry(const EntryWrite& w) override {
    const Cause mine = cause;
    ++counts_[cause];
    inner_.write_entry(w);
    cause = mine;
  }
  void zero_frame(uint64_t frame) override {
    const Cause mine = cause;
    inner_.zero_frame(frame);
    cause = mine;
  }
  Cause cause = kCauseFault;

 private:
  PageTableStore& inner_;
  uint64_t* counts_;
};

struct GuestKernel::Mm {
  uint32_t id = 0;
  uint64_t root = 0;
  std::map<uint64_t, Vma> vmas;  // by start
  uint64_t table_pages = 0;       // live page-table pages, the top-level table included
  uint64_t peak_table_pages = 0;
  bool brk_known = false;
  uint64_t brk_start = 0;
  uint64_t brk = 0;
  int users = 0;
};

namespace {

constexpr uint64_t kImplicitVmaBytes = 64 * 1024;

uint64_t page_down(uint64_t a) { return a & ~(kPageSize - 1); }
uint64_t page_up(uint64_t a) { return (a + kPageSize - 1) & ~(kPageSize - 1); }

}  // namespace

GuestKernel::GuestKernel(PagingMode mode, PagingControls controls, CpuFeatures features,
                         const GuestKernelParams& params, FrameAllocator& frames,
                         PageTableStore& store, TlbShootdownSink& tlb)
    : mode_(mode), controls_(controls), params_(params), frames_(frames),
      store_(std::make_unique<CountingStore>(store, pte_writes_)),
      layout_(mode, controls, features, params.layout, frames.end_frame() << kPageShift),
      editor_(mode, controls, features, frames, *store_), tlb_(tlb),
      address_mask_(PagingState(mode, PagingControls{}, features).address_mask()) {
  // Every table the kernel reaches through its direct map comes from lowmem: at boot all of
  // them (the fixmap's PTE page included); afterwards all but HIGHPTE's PTE pages.
  const uint64_t lowmem_frames = layout_.lowmem_bytes() >> kPageShift;
  for (int level = 1; level <= top_level(mode); ++level) {
    editor_.set_table_frame_placement(level, lowmem_frames);
  }
  build_kernel_address_space();
  if (layout_.highpte()) {  // process PTE pages from high memory (the kernel's stay in lowmem)
    editor_.set_table_frame_placement(1, layout_.table_frame_limit(1),
                                      layout_.highmem_first_frame());
  }
  zero_frame_ = allocate_frame();  // the kernel's empty_zero_page, never freed
  store_->zero_frame(zero_frame_);
}

// The kernel's own page tables (swapper_pg_dir), built at boot and shared by every address
// space: the direct map of lowmem with large pages (PAGE_KERNEL: present, writable, accessed,
// dirty, global, no-execute), and on 32-bit kernels the fixmap page tables of the kmap slots.
void GuestKernel::build_kernel_address_space() {
  const uint64_t before = frames_.allocated_count();
  store_->cause = kCauseKernel;
  kernel_root_ = editor_.create_address_space();
  PageFlags f;
  f.writable = f.accessed = f.dirty = true;
  f.global = controls_.cr4_pge;
  f.execute_disable = mode_ != PagingMode::k32Bit && controls_.efer_nxe;
  for (const KernelLayout::Piece& piece : layout_.direct_map_pieces()) {
    editor_.map(kernel_root_, layout_.direct_map_base() + piece.pa, piece.pa, piece.bytes,
                piece.size, f);
  }
  if (layout_.has_kmap()) {  // the slots' page table exists; the slots start unmapped
    for (int cpu = 0; cpu < KernelLayout::kMaxKmapCpus; ++cpu) {
      for (const auto type : {KernelLayout::KmapType::kUser0, KernelLayout::KmapType::kPte0}) {
        const uint64_t slot = layout_.kmap_slot(cpu, type);
        editor_.map(kernel_root_, slot, 0, kPageSize, PageSize::k4K, f);
        editor_.unmap(kernel_root_, slot, kPageSize, /*free_empty_tables=*/false);
        kmap_ptes_[slot] = editor_.leaf(kernel_root_, slot)->entry_pa;
      }
    }
  }
  editor_.set_kernel_template(kernel_root_);
  kernel_table_pages_ = frames_.allocated_count() - before;
}

uint64_t GuestKernel::kmap_pte_address(uint64_t slot_va) const {
  const auto it = kmap_ptes_.find(slot_va);
  if (it == kmap_ptes_.end()) {
    throw Error(fmt::format("guest kernel: {:#x} is not a kmap slot", slot_va));
  }
  return it->second;
}

GuestKernel::~GuestKernel() = default;

// --- processes ------------------------------------------------------------------------------

GuestKernel::Process& GuestKernel::process(uint32_t pid) {
  const auto it = processes_.find(pid);
  if (it == processes_.end()) throw Error(fmt::format("guest kernel: no process {}", pid));
  return it->second;
}
const GuestKernel::Process& GuestKernel::process(uint32_t pid) const {
  return const_cast<GuestKernel*>(this)->process(pid);
}

std::shared_ptr<GuestKernel::Mm> GuestKernel::new_mm() {
  auto mm = std::make_shared<Mm>();
  mm->id = next_mm_++;
  const uint64_t before = frames_.allocated_count();
  const Cause cause = store_->cause;
  store_->cause = kCauseKernel;  // pgd_alloc: the kernel part copied into the new directory
  mm->root = editor_.create_address_space();
  store_->cause = cause;
  mm->table_pages = mm->peak_table_pages = frames_.allocated_count() - before;
  table_pages_allocated_ += mm->table_pages;
  return mm;
}

uint32_t GuestKernel::create_process() {
  const uint32_t pid = next_pid_++;
  Process p{pid, new_mm()};
  p.mm->users = 1;
  processes_.emplace(pid, std::move(p));
  return pid;
}

uint32_t GuestKernel::vfork(uint32_t parent) {
  std::shared_ptr<Mm> mm = process(parent).mm;
  ++mm->users;
  const uint32_t pid = next_pid_++;
  processes_.emplace(pid, Process{pid, mm});
  ++vforks_;
  return pid;
}

uint32_t GuestKernel::clone_thread(uint32_t parent) {
  const uint32_t pid = vfork(parent);
  --vforks_;
  ++threads_;
  return pid;
}

// dup_mmap + copy_page_range: tables are copied only for VMAs with anonymous pages; private
// writable PTEs are write-protected in the parent (a store to its live table) and copied
// read-only; the child's copies are made old (A clear) and, in shared mappings, clean.
uint32_t GuestKernel::fork(uint32_t parent_pid, uint64_t* instructions) {
  Mm& parent = *process(parent_pid).mm;
  std::shared_ptr<Mm> child = new_mm();
  child->users = 1;
  child->vmas = parent.vmas;
  child->brk_known = parent.brk_known;
  child->brk_start = parent.brk_start;
  child->brk = parent.brk;
  uint64_t work = params_.costs.fork;
  store_->cause = kCauseFork;
  for (const auto& [start, vma] : parent.vmas) {
    if (!vma.has_anon) continue;
    for (auto [va, value] : present_leaves(parent, vma.start, vma.end)) {
      work += params_.costs.per_pte;
      const bool cow = !vma.shared && (value & pte::kWritable);
      if (cow) editor_.clear_leaf_bits(parent.root, va, pte::kWritable);
      uint64_t copy = value & ~pte::kAccessed;
      if (cow) copy &= ~pte::kWritable;
      if (vma.shared) copy &= ~pte::kDirty;
      const uint64_t frame = frame_of(value);
      map_page(*child, va, frame, copy & ~address_mask_);
      if (frame != zero_frame_) ++frame_info_[frame].mapcount;
    }
  }
  flush_mm(parent.id);  // flush_tlb_mm(oldmm)
  ++flush_requests_;
  ++full_flush_requests_;
  const uint32_t pid = next_pid_++;
  processes_.emplace(pid, Process{pid, child});
  ++forks_;
  if (instructions) *instructions += work;
  return pid;
}

uint64_t GuestKernel::exec(uint32_t pid) {
  Process& p = process(pid);
  // exec_mmap: the process has its new mm before the old one is torn down (the teardown can
  // wait in a hypervisor, and other CPUs must never see the process without an mm).
  std::shared_ptr<Mm> fresh = new_mm();
  fresh->users = 1;
  std::shared_ptr<Mm> old = std::exchange(p.mm, fresh);
  drop_mm(old);
  ++execs_;
  return params_.costs.exec;
}

uint64_t GuestKernel::exit(uint32_t pid) {
  Process& p = process(pid);
  drop_mm(p.mm);
  processes_.erase(pid);
  ++exits_;
  return params_.costs.exit;
}

uint64_t GuestKernel::wait(uint32_t pid) {
  process(pid);  // the caller exists
  ++waits_;
  return params_.costs.syscall;
}

// exit_mmap when the last user goes: every PTE cleared, one full flush, then frames and tables
// freed.
void GuestKernel::drop_mm(std::shared_ptr<Mm>& mm) {
  if (--mm->users > 0) {
    mm.reset();
    return;
  }
  store_->cause = kCauseTeardown;
  std::vector<uint64_t> frames;  // every present user leaf, once, whatever the VMAs say
  const uint64_t user_end = (mode_ == PagingMode::k4Level || mode_ == PagingMode::k5Level)
                                ? 1ULL << (linear_address_bits(mode_) - 1)
                                : editor_.kernel_base();
  editor_.for_each_present_leaf(mm->root, 0, user_end, [&](uint64_t, uint64_t value) {
    frames.push_back(frame_of(value));
  });
  const uint64_t before = frames_.allocated_count();
  flush_mm(mm->id);
  ++flush_requests_;
  ++full_flush_requests_;
  editor_.destroy_tables(mm->root);
  table_pages_freed_ += before - frames_.allocated_count();
  if (root_cpus_[mm->root] == 0) {
    free_root(mm->root);
  } else {
    dead_roots_.insert(mm->root);
  }
  table_pages_per_mm_.sample(mm->peak_table_pages - 1);  // as Linux's VmPTE: without the PGD
  for (uint64_t f : frames) put_frame(f);
  mm.reset();
}

// The TLB flushes can wait (a hypervisor's exits), and other CPUs' kernel operations set their
// own PTE-write cause meanwhile: this operation's cause is put back afterwards.
void GuestKernel::flush_mm(uint32_t mm) {
  const Cause mine = store_->cause;
  tlb_.flush_mm(mm);
  store_->cause = mine;
}

void GuestKernel::flush_pages(uint32_t mm, const std::vector<uint64_t>& pages) {
  const Cause mine = store_->cause;
  tlb_.flush_pages(mm, pages);
  store_->cause = mine;
}

void GuestKernel::free_root(uint64_t root) {
  const uint64_t before = frames_.allocated_count();
  store_->cause = kCauseTeardown;
  editor_.free_top_level(root);
  table_pages_freed_ += before - frames_.allocated_count();
  root_cpus_.erase(root);
}

void GuestKernel::switch_root(uint64_t old_root, uint64_t new_root) {
  if (old_root == new_root) return;
  if (new_root) ++root_cpus_[new_root];
  if (!old_root) return;
  if (--root_cpus_[old_root] > 0 || !dead_roots_.count(old_root)) return;
  dead_roots_.erase(old_root);
  free_root(old_root);
}

// --- VMAs -----------------------------------------------------------------------------------

Vma* GuestKernel::find_vma(Mm& mm, uint64_t va) {
  auto it = mm.vmas.upper_bound(va);
  if (it == mm.vmas.begin()) return nullptr;
  --it;
  return va < it->second.end ? &it->second : nullptr;
}

void GuestKernel::split_at(Mm& mm, uint64_t address) {
  Vma* v = find_vma(mm, address);
  if (!v || v->start == address) return;
  Vma upper = *v;
  upper.start = address;
  v->end = address;
  mm.vmas.emplace(address, upper);
}

// Inserts a VMA over a free range, merging with compatible neighbours (vma_merge).
void GuestKernel::insert_vma(Mm& mm, Vma vma) {
  auto compatible = [&](const Vma& a) {
    return a.prot == vma.prot && a.shared == vma.shared && a.file == vma.file &&
           a.grows_down == vma.grows_down && !a.file;
  };
  auto next = mm.vmas.find(vma.end);
  if (next != mm.vmas.end() && compatible(next->second)) {
    vma.end = next->second.end;
    vma.has_anon |= next->second.has_anon;
    mm.vmas.erase(next);
  }
  if (Vma* prev = vma.start ? find_vma(mm, vma.start - 1) : nullptr) {
    if (prev->end == vma.start && compatible(*prev)) {
      prev->end = vma.end;
      prev->has_anon |= vma.has_anon;
      return;
    }
  }
  mm.vmas.emplace(vma.start, vma);
}

void GuestKernel::check_range(uint64_t addr, uint64_t length, const char* what) const {
  if (length == 0 || addr % kPageSize || addr + length < addr ||
      !is_canonical(mode_, addr) || !is_canonical(mode_, addr + length - 1) ||
      addr + length - 1 >= editor_.kernel_base()) {
    throw Error(fmt::format("{} of {:#x} bytes at {:#x}: expected a page-aligned, non-empty range "
                            "of user addresses", what, length, addr));
  }
}

// --- frames and entries ---------------------------------------------------------------------

uint64_t GuestKernel::allocate_frame() {
  // User pages are GFP_HIGHUSER: high memory first on 32-bit kernels. A 32-bit paging PTE holds
  // a 32-bit frame address (no large user pages here).
  constexpr uint64_t k4GFrames = 1ULL << 20;
  const uint64_t highmem = layout_.highmem_first_frame();
  uint64_t frame = highmem ? frames_.allocate_preferring(highmem) : frames_.allocate();
  if (mode_ == PagingMode::k32Bit && frame >= k4GFrames) {
    frames_.free(frame);
    frame = frames_.allocate_below(k4GFrames);
  }
  return frame;
}

uint64_t GuestKernel::new_frame(bool anon) {
  const uint64_t frame = allocate_frame();
  store_->zero_frame(frame);  // the page is cleared (or copied into) before it is mapped
  frame_info_[frame] = FrameInfo{1, anon};
  return frame;
}

void GuestKernel::put_frame(uint64_t frame) {
  if (frame == zero_frame_) return;
  const auto it = frame_info_.find(frame);
  if (it == frame_info_.end()) {
    throw Error(fmt::format("guest kernel: frame {:#x} unmapped more often than mapped (a model "
                            "bug)", frame));
  }
  if (--it->second.mapcount == 0) {
    frame_info_.erase(it);
    frames_.free(frame);
  }
}

// The present 4 KiB leaves of [start, end), collected before the caller edits the tables.
std::vector<std::pair<uint64_t, uint64_t>> GuestKernel::present_leaves(const Mm& mm, uint64_t start,
                                                                      uint64_t end) {
  std::vector<std::pair<uint64_t, uint64_t>> leaves;
  editor_.for_each_present_leaf(mm.root, start, end - start,
                                [&](uint64_t va, uint64_t value) {
                                  leaves.push_back({va, value});
                                });
  return leaves;
}

uint32_t GuestKernel::mapcount(uint64_t frame) const {
  const auto it = frame_info_.find(frame);
  return it == frame_info_.end() ? 0 : it->second.mapcount;
}

// Linux's PAGE_* protections for user pages include _PAGE_ACCESSED.
uint64_t GuestKernel::leaf_flags(const Vma& vma, bool writable, bool dirty) const {
  uint64_t f = pte::kPresent | pte::kUser | pte::kAccessed;
  if (writable) f |= pte::kWritable;
  if (dirty) f |= pte::kDirty;
  if (!(vma.prot & prot::kExec) && mode_ != PagingMode::k32Bit && controls_.efer_nxe) {
    f |= pte::kExecuteDisable;
  }
  return f;
}

// Maps one 4 KiB page with the exact leaf `flags`, allocating tables on the way down.
void GuestKernel::map_page(Mm& mm, uint64_t va, uint64_t frame, uint64_t flags) {
  PageFlags f;
  f.writable = flags & pte::kWritable;
  f.user = flags & pte::kUser;
  f.execute_disable = flags & pte::kExecuteDisable;
  f.global = flags & pte::kGlobal;
  f.accessed = flags & pte::kAccessed;
  f.dirty = flags & pte::kDirty;
  const uint64_t before = frames_.allocated_count();
  editor_.map(mm.root, va, frame << kPageShift, kPageSize, PageSize::k4K, f);
  const uint64_t added = frames_.allocated_count() - before;
  table_pages_allocated_ += added;
  mm.table_pages += added;
  mm.peak_table_pages = std::max(mm.peak_table_pages, mm.table_pages);
}

// tlb_finish_mmu / flush_tlb_mm_range: the flush covers the hull [first, last] of what was
// changed; INVLPG for each page of it up to the ceiling, a full flush above.
void GuestKernel::flush_range(Mm& mm, const std::vector<uint64_t>& pages) {
  if (pages.empty()) return;
  const auto [lo, hi] = std::minmax_element(pages.begin(), pages.end());
  const uint64_t span = (*hi - *lo) / kPageSize + 1;
  ++flush_requests_;
  if (span > params_.flush_ceiling_pages) {
    ++full_flush_requests_;
    flush_mm(mm.id);
    return;
  }
  std::vector<uint64_t> hull;
  for (uint64_t p = *lo; p <= *hi; p += kPageSize) hull.push_back(p);
  flush_pages(mm.id, hull);
}

// zap + free_pgtables + tlb_finish_mmu: PTEs cleared, empty tables unlinked, then the flush,
// then frames and tables freed.
uint64_t GuestKernel::unmap_range(Mm& mm, uint64_t start, uint64_t end, bool free_tables) {
  std::vector<uint64_t> pages, frames;
  editor_.for_each_present_leaf(mm.root, start, end - start, [&](uint64_t va, uint64_t value) {
    pages.push_back(va);
    frames.push_back(frame_of(value));
  });
  store_->cause = kCauseUnmap;
  const std::vector<uint64_t> tables = editor_.unmap(mm.root, start, end - start, free_tables);
  if (pages.empty() && !tables.empty()) {  // freed page tables alone also need the flush
    pages = {start, end - kPageSize};
  }
  flush_range(mm, pages);
  editor_.release_tables(tables);
  table_pages_freed_ += tables.size();
  mm.table_pages -= tables.size();
  for (uint64_t f : frames) put_frame(f);
  return pages.size() * params_.costs.per_pte;
}

// --- system calls ---------------------------------------------------------------------------

uint64_t GuestKernel::mmap(uint32_t pid, uint64_t addr, uint64_t length, uint8_t prot, bool shared,
                           bool file, bool grows_down) {
  const uint64_t len = page_up(length);
  check_range(addr, len, "mmap");
  Mm& mm = *process(pid).mm;
  const uint64_t work = munmap(pid, addr, len);  // MAP_FIXED semantics over what was there
  Vma vma;
  vma.start = addr;
  vma.end = addr + len;
  vma.prot = prot;
  vma.shared = shared;
  vma.file = file || shared;  // shared anonymous memory is shmem: file-backed faults
  vma.grows_down = grows_down;
  insert_vma(mm, vma);
  return work;
}

uint64_t GuestKernel::munmap(uint32_t pid, uint64_t addr, uint64_t length) {
  const uint64_t len = page_up(length);
  check_range(addr, len, "munmap");
  Mm& mm = *process(pid).mm;
  split_at(mm, addr);
  split_at(mm, addr + len);
  for (auto it = mm.vmas.lower_bound(addr); it != mm.vmas.end() && it->first < addr + len;) {
    it = mm.vmas.erase(it);
  }
  return params_.costs.syscall + unmap_range(mm, addr, addr + len, true);
}

// change_protection: every present PTE rewritten (clear, then set), then the range flushed. A
// private page stays write-protected unless this process owns it alone (COW still pending).
uint64_t GuestKernel::mprotect(uint32_t pid, uint64_t addr, uint64_t length, uint8_t new_prot) {
  const uint64_t len = page_up(length);
  check_range(addr, len, "mprotect");
  Mm& mm = *process(pid).mm;
  split_at(mm, addr);
  split_at(mm, addr + len);
  uint64_t work = params_.costs.syscall;
  store_->cause = kCauseProtect;
  std::vector<uint64_t> pages;
  for (auto it = mm.vmas.lower_bound(addr); it != mm.vmas.end() && it->first < addr + len; ++it) {
    Vma& vma = it->second;
    vma.prot = new_prot;
    for (auto [va, value] : present_leaves(mm, vma.start, vma.end)) {
      // pte_modify drops R/W in a private mapping (vm_page_prot is copy-on-write);
      // can_change_pte_writable gives it back to an exclusive anonymous page, and in a shared
      // mapping to a dirty one.
      const uint64_t frame = frame_of(value);
      const auto info = frame_info_.find(frame);
      const bool exclusive_anon = info != frame_info_.end() && info->second.anon &&
                                  info->second.mapcount == 1;
      PageFlags rights;
      rights.user = true;
      rights.writable = (new_prot & prot::kWrite) &&
                        (vma.shared ? (value & pte::kDirty) != 0 : exclusive_anon);
      rights.execute_disable = (leaf_flags(vma, false, false) & pte::kExecuteDisable) != 0;
      editor_.protect(mm.root, va, kPageSize, rights);
      // pte_needs_flush (x86, Linux 6.0+): only a change that takes rights away needs a flush.
      const bool loses_write = (value & pte::kWritable) && !rights.writable;
      const bool loses_exec = !(value & pte::kExecuteDisable) && rights.execute_disable;
      if (loses_write || loses_exec) pages.push_back(va);
      work += params_.costs.per_pte;
    }
  }
  flush_range(mm, pages);
  return work;
}

uint64_t GuestKernel::brk(uint32_t pid, uint64_t new_brk) {
  Mm& mm = *process(pid).mm;
  if (!mm.brk_known) {  // the first brk() reports the initial break
    mm.brk_known = true;
    mm.brk_start = mm.brk = page_up(new_brk);
    return params_.costs.syscall;
  }
  const uint64_t old_end = page_up(mm.brk);
  const uint64_t new_end = page_up(std::max(new_brk, mm.brk_start));
  if (new_end > old_end) {
    check_range(old_end, new_end - old_end, "brk");
    // Linux's brk refuses to grow into an existing mapping (the break stays where it was).
    const auto next = mm.vmas.lower_bound(old_end);
    const Vma* before = find_vma(mm, old_end);
    if (before || (next != mm.vmas.end() && next->first < new_end)) {
      ++refused_brks_;
      return params_.costs.syscall;
    }
  }
  mm.brk = std::max(new_brk, mm.brk_start);
  if (new_end > old_end) {
    Vma heap;
    heap.start = old_end;
    heap.end = new_end;
    heap.prot = prot::kRead | prot::kWrite;
    insert_vma(mm, heap);
    return params_.costs.syscall;
  }
  if (new_end < old_end) return munmap(pid, new_end, old_end - new_end);
  return params_.costs.syscall;
}

uint64_t GuestKernel::mremap(uint32_t pid, uint64_t addr, uint64_t length, uint64_t new_addr,
                             uint64_t new_length) {
  const uint64_t old_len = page_up(length);
  const uint64_t new_len = page_up(new_length);
  check_range(addr, old_len, "mremap (old range)");
  check_range(new_addr, new_len, "mremap (new range)");
  Mm& mm = *process(pid).mm;
  const Vma* source = find_vma(mm, addr);
  if (!source) {
    throw Error(fmt::format("guest process {}: mremap of {:#x}: no mapping there", pid, addr));
  }
  Vma moved = *source;
  if (new_addr == addr) {  // resized in place
    if (new_len < old_len) return munmap(pid, addr + new_len, old_len - new_len);
    if (new_len > old_len) {
      moved.start = addr + old_len;
      moved.end = addr + new_len;
      munmap(pid, moved.start, moved.end - moved.start);
      insert_vma(mm, moved);
    }
    return params_.costs.syscall;
  }
  // Moved: take the PTEs (and their frames) out of the old range, unmap it, map the new range.
  const uint64_t kept = std::min(old_len, new_len);
  const auto leaves = present_leaves(mm, addr, addr + kept);
  for (const auto& [va, value] : leaves) {
    const uint64_t frame = frame_of(value);
    if (frame != zero_frame_) ++frame_info_[frame].mapcount;  // held across the unmap below
  }
  uint64_t work = munmap(pid, new_addr, new_len);  // MREMAP_FIXED semantics at the target
  work += munmap(pid, addr, old_len);
  moved.start = new_addr;
  moved.end = new_addr + new_len;
  insert_vma(mm, moved);
  store_->cause = kCauseFault;
  for (const auto& [va, value] : leaves) {
    const uint64_t frame = frame_of(value);
    map_page(mm, new_addr + (va - addr), frame, value & ~address_mask_);
  }
  return work + leaves.size() * params_.costs.per_pte;
}

// --- page faults ----------------------------------------------------------------------------

FaultOutcome GuestKernel::page_fault(uint32_t pid, uint64_t va, uint32_t error_code) {
  Mm& mm = *process(pid).mm;
  ++error_codes_[error_code & 0x1f];
  const bool write = error_code & pfec::kWrite;
  const bool fetch = error_code & pfec::kFetch;
  const uint64_t page = page_down(va);
  uint64_t work = params_.costs.fault;
  store_->cause = kCauseFault;

  Vma* vma = find_vma(mm, va);
  if (!vma && params_.implicit_vmas && va < editor_.kernel_base()) {
    Vma v;  // the 64 KiB region around va, clipped to the gap between its neighbours
    v.start = va & ~(kImplicitVmaBytes - 1);
    v.end = v.start + kImplicitVmaBytes;
    const auto next = mm.vmas.upper_bound(va);
    if (next != mm.vmas.end()) v.end = std::min(v.end, next->first);
    if (next != mm.vmas.begin()) v.start = std::max(v.start, std::prev(next)->second.end);
    v.prot = prot::kRead | prot::kWrite | prot::kExec;
    insert_vma(mm, v);
    ++implicit_vmas_;
    vma = find_vma(mm, va);
  }
  const uint8_t needed = write ? prot::kWrite : fetch ? prot::kExec : prot::kRead;
  if (!vma || !(vma->prot & needed)) {
    throw Error(fmt::format("guest process {}: segmentation fault: {} at {:#x} (error code {:#x}) "
                            "{}", pid, write ? "write" : fetch ? "fetch" : "read", va, error_code,
                            vma ? "not allowed by its VMA" : "outside every VMA"));
  }

  const std::optional<PageTableEditor::Leaf> leaf = editor_.leaf(mm.root, page);
  const uint64_t present = leaf ? leaf->value & pte::kPresent : 0;
  auto done = [&](FaultKind kind) {
    ++faults_[static_cast<int>(kind)];
    return FaultOutcome{kind, work};
  };

  if (present) {
    const uint64_t value = leaf->value;
    if (!write || (value & pte::kWritable)) return done(FaultKind::kSpurious);
    // Write-protect fault: do_wp_page.
    const uint64_t frame = frame_of(value);
    if (vma->shared && frame != zero_frame_) {
      editor_.set_leaf(mm.root, page, value | pte::kWritable | pte::kDirty | pte::kAccessed);
      return done(FaultKind::kSharedWrite);
    }
    vma->has_anon = true;
    const auto info = frame_info_.find(frame);
    if (info != frame_info_.end() && info->second.anon && info->second.mapcount == 1) {
      // wp_page_reuse
      editor_.set_leaf(mm.root, page, value | pte::kWritable | pte::kDirty | pte::kAccessed);
      ++cow_breaks_;
      return done(FaultKind::kCowReuse);
    }
    // wp_page_copy: new page, copy, ptep_clear_flush, set the new PTE.
    const uint64_t copy = new_frame(true);
    work += params_.costs.page_copy;
    store_->cause = kCauseCow;
    editor_.clear_leaf(mm.root, page);
    flush_range(mm, {page});
    editor_.set_leaf(mm.root, page,
                     (copy << kPageShift) | leaf_flags(*vma, true, true));
    put_frame(frame);
    ++cow_breaks_;
    return done(FaultKind::kCowCopy);
  }

  if (!vma->file) {  // do_anonymous_page
    if (!write && params_.zero_page) {
      map_page(mm, page, zero_frame_, leaf_flags(*vma, false, false));
      return done(FaultKind::kZeroPage);
    }
    const uint64_t frame = new_frame(true);
    work += params_.costs.page_copy;
    map_page(mm, page, frame, leaf_flags(*vma, vma->prot & prot::kWrite, write));
    vma->has_anon = true;
    return done(FaultKind::kAnonymous);
  }
  if (write && !vma->shared) {  // do_cow_fault: a private copy of the file page
    const uint64_t frame = new_frame(true);
    work += params_.costs.page_copy;
    map_page(mm, page, frame, leaf_flags(*vma, true, true));
    vma->has_anon = true;
    return done(FaultKind::kFileCow);
  }
  if (write) {  // do_shared_fault: one page, writable and dirty, no fault-around
    const uint64_t frame = allocate_frame();
    frame_info_[frame] = FrameInfo{1, false};
    map_page(mm, page, frame, leaf_flags(*vma, true, true));
    return done(FaultKind::kSharedWrite);
  }
  // do_read_fault -> do_fault_around: up to fault_around_pages PTEs of the same page table,
  // inside the VMA, for pages not mapped yet (the page cache is assumed warm).
  const uint64_t window = static_cast<uint64_t>(params_.fault_around_pages) * kPageSize;
  const uint64_t table_span = 1ULL << level_shift(mode_, 2);
  uint64_t first = std::max(page & ~(window - 1), vma->start);
  uint64_t last = std::min({first + window, vma->end, (first | (table_span - 1)) + 1});
  if (page < first || page >= last) first = page, last = page + kPageSize;
  for (uint64_t p = first; p < last; p += kPageSize) {
    const std::optional<PageTableEditor::Leaf> l = editor_.leaf(mm.root, p);
    if (l && (l->value & pte::kPresent)) continue;
    const uint64_t frame = allocate_frame();  // a page-cache page: its contents come from the file
    frame_info_[frame] = FrameInfo{1, false};
    const bool writable = write && vma->shared;
    map_page(mm, p, frame, leaf_flags(*vma, writable, writable));
  }
  return done(FaultKind::kFileAround);
}

// --- state and statistics -------------------------------------------------------------------

uint64_t GuestKernel::cr3(uint32_t pid) const { return process(pid).mm->root; }
uint32_t GuestKernel::mm_of(uint32_t pid) const {
  const Process& p = process(pid);
  if (!p.mm) throw Error(fmt::format("guest kernel: process {} has no address space (torn down)", pid));
  return p.mm->id;
}
bool GuestKernel::alive(uint32_t pid) const { return processes_.count(pid) != 0; }

std::vector<Vma> GuestKernel::vmas(uint32_t pid) const {
  std::vector<Vma> out;
  for (const auto& [start, v] : process(pid).mm->vmas) out.push_back(v);
  return out;
}

void GuestKernel::register_stats(StatsGroup g) {
  StatsGroup faults = g.sub("faults");
  for (int k = 0; k < static_cast<int>(FaultKind::kCount); ++k) {
    faults.counter(to_string(static_cast<FaultKind>(k)), &faults_[k], "faults",
                   "guest page faults handled this way");
  }
  StatsGroup codes = g.sub("fault_error_codes");
  for (uint32_t ec : {0x4u, 0x5u, 0x6u, 0x7u, 0x14u, 0x15u, 0x0u, 0x2u}) {
    codes.counter(fmt::format("ec_{:#x}", ec), &error_codes_[ec], "faults",
                  "guest page faults with this error code");
  }
  static const char* kCauseNames[kCauses] = {"fault", "fork", "cow", "unmap", "protect",
                                             "teardown", "kernel"};
  StatsGroup writes = g.sub("pte_writes");
  for (int c = 0; c < kCauses; ++c) {
    writes.counter(kCauseNames[c], &pte_writes_[c], "writes", "page-table entry writes by cause");
  }
  g.counter("table_pages_allocated", &table_pages_allocated_, "pages",
            "page-table pages allocated for processes");
  g.counter("kernel_table_pages", &kernel_table_pages_, "pages",
            "the kernel's own page-table pages (direct map, fixmap), shared by every process");
  g.counter("table_pages_freed", &table_pages_freed_, "pages", "page-table pages freed");
  g.histogram("table_pages_per_mm", &table_pages_per_mm_, "pages",
              "peak page-table pages of each address space torn down, top level excluded "
              "(comparable with Linux's VmPTE)");
  g.counter("cow_breaks", &cow_breaks_, "faults", "copy-on-write breaks (reuse or copy)");
  g.counter("flush_requests", &flush_requests_, "flushes", "TLB flushes the kernel asked for");
  g.counter("full_flush_requests", &full_flush_requests_, "flushes",
            "of which full (more than flush_ceiling_pages pages, fork, exit)");
  g.counter("forks", &forks_, "processes", "fork");
  g.counter("vforks", &vforks_, "processes", "vfork / posix_spawn");
  g.counter("threads", &threads_, "threads", "threads created");
  g.counter("execs", &execs_, "processes", "exec");
  g.counter("exits", &exits_, "processes", "exit");
  g.counter("waits", &waits_, "calls", "wait4 calls (the caller blocks until the child exits)");
  g.counter("implicit_vmas", &implicit_vmas_, "vmas", "VMAs created for touches outside any VMA");
  g.counter("refused_brks", &refused_brks_, "calls",
            "brk growth refused: a mapping was in the way");
}

}  // namespace shadowsim
