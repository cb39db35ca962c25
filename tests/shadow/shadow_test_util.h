// Test scaffolding: one machine (guest RAM + shadow pool in one GuestMemory), guest tables built
// with the paging core's PageTableEditor, and a locked fault handler assembled from the shadow
// core's steps in the order of research §2 A (what the timed layer will do, without time).
#pragma once

#include <memory>

#include <gtest/gtest.h>

#include "paging/frame_allocator.h"
#include "paging/guest_memory.h"
#include "paging/page_table_editor.h"
#include "paging/walker.h"
#include "shadow/shadow_paging.h"

namespace shadowsim::test {

constexpr uint64_t kGuestFrames = 32768;  // 128 MiB of guest RAM
constexpr uint64_t kTableFirst = 0x100;   // guest page tables come from [0x100, 0x1000)
constexpr uint64_t kTableCount = 0xf00;

inline PagingControls guest_controls() { return PagingControls{}; }
inline CpuFeatures guest_features() {
  CpuFeatures f;
  f.maxphyaddr = 40;
  f.page_1gb = false;
  return f;
}

struct Machine {
  explicit Machine(PagingMode mode, uint64_t pool_pages = 4096, unsigned vcpus = 1,
                   ShadowParams params = {})
      : mode(mode),
        memory((kGuestFrames + pool_pages) << kPageShift),
        tables(kTableFirst, kTableCount),
        store(memory, false),
        editor(mode, guest_controls(), guest_features(), tables, store),
        shadow(memory, kGuestFrames, kGuestFrames, pool_pages, mode, vcpus, params) {
    root = editor.create_address_space();
  }

  PagingState guest_state(uint64_t cr3) const {
    PagingState s(mode, guest_controls(), guest_features());
    EXPECT_TRUE(s.load_cr3(cr3, memory));
    return s;
  }
  Cr3Result load_cr3(unsigned vcpu, uint64_t cr3) {
    ShadowWork w;
    return shadow.update_cr3(vcpu, guest_state(cr3), w);
  }
  Cr3Result load_cr3(unsigned vcpu = 0) { return load_cr3(vcpu, root); }

  enum class Result { kOk, kGuestFault, kEmulate, kRetry };
  struct Fault {
    Result result = Result::kRetry;
    uint32_t error_code = 0;  // kGuestFault: what the guest sees
    ShadowWork work;          // of the last fault handled
    int faults = 0;           // shadow faults taken
  };

  // One shadow fault through the steps of research §2 A (locked strategy).
  Fault handle_fault(unsigned vcpu, uint64_t va, const Access& access, uint32_t hw_error) {
    Fault f;
    ShadowWork& w = f.work;
    if ((hw_error & pfec::kReserved) && shadow.magic_enabled()) {
      // A2: magic guest-not-present entry: reflect with P and RSVD cleared.
      f.result = Result::kGuestFault;
      f.error_code = hw_error & ~(pfec::kReserved | pfec::kPresent);
      return f;
    }
    const GuestWalk gw = shadow.guest_walk(vcpu, va, access, w);
    if (!gw.ok()) {
      f.result = Result::kGuestFault;
      f.error_code = gw.result.error_code;
      return f;
    }
    shadow.apply_walk_ad(gw, w);
    if (!shadow.gfn_is_ram(gw.gfn)) {  // A7: bad gfn, the fault goes to the guest
      f.result = Result::kGuestFault;
      f.error_code = hw_error;
      return f;
    }
    shadow.gw_remove_write_accesses(gw, w);
    if (!shadow.check_gwalk(gw, w)) return f;  // kRetry
    shadow.prealloc(l1_type(shadow.mode()), shadow.mode() == ShadowMode::k4on4 ? 3 : 1, w);
    const ShadowL1Slot slot = shadow.get_and_create_l1e(gw, w);
    shadow.set_l1e(slot, shadow.propagate_l1e(gw, w), w);
    shadow.prefetch(slot, gw, w);
    if (access.kind == AccessKind::kWrite && shadow.is_page_table(gw.gfn)) {
      f.result = Result::kEmulate;
      return f;
    }
    shadow.reset_early_unshadow(vcpu);
    f.result = Result::kOk;
    return f;
  }

  // An access as the MMU does it: walk the shadows; on a fault run the handler and retry.
  Fault access(unsigned vcpu, uint64_t va, const Access& acc) {
    Fault last;
    uint32_t hw_error = 0;
    for (int attempt = 0; attempt < 8; ++attempt) {
      const WalkResult hw = walk(memory, shadow.shadow_state(vcpu), va, acc);
      hw_error = hw.error_code;
      if (hw.ok()) {
        last.result = Result::kOk;
        return last;
      }
      const int faults = last.faults + 1;
      last = handle_fault(vcpu, va, acc, hw.error_code);
      last.faults = faults;
      if (last.result == Result::kGuestFault || last.result == Result::kEmulate) return last;
    }
    ADD_FAILURE() << "access to " << std::hex << va << " did not settle: #PF " << hw_error;
    return last;
  }

  WalkResult shadow_walk(uint64_t va, const Access& acc, unsigned vcpu = 0) const {
    return walk(memory, shadow.shadow_state(vcpu), va, acc);
  }
  WalkResult guest_walk(uint64_t va, const Access& acc, uint64_t cr3) const {
    return walk(memory, guest_state(cr3), va, acc);
  }

  PagingMode mode;
  GuestMemory memory;
  FrameAllocator tables;
  DirectPageTableStore store;
  PageTableEditor editor;
  ShadowPaging shadow;
  uint64_t root = 0;
};

inline PageFlags rw_flags(bool user = true) {
  PageFlags f;
  f.writable = true;
  f.user = user;
  f.accessed = true;
  f.dirty = true;
  return f;
}

}  // namespace shadowsim::test
