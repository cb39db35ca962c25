// Test scaffolding for the hypervisor: a 4-level guest with hand-built tables (a user page X in
// one L1 table T, and a kernel direct map of the first 32 MiB with 2 MiB pages through which the
// "guest kernel" stores to T), a Hypervisor over it, and scripted VCPUs (TestCpu) that run as
// SystemC threads in a fresh context. A TestCpu does what the simulator's Vcpu does on the
// paths the scenarios need (models/timed/vcpu.cpp): translate through its MMU with the hardware
// (shadow) state, exit on a fault, retry; kernel stores trap and are emulated.
#pragma once

#define SC_INCLUDE_DYNAMIC_PROCESSES  // sc_spawn, before any SystemC include

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <systemc>

#include "common/error.h"
#include "common/stats.h"
#include "hv/hypervisor.h"
#include "memory/page_table_memory.h"
#include "mmu/mmu.h"
#include "paging/frame_allocator.h"
#include "paging/page_table_editor.h"
#include "paging/walker.h"
#include "timed/systemc_context.h"

namespace shadowsim::test {

constexpr uint64_t kGuestMib = 32;
constexpr uint64_t kGuestFrames = kGuestMib * 256;
constexpr uint64_t kPoolPages = 1024;
constexpr uint64_t kDirectMap = 0xffff888000000000ULL;
constexpr uint64_t kUserX = 0x400000;  // the page the faulting VCPU touches
constexpr uint64_t kUserY = 0x401000;  // a neighbour in the same L1 table

inline uint64_t now() { return sc_core::sc_time_stamp().value(); }

class TestCpu : public HvCpu {
 public:
  TestCpu(int index, PageTableMemory& memory, Hypervisor& hv, const PagingState& guest)
      : index_(index), mmu_(index, MmuParams{}, memory, 7 + static_cast<uint64_t>(index)),
        hv_(hv), guest_(guest), hardware_(guest) {}

  // HvCpu
  int vcpu_index() const override { return index_; }
  int pcpu_index() const override { return index_; }
  Mmu& mmu() override { return mmu_; }
  const TlbContext& tlb_context() const override { return ctx_; }
  void hv_sync() override {
    if (local_) sc_core::wait(sc_core::sc_time::from_value(local_));
    local_ = 0;
  }
  void hv_spend(uint64_t cycles) override { local_ += cycles; }
  uint64_t hv_now() const override { return now() + local_; }
  void hv_lock_waited(uint64_t, uint64_t spinning) override { spun += spinning; }
  void hv_interrupt(uint64_t cycles) override { interrupted += cycles; }
  void load_hardware_state(const PagingState& state) override { hardware_ = state; }

  // Script steps (from this CPU's thread).
  void at(uint64_t t) {
    hv_sync();
    if (t > now()) sc_core::wait(sc_core::sc_time::from_value(t - now()));
  }
  void load_cr3() { hv_.cr3_write(*this, guest_); }
  // A user access: shadow faults are fixed by the hypervisor; a fault it reflects is returned
  // (the guest kernel is not modelled here). Returns 0 or the guest's #PF error code.
  uint32_t user_access(uint64_t va, const Access& access) {
    for (int round = 0; round < 16; ++round) {
      hv_sync();
      const MmuResult r = mmu_.translate(va, access, hardware_, ctx_);
      local_ += r.cycles;
      if (r.outcome == WalkOutcome::kOk) {
        last_pa = r.pa;
        return 0;
      }
      mmu_.page_fault_invalidate(va, ctx_, hardware_.mode());
      const HvFaultResult h = hv_.page_fault(*this, va, access, r.error_code, nullptr);
      if (h.kind == HvFaultResult::Kind::kInject) return h.error_code;
    }
    throw Error(fmt::format("vcpu{}: {:#x} kept faulting", index_, va));
  }
  // A guest kernel store through the direct map (supervisor); true when it trapped.
  bool kernel_store(uint64_t pa, uint64_t value) {
    const uint64_t va = kDirectMap + pa;
    const GuestStore store{pa, 8, value};
    for (int round = 0; round < 16; ++round) {
      hv_sync();
      const MmuResult r = mmu_.translate(va, Access::write(false), hardware_, ctx_);
      local_ += r.cycles;
      if (r.outcome == WalkOutcome::kOk) {
        EXPECT_EQ(r.pa, pa);
        mmu_.table_memory().memory().write(pa, value, 8);
        return false;
      }
      mmu_.page_fault_invalidate(va, ctx_, hardware_.mode());
      const HvFaultResult h = hv_.page_fault(*this, va, Access::write(false), r.error_code,
                                             &store);
      if (h.kind == HvFaultResult::Kind::kEmulated) return true;
      if (h.kind == HvFaultResult::Kind::kInject) {
        throw Error(fmt::format("vcpu{}: kernel store to {:#x} reflected", index_, pa));
      }
    }
    throw Error(fmt::format("vcpu{}: kernel store to {:#x} kept faulting", index_, pa));
  }
  void kernel_read(uint64_t pa) {
    const uint64_t va = kDirectMap + pa;
    for (int round = 0; round < 16; ++round) {
      hv_sync();
      const MmuResult r = mmu_.translate(va, Access::read(false), hardware_, ctx_);
      if (r.outcome == WalkOutcome::kOk) return;
      mmu_.page_fault_invalidate(va, ctx_, hardware_.mode());
      hv_.page_fault(*this, va, Access::read(false), r.error_code, nullptr);
    }
    throw Error(fmt::format("vcpu{}: kernel read of {:#x} kept faulting", index_, pa));
  }

  uint64_t last_pa = 0;
  uint64_t spun = 0;
  uint64_t interrupted = 0;

 private:
  int index_;
  Mmu mmu_;
  Hypervisor& hv_;
  TlbContext ctx_{};
  PagingState guest_;
  PagingState hardware_;
  uint64_t local_ = 0;
};

// One machine: guest RAM + shadow pool, the guest's tables, a hypervisor, two scripted CPUs.
class HvMachine {
 public:
  explicit HvMachine(HypervisorParams params, unsigned cpus = 2) {
    PageTableMemoryParams mp;
    mp.size_mib = kGuestMib + kPoolPages / 256;
    memory_ = std::make_unique<PageTableMemory>(mp, static_cast<int>(cpus));
    GuestMemory& m = memory_->memory();
    tables_ = std::make_unique<FrameAllocator>(0x100, 0x100);    // guest page tables
    data_ = std::make_unique<FrameAllocator>(0x1000, 0x1000);    // guest data pages
    store_ = std::make_unique<DirectPageTableStore>(m, false);
    CpuFeatures features;
    features.page_1gb = false;
    editor_ = std::make_unique<PageTableEditor>(PagingMode::k4Level, PagingControls{}, features,
                                                *tables_, *store_);
    root = editor_->create_address_space();
    PageFlags kernel;
    kernel.writable = true;
    kernel.global = true;
    kernel.accessed = true;
    kernel.dirty = true;
    editor_->map(root, kDirectMap, 0, kGuestMib << 20, PageSize::k2M, kernel);
    d1 = data_->allocate() << kPageShift;
    d2 = data_->allocate() << kPageShift;
    map_user(kUserX, d1);
    map_user(kUserY, data_->allocate() << kPageShift);
    table_t = *editor_->leaf(root, kUserX);  // the L1 entry of X
    PagingState guest(PagingMode::k4Level, PagingControls{}, features);
    EXPECT_TRUE(guest.load_cr3(root, m));
    params.audit = true;
    hv_ = std::make_unique<Hypervisor>(m, kGuestFrames, kGuestFrames, kPoolPages,
                                       PagingMode::k4Level, cpus, params, 11);
    hv_->register_stats(StatsGroup(registry_, "hv"));
    for (unsigned i = 0; i < cpus; ++i) {
      cpus_.push_back(std::make_unique<TestCpu>(static_cast<int>(i), *memory_, *hv_, guest));
      hv_->attach(cpus_.back().get());
    }
  }

  // A present, writable, user, accessed and dirty 4 KiB leaf value for `pa`.
  uint64_t user_leaf(uint64_t pa) const {
    PageFlags f;
    f.writable = f.user = f.accessed = f.dirty = true;
    return editor_->leaf_value(pa, f);
  }
  void map_user(uint64_t va, uint64_t pa) {
    PageFlags f;
    f.writable = f.user = f.accessed = f.dirty = true;
    editor_->map(root, va, pa, kPageSize, PageSize::k4K, f);
  }

  // Runs `script(cpu)` on each CPU's thread; an Error becomes an entry of errors().
  void run(const std::vector<std::function<void(TestCpu&)>>& scripts) {
    for (size_t i = 0; i < scripts.size(); ++i) {
      std::function<void(TestCpu&)> body = scripts[i];
      TestCpu* cpu = cpus_[i].get();
      sc_core::sc_spawn(
          [this, body, cpu] {
            try {
              body(*cpu);
            } catch (const Error& e) {
              errors.push_back(e.what());
              sc_core::sc_stop();
            }
          },
          fmt::format("cpu{}", i).c_str());
    }
    sc_core::sc_start();
  }

  uint64_t stat(const std::string& name) const {
    const StatsRegistry::Entry* e = registry_.find(name);
    if (!e || !e->counter) throw Error("no counter " + name);
    return *e->counter;
  }
  bool audit_clean() {
    try {
      hv_->audit_all();
      return true;
    } catch (const Error& e) {
      errors.push_back(e.what());
      return false;
    }
  }
  Hypervisor& hv() { return *hv_; }
  GuestMemory& memory() { return memory_->memory(); }

  uint64_t root = 0;
  uint64_t d1 = 0, d2 = 0;
  PageTableEditor::Leaf table_t{};  // X's L1 entry (its address is in table T)
  std::vector<std::string> errors;

 private:
  ScContext context_;  // first: made before the modules, deleted after them
  std::unique_ptr<PageTableMemory> memory_;
  std::unique_ptr<FrameAllocator> tables_, data_;
  std::unique_ptr<DirectPageTableStore> store_;
  std::unique_ptr<PageTableEditor> editor_;
  StatsRegistry registry_;
  std::unique_ptr<Hypervisor> hv_;
  std::vector<std::unique_ptr<TestCpu>> cpus_;
};

}  // namespace shadowsim::test
