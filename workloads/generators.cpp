#include "workloads/generators.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "common/error.h"
#include "common/rng.h"
#include "workloads/os_event.h"
#include "workloads/trace_manifest.h"
#include "workloads/trace_writer.h"

namespace shadowsim {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kWindowPages = 16;  // the guest's fault-around window (64 KiB)
// x86-64 Linux layout without ASLR: non-PIE and PIE executables, the initial 132 KiB stack VMA
// below the top of user space, mmaps handed out top-down below kMmapTop.
constexpr uint64_t kTextNonPie = 0x400000;
constexpr uint64_t kTextPie = 0x555555554000;
constexpr uint64_t kStackStart = 0x7ffffffde000;
constexpr uint64_t kStackEnd = 0x7ffffffff000;
constexpr uint64_t kMmapTop = 0x7f0000000000;
constexpr uint64_t kMmapFloor = 0x100000000000;
constexpr uint64_t kMaxGap = 1u << 30;  // well inside a record's 32-bit gap

constexpr uint32_t kAnon = OsEvent::kMapPrivate | OsEvent::kMapAnonymous;
constexpr uint32_t kFileFixed = OsEvent::kMapPrivate | OsEvent::kMapFixed;
constexpr uint8_t kR = OsEvent::kProtRead, kRW = OsEvent::kProtRead | OsEvent::kProtWrite,
                  kRX = OsEvent::kProtRead | OsEvent::kProtExec;

uint64_t page_up(uint64_t a) { return (a + kPage - 1) & ~(kPage - 1); }

// At least 1: a tiny scale still exercises every path.
uint64_t scaled(double scale, uint64_t n) {
  return std::max<uint64_t>(1, static_cast<uint64_t>(std::llround(static_cast<double>(n) * scale)));
}

// SplitMix64's finaliser: independent per-stream seeds from one workload seed.
uint64_t mix(uint64_t a, uint64_t b) {
  Rng r(a ^ (b * 0x9e3779b97f4a7c15ULL));
  return r.next();
}

// The address space as the stream's own events made it: start -> (end, prot). The generator
// checks every reference against it, so a workload that would segfault is never written.
struct Vma {
  uint64_t end;
  uint8_t prot;
};
using Vmas = std::map<uint64_t, Vma>;

void vma_remove(Vmas& v, uint64_t start, uint64_t end) {
  auto it = v.upper_bound(start);
  if (it != v.begin()) --it;
  while (it != v.end() && it->first < end) {
    const uint64_t s = it->first;
    const Vma vma = it->second;
    if (vma.end <= start) {
      ++it;
      continue;
    }
    it = v.erase(it);
    if (s < start) v[s] = Vma{start, vma.prot};
    if (vma.end > end) v[end] = Vma{vma.end, vma.prot};
  }
}

void vma_add(Vmas& v, uint64_t start, uint64_t end, uint8_t prot) {
  vma_remove(v, start, end);
  v[start] = Vma{end, prot};
}

void vma_protect(Vmas& v, uint64_t start, uint64_t end, uint8_t prot) {
  std::vector<std::pair<uint64_t, uint64_t>> parts;
  for (const auto& [s, vma] : v) {
    const uint64_t a = std::max(s, start), b = std::min(vma.end, end);
    if (a < b) parts.emplace_back(a, b);
  }
  for (const auto& [a, b] : parts) vma_add(v, a, b, prot);
}

bool vma_allows(const Vmas& v, uint64_t va, RefKind kind) {
  auto it = v.upper_bound(va);
  if (it == v.begin()) return false;
  --it;
  if (va >= it->second.end) return false;
  const uint8_t need = kind == RefKind::kWrite   ? OsEvent::kProtWrite
                       : kind == RefKind::kFetch ? OsEvent::kProtExec
                                                 : OsEvent::kProtRead;
  return (it->second.prot & need) != 0;
}

// One stream's trace file, written in batches (never the whole trace in memory).
class Stream {
 public:
  Stream(const std::string& path, uint64_t seed, Vmas inherited)
      : writer_(create_trace(path)), rng_(seed), vmas_(std::move(inherited)) {
    batch_.reserve(kBatch);
  }

  Rng& rng() { return rng_; }
  const Vmas& vmas() const { return vmas_; }
  uint64_t instructions() const { return instructions_; }

  void ref(RefKind kind, uint64_t va, uint64_t gap, uint8_t size = 8) {
    if (exited_ || !vma_allows(vmas_, va, kind) || !vma_allows(vmas_, va + size - 1, kind)) {
      throw Error(fmt::format("generator bug: {}: {} of {:#x} outside the stream's VMAs",
                              writer_->path(), to_string(kind), va));
    }
    push(TraceRecord{kind, size, static_cast<uint32_t>(std::min(gap, kMaxGap)), va});
  }

  void event(const OsEvent& e, uint64_t gap = 0) {
    switch (e.kind) {
      case OsEventKind::kExec:
        vmas_.clear();
        brk_known_ = false;
        break;
      case OsEventKind::kExit:
        vmas_.clear();
        exited_ = true;
        break;
      case OsEventKind::kMmap: vma_add(vmas_, e.addr, e.addr + page_up(e.length), e.prot); break;
      case OsEventKind::kMunmap: vma_remove(vmas_, e.addr, e.addr + page_up(e.length)); break;
      case OsEventKind::kMprotect:
        vma_protect(vmas_, e.addr, e.addr + page_up(e.length), e.prot);
        break;
      case OsEventKind::kBrk:
        if (!brk_known_) {
          brk_known_ = true;
          brk_start_ = brk_ = page_up(e.addr);
        } else if (page_up(e.addr) > page_up(brk_)) {
          vma_add(vmas_, page_up(brk_), page_up(e.addr), kRW);
          brk_ = e.addr;
        }
        break;
      default: break;
    }
    events_.push_back(e);
    push(TraceRecord{RefKind::kEvent, 0, static_cast<uint32_t>(std::min(gap, kMaxGap)),
                     events_.size() - 1});
  }

  void close() {
    flush();
    writer_->close();
  }

 private:
  static constexpr size_t kBatch = 4096;

  void push(const TraceRecord& r) {
    instructions_ += instructions_of(r);
    batch_.push_back(r);
    if (batch_.size() == kBatch) flush();
  }
  void flush() {
    writer_->write(batch_.data(), batch_.size(), events_);
    batch_.clear();
    events_.clear();
  }

  std::unique_ptr<TraceWriter> writer_;
  Rng rng_;
  Vmas vmas_;
  std::vector<TraceRecord> batch_;
  std::vector<OsEvent> events_;
  uint64_t instructions_ = 0;
  bool exited_ = false;
  bool brk_known_ = false;
  uint64_t brk_start_ = 0, brk_ = 0;
};

// The workload being written: the manifest and the streams still to generate. A parent queues
// its children at their create events with what they inherit, so one stream is written at a time.
class Workload {
 public:
  Workload(const std::string& dir, uint64_t seed, std::string name, std::string command)
      : dir_(dir), seed_(seed) {
    manifest_.name = std::move(name);
    manifest_.command = std::move(command);
  }

  // Adds a stream to the manifest; its generator runs after the current one.
  uint32_t add(std::optional<uint32_t> parent, StreamOrigin how, const std::string& name,
               const std::string& command,
               std::function<void(Stream&, uint32_t)> body, Vmas inherited = {}) {
    const uint32_t id = static_cast<uint32_t>(manifest_.streams.size());
    TraceStream s;
    s.id = id;
    s.file = fmt::format("{:04}-{}.sst", id, name);
    s.parent = parent;
    s.created = how;
    s.name = name;
    s.command = command;
    manifest_.streams.push_back(s);
    pending_.push_back([this, id, file = s.file, body = std::move(body),
                        inherited = std::move(inherited)]() mutable {
      Stream stream((fs::path(dir_) / file).string(), mix(seed_, id + 1), std::move(inherited));
      body(stream, id);
      stream.close();
    });
    return id;
  }

  std::string finish() {
    while (!pending_.empty()) {
      auto job = std::move(pending_.front());
      pending_.pop_front();
      job();
    }
    const std::string path = (fs::path(dir_) / "manifest.json").string();
    save_manifest(manifest_, path);
    return path;
  }

 private:
  std::string dir_;
  uint64_t seed_;
  TraceManifest manifest_;
  std::deque<std::function<void()>> pending_;
};

// A process's view on top of its stream: where things are mapped, the pages it has touched
// (so references between faults hit mapped pages without faulting), and fresh pages to fault.
class Proc {
 public:
  explicit Proc(Stream& s) : s_(s) {}

  Stream& stream() { return s_; }
  Rng& rng() { return s_.rng(); }

  // Pages already faulted in, by the access that may reuse them without a new fault.
  std::vector<uint64_t> written, readable, code;

  // Top-down first fit below kMmapTop, as Linux's allocator hands out unmapped ranges.
  uint64_t mmap(uint64_t pages, uint8_t prot, uint32_t flags) {
    const uint64_t len = pages * kPage;
    uint64_t top = kMmapTop;
    for (auto it = mapped_.rbegin(); it != mapped_.rend(); ++it) {
      if (it->second <= top && top - it->second >= len) break;
      top = std::min(top, it->first);
    }
    const uint64_t addr = top - len;
    if (addr < kMmapFloor) throw Error("generator: mmap area exhausted");
    mapped_[addr] = addr + len;
    s_.event(OsEvent::mmap(addr, len, prot, flags), gap(200));
    return addr;
  }
  void munmap(uint64_t addr, uint64_t pages) {
    const uint64_t end = addr + pages * kPage;
    // Keep the allocator's view: trim or split the tracked ranges the unmap overlaps.
    std::map<uint64_t, uint64_t> kept;
    for (const auto& [a, b] : mapped_) {
      if (b <= addr || a >= end) {
        kept[a] = b;
        continue;
      }
      if (a < addr) kept[a] = addr;
      if (b > end) kept[end] = b;
    }
    mapped_ = std::move(kept);
    s_.event(OsEvent::munmap(addr, pages * kPage), gap(200));
  }
  // A mapping at an address the caller chose (far-apart regions, per-thread windows).
  void mmap_at(uint64_t addr, uint64_t pages, uint8_t prot, uint32_t flags) {
    s_.event(OsEvent::mmap(addr, pages * kPage, prot, flags), gap(200));
  }

  // Image of a freshly exec'd program (or of an initial stream): executable text, read-only
  // data, data (written by relocations, its RELRO part made read-only after), bss, the initial
  // stack, the break, and libc (text and relocated data, RELRO too). Returns the write faults
  // the start-up made.
  uint64_t map_image(uint64_t text_base, uint64_t text_pages, uint64_t rodata_pages,
                     uint64_t data_pages) {
    written.clear();
    readable.clear();
    code.clear();
    mapped_.clear();
    text_ = text_base;
    text_pages_ = text_pages;
    rodata_ = text_ + text_pages * kPage;
    rodata_pages_ = rodata_pages;
    const uint64_t data = rodata_ + rodata_pages * kPage;
    const uint64_t bss = data + data_pages * kPage;
    const uint64_t bss_pages = 4;
    s_.event(OsEvent::mmap(text_, text_pages * kPage, kRX, kFileFixed));
    s_.event(OsEvent::mmap(rodata_, rodata_pages * kPage, kR, kFileFixed));
    s_.event(OsEvent::mmap(data, data_pages * kPage, kRW, kFileFixed));
    s_.event(OsEvent::mmap(bss, bss_pages * kPage, kRW, kAnon | OsEvent::kMapFixed));
    s_.event(OsEvent::mmap(kStackStart, kStackEnd - kStackStart, kRW,
                           kAnon | OsEvent::kMapFixed | OsEvent::kMapGrowsDown |
                               OsEvent::kMapStack));
    heap_next_ = heap_end_ = brk_end_ = bss + bss_pages * kPage;
    s_.event(OsEvent::brk(heap_end_));  // the first brk() reports the initial break
    // libc: ~1.6 MiB of text, 8 data pages of which 4 are RELRO (glibc 2.36 x86-64 sizes).
    libc_text_ = mmap(400, kRX, OsEvent::kMapPrivate);
    const uint64_t libc_data = mmap(8, kRW, OsEvent::kMapPrivate);
    uint64_t faults = 0;
    // ld.so's relocation pass writes the data pages (private file pages: a copy each).
    for (uint64_t p = 0; p < data_pages; ++p, ++faults) touch_write(data + p * kPage, 300);
    for (uint64_t p = 0; p < 8; ++p, ++faults) touch_write(libc_data + p * kPage, 300);
    const uint64_t relro = std::max<uint64_t>(1, data_pages / 2);
    s_.event(OsEvent::mprotect(data, relro * kPage, kR), gap(200));
    s_.event(OsEvent::mprotect(libc_data, 4 * kPage, kR), gap(200));
    // The written RELRO pages stay readable only.
    std::vector<uint64_t> w;
    for (uint64_t a : written) {
      const bool ro = (a >= data && a < data + relro * kPage) ||
                      (a >= libc_data && a < libc_data + 4 * kPage);
      (ro ? readable : w).push_back(a);
    }
    written = std::move(w);
    for (uint64_t p = 1; p <= 2; ++p, ++faults) touch_write(kStackEnd - p * kPage, 300);
    return faults;
  }

  uint64_t text_windows() const { return text_pages_ / kWindowPages; }
  uint64_t rodata_windows() const { return rodata_pages_ / kWindowPages; }
  uint64_t libc_text() const { return libc_text_; }

  // A heap page never touched: from the break, grown by glibc's 132 KiB steps (M_TOP_PAD 128 KiB
  // plus the request), or from 1 MiB anonymous chunks such as GCC's GC pages come from.
  uint64_t fresh_heap_page() {
    if (heap_next_ == heap_end_) {
      uint64_t pages = 33;
      if (rng().chance(0.5)) {
        heap_next_ = brk_end_;
        brk_end_ += pages * kPage;
        s_.event(OsEvent::brk(brk_end_), gap(200));
      } else {
        pages = 256;
        heap_next_ = mmap(pages, kRW, kAnon);
      }
      heap_end_ = heap_next_ + pages * kPage;
    }
    const uint64_t p = heap_next_;
    heap_next_ += kPage;
    return p;
  }

  uint64_t gap(uint64_t mean) {
    if (mean < 2) return mean;
    return mean / 2 + rng().below(mean);
  }

  void touch_write(uint64_t page, uint64_t g) {
    s_.ref(RefKind::kWrite, page + 8 * rng().below(kPage / 8), gap(g));
    written.push_back(page);
  }
  void touch_read(uint64_t page, uint64_t g) {
    s_.ref(RefKind::kRead, page + 8 * rng().below(kPage / 8), gap(g));
    readable.push_back(page);
  }
  void touch_fetch(uint64_t page, uint64_t g) {
    s_.ref(RefKind::kFetch, page + rng().below(kPage / 4) * 4, gap(g), 4);
    code.push_back(page);
  }

  // `n` references to pages already mapped, `g` instructions apart on average: mostly the most
  // recently touched pages (temporal locality), some anywhere.
  void work(uint64_t n, uint64_t g) {
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t k = rng().below(4);
      if (k == 0 && !code.empty()) {
        s_.ref(RefKind::kFetch, pick(code) + rng().below(kPage / 4) * 4, gap(g), 4);
      } else if (k == 1 && !readable.empty()) {
        s_.ref(RefKind::kRead, pick(readable) + 8 * rng().below(kPage / 8), gap(g));
      } else if (!written.empty()) {
        const RefKind kind = k == 3 ? RefKind::kWrite : RefKind::kRead;
        s_.ref(kind, pick(written) + 8 * rng().below(kPage / 8), gap(g));
      }
    }
  }

  uint64_t pick(const std::vector<uint64_t>& pool) {
    const uint64_t n = pool.size();
    if (n > 64 && rng().chance(0.8)) return pool[n - 1 - rng().below(64)];
    return pool[rng().below(n)];
  }

 private:
  Stream& s_;
  std::map<uint64_t, uint64_t> mapped_;  // mmap-area ranges handed out: start -> end
  uint64_t text_ = 0, text_pages_ = 0, rodata_ = 0, rodata_pages_ = 0, libc_text_ = 0;
  uint64_t heap_next_ = 0, heap_end_ = 0, brk_end_ = 0;
};

// A program run after exec (or from the start of an initial stream) with `faults` demand faults
// in the given error-code mix and `ipf` instructions per fault (the caller writes the exit).
// `spawns` are called spread evenly over the run: the program's process creations.
struct Program {
  uint64_t text_base = kTextNonPie;
  uint64_t faults = 100;
  uint64_t ipf = 20000;
  uint64_t refs_per_fault = 16;
  double fetch_share = 0.07, read_share = 0.11, write_protect_share = 0.07;
};

void run_program(Proc& p, const Program& prog, std::vector<std::function<void()>> spawns = {}) {
  const uint64_t n = prog.faults;
  const auto share = [n](double s) { return static_cast<uint64_t>(std::llround(s * n)); };
  const uint64_t n_fetch = std::max<uint64_t>(1, share(prog.fetch_share));
  const uint64_t n_wp = share(prog.write_protect_share);
  const uint64_t n_ro = share(prog.read_share) > n_wp ? share(prog.read_share) - n_wp : 0;
  // The executable's text holds the fetch windows libc does not: each fetch fault maps a whole
  // 64 KiB window (the guest's fault-around), so a window per fetch fault.
  const uint64_t lib_windows = std::min<uint64_t>(n_fetch / 4, 25);
  const uint64_t exe_windows = std::max<uint64_t>(1, n_fetch - lib_windows);
  const uint64_t data_pages = std::clamp<uint64_t>(n / 400, 2, 64);
  const uint64_t startup =
      p.map_image(prog.text_base, exe_windows * kWindowPages,
                  std::max<uint64_t>(1, n_ro) * kWindowPages, data_pages);
  const uint64_t fixed = n_fetch + n_ro + 2 * n_wp + startup;
  uint64_t left[4] = {n_fetch, n_ro, n_wp, n > fixed ? n - fixed : 0};  // fetch, ro, rw, write
  // Windows in a shuffled order: code is not faulted in address order.
  std::vector<uint64_t> windows;
  for (uint64_t w = 0; w < lib_windows; ++w) windows.push_back(p.libc_text() + w * 16 * kPage);
  for (uint64_t w = 0; w < exe_windows; ++w) windows.push_back(prog.text_base + w * 16 * kPage);
  for (size_t i = windows.size(); i > 1; --i) std::swap(windows[i - 1], windows[p.rng().below(i)]);
  uint64_t next_window = 0, next_ro = 0;
  const uint64_t rodata = prog.text_base + exe_windows * kWindowPages * kPage;
  std::deque<uint64_t> pending;  // read through the zero page, to be written (a 0x7 fault)
  const uint64_t g = prog.ipf / (prog.refs_per_fault + 1);
  const uint64_t steps = left[0] + left[1] + left[2] + left[3] + n_wp;
  uint64_t step = 0;
  size_t spawned = 0;
  while (left[0] + left[1] + left[2] + left[3] + pending.size() > 0) {
    const uint64_t total = left[0] + left[1] + left[2] + left[3];
    if (!pending.empty() && (total == 0 || p.rng().chance(0.3))) {
      p.touch_write(pending.front(), g);
      pending.pop_front();
    } else {
      uint64_t r = p.rng().below(total);
      int k = 0;
      while (r >= left[k]) r -= left[k++];
      --left[k];
      if (k == 0) {
        p.touch_fetch(windows[next_window++] + p.rng().below(kWindowPages) * kPage, g);
      } else if (k == 1) {
        p.touch_read(rodata + (next_ro++ * kWindowPages + p.rng().below(kWindowPages)) * kPage,
                     g);
      } else if (k == 2) {
        const uint64_t page = p.fresh_heap_page();
        p.stream().ref(RefKind::kRead, page + 8 * p.rng().below(kPage / 8), p.gap(g));
        pending.push_back(page);
      } else {
        p.touch_write(p.fresh_heap_page(), g);
      }
    }
    p.work(prog.refs_per_fault, g);
    ++step;
    while (spawned < spawns.size() && step * (spawns.size() + 1) >= (spawned + 1) * steps) {
      spawns[spawned++]();
    }
  }
  while (spawned < spawns.size()) spawns[spawned++]();
}

// ---- kernel-compile ---------------------------------------------------------------------------

class KernelCompile {
 public:
  KernelCompile(Workload& w, const KernelCompileParams& k, double scale)
      : w_(w), k_(k), scale_(scale) {
    if (k.creations_per_file < 4 + forks()) {
      throw Error(fmt::format("kernel-compile: creations_per_file {} too small for {} forks; "
                              "expected at least 4 + forks (sh, gcc, cc1, as)",
                              k.creations_per_file, forks()));
    }
  }

  uint32_t forks() const {
    return static_cast<uint32_t>(std::lround(k_.fork_share * k_.creations_per_file));
  }

  void start() {
    w_.add(std::nullopt, StreamOrigin::kInitial, "make", fmt::format("make -j{}", k_.jobs),
           [this](Stream& s, uint32_t) { make(s); });
  }

 private:
  Program helper(uint64_t base) const {
    Program p;
    p.text_base = base;
    p.faults = scaled(scale_, k_.helper_faults);
    p.ipf = k_.helper_instructions_per_fault;
    p.refs_per_fault = k_.refs_per_fault;
    return p;
  }

  // make: spawns one sh per file with posix_spawn (vfork). The trace format has no wait, so
  // make keeps -jN by retiring a compile's instructions / N between spawns after the first N.
  void make(Stream& s) {
    Proc p(s);
    std::vector<std::function<void()>> spawns;
    const uint64_t pace =
        scaled(scale_, k_.cc1_faults) * k_.instructions_per_fault / std::max<uint32_t>(1, k_.jobs);
    for (uint32_t f = 0; f < k_.files; ++f) {
      spawns.push_back([this, &p, f, pace] {
        if (f >= k_.jobs) {
          for (uint64_t done = 0; done < pace; done += 1000000) p.work(16, 1000000 / 16);
        }
        const uint32_t id = w_.add(0u, StreamOrigin::kVfork, "sh",
                                   fmt::format("/bin/sh -c 'gcc -c file{}.c'", f),
                                   [this, f](Stream& c, uint32_t id) { sh(c, id, f); });
        p.stream().event(OsEvent::create(id, StreamOrigin::kVfork), p.gap(2000));
      });
    }
    run_program(p, helper(kTextNonPie), std::move(spawns));
    s.event(OsEvent::exit(), p.gap(1000));
  }

  // A vforked child execs at once (it shares the parent's mm until then).
  void exec_and_run(Stream& s, const Program& prog, std::vector<std::function<void()>> spawns) {
    s.event(OsEvent::exec(), 500);
    Proc p(s);
    run_program(p, prog, std::move(spawns));
    s.event(OsEvent::exit(), p.gap(1000));
  }

  // sh: vforks gcc and the helpers, forks subshells, in a shuffled order.
  void sh(Stream& s, uint32_t parent, uint32_t file) {
    Proc* proc = nullptr;
    enum Child { kGcc, kFork, kHelper };
    std::vector<Child> kids{kGcc};
    for (uint32_t i = 0; i < forks(); ++i) kids.push_back(kFork);
    while (kids.size() < k_.creations_per_file - 3) kids.push_back(kHelper);
    for (size_t i = kids.size(); i > 1; --i) std::swap(kids[i - 1], kids[s.rng().below(i)]);
    std::vector<std::function<void()>> spawns;
    for (Child c : kids) {
      spawns.push_back([this, c, parent, file, &proc, &s] {
        Proc& p = *proc;
        uint32_t id = 0;
        StreamOrigin how = StreamOrigin::kVfork;
        if (c == kGcc) {
          id = w_.add(parent, how, "gcc", fmt::format("gcc -c file{}.c", file),
                      [this, file](Stream& g, uint32_t id) { gcc(g, id, file); });
        } else if (c == kHelper) {
          id = w_.add(parent, how, "helper", "cat/rm/mkdir/option probe",
                      [this](Stream& h, uint32_t) { exec_and_run(h, helper(kTextPie), {}); });
        } else {
          how = StreamOrigin::kFork;
          std::vector<uint64_t> pages = p.written;
          id = w_.add(parent, how, "subshell", "( ... ) subshell",
                      [this, pages](Stream& h, uint32_t) { subshell(h, pages); }, s.vmas());
        }
        s.event(OsEvent::create(id, how), p.gap(2000));
      });
    }
    s.event(OsEvent::exec(), 500);
    Proc p(s);
    proc = &p;
    run_program(p, helper(kTextPie), std::move(spawns));
    s.event(OsEvent::exit(), p.gap(1000));
  }

  // A forked subshell writes some of the shell's pages (COW breaks), then execs a helper.
  void subshell(Stream& s, const std::vector<uint64_t>& inherited) {
    Proc p(s);
    for (int i = 0; i < 8 && !inherited.empty(); ++i) {
      const uint64_t page = inherited[p.rng().below(inherited.size())];
      s.ref(RefKind::kWrite, page + 8 * p.rng().below(kPage / 8), p.gap(500));
    }
    exec_and_run(s, helper(kTextPie), {});
  }

  // The gcc driver vforks cc1 and as.
  void gcc(Stream& s, uint32_t parent, uint32_t file) {
    std::vector<std::function<void()>> spawns;
    spawns.push_back([this, &s, parent, file] {
      const uint32_t id = w_.add(parent, StreamOrigin::kVfork, "cc1",
                                 fmt::format("cc1 file{}.c -o file{}.s", file, file),
                                 [this](Stream& c, uint32_t) { exec_and_run(c, cc1(), {}); });
      s.event(OsEvent::create(id, StreamOrigin::kVfork), 2000);
    });
    spawns.push_back([this, &s, parent, file] {
      const uint32_t id = w_.add(parent, StreamOrigin::kVfork, "as",
                                 fmt::format("as file{}.s -o file{}.o", file, file),
                                 [this](Stream& c, uint32_t) {
                                   exec_and_run(c, helper(kTextNonPie), {});
                                 });
      s.event(OsEvent::create(id, StreamOrigin::kVfork), 2000);
    });
    exec_and_run(s, helper(kTextNonPie), std::move(spawns));
  }

  Program cc1() const {
    Program p;
    p.text_base = kTextNonPie;
    p.faults = scaled(scale_, k_.cc1_faults);
    p.ipf = k_.instructions_per_fault;
    p.refs_per_fault = k_.refs_per_fault;
    p.fetch_share = k_.fetch_share;
    p.read_share = k_.read_share;
    p.write_protect_share = k_.write_protect_share;
    return p;
  }

  Workload& w_;
  KernelCompileParams k_;
  double scale_;
};


// ---- fork-exit --------------------------------------------------------------------------------

// The parent writes its heap, then forks children that write and read some of those pages (COW
// copies in the child) and exit; the parent writes a few pages after each fork (COW reuse).
void fork_exit(Workload& w, const ForkExitParams& f, double scale) {
  const uint64_t forks = scaled(scale, f.forks);
  w.add(std::nullopt, StreamOrigin::kInitial, "parent", "fork-exit loop",
        [&w, f, forks](Stream& s, uint32_t self) {
          Proc p(s);
          p.map_image(kTextNonPie, 16, 16, 2);
          std::vector<uint64_t> heap;
          for (uint32_t i = 0; i < f.parent_pages; ++i) {
            heap.push_back(p.fresh_heap_page());
            p.touch_write(heap.back(), 2000);
          }
          for (uint64_t i = 0; i < forks; ++i) {
            const uint32_t id = w.add(self, StreamOrigin::kFork, "child", "fork child",
                                      [f, heap](Stream& c, uint32_t) {
              Proc q(c);
              for (uint32_t j = 0; j < f.child_writes; ++j) {
                c.ref(RefKind::kWrite, heap[q.rng().below(heap.size())], q.gap(2000));
              }
              for (uint32_t j = 0; j < f.child_reads; ++j) {
                c.ref(RefKind::kRead, heap[q.rng().below(heap.size())], q.gap(2000));
              }
              c.event(OsEvent::exit(), q.gap(1000));
            }, s.vmas());
            s.event(OsEvent::create(id, StreamOrigin::kFork), p.gap(5000));
            for (uint32_t j = 0; j < f.parent_writes; ++j) {
              s.ref(RefKind::kWrite, heap[p.rng().below(heap.size())], p.gap(2000));
            }
            p.work(32, 1000);
          }
          s.event(OsEvent::exit(), p.gap(1000));
        });
}

// ---- mmap-churn -------------------------------------------------------------------------------

void mmap_churn(Workload& w, const MmapChurnParams& m, double scale) {
  const uint64_t cycles = scaled(scale, m.cycles);
  w.add(std::nullopt, StreamOrigin::kInitial, "churn", "mmap/touch/munmap loop",
        [m, cycles](Stream& s, uint32_t) {
          Proc p(s);
          p.map_image(kTextNonPie, 16, 16, 2);
          for (int i = 0; i < 16; ++i) p.touch_write(p.fresh_heap_page(), 1000);
          for (uint64_t c = 0; c < cycles; ++c) {
            const uint64_t pages = 1 + p.rng().below(std::max<uint32_t>(1, m.max_pages));
            const bool file = p.rng().chance(m.file_share);
            const uint64_t a = p.mmap(pages, file ? kR : kRW, file ? OsEvent::kMapPrivate : kAnon);
            const uint64_t touches = std::max<uint64_t>(
                1, static_cast<uint64_t>(std::llround(m.touch_share * pages)));
            for (uint64_t t = 0; t < touches; ++t) {
              const uint64_t va = a + p.rng().below(pages) * kPage + 8 * p.rng().below(kPage / 8);
              const bool write = !file && p.rng().chance(0.8);
              s.ref(write ? RefKind::kWrite : RefKind::kRead, va, p.gap(500));
            }
            p.work(8, 500);
            if (pages >= 3 && p.rng().chance(m.partial_unmap_share)) {
              // The middle first: the VMA splits in two, each unmapped after.
              const uint64_t lo = 1 + p.rng().below(pages - 2);
              const uint64_t hi = lo + 1 + p.rng().below(pages - 1 - lo);
              p.munmap(a + lo * kPage, hi - lo);
              p.munmap(a, lo);
              p.munmap(a + hi * kPage, pages - hi);
            } else {
              p.munmap(a, pages);
            }
          }
          s.event(OsEvent::exit(), p.gap(1000));
        });
}

// ---- walk-stress ------------------------------------------------------------------------------

void walk_stress(Workload& w, const WalkStressParams& ws, double scale) {
  const uint64_t regions = std::max<uint32_t>(1, ws.regions);
  const uint64_t pages = std::max<uint64_t>(
      regions, scaled(scale, ws.footprint_mib * (1 << 20) / kPage) / regions * regions);
  const uint64_t refs = scaled(scale, ws.references);
  w.add(std::nullopt, StreamOrigin::kInitial, "walker", "random references over a large heap",
        [ws, regions, pages, refs](Stream& s, uint32_t) {
          Proc p(s);
          p.map_image(kTextNonPie, 16, 16, 2);
          const uint64_t per = pages / regions;
          // Each region in its own 512 GiB slot below the mmap area: a PML4 entry each.
          std::vector<uint64_t> base;
          for (uint64_t r = 0; r < regions; ++r) {
            base.push_back(kMmapTop - (r + 1) * (uint64_t{1} << 39));
            p.mmap_at(base.back(), per, kRW, kAnon);
          }
          for (uint64_t r = 0; r < regions; ++r) {  // first touch: one write fault per page
            for (uint64_t i = 0; i < per; ++i) s.ref(RefKind::kWrite, base[r] + i * kPage, 20);
          }
          for (uint64_t i = 0; i < refs; ++i) {
            const uint64_t page = p.rng().below(pages);
            const uint64_t va = base[page / per] + (page % per) * kPage +
                                8 * p.rng().below(kPage / 8);
            s.ref(p.rng().chance(ws.write_share) ? RefKind::kWrite : RefKind::kRead, va,
                  1 + p.rng().below(20));
          }
          s.event(OsEvent::exit(), p.gap(1000));
        });
}

// ---- threads ----------------------------------------------------------------------------------

// Every thread (the main one too) maps, writes and unmaps its own regions in its own window of
// the shared address space: the streams are generated one at a time and interleaved by the
// simulator, so a thread never unmaps what another may be using. Each munmap still shoots down
// the other VCPUs running the mm.
void thread_rounds(Stream& s, Proc& p, uint32_t t, uint64_t shared, const ThreadsParams& tp,
                   uint64_t rounds) {
  const uint64_t window = 0x7e0000000000 + uint64_t{t} * 0x100000000;
  for (uint64_t r = 0; r < rounds; ++r) {
    const uint64_t pages = std::max<uint32_t>(1, tp.region_pages);
    p.mmap_at(window, pages, kRW, kAnon);
    for (uint64_t i = 0; i < pages; ++i) {
      s.ref(RefKind::kWrite, window + i * kPage + 8 * p.rng().below(kPage / 8), p.gap(200));
    }
    for (uint32_t i = 0; i < tp.shared_refs; ++i) {
      const uint64_t va = shared + p.rng().below(tp.shared_pages) * kPage +
                          8 * p.rng().below(kPage / 8);
      s.ref(p.rng().chance(tp.write_share) ? RefKind::kWrite : RefKind::kRead, va, p.gap(200));
    }
    s.event(OsEvent::munmap(window, pages * kPage), p.gap(200));
  }
}

void threads(Workload& w, const ThreadsParams& tp, double scale) {
  const uint64_t rounds = scaled(scale, tp.rounds);
  if (tp.shared_pages == 0) throw Error("threads: shared_pages must be at least 1");
  w.add(std::nullopt, StreamOrigin::kInitial, "main", "threads sharing an mm",
        [&w, tp, rounds](Stream& s, uint32_t self) {
          Proc p(s);
          p.map_image(kTextNonPie, 16, 16, 2);
          const uint64_t shared = p.mmap(tp.shared_pages, kRW, kAnon);
          for (uint32_t i = 0; i < tp.shared_pages; ++i) {
            s.ref(RefKind::kWrite, shared + i * kPage, p.gap(200));
          }
          for (uint32_t t = 1; t <= tp.threads; ++t) {
            // glibc's thread stack: 8 MiB (RLIMIT_STACK) plus a guard page below it.
            const uint64_t stack = p.mmap(2049, kRW, kAnon | OsEvent::kMapStack);
            s.event(OsEvent::mprotect(stack, kPage, 0), p.gap(100));
            const uint64_t top = stack + 2049 * kPage;
            const uint32_t id = w.add(self, StreamOrigin::kThread, "thread",
                                      fmt::format("thread {}", t),
                                      [t, tp, rounds, shared, top](Stream& c, uint32_t) {
              Proc q(c);
              for (uint64_t i = 1; i <= 2; ++i) c.ref(RefKind::kWrite, top - i * kPage, 100);
              thread_rounds(c, q, t, shared, tp, rounds);
              c.event(OsEvent::exit(), q.gap(1000));
            }, s.vmas());
            s.event(OsEvent::create(id, StreamOrigin::kThread), p.gap(5000));
          }
          thread_rounds(s, p, 0, shared, tp, rounds);
          s.event(OsEvent::exit(), p.gap(1000));
        });
}

}  // namespace

const std::vector<WorkloadKind>& workload_kinds() {
  static const std::vector<WorkloadKind> kinds{
      {"kernel-compile", "make -jN: vforked sh/gcc/cc1/as and forked subshells; cc1 calibrated "
                         "to a real kernel build's faults"},
      {"fork-exit", "a parent forking children that write inherited pages (COW) and exit"},
      {"mmap-churn", "one process: mmap, touch, munmap cycles of 1..64 pages"},
      {"walk-stress", "one process: random references over 512 MiB in 4 far-apart regions"},
      {"threads", "threads sharing an mm, each mapping, touching and unmapping its own regions"},
  };
  return kinds;
}

std::string generate_workload(const std::string& kind, const GeneratorParams& params,
                              uint64_t seed, const std::string& out_dir) {
  if (!(params.scale > 0) || !std::isfinite(params.scale)) {
    throw Error(fmt::format("scale {}: expected a positive number", params.scale));
  }
  std::string command = fmt::format("shadowsim workload generate {} --seed {} --scale {}", kind,
                                    seed, params.scale);
  if (kind == "kernel-compile") {
    command += fmt::format(" --jobs {} --files {}", params.kernel_compile.jobs,
                           params.kernel_compile.files);
  } else if (kind == "threads") {
    command += fmt::format(" --threads {}", params.threads.threads);
  }
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw Error(fmt::format("{}: cannot create the folder: {}", out_dir, ec.message()));
  Workload w(out_dir, seed, kind, command);
  if (kind == "kernel-compile") {
    KernelCompile k(w, params.kernel_compile, params.scale);
    k.start();
    return w.finish();
  }
  if (kind == "fork-exit") {
    fork_exit(w, params.fork_exit, params.scale);
  } else if (kind == "mmap-churn") {
    mmap_churn(w, params.mmap_churn, params.scale);
  } else if (kind == "walk-stress") {
    walk_stress(w, params.walk_stress, params.scale);
  } else if (kind == "threads") {
    threads(w, params.threads, params.scale);
  } else {
    std::string names;
    for (const WorkloadKind& k : workload_kinds()) {
      names += std::string(names.empty() ? "" : ", ") + k.name;
    }
    throw Error(fmt::format("unknown workload kind '{}'; expected one of {}", kind, names));
  }
  return w.finish();
}

}  // namespace shadowsim
