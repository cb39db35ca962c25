// The MMU in nested-paging mode (models/mmu/mmu.h with a NestedHost), tested through the Mmu:
//   - the NestedHost: identity map of all guest RAM with the configured page size and smaller
//     pages for the tail, host tables above RAM, parameters;
//   - cold-cache reference counts of one TLB miss per guest mode and host format (24 for a
//     4-level guest on 4-level tables; PAE 14 with EPT plus 8 at the CR3 load, 19 with NPT),
//     each one costed by the page-table memory, and the guest/host lines sharing its caches;
//   - a TLB hit after a nested miss; INVLPG, MOV to CR3 and #PF delivery flushing the guest
//     PSCs (and only those, and only for their PCID);
//   - a host translation that grants less than the guest rights is not cached; a host fault is
//     an Error;
//   - the native MMU unchanged (PSC statistics, CR3 loads free);
//   - property: native and nested MMUs over the same random mappings built with the paging
//     core's PageTableEditor give the same outcomes and #PF error codes, and the nested
//     host-physical address is the host tables' translation of the native guest-physical one.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "../tlb/param_visitors.h"
#include "common/error.h"
#include "common/rng.h"
#include "common/stats.h"
#include "memory/page_table_memory.h"
#include "mmu/mmu.h"
#include "nested/nested_host.h"
#include "nested_fixture.h"
#include "paging/frame_allocator.h"
#include "paging/page_table_editor.h"

namespace shadowsim {
namespace {

using test::kData;
using test::kPt;
using test::kUserTable;
using test::kVa;
using test::kVa2;

constexpr uint64_t kMiB = 1ULL << 20;
constexpr uint64_t kGiB = 1ULL << 30;
constexpr TlbContext kCtx{1, 0};

PageTableMemoryParams memory_params(uint64_t mib) {
  PageTableMemoryParams p;
  p.size_mib = mib;
  return p;
}

NestedHostParams host_params(HostPagingKind kind, PageSize page, bool caches = true) {
  NestedHostParams p;
  p.kind = kind;
  p.page_size = page;
  if (!caches) p.caches = NestedParams::no_caches();
  return p;
}

uint64_t stat(const StatsRegistry& r, const std::string& name) {
  const StatsRegistry::Entry* e = r.find(name);
  if (!e || !e->counter) throw Error("no counter " + name);
  return *e->counter;
}

// One PCPU of one VM: guest memory with the hand-built tables of nested_fixture.h, its
// page-table memory, a NestedHost (or none: native) and the MMU; statistics registered.
struct Machine {
  Machine(PagingMode mode, const NestedHostParams* params, uint64_t ram_mib = 64,
          PagingControls controls = {})
      : memory(memory_params(ram_mib), 1), state(mode, controls, CpuFeatures{}) {
    cr3 = test::build_guest_tables(memory.memory(), mode, kUserTable);
    if (params) host = std::make_unique<NestedHost>(memory.memory(), *params);
    mmu = std::make_unique<Mmu>(0, MmuParams{}, memory, 7, host.get());
    mmu->register_stats(StatsGroup(registry, "pcpu0"));
    memory.register_stats(StatsGroup(registry, "ptmem"));
  }
  uint64_t reads() const { return stat(registry, "ptmem.reads"); }
  uint64_t nested_refs() const {
    return mmu->nested_walker()->host_refs() + mmu->nested_walker()->guest_refs();
  }

  PageTableMemory memory;
  PagingState state;
  uint64_t cr3 = 0;
  std::unique_ptr<NestedHost> host;
  std::unique_ptr<Mmu> mmu;
  StatsRegistry registry;
};

// ---------------------------------------------------------------------------------------------
// NestedHost

TEST(NestedHost, MapsAllGuestRamByIdentityWithTheLargestPagesThatFit) {
  GuestMemory guest(kGiB + 2 * kMiB + 4096);  // 1 GiB page, one 2 MiB page, one 4 KiB page
  const NestedHost host(guest, host_params(HostPagingKind::kEpt, PageSize::k1G));
  const HostPageTables& t = host.tables();
  const struct {
    uint64_t gpa;
    PageSize size;
  } cases[] = {{0x123, PageSize::k1G},
               {kGiB - 8, PageSize::k1G},
               {kGiB + 0x1234, PageSize::k2M},
               {kGiB + 2 * kMiB + 0xff8, PageSize::k4K}};
  for (const auto& c : cases) {
    const HostTranslation h = t.translate(c.gpa, AccessKind::kWrite);
    ASSERT_TRUE(h.ok()) << std::hex << c.gpa;
    EXPECT_EQ(h.hpa, c.gpa);
    EXPECT_EQ(h.size, c.size) << std::hex << c.gpa;
    EXPECT_EQ(h.rwx, ept::kRwx);
  }
  EXPECT_FALSE(t.translate(kGiB + 2 * kMiB + 4096, AccessKind::kRead).ok());  // beyond RAM
  EXPECT_EQ(host.table_base(), 2 * kGiB);  // RAM rounded up to 1 GiB
  EXPECT_GE(t.root(), host.table_base());
  EXPECT_EQ(host.table_frames(), 4u);  // PML4, PDPT, one PD, one PT
  EXPECT_TRUE(t.params().ept_ad);
  EXPECT_EQ(&host.guest_memory(), &guest);
}

TEST(NestedHost, DefaultIsEptWithTwoMebibytePagesAndTablesAboveRam) {
  GuestMemory guest(64 * kMiB + kMiB);  // a 1 MiB tail: 4 KiB pages
  NestedHost host(guest, NestedHostParams{});
  EXPECT_EQ(host.kind(), HostPagingKind::kEpt);
  const HostTranslation big = host.tables().translate(0x200000, AccessKind::kRead);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big.size, PageSize::k2M);
  const HostTranslation tail = host.tables().translate(64 * kMiB + 0x5000, AccessKind::kRead);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail.size, PageSize::k4K);
  EXPECT_EQ(host.table_base(), kGiB);
  const std::optional<uint64_t> pde = host.builder().entry_hpa(0x200000, 2);
  ASSERT_TRUE(pde.has_value());
  EXPECT_GE(*pde, host.table_base());  // host table lines never alias guest lines
}

TEST(NestedHost, NptTablesAreUserWritableAndHaveNoEptAd) {
  GuestMemory guest(16 * kMiB);
  NestedHostParams p = host_params(HostPagingKind::kNpt, PageSize::k4K);
  p.ept_ad = true;  // ignored under NPT
  const NestedHost host(guest, p);
  EXPECT_FALSE(host.tables().params().ept_ad);
  const HostTranslation h = host.tables().translate(0x3000, AccessKind::kFetch);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.size, PageSize::k4K);
  EXPECT_EQ(h.hpa, 0x3000u);
}

TEST(NestedHost, RefusesBadParameters) {
  GuestMemory guest(16 * kMiB);
  NestedHostParams p;
  p.page_size = PageSize::k4M;
  try {
    NestedHost host(guest, p);
    FAIL() << "4 MiB host pages accepted";
  } catch (const ParamError& e) {
    EXPECT_EQ(e.field(), "page_size");
  }
  p = NestedHostParams{};
  p.caches.nested_tlb.ways = 3;  // does not divide 16 entries
  try {
    NestedHost host(guest, p);
    FAIL() << "bad nested TLB geometry accepted";
  } catch (const ParamError& e) {
    EXPECT_EQ(e.field().rfind("caches.nested_tlb.", 0), 0u) << e.field();
  }
  GuestMemory big(8 * kGiB);
  p = NestedHostParams{};
  p.maxphyaddr = 33;  // 8 GiB of RAM plus tables above it do not fit in 2^33
  EXPECT_THROW({ const NestedHost host(big, p); }, Error);
}

TEST(NestedHost, ParamsListEveryFieldWithDefaultsInRange) {
  NestedHostParams p;
  test::RecordingVisitor v;
  p.visit(v);
  for (const char* name : {"kind", "page_size", "ept_ad", "maxphyaddr",
                           "caches.nested_tlb.entries", "caches.host_psc.pde.entries",
                           "caches.guest_psc.pml4e.entries"}) {
    EXPECT_NE(std::find(v.names.begin(), v.names.end(), name), v.names.end()) << name;
  }
  EXPECT_EQ(p.page_size, PageSize::k2M);
  EXPECT_TRUE(p.ept_ad);
}

// ---------------------------------------------------------------------------------------------
// Cold-cache reference counts through the MMU

struct ColdCase {
  PagingMode mode;
  HostPagingKind kind;
  PageSize host_page;
  int walk_refs;  // references of the TLB miss
  int cr3_refs;   // references of the CR3 load (PAE PDPTEs through EPT)
};

class NestedMmuCold : public ::testing::TestWithParam<ColdCase> {};

TEST_P(NestedMmuCold, OneMissMakesTheArchitecturalReferenceCountEachCostedOnce) {
  const ColdCase c = GetParam();
  const NestedHostParams params = host_params(c.kind, c.host_page, /*caches=*/false);
  Machine m(c.mode, &params, 1024);  // 1 GiB: room for a 1 GiB host page
  const uint64_t cr3_cycles = m.mmu->load_guest_cr3(m.state, kCtx, m.cr3, true);
  EXPECT_EQ(m.reads(), static_cast<uint64_t>(c.cr3_refs));
  EXPECT_EQ(stat(m.registry, "pcpu0.nested.cr3_load_refs"), static_cast<uint64_t>(c.cr3_refs));
  EXPECT_EQ(cr3_cycles > 0, c.cr3_refs > 0);
  const uint64_t reads_before = m.reads();

  const MmuResult r = m.mmu->translate(kVa, Access::read(true), m.state, kCtx);
  ASSERT_EQ(r.outcome, WalkOutcome::kOk);
  EXPECT_EQ(r.pa, kData + 0x123);  // identity: host-physical == guest-physical
  EXPECT_EQ(m.mmu->nested_walker()->walks(), 1u);
  EXPECT_EQ(m.nested_refs(), static_cast<uint64_t>(c.walk_refs));
  EXPECT_EQ(m.reads() - reads_before, static_cast<uint64_t>(c.walk_refs));  // each one costed
  EXPECT_EQ(stat(m.registry, "pcpu0.walker.references"), static_cast<uint64_t>(c.walk_refs));
  // A/D: the guest's (A on each entry the walk read that lacked it) and EPT A/D's host bits.
  EXPECT_GT(stat(m.registry, "ptmem.writes"), 0u);
  EXPECT_EQ(stat(m.registry, "ptmem.writes"), stat(m.registry, "pcpu0.walker.ad_updates"));
  // Cold lines: at least every guest reference misses to DRAM (distinct table frames).
  EXPECT_GT(r.cycles, static_cast<uint32_t>(c.walk_refs) * 5);
  EXPECT_GE(stat(m.registry, "ptmem.dram_accesses"), static_cast<uint64_t>(c.walk_refs / 5));
}

INSTANTIATE_TEST_SUITE_P(
    Counts, NestedMmuCold,
    ::testing::Values(
        ColdCase{PagingMode::k4Level, HostPagingKind::kEpt, PageSize::k4K, 24, 0},
        ColdCase{PagingMode::k4Level, HostPagingKind::kNpt, PageSize::k4K, 24, 0},
        ColdCase{PagingMode::kPae, HostPagingKind::kEpt, PageSize::k4K, 14, 8},
        ColdCase{PagingMode::kPae, HostPagingKind::kNpt, PageSize::k4K, 19, 0},
        ColdCase{PagingMode::k5Level, HostPagingKind::kEpt, PageSize::k4K, 29, 0},
        ColdCase{PagingMode::k32Bit, HostPagingKind::kEpt, PageSize::k4K, 14, 0},
        ColdCase{PagingMode::k4Level, HostPagingKind::kEpt, PageSize::k2M, 19, 0},
        ColdCase{PagingMode::k4Level, HostPagingKind::kEpt, PageSize::k1G, 14, 0}),
    [](const ::testing::TestParamInfo<ColdCase>& info) {
      return std::string(to_string(info.param.mode)) + "_" + to_string(info.param.kind) + "_" +
             to_string(info.param.host_page);
    });

TEST(NestedMmu, GuestAndHostTableLinesShareThePageTableCaches) {
  const NestedHostParams params = host_params(HostPagingKind::kEpt, PageSize::k4K, false);
  Machine m(PagingMode::k4Level, &params);
  m.mmu->load_guest_cr3(m.state, kCtx, m.cr3, true);
  ASSERT_EQ(m.mmu->translate(kVa, Access::read(true), m.state, kCtx).outcome, WalkOutcome::kOk);
  const uint32_t l1 = PageTableMemoryParams{}.l1d.latency_cycles;
  // The guest PTE's line sits at its guest-physical address, the host PTE's above guest RAM;
  // both are now in this PCPU's L1D.
  const std::optional<uint64_t> host_pte = m.host->builder().entry_hpa(kData, 1);
  ASSERT_TRUE(host_pte.has_value());
  EXPECT_GE(*host_pte, m.host->table_base());
  EXPECT_EQ(m.memory.read(0, kPt), l1);
  EXPECT_EQ(m.memory.read(0, *host_pte), l1);
  EXPECT_GT(m.memory.read(0, m.host->table_base() + 0x100000), l1);  // a line never read
}

// ---------------------------------------------------------------------------------------------
// TLB and invalidations

TEST(NestedMmu, TlbHitAfterANestedMissCostsTheTlbLatencyOnly) {
  const NestedHostParams params = host_params(HostPagingKind::kEpt, PageSize::k4K);
  Machine m(PagingMode::k4Level, &params);
  m.mmu->load_guest_cr3(m.state, kCtx, m.cr3, true);
  const MmuResult miss = m.mmu->translate(kVa, Access::read(true), m.state, kCtx);
  ASSERT_EQ(miss.outcome, WalkOutcome::kOk);
  const uint64_t reads = m.reads();
  const MmuResult hit = m.mmu->translate(kVa + 8, Access::read(true), m.state, kCtx);
  ASSERT_EQ(hit.outcome, WalkOutcome::kOk);
  EXPECT_EQ(hit.pa, kData + 0x12b);
  EXPECT_EQ(hit.cycles, m.mmu->tlbs().dtlb().latency());
  EXPECT_LT(hit.cycles, miss.cycles);
  EXPECT_EQ(m.mmu->nested_walker()->walks(), 1u);
  EXPECT_EQ(m.reads(), reads);
}

TEST(NestedMmu, WriteThroughACleanEntryReWalksAndSetsGuestAndHostDirty) {
  const NestedHostParams params = host_params(HostPagingKind::kEpt, PageSize::k4K);
  Machine m(PagingMode::k4Level, &params);
  m.mmu->load_guest_cr3(m.state, kCtx, m.cr3, true);
  ASSERT_EQ(m.mmu->translate(kVa, Access::read(true), m.state, kCtx).outcome, WalkOutcome::kOk);
  const MmuResult w = m.mmu->translate(kVa, Access::write(true), m.state, kCtx);
  ASSERT_EQ(w.outcome, WalkOutcome::kOk);
  EXPECT_EQ(m.mmu->nested_walker()->walks(), 2u);
  EXPECT_TRUE(m.memory.memory().read64(kPt) & pte::kDirty);  // guest PTE's D
  const std::optional<uint64_t> host_pte = m.host->builder().entry_hpa(kData, 1);
  EXPECT_TRUE(m.host->host_memory().read64(*host_pte) & ept::kDirty);  // EPT PTE's D
  // Now dirty in the TLB: the next write hits.
  EXPECT_EQ(m.mmu->translate(kVa, Access::write(true), m.state, kCtx).cycles,
            m.mmu->tlbs().dtlb().latency());
}

// Each guest-linear invalidation drops the guest PSC entries of its context, and nothing of the
// nested TLB; the next walk then makes only the guest references (its host walks hit the nested
// TLB: 4 references for 4 levels).
class NestedMmuInvalidation : public ::testing::TestWithParam<int> {};

TEST_P(NestedMmuInvalidation, FlushesTheGuestPscsOfItsContextOnly) {
  const NestedHostParams params = host_params(HostPagingKind::kEpt, PageSize::k4K);
  Machine m(PagingMode::k4Level, &params);
  NestedWalker& walker = *m.mmu->nested_walker();
  m.mmu->load_guest_cr3(m.state, kCtx, m.cr3, true);
  const TlbContext other{1, 2};  // another PCID of the same VPID
  ASSERT_EQ(m.mmu->translate(kVa, Access::read(true), m.state, kCtx).outcome, WalkOutcome::kOk);
  ASSERT_EQ(m.mmu->translate(kVa, Access::read(true), m.state, other).outcome, WalkOutcome::kOk);
  ASSERT_EQ(walker.guest_psc().valid_count(2), 2u);  // the PDE, once per PCID
  const uint64_t nested_tlb_entries = walker.nested_tlb().valid_count();
  ASSERT_EQ(nested_tlb_entries, 5u);  // 4 table frames + the data page

  switch (GetParam()) {
    case 0: m.mmu->invlpg(kVa, kCtx); break;
    case 1: m.mmu->flush_non_global(kCtx); break;
    case 2: m.mmu->page_fault_invalidate(kVa, kCtx, m.state.mode()); break;
    case 3: m.mmu->load_guest_cr3(m.state, kCtx, m.cr3, /*flush=*/true); break;
  }
  for (int level = 2; level <= 4; ++level) EXPECT_EQ(walker.guest_psc().valid_count(level), 1u);
  EXPECT_EQ(walker.nested_tlb().valid_count(), nested_tlb_entries);

  const uint64_t refs = m.nested_refs();
  const MmuResult again = m.mmu->translate(kVa, Access::read(true), m.state, kCtx);
  ASSERT_EQ(again.outcome, WalkOutcome::kOk);
  EXPECT_EQ(walker.walks(), 3u);                 // the TLB entry went too
  EXPECT_EQ(m.nested_refs() - refs, 4u);         // guest references only
  // The other PCID kept its TLB entry and its guest PSC entries.
  EXPECT_EQ(m.mmu->translate(kVa, Access::read(true), m.state, other).cycles,
            m.mmu->tlbs().dtlb().latency());
  EXPECT_EQ(walker.walks(), 3u);
}

std::string hook_name(const ::testing::TestParamInfo<int>& info) {
  const char* names[] = {"invlpg", "flush_non_global", "page_fault_invalidate", "cr3_load_flush"};
  return names[info.param];
}

INSTANTIATE_TEST_SUITE_P(Hooks, NestedMmuInvalidation, ::testing::Values(0, 1, 2, 3), hook_name);

TEST(NestedMmu, CrThreeLoadWithoutFlushKeepsTheGuestPscs) {
  const NestedHostParams params = host_params(HostPagingKind::kEpt, PageSize::k4K);
  Machine m(PagingMode::k4Level, &params);
  m.mmu->load_guest_cr3(m.state, kCtx, m.cr3, true);
  ASSERT_EQ(m.mmu->translate(kVa, Access::read(true), m.state, kCtx).outcome, WalkOutcome::kOk);
  EXPECT_EQ(m.mmu->load_guest_cr3(m.state, kCtx, m.cr3, false), 0u);  // 4-level: no PDPTEs
  EXPECT_EQ(m.mmu->nested_walker()->guest_psc().valid_count(2), 1u);
  EXPECT_EQ(m.mmu->translate(kVa, Access::read(true), m.state, kCtx).cycles,
            m.mmu->tlbs().dtlb().latency());
}

// ---------------------------------------------------------------------------------------------
// Faults

TEST(NestedMmu, GuestPageFaultIsReturnedAsTheNativePathReturnsIt) {
  const NestedHostParams params = host_params(HostPagingKind::kNpt, PageSize::k2M);
  Machine nested(PagingMode::k4Level, &params);
  Machine native(PagingMode::k4Level, nullptr);
  for (Machine* m : {&nested, &native}) {
    m->mmu->load_guest_cr3(m->state, kCtx, m->cr3, true);
    const uint64_t unmapped = kVa + 0x10000;  // PTE 0x10 is empty
    const MmuResult user_write = m->mmu->translate(unmapped, Access::write(true), m->state, kCtx);
    EXPECT_EQ(user_write.outcome, WalkOutcome::kPageFault);
    EXPECT_EQ(user_write.error_code, pfec::kWrite | pfec::kUser);
    EXPECT_EQ(user_write.pa, 0u);
    const MmuResult bad = m->mmu->translate(0x0000900000000000ULL, Access::read(true), m->state,
                                            kCtx);
    EXPECT_EQ(bad.outcome, WalkOutcome::kNonCanonical);
    EXPECT_EQ(bad.error_code, 0u);
    EXPECT_EQ(stat(m->registry, "pcpu0.walker.faults"), 2u);
  }
}

TEST(NestedMmu, HostRightsBelowTheGuestRightsAreNotCachedInTheTlb) {
  const NestedHostParams params = host_params(HostPagingKind::kEpt, PageSize::k4K);
  Machine m(PagingMode::k4Level, &params);
  m.host->builder().protect(kData, kPageSize, ept::kRead | ept::kExecute);  // guest: writable
  m.mmu->load_guest_cr3(m.state, kCtx, m.cr3, true);
  ASSERT_EQ(m.mmu->translate(kVa, Access::read(true), m.state, kCtx).outcome, WalkOutcome::kOk);
  ASSERT_EQ(m.mmu->translate(kVa, Access::read(true), m.state, kCtx).outcome, WalkOutcome::kOk);
  EXPECT_EQ(m.mmu->nested_walker()->walks(), 2u);  // walked again: no TLB entry
  EXPECT_EQ(stat(m.registry, "pcpu0.nested.tlb_fills_withheld"), 2u);
  // The neighbouring page has every host right: cached.
  ASSERT_EQ(m.mmu->translate(kVa2, Access::read(true), m.state, kCtx).outcome, WalkOutcome::kOk);
  ASSERT_EQ(m.mmu->translate(kVa2, Access::read(true), m.state, kCtx).outcome, WalkOutcome::kOk);
  EXPECT_EQ(m.mmu->nested_walker()->walks(), 3u);
  // The write the host forbids: an EPT violation, which the MMU reports as a model bug.
  try {
    m.mmu->translate(kVa, Access::write(true), m.state, kCtx);
    FAIL() << "EPT violation not raised";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("host-violation"), std::string::npos) << what;
    EXPECT_NE(what.find("the final access"), std::string::npos) << what;
    EXPECT_NE(what.find("model bug"), std::string::npos) << what;
  }
}

TEST(NestedMmu, AnUnmappedGuestTableIsAHostFaultError) {
  const NestedHostParams params = host_params(HostPagingKind::kNpt, PageSize::k4K);
  Machine m(PagingMode::k4Level, &params);
  m.host->builder().unmap(kPt, kPageSize);
  m.mmu->load_guest_cr3(m.state, kCtx, m.cr3, true);
  try {
    m.mmu->translate(kVa, Access::read(true), m.state, kCtx);
    FAIL() << "NPT fault not raised";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("a guest page-table access"), std::string::npos) << what;
    EXPECT_NE(what.find("EXITINFO1 0x2"), std::string::npos) << what;  // bit 33: table access
  }
}

TEST(NestedMmu, PaeCrThreeLoadThroughAnUnmappedPdptIsAnError) {
  const NestedHostParams params = host_params(HostPagingKind::kEpt, PageSize::k4K);
  Machine m(PagingMode::kPae, &params);
  m.host->builder().unmap(m.cr3 & ~0xfffULL, kPageSize);
  EXPECT_THROW(m.mmu->load_guest_cr3(m.state, kCtx, m.cr3, false), Error);
  EXPECT_EQ(m.state.cr3(), 0u);  // not loaded
}

TEST(NestedMmu, RefusesAHostBuiltForAnotherGuestMemory) {
  PageTableMemory memory(memory_params(16), 1);
  GuestMemory other(16 * kMiB);
  NestedHost host(other, NestedHostParams{});
  EXPECT_THROW({ const Mmu mmu(0, MmuParams{}, memory, 1, &host); }, Error);
}

// ---------------------------------------------------------------------------------------------
// Native mode unchanged

TEST(NativeMmu, KeepsItsPscsAndStatisticsAndFreeCrThreeLoads) {
  Machine m(PagingMode::kPae, nullptr);
  EXPECT_FALSE(m.mmu->nested());
  EXPECT_EQ(m.mmu->nested_walker(), nullptr);
  EXPECT_EQ(m.mmu->load_guest_cr3(m.state, kCtx, m.cr3, true), 0u);
  EXPECT_EQ(m.state.cr3(), m.cr3);
  ASSERT_EQ(m.mmu->translate(kVa, Access::read(true), m.state, kCtx).outcome, WalkOutcome::kOk);
  EXPECT_EQ(stat(m.registry, "pcpu0.walker.references"), 2u);  // PAE: PD and PT
  EXPECT_EQ(m.reads(), 2u);
  EXPECT_NE(m.registry.find("pcpu0.psc.pde.hits"), nullptr);
  EXPECT_EQ(m.registry.find("pcpu0.nested.walks"), nullptr);
  ASSERT_EQ(m.mmu->translate(kVa2, Access::read(true), m.state, kCtx).outcome, WalkOutcome::kOk);
  EXPECT_EQ(stat(m.registry, "pcpu0.walker.references"), 3u);  // the PDE came from the PSC
  m.mmu->load_guest_cr3(m.state, kCtx, m.cr3, true);  // flush: TLB and PSCs
  ASSERT_EQ(m.mmu->translate(kVa2, Access::read(true), m.state, kCtx).outcome, WalkOutcome::kOk);
  EXPECT_EQ(stat(m.registry, "pcpu0.walker.references"), 5u);
}

TEST(NestedMmu, RegistersNestedStatisticsInsteadOfNativePscs) {
  const NestedHostParams params = host_params(HostPagingKind::kEpt, PageSize::k2M);
  Machine m(PagingMode::k4Level, &params);
  for (const char* name :
       {"pcpu0.nested.walks", "pcpu0.nested.refs_per_walk", "pcpu0.nested.host_refs",
        "pcpu0.nested.guest_refs", "pcpu0.nested.nested_tlb.hits", "pcpu0.nested.nested_tlb.misses",
        "pcpu0.nested.host_psc.pde.hits", "pcpu0.nested.guest_psc.pde.hits",
        "pcpu0.nested.cr3_loads", "pcpu0.nested.tlb_fills_withheld", "pcpu0.walker.walks",
        "pcpu0.dtlb.4k.hits"}) {
    EXPECT_NE(m.registry.find(name), nullptr) << name;
  }
  EXPECT_EQ(m.registry.find("pcpu0.psc.pde.hits"), nullptr);
  m.mmu->load_guest_cr3(m.state, kCtx, m.cr3, true);
  ASSERT_EQ(m.mmu->translate(kVa, Access::read(true), m.state, kCtx).outcome, WalkOutcome::kOk);
  ASSERT_EQ(m.mmu->translate(kVa2, Access::read(true), m.state, kCtx).outcome, WalkOutcome::kOk);
  EXPECT_EQ(stat(m.registry, "pcpu0.nested.walks"), 2u);
  EXPECT_EQ(stat(m.registry, "pcpu0.walker.walks"), 2u);
  EXPECT_EQ(stat(m.registry, "pcpu0.nested.guest_psc.pde.hits"), 1u);  // kVa2: same page table
  EXPECT_GT(stat(m.registry, "pcpu0.nested.nested_tlb.hits"), 0u);
  EXPECT_EQ(stat(m.registry, "pcpu0.walker.references"),
            stat(m.registry, "pcpu0.nested.host_refs") +
                stat(m.registry, "pcpu0.nested.guest_refs"));
}

// ---------------------------------------------------------------------------------------------
// Property: native and nested MMUs agree over random editor-built mappings

using PropertyVariant = std::tuple<PagingMode, HostPagingKind, PageSize>;

// One side (native or nested): its memory, editor and MMU. Both sides see the same operations
// in the same order with the same frame-allocator seed, so their tables are identical.
struct Side {
  Side(PagingMode mode, const NestedHostParams* params)
      : memory(memory_params(kRamMib), 1),
        frames(256, (kRamMib << 8) - 256, FrameAllocator::Placement::kRandom, 5),
        store(memory.memory(), false),
        editor(mode, PagingControls{}, CpuFeatures{}, frames, store),
        state(mode, PagingControls{}, CpuFeatures{}) {
    if (params) host = std::make_unique<NestedHost>(memory.memory(), *params);
    mmu = std::make_unique<Mmu>(0, MmuParams{}, memory, 3, host.get());
  }
  static constexpr uint64_t kRamMib = 2048;

  PageTableMemory memory;
  FrameAllocator frames;
  DirectPageTableStore store;
  PageTableEditor editor;
  PagingState state;
  std::unique_ptr<NestedHost> host;
  std::unique_ptr<Mmu> mmu;
};

class NestedMmuProperty : public ::testing::TestWithParam<PropertyVariant> {
 protected:
  void SetUp() override {
    const auto [mode, kind, page] = GetParam();
    mode_ = mode;
    rng_ = Rng(20240611 + 100 * static_cast<uint64_t>(mode) + 10 * static_cast<uint64_t>(kind) +
               static_cast<uint64_t>(page));
    params_ = host_params(kind, page);
    params_.ept_ad = rng_.chance(0.5);
    native_ = std::make_unique<Side>(mode, nullptr);
    nested_ = std::make_unique<Side>(mode, &params_);
    ia32e_ = mode == PagingMode::k4Level || mode == PagingMode::k5Level;
    large_ = mode == PagingMode::k32Bit ? PageSize::k4M : PageSize::k2M;
    for (Side* s : {native_.get(), nested_.get()}) {
      root_ = s->editor.create_address_space();
      s->mmu->load_guest_cr3(s->state, kCtx, root_, true);
    }
    big_ = ia32e_ ? kGiB : 64 * kMiB;
    arenas_ = {ia32e_ ? 0x00007f0000000000ULL : 0x40000000ULL,
               native_->editor.kernel_base() + (ia32e_ ? 0x0000088000000000ULL : 0)};
  }

  uint64_t pick() {
    return arenas_[rng_.chance(0.7) ? 0 : 1] + rng_.below(2) * big_ +
           rng_.below(4) * page_bytes(large_) + rng_.below(8) * kPageSize + rng_.below(kPageSize);
  }

  // The same editor operation on both sides; returns the range to invalidate (bytes 0: none).
  std::pair<uint64_t, uint64_t> random_edit() {
    const uint64_t dice = rng_.below(100);
    PageSize size = PageSize::k4K;
    const uint64_t roll = rng_.below(10);
    if (roll >= 7) size = large_;
    if (roll == 9 && ia32e_) size = PageSize::k1G;
    const uint64_t step = page_bytes(size);
    const uint64_t va = pick() & ~(step - 1);
    const uint64_t bytes = (size == PageSize::k4K ? 1 + rng_.below(8) : 1) * step;
    PageFlags f;
    f.writable = rng_.chance(0.6);
    f.user = va < native_->editor.kernel_base() && rng_.chance(0.8);
    f.execute_disable = mode_ != PagingMode::k32Bit && rng_.chance(0.3);
    f.accessed = rng_.chance(0.5);
    f.dirty = rng_.chance(0.3);
    // Data inside guest RAM (the host maps exactly RAM; the native walker does not care).
    const uint64_t ram = Side::kRamMib << 20;
    const uint64_t pa = rng_.below(ram / step - bytes / step) * step;
    bool threw = false;
    for (Side* s : {native_.get(), nested_.get()}) {
      try {
        if (dice < 55) {
          s->editor.map(root_, va, pa, bytes, size, f);
        } else if (dice < 80) {
          s->editor.protect(root_, va, bytes, f);
        } else {
          freed_[s] = s->editor.unmap(root_, va, bytes, true);
        }
      } catch (const Error&) {
        threw = true;  // a conflict: the editor wrote nothing (on both sides)
      }
    }
    return {va, threw ? 0 : bytes};
  }

  // After an edit, as the guest kernel does: INVLPG each 4 KiB page (a few), or a full flush;
  // then tables unlinked by the edit are freed.
  void invalidate(uint64_t va, uint64_t bytes) {
    for (Side* s : {native_.get(), nested_.get()}) {
      if (bytes > 16 * kPageSize) {
        s->mmu->flush_non_global(kCtx);
      } else {
        for (uint64_t off = 0; off < bytes; off += kPageSize) s->mmu->invlpg(va + off, kCtx);
      }
      s->editor.release_tables(freed_[s]);
      freed_[s].clear();
    }
  }

  void check(uint64_t va, const Access& a) {
    const MmuResult n = native_->mmu->translate(va, a, native_->state, kCtx);
    const MmuResult v = nested_->mmu->translate(va, a, nested_->state, kCtx);
    ASSERT_EQ(v.outcome, n.outcome) << std::hex << va << " " << to_string(a.kind);
    ASSERT_EQ(v.error_code, n.error_code) << std::hex << va << " " << to_string(a.kind);
    if (n.outcome == WalkOutcome::kOk) {
      const HostTranslation h = nested_->host->tables().translate(n.pa, a.kind);
      ASSERT_TRUE(h.ok());
      ASSERT_EQ(v.pa, h.hpa) << std::hex << va;
      ++ok_;
    } else if (n.outcome == WalkOutcome::kPageFault) {
      native_->mmu->page_fault_invalidate(va, kCtx, mode_);
      nested_->mmu->page_fault_invalidate(va, kCtx, mode_);
      ++faults_;
    }
  }

  PagingMode mode_ = PagingMode::k4Level;
  NestedHostParams params_;
  Rng rng_{20240611};
  std::unique_ptr<Side> native_, nested_;
  std::map<Side*, std::vector<uint64_t>> freed_;
  bool ia32e_ = false;
  PageSize large_ = PageSize::k2M;
  uint64_t root_ = 0;
  uint64_t big_ = 0;
  std::vector<uint64_t> arenas_;
  int ok_ = 0;
  int faults_ = 0;
};

TEST_P(NestedMmuProperty, NativeAndNestedGiveTheSameTranslationsAndFaults) {
  static const Access kAccesses[] = {Access::read(true),  Access::write(true),
                                     Access::fetch(true), Access::read(false),
                                     Access::write(false), Access::fetch(false)};
  for (int i = 0; i < 3000; ++i) {
    if (rng_.chance(0.15)) {
      const auto [va, bytes] = random_edit();
      if (bytes) invalidate(va, bytes);
      continue;
    }
    const uint64_t va = pick();
    check(va, kAccesses[rng_.below(6)]);
    if (HasFatalFailure()) return;
    if (rng_.chance(0.3)) check(va ^ (rng_.below(8) * kPageSize), kAccesses[rng_.below(6)]);
    if (HasFatalFailure()) return;
  }
  if (ia32e_) {  // a non-canonical address: #GP on both
    check(mode_ == PagingMode::k5Level ? 0x0100000000001000ULL : 0x0000800000001000ULL,
          Access::read(true));
  }
  // Both outcomes must have happened often enough for the comparison to mean something.
  EXPECT_GT(ok_, 200);
  EXPECT_GT(faults_, 200);
  EXPECT_GT(nested_->mmu->nested_walker()->walks(), 300u);
}

INSTANTIATE_TEST_SUITE_P(
    Modes, NestedMmuProperty,
    ::testing::Combine(::testing::Values(PagingMode::k32Bit, PagingMode::kPae,
                                         PagingMode::k4Level, PagingMode::k5Level),
                       ::testing::Values(HostPagingKind::kEpt, HostPagingKind::kNpt),
                       ::testing::Values(PageSize::k4K, PageSize::k2M, PageSize::k1G)),
    [](const ::testing::TestParamInfo<PropertyVariant>& info) {
      return std::string(to_string(std::get<0>(info.param))) + "_" +
             to_string(std::get<1>(info.param)) + "_" + to_string(std::get<2>(info.param));
    });

}  // namespace
}  // namespace shadowsim
