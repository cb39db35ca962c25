// The 2-D walk on hand-built guest tables (nested_fixture.h): reference counts and order with
// cold caches per guest mode and host format, large host pages, exact counts with warm caches,
// EPT violations / NPT faults for a guest table versus the final page, write-protected guest
// table frames and A/D updates, EPT misconfigurations, PAE CR3 loads through EPT.
#include <gtest/gtest.h>

#include <tuple>

#include "nested_fixture.h"

namespace shadowsim {
namespace {

using test::NestedSystem;
using test::ept_params;
using test::npt_params;
using test::kData;
using test::kData2;
using test::kHostOffset;
using test::kPd;
using test::kPdpt;
using test::kPml4;
using test::kPt;
using test::kUserTable;
using test::kVa;
using test::kVa2;

constexpr PagingMode kModes[] = {PagingMode::k32Bit, PagingMode::kPae, PagingMode::k4Level,
                                 PagingMode::k5Level};

// Guest references the walk of kVa makes in each mode (PAE under EPT: none for the PDPT).
int guest_levels(PagingMode mode, HostPagingKind kind) {
  switch (mode) {
    case PagingMode::k32Bit: return 2;
    case PagingMode::kPae: return kind == HostPagingKind::kNpt ? 3 : 2;
    case PagingMode::k4Level: return 4;
    case PagingMode::k5Level: return 5;
  }
  return 0;
}

class ColdWalk : public ::testing::TestWithParam<std::tuple<PagingMode, HostPagingKind>> {};

TEST_P(ColdWalk, EveryGuestReferenceIsPrecededByFourHostReferencesThenTheFinalFour) {
  const auto [mode, kind] = GetParam();
  NestedSystem sys(mode, kind == HostPagingKind::kEpt ? ept_params() : npt_params());
  NestedWalker walker(NestedParams::no_caches(), 1);
  const NestedWalk w =
      walker.walk(sys.guest_mem, sys.state, sys.host(), kVa, Access::read(true));
  ASSERT_TRUE(w.ok()) << to_string(w.outcome);
  const int n = guest_levels(mode, kind);
  ASSERT_EQ(w.ref_count, n * 5 + 4);
  EXPECT_EQ(w.guest_ref_count, n);
  EXPECT_EQ(w.host_ref_count, n * 4 + 4);
  for (int g = 0; g < n; ++g) {
    const int level = n - g;  // guest levels top down (PAE under NPT: PDPTE 3, PDE 2, PTE 1)
    for (int h = 0; h < 4; ++h) {
      const NestedRef& r = w.refs[g * 5 + h];
      EXPECT_TRUE(r.host);
      EXPECT_EQ(r.level, 4 - h);
      EXPECT_EQ(r.guest_level, level);
    }
    const NestedRef& r = w.refs[g * 5 + 4];
    EXPECT_FALSE(r.host);
    EXPECT_EQ(r.level, level);
    EXPECT_EQ(r.hpa, r.gpa + kHostOffset);  // the guest entry is read at its host address
    EXPECT_EQ(w.refs[g * 5].gpa, r.gpa & ~0xfffULL);  // host refs translate the table's frame
  }
  for (int h = 0; h < 4; ++h) {
    EXPECT_TRUE(w.refs[n * 5 + h].host);
    EXPECT_EQ(w.refs[n * 5 + h].guest_level, 0);
    EXPECT_EQ(w.refs[n * 5 + h].gpa, kData + 0x123);
  }
  EXPECT_EQ(w.gpa, kData + 0x123);
  EXPECT_EQ(w.translation.pa, kHostOffset + kData + 0x123);
  EXPECT_EQ(w.translation.page_pa, kHostOffset + kData);
  EXPECT_EQ(w.translation.size, PageSize::k4K);
  EXPECT_EQ(w.saved.total(), 0);
  EXPECT_EQ(walker.walks(), 1u);
  EXPECT_EQ(walker.host_refs() + walker.guest_refs(), static_cast<uint64_t>(w.ref_count));
}

INSTANTIATE_TEST_SUITE_P(
    AllModes, ColdWalk,
    ::testing::Combine(::testing::ValuesIn(kModes),
                       ::testing::Values(HostPagingKind::kEpt, HostPagingKind::kNpt)),
    [](const auto& info) {
      return std::string(to_string(std::get<0>(info.param))) + "_" +
             to_string(std::get<1>(info.param));
    });

TEST(NestedWalker, RequiredColdCounts) {
  const std::tuple<PagingMode, HostPagingKind, int> cases[] = {
      {PagingMode::k4Level, HostPagingKind::kEpt, 24},
      {PagingMode::k4Level, HostPagingKind::kNpt, 24},
      {PagingMode::kPae, HostPagingKind::kEpt, 14},
      {PagingMode::kPae, HostPagingKind::kNpt, 19},
      {PagingMode::k32Bit, HostPagingKind::kEpt, 14},
      {PagingMode::k32Bit, HostPagingKind::kNpt, 14},
      {PagingMode::k5Level, HostPagingKind::kEpt, 29},
  };
  for (const auto& [mode, kind, refs] : cases) {
    NestedSystem sys(mode, kind == HostPagingKind::kEpt ? ept_params() : npt_params());
    NestedWalker walker(NestedParams::no_caches(), 1);
    const NestedWalk w =
        walker.walk(sys.guest_mem, sys.state, sys.host(), kVa, Access::write(true));
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w.ref_count, refs) << to_string(mode) << " on " << to_string(kind);
  }
}

TEST(NestedWalker, LargeHostPagesShortenEveryHostWalk) {
  for (PageSize host_page : {PageSize::k2M, PageSize::k1G}) {
    NestedSystem sys(PagingMode::k4Level, ept_params(), host_page);
    NestedWalker walker(NestedParams::no_caches(), 1);
    const NestedWalk w =
        walker.walk(sys.guest_mem, sys.state, sys.host(), kVa, Access::read(true));
    ASSERT_TRUE(w.ok());
    const int host_refs = host_page == PageSize::k2M ? 3 : 2;
    EXPECT_EQ(w.ref_count, 4 * (host_refs + 1) + host_refs);  // 19 with 2 MiB, 14 with 1 GiB
    EXPECT_EQ(w.translation.pa, kHostOffset + kData + 0x123);
    EXPECT_EQ(w.translation.size, PageSize::k4K);  // the smaller of guest and host page
  }
}

TEST(NestedWalker, AGuestLargePageOverSmallerHostPagesIsCachedAtTheHostSize) {
  NestedSystem sys(PagingMode::k4Level, ept_params(), PageSize::k2M);
  // Guest PDE 3 maps a 1 GiB-aligned... 2 MiB page at gPA 0x600000; host pages are 2 MiB too,
  // so use a guest 1 GiB page over 2 MiB host pages instead.
  sys.guest_mem.write64(test::kPdpt + 8, (0ULL << 30) | kUserTable | pte::kPageSize);
  NestedWalker walker(NestedParams::no_caches(), 1);
  const uint64_t va = (1ULL << 30) + 0x345678;  // PDPT index 1: guest 1 GiB page at gPA 0
  const NestedWalk w = walker.walk(sys.guest_mem, sys.state, sys.host(), va, Access::read());
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w.ref_count, 2 * 4 + 3);  // PML4E, PDPTE (leaf) with 3 host refs each, final 3
  EXPECT_EQ(w.translation.size, PageSize::k2M);
  EXPECT_EQ(w.translation.pa, kHostOffset + 0x345678);
  EXPECT_EQ(w.translation.page_pa, kHostOffset + 0x200000);
  EXPECT_EQ(w.translation.page_va, (1ULL << 30) + 0x200000);
}

// Warm caches, 4-level guest on 4-level EPT. The guest tables sit in gPA 0x1000..0x4fff and
// the data pages in 0x200000..0x201fff: two 2 MiB host regions.
struct WarmCase {
  const char* name;
  bool nested_tlb, host_psc, guest_psc;
  int first;                  // references of the first walk of kVa (caches empty)
  int same_page, same_table;  // references of a second walk of kVa, then of kVa2
};

class WarmWalk : public ::testing::TestWithParam<WarmCase> {};

TEST_P(WarmWalk, ExactReferenceCountsAndSavingsAddUpToTheColdWalk) {
  const WarmCase c = GetParam();
  NestedParams p = NestedParams::no_caches();
  const NestedParams d;
  if (c.nested_tlb) p.nested_tlb = d.nested_tlb;
  if (c.host_psc) p.host_psc = d.host_psc;
  if (c.guest_psc) p.guest_psc = d.guest_psc;
  NestedSystem sys(PagingMode::k4Level, ept_params());
  NestedWalker walker(p, 7);
  const HostPageTables host = sys.host();
  const NestedWalk cold = walker.walk(sys.guest_mem, sys.state, host, kVa, Access::read(true));
  ASSERT_TRUE(cold.ok());
  EXPECT_EQ(cold.ref_count, c.first);
  EXPECT_EQ(cold.ref_count + cold.saved.total(), 24);
  const NestedWalk again = walker.walk(sys.guest_mem, sys.state, host, kVa, Access::read(true));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.ref_count, c.same_page);
  EXPECT_EQ(again.ref_count + again.saved.total(), 24);
  EXPECT_EQ(again.translation.pa, cold.translation.pa);
  const NestedWalk next = walker.walk(sys.guest_mem, sys.state, host, kVa2, Access::read(true));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next.ref_count, c.same_table);
  EXPECT_EQ(next.ref_count + next.saved.total(), 24);
  EXPECT_EQ(next.translation.pa, kHostOffset + kData2 + 0x123);
}

INSTANTIATE_TEST_SUITE_P(
    Caches, WarmWalk,
    ::testing::Values(
        // Nested TLB: the first walk translates 5 different frames (24). Then every
        // translation (4 tables, the page) hits; only guest refs remain. The next page's final
        // gPA misses: 4 guest refs + 4 host refs.
        WarmCase{"nested_tlb", true, false, false, 24, 4, 8},
        // Host PSCs help the first walk already: the 2nd..4th tables hit the host PDE cache
        // (1 + 1 each), the data page the PDPTE cache (2): 5 + 6 + 2 = 13. Then each host walk
        // hits the host PDE cache (tables and data each in one 2 MiB region): 4 x (1 + 1) + 1.
        WarmCase{"host_psc", false, true, false, 13, 9, 9},
        // Guest PSCs: the PDE entry gives the page table's host address: PTE + final walk.
        WarmCase{"guest_psc", false, false, true, 24, 5, 5},
        // All: PTE ref; the final page from the nested TLB, then from the host PDE cache.
        WarmCase{"all", true, true, true, 13, 1, 2}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(NestedWalker, SavingsAreReportedPerCache) {
  NestedSystem sys(PagingMode::k4Level, ept_params());
  NestedWalker walker(NestedParams{}, 7);
  const HostPageTables host = sys.host();
  walker.walk(sys.guest_mem, sys.state, host, kVa, Access::read(true));
  const NestedWalk again = walker.walk(sys.guest_mem, sys.state, host, kVa, Access::read(true));
  EXPECT_EQ(again.saved.guest_psc, 19);  // 4 table translations x 4 + PML4E, PDPTE, PDE
  EXPECT_EQ(again.saved.nested_tlb, 4);  // the final page
  EXPECT_EQ(again.saved.host_psc, 0);
  const NestedWalk next = walker.walk(sys.guest_mem, sys.state, host, kVa2, Access::read(true));
  EXPECT_EQ(next.saved.guest_psc, 19);
  EXPECT_EQ(next.saved.host_psc, 3);  // host PDE cache: PML4E, PDPTE, PDE of the final walk
  EXPECT_EQ(walker.nested_tlb().hits(), 1u);
}

TEST(NestedWalker, InveptForgetsEveryCachedTranslationOfThatRoot) {
  NestedSystem sys(PagingMode::k4Level, ept_params());
  NestedWalker walker(NestedParams{}, 7);
  const HostPageTables host = sys.host();
  walker.walk(sys.guest_mem, sys.state, host, kVa, Access::read(true));
  walker.invept(host.root() + 0x1000);  // another EPTP: nothing changes
  EXPECT_EQ(walker.walk(sys.guest_mem, sys.state, host, kVa, Access::read(true)).ref_count, 1);
  walker.invept(host.root());
  EXPECT_EQ(walker.walk(sys.guest_mem, sys.state, host, kVa, Access::read(true)).ref_count, 13);
  walker.flush_guest_pcid(TlbContext{});  // guest PSCs only: the nested TLB keeps 5 entries
  EXPECT_EQ(walker.walk(sys.guest_mem, sys.state, host, kVa, Access::read(true)).ref_count, 4);
}

class HostFaults : public ::testing::TestWithParam<HostPagingKind> {
 protected:
  NestedSystem make() {
    return NestedSystem(PagingMode::k4Level,
                        GetParam() == HostPagingKind::kEpt ? ept_params() : npt_params());
  }
};

TEST_P(HostFaults, UnmappedGuestTableFaultsDuringTheGuestWalk) {
  NestedSystem sys = make();
  sys.builder.unmap(kPt, kPageSize);
  NestedWalker walker(NestedParams::no_caches(), 1);
  const NestedWalk w = walker.walk(sys.guest_mem, sys.state, sys.host(), kVa, Access::read(true));
  ASSERT_EQ(w.outcome, NestedOutcome::kHostViolation);
  EXPECT_FALSE(w.fault.final_access);
  EXPECT_EQ(w.fault.gpa, kPt);
  EXPECT_EQ(w.fault.guest_level, 1);
  EXPECT_EQ(w.fault.host_level, 1);
  EXPECT_EQ(w.ref_count, 3 * 5 + 4);  // PML4E, PDPTE, PDE done; the PT's host walk fails
  EXPECT_EQ(w.guest_ref_count, 3);
  // The guest walk never completed: no guest A/D. NPT sets A in the host entries of the three
  // host walks that succeeded (PML4E, PDPTE, PDE, three PTEs); EPT without A/D sets nothing.
  for (int i = 0; i < w.update_count; ++i) EXPECT_TRUE(w.updates[i].host);
  EXPECT_EQ(w.update_count, GetParam() == HostPagingKind::kNpt ? 6 : 0);
  if (GetParam() == HostPagingKind::kEpt) {
    EXPECT_EQ(w.fault.allowed, 0);  // not present
    EXPECT_EQ(walker.host_violations(), 1u);
  } else {
    // NPF: not present, write (guest-table accesses are writes), user; bit 33: guest tables.
    EXPECT_EQ(w.fault.npt_exitinfo1(), (1ULL << 33) | pfec::kWrite | pfec::kUser);
  }
}

TEST_P(HostFaults, UnmappedDataPageFaultsOnTheFinalAccess) {
  NestedSystem sys = make();
  sys.builder.unmap(kData, kPageSize);
  NestedWalker walker(NestedParams::no_caches(), 1);
  const NestedWalk w =
      walker.walk(sys.guest_mem, sys.state, sys.host(), kVa, Access::fetch(true));
  ASSERT_EQ(w.outcome, NestedOutcome::kHostViolation);
  EXPECT_TRUE(w.fault.final_access);
  EXPECT_EQ(w.fault.gpa, kData + 0x123);
  EXPECT_EQ(w.fault.guest_level, 0);
  EXPECT_EQ(w.fault.kind, AccessKind::kFetch);
  EXPECT_EQ(w.gpa, kData + 0x123);
  EXPECT_EQ(w.ref_count, 24);
  // The guest walk completed: its A updates are reported (4 entries) for the caller to apply.
  int guest_updates = 0;
  for (int i = 0; i < w.update_count; ++i) guest_updates += w.updates[i].host ? 0 : 1;
  EXPECT_EQ(guest_updates, 4);
  if (GetParam() == HostPagingKind::kNpt) {
    EXPECT_EQ(w.fault.npt_exitinfo1(), (1ULL << 32) | pfec::kUser | pfec::kFetch);
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, HostFaults,
                         ::testing::Values(HostPagingKind::kEpt, HostPagingKind::kNpt),
                         [](const auto& info) { return std::string(to_string(info.param)); });

TEST(NestedWalker, EptWriteProtectedGuestTableFaultsOnlyWhenAnADUpdateIsNeeded) {
  // The leaf PTE has A clear: the walk must set it, a write to the PT frame.
  NestedSystem sys(PagingMode::k4Level, ept_params());
  sys.builder.protect(kPt, kPageSize, ept::kRead | ept::kExecute);
  NestedWalker walker(NestedParams::no_caches(), 1);
  NestedWalk w = walker.walk(sys.guest_mem, sys.state, sys.host(), kVa, Access::read(true));
  ASSERT_EQ(w.outcome, NestedOutcome::kHostViolation);
  EXPECT_EQ(w.fault.gpa, kPt);
  EXPECT_EQ(w.fault.guest_level, 1);
  EXPECT_EQ(w.fault.kind, AccessKind::kWrite);
  EXPECT_EQ(w.fault.allowed, ept::kRead | ept::kExecute);
  // With A already set (and a read), the PT is only read: no violation.
  sys.guest_mem.write64(kPt, kData | kUserTable | pte::kAccessed);
  w = walker.walk(sys.guest_mem, sys.state, sys.host(), kVa, Access::read(true));
  EXPECT_TRUE(w.ok());
  // A write must set D in the PTE: a write to the PT frame again.
  w = walker.walk(sys.guest_mem, sys.state, sys.host(), kVa, Access::write(true));
  ASSERT_EQ(w.outcome, NestedOutcome::kHostViolation);
  EXPECT_EQ(w.fault.guest_level, 1);
}

TEST(NestedWalker, WithEptADOrNptEveryGuestTableAccessIsAWrite) {
  for (const HostPagingParams& params : {ept_params(true), npt_params()}) {
    NestedSystem sys(PagingMode::k4Level, params, PageSize::k4K,
                     kUserTable | pte::kAccessed | pte::kDirty);
    sys.guest_mem.write64(test::kPd + 16, kPt | kUserTable | pte::kAccessed);
    sys.builder.protect(kPt, kPageSize, ept::kRead | ept::kExecute);
    NestedWalker walker(NestedParams::no_caches(), 1);
    const NestedWalk w =
        walker.walk(sys.guest_mem, sys.state, sys.host(), kVa, Access::read(true));
    ASSERT_EQ(w.outcome, NestedOutcome::kHostViolation) << to_string(params.kind);
    EXPECT_EQ(w.fault.gpa, kPt);
    EXPECT_EQ(w.fault.kind, AccessKind::kWrite);
  }
}

TEST(NestedWalker, EptADSetsAOnEveryHostEntryOnceAndDOnWrittenPages) {
  NestedSystem sys(PagingMode::k4Level, ept_params(true), PageSize::k4K,
                   kUserTable | pte::kAccessed | pte::kDirty);
  NestedWalker walker(NestedParams::no_caches(), 1);
  const NestedWalk w =
      walker.walk(sys.guest_mem, sys.state, sys.host(), kVa, Access::read(true));
  ASSERT_TRUE(w.ok());
  // Distinct host entries: PML4E, PDPTE, two PDEs (tables in the first 2 MiB, data in the
  // second), PTEs of the frames 0x1000..0x4000 and of 0x200000: 1 + 1 + 2 + 5.
  int host_updates = 0;
  for (int i = 0; i < w.update_count; ++i) {
    const NestedUpdate& u = w.updates[i];
    if (!u.host) continue;
    ++host_updates;
    EXPECT_TRUE(u.new_value & ept::kAccessed);
    const bool table_frame_pte =
        u.level == 1 && (u.old_value & ~0xfffULL) != kHostOffset + kData;
    // Guest-table frames are written (treated as writes): D set; the data page was read.
    EXPECT_EQ((u.new_value & ept::kDirty) != 0, table_frame_pte) << std::hex << u.hpa;
  }
  EXPECT_EQ(host_updates, 9);
  // The guest PTE is dirty but the EPT leaf of the data page is not: a later write through a
  // TLB entry must re-walk to set the EPT D bit.
  EXPECT_FALSE(w.translation.dirty);
  apply_updates(sys.guest_mem, sys.host_mem, w);
  const NestedWalk again =
      walker.walk(sys.guest_mem, sys.state, sys.host(), kVa, Access::read(true));
  int host_again = 0;
  for (int i = 0; i < again.update_count; ++i) host_again += again.updates[i].host ? 1 : 0;
  EXPECT_EQ(host_again, 0);
  EXPECT_EQ(again.update_count, 0);  // guest A bits were applied too
}

TEST(NestedWalker, EptMisconfigurationsOnReservedBitsAndValues) {
  struct Case {
    int level;
    uint64_t clear;
    uint64_t set;
  };
  const Case cases[] = {
      {4, 0, 1ULL << 3},                 // PML4E bits 7:3 reserved
      {4, 0, ept::kLargePage},           // no large page at a PML4E
      {3, 0, 1ULL << 5},                 // a PDPTE referencing a table: 6:3 reserved
      {2, 0, 1ULL << 4},                 // a PDE referencing a table: 6:3 reserved
      {1, 0, 1ULL << 46},                // bits 51:MAXPHYADDR (46)
      {1, 7ULL << 3, 2ULL << 3},         // memory type 2
      {1, 7ULL << 3, 3ULL << 3},         // memory type 3
      {1, ept::kRead, 0},                // write/execute without read
      {1, ept::kRead | ept::kExecute, 0},  // write-only
  };
  for (const Case& c : cases) {
    NestedSystem sys(PagingMode::k4Level, ept_params());
    const uint64_t entry = *sys.builder.entry_hpa(kData, c.level);
    sys.host_mem.write64(entry, (sys.host_mem.read64(entry) & ~c.clear) | c.set);
    NestedWalker walker(NestedParams::no_caches(), 1);
    const NestedWalk w =
        walker.walk(sys.guest_mem, sys.state, sys.host(), kVa, Access::read(true));
    ASSERT_EQ(w.outcome, NestedOutcome::kHostMisconfig) << c.level << " " << std::hex << c.set
                                                        << " " << c.clear;
    EXPECT_EQ(w.fault.host_level, c.level);
    // The PML4E and PDPTE are shared with the guest tables' translations: those fault first.
    EXPECT_EQ(w.fault.final_access, c.level < 3);
  }
}

TEST(NestedWalker, MisconfigurationBelowWinsOverMissingRightsAbove) {
  NestedSystem sys(PagingMode::k4Level, ept_params());
  const uint64_t pde = *sys.builder.entry_hpa(kData, 2);
  sys.host_mem.write64(pde, sys.host_mem.read64(pde) & ~static_cast<uint64_t>(ept::kWrite));
  const uint64_t leaf = *sys.builder.entry_hpa(kData, 1);
  sys.host_mem.write64(leaf, (sys.host_mem.read64(leaf) & ~(7ULL << 3)) | (7ULL << 3));
  NestedWalker walker(NestedParams::no_caches(), 1);
  const NestedWalk w =
      walker.walk(sys.guest_mem, sys.state, sys.host(), kVa, Access::write(true));
  EXPECT_EQ(w.outcome, NestedOutcome::kHostMisconfig);
}

TEST(NestedWalker, GuestPageFaultKeepsTheNativeErrorCodeAndStopsAtTheFaultingEntry) {
  NestedSystem sys(PagingMode::k4Level, ept_params(), PageSize::k4K,
                   pte::kPresent | pte::kUser);  // read-only user page
  NestedWalker walker(NestedParams::no_caches(), 1);
  const NestedWalk w =
      walker.walk(sys.guest_mem, sys.state, sys.host(), kVa, Access::write(true));
  const WalkResult native = walk(sys.guest_mem, sys.state, kVa, Access::write(true));
  ASSERT_EQ(w.outcome, NestedOutcome::kGuestPageFault);
  EXPECT_EQ(w.error_code, native.error_code);
  EXPECT_EQ(w.error_code, pfec::kPresent | pfec::kWrite | pfec::kUser);
  EXPECT_EQ(w.guest_stop_level, 1);
  EXPECT_EQ(w.ref_count, 20);  // every guest entry was read; no final translation
  EXPECT_EQ(w.update_count, 0);
}

TEST(NestedWalker, PaeUnderNptReadsThePdptOnEveryWalkAndChecksItsReservedBits) {
  NestedSystem sys(PagingMode::kPae, npt_params());
  NestedWalker walker(NestedParams::no_caches(), 1);
  // A PDPT write after the CR3 load is seen at once (no PDPTE registers under NPT).
  sys.guest_mem.write64(test::kPaePdpt, test::kPd | pte::kPresent | (1ULL << 5));
  NestedWalk w = walker.walk(sys.guest_mem, sys.state, sys.host(), kVa, Access::read(true));
  ASSERT_EQ(w.outcome, NestedOutcome::kGuestPageFault);
  EXPECT_EQ(w.error_code, pfec::kPresent | pfec::kReserved | pfec::kUser);
  EXPECT_EQ(w.guest_stop_level, 3);
  EXPECT_EQ(w.ref_count, 5);
  sys.guest_mem.write64(test::kPaePdpt, 0);
  w = walker.walk(sys.guest_mem, sys.state, sys.host(), kVa, Access::read(true));
  ASSERT_EQ(w.outcome, NestedOutcome::kGuestPageFault);
  EXPECT_EQ(w.error_code, pfec::kUser);
}

TEST(NestedWalker, PaeCr3LoadUnderEptTranslatesThePdptAndLoadsTheRegisters) {
  NestedSystem sys(PagingMode::kPae, ept_params(true));
  NestedWalker walker(NestedParams::no_caches(), 1);
  PagingState state(PagingMode::kPae);
  NestedWalk load = walker.load_guest_cr3(state, sys.guest_mem, sys.host(), test::kPaePdpt);
  ASSERT_TRUE(load.ok());
  EXPECT_EQ(load.ref_count, 4 + 4);  // the PDPT's host walk, then the four PDPTEs
  EXPECT_EQ(load.refs[4].hpa, kHostOffset + test::kPaePdpt);
  EXPECT_EQ(load.refs[4].level, 3);
  EXPECT_EQ(state.pdpte(0), test::kPd | pte::kPresent);
  // The load is a read even with EPT A/D: a read-only PDPT frame is fine.
  sys.builder.protect(0x1000, kPageSize, ept::kRead);
  PagingState s2(PagingMode::kPae);
  EXPECT_TRUE(walker.load_guest_cr3(s2, sys.guest_mem, sys.host(), test::kPaePdpt).ok());
  // Unmapped PDPT: an EPT violation and the state is unchanged.
  sys.builder.unmap(0x1000, kPageSize);
  PagingState s3(PagingMode::kPae);
  load = walker.load_guest_cr3(s3, sys.guest_mem, sys.host(), test::kPaePdpt);
  EXPECT_EQ(load.outcome, NestedOutcome::kHostViolation);
  EXPECT_EQ(load.fault.guest_level, 3);
  EXPECT_EQ(s3.cr3(), 0u);
  // A reserved PDPTE bit: #GP, state unchanged.
  sys.builder.map(0x1000, kHostOffset + 0x1000, kPageSize, PageSize::k4K);
  sys.guest_mem.write64(test::kPaePdpt, test::kPd | pte::kPresent | (1ULL << 2));
  EXPECT_EQ(walker.load_guest_cr3(s3, sys.guest_mem, sys.host(), test::kPaePdpt).outcome,
            NestedOutcome::kGuestGp);
}

TEST(NestedWalker, HostRightsCoverageTellsWhetherATlbEntryIsExact) {
  NestedSystem sys(PagingMode::k4Level, ept_params());
  NestedWalker walker(NestedParams::no_caches(), 1);
  NestedWalk w = walker.walk(sys.guest_mem, sys.state, sys.host(), kVa, Access::read(true));
  EXPECT_TRUE(w.host_covers_guest_rights());
  sys.builder.protect(kData, kPageSize, ept::kRead | ept::kExecute);
  w = walker.walk(sys.guest_mem, sys.state, sys.host(), kVa, Access::read(true));
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w.host_rwx, ept::kRead | ept::kExecute);
  EXPECT_FALSE(w.host_covers_guest_rights());  // the guest page is writable, the host's not
}

TEST(NestedWalker, NonCanonicalAddressIsAGuestGp) {
  NestedSystem sys(PagingMode::k4Level, npt_params());
  NestedWalker walker(NestedParams{}, 1);
  const NestedWalk w =
      walker.walk(sys.guest_mem, sys.state, sys.host(), 0x0000800000000000ULL, Access::read());
  EXPECT_EQ(w.outcome, NestedOutcome::kGuestNonCanonical);
  EXPECT_EQ(w.ref_count, 0);
}

TEST(NestedWalker, StatisticsCountWalksReferencesAndFaults) {
  NestedSystem sys(PagingMode::k4Level, ept_params());
  NestedWalker walker(NestedParams{}, 1);
  StatsRegistry registry;
  walker.register_stats(StatsGroup(registry, "nested"));
  walker.walk(sys.guest_mem, sys.state, sys.host(), kVa, Access::read(true));
  walker.walk(sys.guest_mem, sys.state, sys.host(), kVa, Access::read(true));
  sys.builder.unmap(kData2, kPageSize);
  walker.walk(sys.guest_mem, sys.state, sys.host(), kVa2, Access::read(true));
  EXPECT_EQ(*registry.find("nested.walks")->counter, 3u);
  EXPECT_EQ(*registry.find("nested.ept_violations")->counter, 1u);
  EXPECT_EQ(*registry.find("nested.host_faults_final")->counter, 1u);
  EXPECT_EQ(*registry.find("nested.guest_refs")->counter, 4u + 1 + 1);
  EXPECT_EQ(*registry.find("nested.host_refs")->counter, 9u + 0 + 1);  // first walk: 13 refs
  EXPECT_EQ(*registry.find("nested.nested_tlb.hits")->counter, 1u);
  EXPECT_DOUBLE_EQ(registry.find("nested.refs_per_walk")->formula(), (13.0 + 1 + 2) / 3);
  EXPECT_EQ(*registry.find("nested.saved.guest_psc")->counter, 19u + 19);
}

// A guest table the host maps read-only (EPT without A/D): a walk that must set D in it is an
// EPT violation with every cache configuration, even after a read walk filled the caches (a
// guest PSC entry must not let a later walk skip the host's check of that table).
TEST(NestedWalker, AReadOnlyGuestTableFaultsTheDirtyUpdateWithCachesWarm) {
  for (const bool guest_psc : {false, true}) {
    NestedSystem sys(PagingMode::k4Level, ept_params(), PageSize::k4K,
                     kUserTable | pte::kAccessed);
    sys.guest_mem.write64(kPml4, kPdpt | kUserTable | pte::kAccessed);
    sys.guest_mem.write64(kPdpt, kPd | kUserTable | pte::kAccessed);
    sys.guest_mem.write64(kPd + 16, kPt | kUserTable | pte::kAccessed);
    sys.builder.protect(kPt, kPageSize, ept::kRead | ept::kExecute);
    NestedParams p = NestedParams::no_caches();
    if (guest_psc) {
      p.guest_psc = NestedParams{}.guest_psc;
    } else {
      p.nested_tlb = NestedParams{}.nested_tlb;
    }
    NestedWalker walker(p, 1);
    const NestedWalk r = walker.walk(sys.guest_mem, sys.state, sys.host(), kVa,
                                     Access::read(true));
    ASSERT_TRUE(r.ok()) << guest_psc;
    apply_updates(sys.guest_mem, sys.host_mem, r);
    const NestedWalk w = walker.walk(sys.guest_mem, sys.state, sys.host(), kVa,
                                     Access::write(true));
    EXPECT_EQ(w.outcome, NestedOutcome::kHostViolation) << guest_psc;
    EXPECT_EQ(w.fault.gpa & ~(kPageSize - 1), kPt) << guest_psc;
  }
}

}  // namespace
}  // namespace shadowsim
