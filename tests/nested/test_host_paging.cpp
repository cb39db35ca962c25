// Host translations on their own (host_paging.h): EPT entry formats, rights, memory types,
// A/D, execute-only support, misconfiguration versus violation; NPT through the native walker
// as user accesses with #NPF error codes; walks started below cached levels.
#include <gtest/gtest.h>

#include "common/error.h"
#include "nested/host_paging.h"
#include "nested/host_table_builder.h"
#include "paging/frame_allocator.h"
#include "paging/guest_memory.h"

namespace shadowsim {
namespace {

struct Host {
  explicit Host(HostPagingParams p)
      : mem(64ULL << 20), frames(1, (64ULL << 20) / kPageSize - 1), builder(mem, frames, p) {}
  GuestMemory mem;
  FrameAllocator frames;
  HostTableBuilder builder;
};

HostPagingParams ept(bool ad = false) {
  HostPagingParams p;
  p.ept_ad = ad;
  return p;
}
HostPagingParams npt() {
  HostPagingParams p;
  p.kind = HostPagingKind::kNpt;
  return p;
}

TEST(HostPaging, EptTranslatesEachPageSizeWithFourThreeOrTwoReferences) {
  Host h(ept());
  h.builder.map(0x1000, 0x7000000, kPageSize, PageSize::k4K, ept::kRead, ept::kUncacheable);
  h.builder.map(0x400000, 0x8000000, 2ULL << 20, PageSize::k2M);
  h.builder.map(1ULL << 30, 3ULL << 30, 1ULL << 30, PageSize::k1G, ept::kRead | ept::kExecute);
  const HostPageTables t = h.builder.tables();
  HostTranslation r = t.translate(0x1abc, AccessKind::kRead);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.hpa, 0x7000abcu);
  EXPECT_EQ(r.ref_count, 4);
  EXPECT_EQ(r.rwx, ept::kRead);
  EXPECT_EQ(r.memory_type, ept::kUncacheable);
  r = t.translate(0x5abcde, AccessKind::kWrite);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.hpa, 0x81abcdeu);
  EXPECT_EQ(r.ref_count, 3);
  EXPECT_EQ(r.size, PageSize::k2M);
  EXPECT_EQ(r.memory_type, ept::kWriteBack);
  r = t.translate((1ULL << 30) + 0x12345678, AccessKind::kFetch);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.hpa, (3ULL << 30) + 0x12345678);
  EXPECT_EQ(r.ref_count, 2);
  EXPECT_EQ(r.size, PageSize::k1G);
  EXPECT_EQ(r.update_count, 0);  // no EPT A/D
}

TEST(HostPaging, EptRightsAreAndedOverLevelsAndAViolationReportsThem) {
  Host h(ept());
  h.builder.map(0x1000, 0x7000000, kPageSize, PageSize::k4K, ept::kRead | ept::kExecute);
  const HostPageTables t = h.builder.tables();
  EXPECT_TRUE(t.translate(0x1000, AccessKind::kFetch).ok());
  HostTranslation r = t.translate(0x1000, AccessKind::kWrite);
  EXPECT_EQ(r.outcome, HostOutcome::kViolation);
  EXPECT_EQ(r.rwx, ept::kRead | ept::kExecute);
  EXPECT_EQ(r.stop_level, 1);
  // Clearing X in the PDE removes it for the whole 2 MiB region.
  const uint64_t pde = *h.builder.entry_hpa(0x1000, 2);
  h.mem.write64(pde, h.mem.read64(pde) & ~static_cast<uint64_t>(ept::kExecute));
  r = t.translate(0x1000, AccessKind::kFetch);
  EXPECT_EQ(r.outcome, HostOutcome::kViolation);
  EXPECT_EQ(r.rwx, ept::kRead);
  // Not present at level 3: a violation with nothing granted, after two references.
  r = t.translate(1ULL << 30, AccessKind::kRead);
  EXPECT_EQ(r.outcome, HostOutcome::kViolation);
  EXPECT_EQ(r.ref_count, 2);
  EXPECT_EQ(r.rwx, 0);
}

TEST(HostPaging, ExecuteOnlyIsAMisconfigurationWithoutSupport) {
  for (bool supported : {true, false}) {
    HostPagingParams p = ept();
    p.ept_execute_only = supported;
    Host h(p);
    h.builder.map(0x1000, 0x7000000, kPageSize, PageSize::k4K);
    const uint64_t pte = *h.builder.entry_hpa(0x1000, 1);
    h.mem.write64(pte, (h.mem.read64(pte) & ~7ULL) | ept::kExecute);
    const HostTranslation r = h.builder.tables().translate(0x1000, AccessKind::kFetch);
    EXPECT_EQ(r.outcome, supported ? HostOutcome::kOk : HostOutcome::kMisconfig);
    if (supported) {
      EXPECT_EQ(h.builder.tables().translate(0x1000, AccessKind::kRead).outcome,
                HostOutcome::kViolation);
    }
  }
}

TEST(HostPaging, EptReservedBitsPerLevelAndPageSize) {
  HostPagingParams p = ept();
  p.page_1gb = false;
  Host h(p);
  h.builder.map(0x400000, 0x8000000, 2ULL << 20, PageSize::k2M);
  const HostPageTables t = h.builder.tables();
  const uint64_t pde = *h.builder.entry_hpa(0x400000, 2);
  const uint64_t pdpte = *h.builder.entry_hpa(0x400000, 3);
  const uint64_t good_pde = h.mem.read64(pde);
  const uint64_t good_pdpte = h.mem.read64(pdpte);
  h.mem.write64(pde, good_pde | (1ULL << 12));  // 20:12 reserved in a 2 MiB leaf
  EXPECT_EQ(t.translate(0x400000, AccessKind::kRead).outcome, HostOutcome::kMisconfig);
  h.mem.write64(pde, good_pde | (1ULL << 51));  // 51:MAXPHYADDR
  EXPECT_EQ(t.translate(0x400000, AccessKind::kRead).outcome, HostOutcome::kMisconfig);
  h.mem.write64(pde, good_pde | (1ULL << 63) | (1ULL << 52) | (1ULL << 10));  // ignored bits
  EXPECT_TRUE(t.translate(0x400000, AccessKind::kRead).ok());
  h.mem.write64(pde, good_pde);
  h.mem.write64(pdpte, good_pdpte | ept::kLargePage);  // no 1 GiB pages: bit 7 reserved
  const HostTranslation r = t.translate(0x400000, AccessKind::kRead);
  EXPECT_EQ(r.outcome, HostOutcome::kMisconfig);
  EXPECT_EQ(r.stop_level, 3);
  // A reserved bit in a not-present entry is ignored: a violation.
  h.mem.write64(pdpte, 1ULL << 4);
  EXPECT_EQ(t.translate(0x400000, AccessKind::kRead).outcome, HostOutcome::kViolation);
}

TEST(HostPaging, EptADSetsAccessedOnEveryEntryAndDirtyOnTheLeafForWrites) {
  Host h(ept(true));
  h.builder.map(0x1000, 0x7000000, kPageSize, PageSize::k4K);
  const HostPageTables t = h.builder.tables();
  HostTranslation r = t.translate(0x1000, AccessKind::kRead);
  ASSERT_EQ(r.update_count, 4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(r.updates[i].new_value, r.refs[i].value | ept::kAccessed);
  }
  EXPECT_FALSE(r.dirty);
  apply_host_updates(h.mem, r);
  r = t.translate(0x1000, AccessKind::kWrite);
  ASSERT_EQ(r.update_count, 1);
  EXPECT_EQ(r.updates[0].level, 1);
  EXPECT_EQ(r.updates[0].new_value & ept::kDirty, ept::kDirty);
  EXPECT_TRUE(r.dirty);
}

TEST(HostPaging, NptIsTheLongModeFormatWalkedAsUserAccesses) {
  Host h(npt());
  h.builder.map(0x1000, 0x7000000, kPageSize, PageSize::k4K, ept::kRead);
  const HostPageTables t = h.builder.tables();
  HostTranslation r = t.translate(0x1234, AccessKind::kRead);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.hpa, 0x7000234u);
  EXPECT_EQ(r.rwx, ept::kRead);
  EXPECT_EQ(r.update_count, 4);  // x86 A bits
  r = t.translate(0x1234, AccessKind::kWrite);
  EXPECT_EQ(r.outcome, HostOutcome::kViolation);
  EXPECT_EQ(r.npt_error_code, pfec::kPresent | pfec::kWrite | pfec::kUser);
  r = t.translate(0x1234, AccessKind::kFetch);
  EXPECT_EQ(r.npt_error_code, pfec::kPresent | pfec::kUser | pfec::kFetch);
  // A supervisor-only NPT entry faults: every NPT access is a user access.
  const uint64_t pml4e = *h.builder.entry_hpa(0x1234, 4);
  h.mem.write64(pml4e, h.mem.read64(pml4e) & ~pte::kUser);
  r = t.translate(0x1234, AccessKind::kRead);
  EXPECT_EQ(r.outcome, HostOutcome::kViolation);
  EXPECT_EQ(r.npt_error_code, pfec::kPresent | pfec::kUser);
  // Reserved bit: RSV in the error code.
  h.mem.write64(pml4e, h.mem.read64(pml4e) | pte::kUser | pte::kPageSize);
  EXPECT_EQ(t.translate(0x1234, AccessKind::kRead).npt_error_code,
            pfec::kPresent | pfec::kUser | pfec::kReserved);
}

TEST(HostPaging, NptTranslatesGuestPhysicalAddressesWithBit47Set) {
  Host h(npt());
  const uint64_t gpa = (1ULL << 47) + 0x5000;
  h.builder.map(gpa, 0x9000000, kPageSize, PageSize::k4K);
  const HostTranslation r = h.builder.tables().translate(gpa + 0x10, AccessKind::kRead);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.hpa, 0x9000010u);
  EXPECT_THROW(h.builder.tables().translate(1ULL << 48, AccessKind::kRead), Error);
}

TEST(HostPaging, AWalkFromACachedStartReadsOnlyTheLevelsBelow) {
  for (const HostPagingParams& p : {ept(), npt()}) {
    Host h(p);
    h.builder.map(0x1000, 0x7000000, kPageSize, PageSize::k4K, ept::kRead | ept::kExecute);
    const HostPageTables t = h.builder.tables();
    const HostTranslation full = t.translate(0x1000, AccessKind::kRead);
    HostStart s = t.top();
    for (int i = 0; i < 3; ++i) s = t.descend(s, full.refs[i].value);
    EXPECT_EQ(s.level, 1);
    const HostTranslation r = t.translate_from(0x1000, AccessKind::kRead, s);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.ref_count, 1);
    EXPECT_EQ(r.hpa, full.hpa);
    EXPECT_EQ(r.rwx, ept::kRead | ept::kExecute);
    EXPECT_EQ(t.translate_from(0x1000, AccessKind::kWrite, s).outcome, HostOutcome::kViolation);
    EXPECT_THROW(t.translate_from(0x1000, AccessKind::kRead, HostStart{0, 0, 7, {}}), Error);
  }
}

TEST(HostPaging, ParamsAreChecked) {
  GuestMemory mem(1ULL << 20);
  HostPagingParams p = npt();
  p.ept_ad = true;
  EXPECT_THROW(HostPageTables(mem, p, 0x1000), ParamError);
  EXPECT_THROW(HostPageTables(mem, ept(), 0x1008), Error);  // root not 4 KiB aligned
  EXPECT_THROW(HostPageTables(mem, ept(), 1ULL << 46), Error);
}

}  // namespace
}  // namespace shadowsim
