// Property test of emulated-write validation: random guest page-table writes, each followed by
// validate_guest_write, interleaved with faults. After every write the touched shadow entries
// must equal a fresh propagation of the guest's current entry (computed here from the pure
// functions, not by the core), and every shadow entry must stay within the guest's bound; at
// checkpoints a full audit recounts writable mappings and compares shadow walks with guest walks.
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "common/rng.h"
#include "shadow_test_util.h"

namespace shadowsim {
namespace {

using test::Machine;
using test::rw_flags;

constexpr uint64_t kUserBase = 0x10000000;

class ValidationProperty : public ::testing::TestWithParam<PagingMode> {
 protected:
  ValidationProperty() : m(GetParam()), g(m.mode) {}

  void SetUp() override {
    const PagingMode mode = m.mode;
    const PageSize large = mode == PagingMode::k32Bit ? PageSize::k4M : PageSize::k2M;
    m.editor.map(m.root, mode == PagingMode::k4Level ? 0xffff888000000000ULL : 0xC0000000ULL, 0,
                 test::kGuestFrames << kPageShift, large, rw_flags(false));
    for (int i = 0; i < 300; ++i) {
      const uint64_t va = kUserBase + (rng.next() % 0x4000) * kPageSize;
      if (!m.editor.leaf(m.root, va) || !(m.editor.leaf(m.root, va)->value & pte::kPresent)) {
        PageFlags f = rw_flags();
        f.writable = rng.next() % 3 != 0;
        f.dirty = rng.next() % 2 == 0;
        m.editor.map(m.root, va, (0x1000 + rng.next() % 0x6000) << kPageShift, kPageSize,
                     PageSize::k4K, f);
        vas.push_back(va);
      }
    }
    m.load_cr3();
    g = m.guest_state(m.root);
    for (uint64_t va : vas) {
      m.access(0, va, Access::read(true));
      m.access(0, va, Access::write(true));
    }
  }

  uint64_t expected(ShadowType type, uint64_t gentry) const {
    const bool nx = m.mode != PagingMode::k32Bit && g.controls().efer_nxe;
    if (is_l1_type(type)) {
      LeafContext ctx;
      const uint64_t frame = (gentry & sentry::kAddressMask) >> kPageShift;
      ctx.target_ram = frame < test::kGuestFrames;
      ctx.target_is_page_table = m.shadow.frame_state(frame).promoted();
      ctx.guest_reserved = (gentry & g.reserved_mask(1, false)) != 0;
      ctx.guest_nx = nx;
      ctx.magic = m.shadow.magic_enabled();
      return propagate_leaf(gentry, ctx);
    }
    if (!(gentry & pte::kPresent)) return 0;
    const int level = shadow_level(type);
    const bool large = (gentry & pte::kPageSize) && g.large_page_level(level);
    if (level == 3 && large) return 0;
    std::optional<uint64_t> child;
    if (large) {
      child = m.shadow.find_shadow(superpage_first_gfn(m.mode, gentry), fl1_type(m.shadow.mode()));
    } else {
      const uint64_t frame = (gentry & g.address_mask()) >> kPageShift;
      child = m.shadow.find_shadow(frame, table_type(m.shadow.mode(), level - 1));
    }
    if (!child) return 0;
    return propagate_upper(gentry, *child << kPageShift, large,
                           (gentry & g.reserved_mask(level, large)) != 0, nx);
  }

  // A random new guest entry for a table shadowed as `type`.
  uint64_t random_entry(ShadowType type, uint64_t old) {
    const uint64_t r = rng.next();
    const int level = shadow_level(type);
    const uint64_t low_flags = r & (pte::kWritable | pte::kUser | pte::kPwt | pte::kPcd |
                                    pte::kAccessed | pte::kDirty | pte::kGlobal);
    const uint64_t xd = (m.mode != PagingMode::k32Bit && (r >> 20) % 3 == 0)
                            ? pte::kExecuteDisable : 0;
    switch ((r >> 8) % 8) {
      case 0: return 0;
      case 1: return (old & ~pte::kPresent) ^ (r & 0xff0);   // not present, random bits
      case 2: return old | pte::kAccessed | pte::kDirty;     // A/D set
      case 3: return old & ~pte::kWritable;                  // write-protect
      default: break;
    }
    if (level == 1) {
      uint64_t frame = 0x1000 + (r >> 24) % 0x6000;
      if ((r >> 40) % 8 == 0) frame = test::kTableFirst + (r >> 44) % 16;  // a page table
      if ((r >> 48) % 32 == 0) frame = test::kGuestFrames + 5;            // beyond RAM
      return (frame << kPageShift) | low_flags | pte::kPresent | xd;
    }
    if (level == 2 && (r >> 30) % 3 == 0) {  // a superpage
      const uint64_t align = m.mode == PagingMode::k32Bit ? 1024 : 512;
      const uint64_t frame = ((r >> 32) % (test::kGuestFrames / align)) * align;
      return (frame << kPageShift) | low_flags | pte::kPresent | pte::kPageSize | xd;
    }
    // Point at an existing table of the level below (as a fork or mremap would), or back.
    if (!tables[level - 1].empty() && (r >> 36) % 2 == 0) {
      const uint64_t t = tables[level - 1][(r >> 40) % tables[level - 1].size()];
      return (t << kPageShift) | (low_flags & ~pte::kGlobal) | pte::kPresent;
    }
    return old;
  }

  void collect_tables() {
    for (auto& t : tables) t.clear();
    m.shadow.for_each_shadow([&](const ShadowInfo& s) {
      if (!is_fl1_type(s.type)) tables[shadow_level(s.type)].push_back(s.gfn);
    });
  }

  void audit() {
    const bool nx = m.mode != PagingMode::k32Bit && g.controls().efer_nxe;
    std::vector<uint32_t> writable(test::kGuestFrames, 0);
    std::set<uint64_t> frames;
    m.shadow.for_each_shadow([&](const ShadowInfo& s) { frames.insert(s.gfn); });
    for (uint64_t gfn : frames) {
      m.shadow.for_each_shadow_entry_of(gfn, [&](const ShadowEntryView& v) {
        uint64_t ge = v.gentry;
        const uint64_t frame = (ge & sentry::kAddressMask) >> kPageShift;
        const ShadowBound b = shadow_bound(ge, v.level, nx,
                                           v.level == 1 && m.shadow.frame_state(frame).promoted(),
                                           v.guest_pse);
        EXPECT_TRUE(within_bound(v.sentry, v.level, b))
            << to_string(v.type) << " gfn " << gfn << " entry " << std::hex << v.sentry_pa
            << " shadow " << v.sentry << " guest " << ge;
        if (v.level > 1 && sentry::present(v.sentry) && !v.guest_pse) {
          EXPECT_EQ(v.child_gfn, (ge & g.address_mask()) >> kPageShift);
        }
        if (v.level == 1 && sentry::writable_mapping(v.sentry)) {
          ++writable.at(sentry::frame(v.sentry));
        }
      });
    }
    for (uint64_t gfn = 0; gfn < test::kGuestFrames; ++gfn) {
      const FrameState fs = m.shadow.frame_state(gfn);
      ASSERT_EQ(fs.writable_count, writable[gfn]) << "frame " << gfn;
      if (fs.promoted()) {
        ASSERT_EQ(fs.writable_count, 0u) << "promoted frame " << gfn;
      }
    }
    // Whatever the hardware can use agrees with the guest's current tables.
    for (uint64_t va : vas) {
      for (const Access& a : {Access::read(true), Access::write(true)}) {
        const WalkResult s = m.shadow_walk(va, a);
        if (!s.ok()) continue;
        const WalkResult gw = m.guest_walk(va, a, m.root);
        ASSERT_TRUE(gw.ok()) << std::hex << va;
        EXPECT_EQ(s.translation.pa, gw.translation.pa);
      }
    }
  }

  Machine m;
  PagingState g;
  Rng rng{2024};
  std::vector<uint64_t> vas;
  std::array<std::vector<uint64_t>, 5> tables;
};

TEST_P(ValidationProperty, EmulatedWritesKeepShadowsFresh) {
  const int ew = m.mode == PagingMode::k32Bit ? 4 : 8;
  int validated = 0, skipped = 0, unshadowed = 0;
  ShadowWork w;
  for (int step = 0; step < 3000; ++step) {
    if (step % 50 == 0) collect_tables();
    if (rng.next() % 4 == 0) {  // faults in between (they also reset early unshadow)
      const uint64_t va = vas[rng.next() % vas.size()];
      m.access(0, va, rng.next() % 2 ? Access::write(true) : Access::read(true));
      continue;
    }
    std::vector<std::pair<uint64_t, ShadowType>> targets;
    m.shadow.for_each_shadow([&](const ShadowInfo& s) {
      if (!is_fl1_type(s.type)) targets.emplace_back(s.gfn, s.type);
    });
    ASSERT_FALSE(targets.empty());
    const auto [gfn, type] = targets[rng.next() % targets.size()];
    const uint64_t index = rng.next() % (kPageSize / ew);
    const uint64_t pa = (gfn << kPageShift) + index * ew;
    const uint64_t old = m.memory.read(pa, ew);
    const uint64_t value = random_entry(type, old);
    std::vector<std::pair<uint64_t, int>> writes;  // offset, width
    if (m.mode == PagingMode::kPae) {
      writes = {{index * 8 + 4, 4}, {index * 8, 4}};  // set_pte: high half, then low
    } else {
      writes = {{index * ew, ew}};
    }
    for (const auto& [offset, width] : writes) {
      const uint64_t wpa = (gfn << kPageShift) + offset;
      const uint64_t before = m.memory.read(wpa, width);
      const uint64_t part = width == 8 ? value : (value >> (8 * (offset % 8))) & 0xffffffffULL;
      std::vector<uint64_t> shadow_before;
      m.shadow.for_each_shadow_entry_of(gfn, [&](const ShadowEntryView& v) {
        if (v.gentry_pa == pa) shadow_before.push_back(v.sentry);
      });
      m.memory.write(wpa, part, width);
      const ValidateResult r = m.shadow.validate_guest_write(0, gfn, offset, width, before, w);
      unshadowed += r.early_unshadowed;
      size_t i = 0;
      m.shadow.for_each_shadow_entry_of(gfn, [&](const ShadowEntryView& v) {
        if (v.gentry_pa != pa) return;
        if (r.skipped) {
          EXPECT_EQ(v.sentry, shadow_before.at(i++));
          return;
        }
        uint64_t want = expected(v.type, v.gentry);
        if (v.type == ShadowType::kL2_32 && (v.sentry_pa & 8)) want = want ? want + kPageSize : 0;
        EXPECT_EQ(v.sentry, want) << to_string(v.type) << " step " << step << std::hex
                                  << " guest " << v.gentry;
      });
      (r.skipped ? skipped : validated)++;
    }
    if (step % 250 == 0) audit();
    if (::testing::Test::HasFailure()) return;
  }
  audit();
  EXPECT_GT(validated, 500);
  EXPECT_GT(skipped, 10);
  EXPECT_GT(m.shadow.stats().validate_gl1e_calls, 500u);
  EXPECT_GT(m.shadow.stats().validate_gl2e_calls, 20u);
  RecordProperty("early_unshadows", unshadowed);
}

// After the random writes, a shadow rebuilt from scratch over a copy of the guest's tables agrees
// with the one kept up to date by validation: every L1 entry both hold is equal, except R/W where
// the two disagree on whether the target is a page table (the old one may still shadow a frame
// the guest no longer uses as a table: its mappings of it stay read-only until a fault).
TEST_P(ValidationProperty, ValidatedShadowsMatchARebuiltShadow) {
  const int ew = m.mode == PagingMode::k32Bit ? 4 : 8;
  ShadowWork w;
  for (int step = 0; step < 1500; ++step) {
    if (step % 50 == 0) collect_tables();
    std::vector<std::pair<uint64_t, ShadowType>> targets;
    m.shadow.for_each_shadow([&](const ShadowInfo& s) {
      if (!is_fl1_type(s.type)) targets.emplace_back(s.gfn, s.type);
    });
    const auto [gfn, type] = targets[rng.next() % targets.size()];
    const uint64_t offset = (rng.next() % (kPageSize / ew)) * ew;
    const uint64_t pa = (gfn << kPageShift) + offset;
    const uint64_t old = m.memory.read(pa, ew);
    m.memory.write(pa, random_entry(type, old), ew);
    m.shadow.validate_guest_write(0, gfn, offset, ew, old, w);
    if (rng.next() % 3 == 0) m.access(0, vas[rng.next() % vas.size()], Access::write(true));
  }
  // Rebuild: a second machine with a copy of the guest's table frames, every page faulted in.
  Machine fresh(m.mode);
  for (uint64_t f = 0; f < test::kTableFirst + test::kTableCount; ++f) {
    for (uint64_t o = 0; o < kPageSize; o += 8) {
      fresh.memory.write64((f << kPageShift) + o, m.memory.read64((f << kPageShift) + o));
    }
  }
  fresh.load_cr3(0, m.root);
  for (uint64_t va : vas) {
    // Reads only: a write would set D in the copy and make the guests differ.
    fresh.access(0, va, Access::read(true));
    m.access(0, va, Access::read(true));
  }
  int compared = 0;
  m.shadow.for_each_shadow([&](const ShadowInfo& s) {
    if (!is_l1_type(s.type)) return;
    const auto other = fresh.shadow.find_shadow(s.gfn, s.type);
    if (!other) return;
    const uint64_t entries = (kPageSize / 8) << shadow_order(s.type);
    for (uint64_t i = 0; i < entries; ++i) {
      const uint64_t a = m.memory.read64((s.mfn << kPageShift) + 8 * i);
      const uint64_t b = fresh.memory.read64((*other << kPageShift) + 8 * i);
      if (a == 0 || b == 0) continue;  // never faulted or prefetched in one of them
      ++compared;
      if (a == b) continue;
      const uint64_t frame = sentry::frame(a);
      const bool pt_differs = m.shadow.is_page_table(frame) != fresh.shadow.is_page_table(frame);
      EXPECT_TRUE(pt_differs && (a | pte::kWritable) == (b | pte::kWritable))
          << to_string(s.type) << " gfn " << s.gfn << " entry " << i << std::hex << " kept "
          << a << " rebuilt " << b;
    }
  });
  EXPECT_GT(compared, 200);
}

INSTANTIATE_TEST_SUITE_P(Modes, ValidationProperty,
                         ::testing::Values(PagingMode::k32Bit, PagingMode::kPae,
                                           PagingMode::k4Level),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace shadowsim
