// Property test of the 2-D walk, per guest mode and host format: random guest tables (random
// entries of every kind: not present, read-only, supervisor, large pages, XD, reserved bits)
// under random control bits, on a random host map (a shuffled 4 KiB map of guest memory, 2 MiB
// pages above it, 1 GiB pages up to 1 TiB). For thousands of random addresses and accesses:
//   - with every guest-physical address mapped, the 2-D walk's outcome, #PF error code, stop
//     level, guest references and guest A/D updates equal the native walker's, and its
//     host-physical address is host(native walk(va));
//   - the cold reference count is sum over guest refs of (1 + host walk length of the table)
//     plus the final host walk length, from an independent dictionary of the host map;
//   - a walker with every cache gives the same answers, and its references plus what it reports
//     saved equal the cold count;
//   - with some guest frames unmapped, the walk faults at the first guest table (in walk order)
//     whose frame is unmapped, else at the final gPA if unmapped, else as natively.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <tuple>
#include <vector>

#include "common/rng.h"
#include "nested/host_paging.h"
#include "nested/host_table_builder.h"
#include "nested/nested_walker.h"
#include "paging/frame_allocator.h"
#include "paging/guest_memory.h"
#include "paging/paging_state.h"
#include "paging/walker.h"

namespace shadowsim {
namespace {

constexpr uint64_t kGuestBytes = 16ULL << 20;
constexpr uint64_t kGiB = 1ULL << 30;
constexpr uint64_t kMapEnd = 1ULL << 40;  // PSE-36 reaches 2^40
constexpr int kTables = 48;

using Variant = std::tuple<PagingMode, HostPagingKind, bool /*partial host map*/>;

class NestedProperty : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    std::tie(mode_, kind_, partial_) = GetParam();
    guest_ = std::make_unique<GuestMemory>(kGuestBytes);
    host_mem_ = std::make_unique<GuestMemory>(64ULL << 20);
    host_frames_ = std::make_unique<FrameAllocator>(1, (64ULL << 20) / kPageSize - 1);
    HostPagingParams hp;
    hp.kind = kind_;
    hp.ept_ad = kind_ == HostPagingKind::kEpt && rng_.chance(0.5);
    builder_ = std::make_unique<HostTableBuilder>(*host_mem_, *host_frames_, hp);
    build_host_map();
    build_guest_tables();
  }

  // [0, 16 MiB): 4 KiB pages, frames shuffled into [4 GiB, 4 GiB + 16 MiB); [16 MiB, 1 GiB):
  // 2 MiB pages at +8 GiB; [1 GiB, 1 TiB): 1 GiB pages at +2 TiB.
  void build_host_map() {
    std::vector<uint64_t> frames(kGuestBytes / kPageSize);
    for (size_t i = 0; i < frames.size(); ++i) frames[i] = i;
    for (size_t i = frames.size() - 1; i > 0; --i) {
      std::swap(frames[i], frames[rng_.below(i + 1)]);
    }
    for (size_t i = 0; i < frames.size(); ++i) {
      const uint64_t hpa = (4 * kGiB) + frames[i] * kPageSize;
      builder_->map(i * kPageSize, hpa, kPageSize, PageSize::k4K);
      small_[i * kPageSize] = hpa;
    }
    builder_->map(kGuestBytes, kGuestBytes + 8 * kGiB, kGiB - kGuestBytes, PageSize::k2M);
    builder_->map(kGiB, kGiB + (2ULL << 40), kMapEnd - kGiB, PageSize::k1G);
  }

  // Host dictionary: hPA of `gpa` and the host leaf level, or nullopt when unmapped.
  std::optional<std::pair<uint64_t, int>> host_of(uint64_t gpa) const {
    if (gpa < kGuestBytes) {
      const uint64_t frame = gpa & ~(kPageSize - 1);
      if (unmapped_.count(frame)) return std::nullopt;
      return std::make_pair(small_.at(frame) | (gpa & (kPageSize - 1)), 1);
    }
    if (gpa < kGiB) return std::make_pair(gpa + 8 * kGiB, 2);
    if (gpa < kMapEnd) return std::make_pair(gpa + (2ULL << 40), 3);
    return std::nullopt;
  }

  uint64_t random_entry(bool wide) {
    if (rng_.chance(0.12)) return 0;
    // PAE: no entry points at the PDPT (tables_[0]); the walks' A/D writes there would change
    // PDPTEs behind the registers, which NPT (reading memory) and the native walker (reading
    // registers) then see differently, as real hardware would.
    const uint64_t first = mode_ == PagingMode::kPae ? 1 : 0;
    uint64_t e = tables_[first + rng_.below(kTables - first)] | pte::kPresent;
    if (rng_.chance(0.75)) e |= pte::kWritable;
    if (rng_.chance(0.75)) e |= pte::kUser;
    if (rng_.chance(0.15)) e |= pte::kPageSize;
    if (rng_.chance(0.5)) e |= pte::kAccessed;
    if (rng_.chance(0.5)) e |= pte::kDirty;
    if (rng_.chance(0.1)) e |= pte::kGlobal;
    if (rng_.chance(0.05)) e |= 1ULL << 13;  // reserved in large leaves, PSE-36 or address
    if (wide) {
      if (rng_.chance(0.2)) e |= pte::kExecuteDisable;
      if (rng_.chance(0.03)) e |= 1ULL << (46 + rng_.below(6));  // beyond MAXPHYADDR
    } else if (rng_.chance(0.03)) {
      e |= 1ULL << 21;  // reserved in a 4 MiB PDE
    }
    return e;
  }

  void build_guest_tables() {
    // Table frames: distinct random frames below 16 MiB - 8 KiB (bit 13 may move an address).
    std::set<uint64_t> chosen;
    while (chosen.size() < kTables) chosen.insert(1 + rng_.below(kGuestBytes / kPageSize - 4));
    for (uint64_t f : chosen) tables_.push_back(f << kPageShift);
    const bool wide = mode_ != PagingMode::k32Bit;
    for (uint64_t t : tables_) {
      for (uint64_t off = 0; off < kPageSize; off += wide ? 8 : 4) {
        const uint64_t e = random_entry(wide);
        if (wide) {
          guest_->write64(t + off, e);
        } else {
          guest_->write32(t + off, static_cast<uint32_t>(e));
        }
      }
    }
    root_ = tables_[0];
    if (mode_ == PagingMode::kPae) {  // valid PDPTEs (the CR3 load must succeed)
      for (int i = 0; i < 4; ++i) {
        const uint64_t pd = tables_[1 + rng_.below(kTables - 1)];
        guest_->write64(root_ + 8 * i, rng_.chance(0.85) ? (pd | pte::kPresent) : 0);
      }
    }
    if (partial_) {
      for (uint64_t t : tables_) {
        if (t != root_ && rng_.chance(0.15)) unmapped_.insert(t);
      }
      for (uint64_t f : unmapped_) builder_->unmap(f, kPageSize);
    }
  }

  uint64_t random_va() {
    const int bits = linear_address_bits(mode_);
    uint64_t va = rng_.next() & ((1ULL << bits) - 1);
    if (bits > 32 && rng_.chance(0.97)) {  // canonical: copy the top bit upwards
      const int unused = 64 - bits;
      va = static_cast<uint64_t>(static_cast<int64_t>(va << unused) >> unused);
    }
    return va;
  }

  PagingMode mode_;
  HostPagingKind kind_;
  bool partial_;
  Rng rng_{0x5eed};
  std::unique_ptr<GuestMemory> guest_;
  std::unique_ptr<GuestMemory> host_mem_;
  std::unique_ptr<FrameAllocator> host_frames_;
  std::unique_ptr<HostTableBuilder> builder_;
  std::vector<uint64_t> tables_;
  uint64_t root_ = 0;
  std::map<uint64_t, uint64_t> small_;
  std::set<uint64_t> unmapped_;
};

TEST_P(NestedProperty, TwoDimensionalWalkAgreesWithTheNativeWalkThroughTheHostMap) {
  const HostPageTables host = builder_->tables();
  NestedParams small;  // small caches so that entries are evicted too
  small.nested_tlb = TlbArrayParams{8, 4, Replacement::kLru, 1};
  small.guest_psc.pde = TlbArrayParams{4, 2, Replacement::kLru, 1};
  uint64_t checked_ok = 0, checked_guest = 0, checked_host = 0;
  for (int round = 0; round < 8; ++round) {
    PagingControls controls;
    controls.cr0_wp = rng_.chance(0.7);
    controls.cr4_pse = rng_.chance(0.8);
    controls.cr4_smep = rng_.chance(0.3);
    controls.cr4_smap = rng_.chance(0.3);
    controls.efer_nxe = rng_.chance(0.8);
    PagingState state(mode_, controls, CpuFeatures{});
    ASSERT_TRUE(state.load_cr3(root_, *guest_));
    NestedWalker cold(NestedParams::no_caches(), round);
    NestedWalker cached(small, round);
    for (int i = 0; i < 800; ++i) {
      const uint64_t va = random_va();
      Access access;
      access.kind = static_cast<AccessKind>(rng_.below(3));
      access.user = rng_.chance(0.6);
      access.eflags_ac = rng_.chance(0.3);
      const WalkResult native = walk(*guest_, state, va, access);
      const NestedWalk w = cold.walk(*guest_, state, host, va, access);
      const NestedWalk c = cached.walk(*guest_, state, host, va, access);
      SCOPED_TRACE(::testing::Message() << "va " << std::hex << va << " round " << round);

      // The guest references the 2-D walk makes, natively: PAE under NPT reads the PDPTE too.
      std::vector<PageTableRef> grefs;
      const bool pdpt_read = mode_ == PagingMode::kPae && kind_ == HostPagingKind::kNpt &&
                             native.outcome != WalkOutcome::kNonCanonical;
      if (pdpt_read) {
        const uint64_t at = root_ + 8 * level_index(mode_, 3, va);
        grefs.push_back(PageTableRef{at, guest_->read64(at), 3, 8});
      }
      for (int r = 0; r < native.ref_count; ++r) grefs.push_back(native.refs[r]);

      // Expected outcome.
      int bad = -1;  // first guest ref whose table frame is unmapped
      for (size_t r = 0; r < grefs.size() && bad < 0; ++r) {
        if (!host_of(grefs[r].entry_pa & ~(kPageSize - 1))) bad = static_cast<int>(r);
      }
      if (native.outcome == WalkOutcome::kNonCanonical) {
        EXPECT_EQ(w.outcome, NestedOutcome::kGuestNonCanonical);
        EXPECT_EQ(c.outcome, NestedOutcome::kGuestNonCanonical);
        continue;
      }
      if (bad >= 0) {
        ASSERT_EQ(w.outcome, NestedOutcome::kHostViolation);
        EXPECT_FALSE(w.fault.final_access);
        EXPECT_EQ(w.fault.gpa, grefs[bad].entry_pa & ~(kPageSize - 1));
        EXPECT_EQ(w.fault.guest_level, grefs[bad].level);
        EXPECT_EQ(c.outcome, w.outcome);
        EXPECT_EQ(c.fault.gpa, w.fault.gpa);
        ++checked_host;
        continue;
      }
      // Guest references equal the native ones, each read at its host address.
      ASSERT_EQ(w.guest_ref_count, grefs.size());
      int cold_refs = 0;
      size_t g = 0;
      for (int r = 0; r < w.ref_count; ++r) {
        if (w.refs[r].host) continue;
        EXPECT_EQ(w.refs[r].gpa, grefs[g].entry_pa);
        EXPECT_EQ(w.refs[r].value, grefs[g].value);
        EXPECT_EQ(w.refs[r].level, grefs[g].level);
        EXPECT_EQ(w.refs[r].hpa, host_of(grefs[g].entry_pa)->first);
        cold_refs += 1 + 5 - host_of(grefs[g].entry_pa & ~(kPageSize - 1))->second;
        ++g;
      }
      if (!native.ok()) {
        ASSERT_EQ(w.outcome, NestedOutcome::kGuestPageFault);
        EXPECT_EQ(w.error_code, native.error_code);
        EXPECT_EQ(w.guest_stop_level, native.stop_level);
        EXPECT_EQ(w.ref_count, cold_refs);
        EXPECT_EQ(c.outcome, NestedOutcome::kGuestPageFault);
        EXPECT_EQ(c.error_code, native.error_code);
        EXPECT_EQ(c.ref_count + c.saved.total(), w.ref_count);
        ++checked_guest;
        apply_updates(*guest_, *host_mem_, w);
        continue;
      }
      const auto final_host = host_of(native.translation.pa);
      if (!final_host) {
        ASSERT_EQ(w.outcome, NestedOutcome::kHostViolation);
        EXPECT_TRUE(w.fault.final_access);
        EXPECT_EQ(w.fault.gpa, native.translation.pa);
        EXPECT_EQ(c.outcome, NestedOutcome::kHostViolation);
        ++checked_host;
      } else {
        ASSERT_EQ(w.outcome, NestedOutcome::kOk);
        EXPECT_EQ(w.translation.pa, final_host->first);
        EXPECT_EQ(w.gpa, native.translation.pa);
        EXPECT_EQ(w.translation.rights.writable, native.translation.rights.writable);
        EXPECT_EQ(w.translation.rights.user, native.translation.rights.user);
        EXPECT_EQ(w.translation.rights.execute_disable,
                  native.translation.rights.execute_disable);
        EXPECT_EQ(w.ref_count, cold_refs + 5 - final_host->second);
        ASSERT_EQ(c.outcome, NestedOutcome::kOk);
        EXPECT_EQ(c.translation.pa, w.translation.pa);
        EXPECT_EQ(c.ref_count + c.saved.total(), w.ref_count);
        ++checked_ok;
      }
      // Guest A/D updates equal the native walk's (the guest walk completed).
      std::vector<NestedUpdate> guest_updates;
      for (int u = 0; u < w.update_count; ++u) {
        if (!w.updates[u].host) guest_updates.push_back(w.updates[u]);
      }
      ASSERT_EQ(guest_updates.size(), native.update_count);
      for (size_t u = 0; u < guest_updates.size(); ++u) {
        EXPECT_EQ(guest_updates[u].gpa, native.updates[u].entry_pa);
        EXPECT_EQ(guest_updates[u].new_value, native.updates[u].new_value);
        EXPECT_EQ(guest_updates[u].hpa, host_of(native.updates[u].entry_pa)->first);
      }
      apply_updates(*guest_, *host_mem_, w);
    }
  }
  // Every kind of result was exercised.
  EXPECT_GT(checked_ok, 100u);
  EXPECT_GT(checked_guest, 100u);
  if (partial_) {
    EXPECT_GT(checked_host, 20u);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Modes, NestedProperty,
    ::testing::Combine(::testing::Values(PagingMode::k32Bit, PagingMode::kPae,
                                         PagingMode::k4Level, PagingMode::k5Level),
                       ::testing::Values(HostPagingKind::kEpt, HostPagingKind::kNpt),
                       ::testing::Bool()),
    [](const auto& info) {
      return std::string(to_string(std::get<0>(info.param))) + "_" +
             to_string(std::get<1>(info.param)) +
             (std::get<2>(info.param) ? "_partial" : "_full");
    });

}  // namespace
}  // namespace shadowsim
