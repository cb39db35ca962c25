// Randomised property test, per paging mode: thousands of map / unmap / protect operations
// through the editor, after each of which the walker must agree with an independent dictionary
// model (page base -> frame, size, flags) on every sampled address and access kind, the editor
// must refuse exactly the operations the model says are impossible (and write nothing then),
// and the number of live table frames must equal what the model's mappings need.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <tuple>

#include "common/error.h"
#include "common/rng.h"
#include "paging/frame_allocator.h"
#include "paging/guest_memory.h"
#include "paging/page_table_editor.h"
#include "paging/paging_state.h"
#include "paging/walker.h"

namespace shadowsim {
namespace {

struct ModelPage {
  uint64_t pa;
  PageSize size;
  PageFlags flags;
};

struct Variant {
  PagingMode mode;
  bool strict_supervisor;  // SMEP + SMAP on, WP off: exercises the other access-check branches
};

class PagingProperty : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    mode_ = GetParam().mode;
    if (GetParam().strict_supervisor) {
      controls_.cr4_smep = controls_.cr4_smap = true;
      controls_.cr0_wp = false;
    }
    ia32e_ = mode_ == PagingMode::k4Level || mode_ == PagingMode::k5Level;
    large_ = mode_ == PagingMode::k32Bit ? PageSize::k4M : PageSize::k2M;
    sizes_ = {PageSize::k4K, large_};
    if (ia32e_) sizes_.push_back(PageSize::k1G);
    mem_ = std::make_unique<GuestMemory>(1ULL << 30);
    frames_ = std::make_unique<FrameAllocator>(1, (1ULL << 18) - 1,
                                               FrameAllocator::Placement::kRandom, 99);
    store_ = std::make_unique<DirectPageTableStore>(*mem_);
    editor_ = std::make_unique<PageTableEditor>(mode_, controls_, features_, *frames_, *store_);
    root_ = editor_->create_address_space();
    state_ = std::make_unique<PagingState>(mode_, controls_, features_);
    ASSERT_TRUE(state_->load_cr3(root_, *mem_));
    // Arenas: a user one and a kernel one, each 4 "big slots" of `big_` bytes.
    big_ = ia32e_ ? (1ULL << 30) : (64ULL << 20);
    arenas_ = {ia32e_ ? 0x00007f0000000000ULL : 0x40000000ULL, editor_->kernel_base()};
    if (ia32e_) arenas_[1] = editor_->kernel_base() + 0x0000088000000000ULL;
  }

  // A random address that collides often: arena, big slot, large-page slot, 4 KiB slot.
  uint64_t pick() {
    return arenas_[rng_.chance(0.7) ? 0 : 1] + rng_.below(4) * big_ +
           rng_.below(8) * page_bytes(large_) + rng_.below(16) * kPageSize + rng_.below(kPageSize);
  }
  uint64_t arena_end(uint64_t va) const {
    const uint64_t arena = va >= arenas_[1] ? arenas_[1] : arenas_[0];
    return arena + 4 * big_;
  }
  uint64_t phys_limit(PageSize size) const {
    if (mode_ != PagingMode::k32Bit) return 1ULL << features_.maxphyaddr;
    return size == PageSize::k4M ? (1ULL << 40) : (1ULL << 32);
  }

  const ModelPage* lookup(uint64_t va, uint64_t* base) const {
    for (PageSize s : sizes_) {
      const uint64_t b = va & ~(page_bytes(s) - 1);
      const auto it = model_.find(b);
      if (it != model_.end() && it->second.size == s) {
        *base = b;
        return &it->second;
      }
    }
    return nullptr;
  }

  bool map_conflicts(uint64_t va, uint64_t bytes, PageSize size) const {
    const uint64_t step = page_bytes(size);
    for (uint64_t p = va; p < va + bytes; p += step) {
      for (PageSize s : sizes_) {
        if (page_bytes(s) <= step) continue;
        const auto it = model_.find(p & ~(page_bytes(s) - 1));
        if (it != model_.end() && it->second.size == s) return true;
      }
      for (auto it = model_.lower_bound(p); it != model_.end() && it->first < p + step; ++it) {
        if (page_bytes(it->second.size) < step) return true;
      }
    }
    return false;
  }

  bool straddles(uint64_t va, uint64_t bytes) const {
    for (uint64_t probe : {va, va + bytes - 1}) {
      uint64_t base;
      const ModelPage* p = lookup(probe, &base);
      if (p && (base < va || base + page_bytes(p->size) - 1 > va + bytes - 1)) return true;
    }
    return false;
  }

  uint64_t expected_table_frames() const {
    if (mode_ == PagingMode::kPae) {
      std::set<uint64_t> pts;
      for (const auto& [va, p] : model_) {
        if (p.size == PageSize::k4K) pts.insert(va >> 21);
      }
      return 1 + 4 + pts.size();
    }
    std::set<std::pair<int, uint64_t>> tables;
    for (const auto& [va, p] : model_) {
      for (int k = page_level(p.size); k < top_level(mode_); ++k) {
        tables.insert({k, va >> level_shift(mode_, k + 1)});
      }
    }
    return 1 + tables.size();
  }

  PageFlags random_flags(uint64_t va_last) {
    PageFlags f;
    f.writable = rng_.chance(0.5);
    f.user = va_last < editor_->kernel_base() && rng_.chance(0.7);
    f.execute_disable = mode_ != PagingMode::k32Bit && rng_.chance(0.3);
    f.global = rng_.chance(0.2);
    f.accessed = rng_.chance(0.5);
    f.dirty = rng_.chance(0.3);
    f.pat_index = static_cast<uint8_t>(rng_.below(8));
    return f;
  }

  void check_address(uint64_t va) {
    static const Access kAccesses[] = {Access::read(true),  Access::write(true),
                                       Access::fetch(true), Access::read(false),
                                       Access::write(false), Access::fetch(false)};
    uint64_t base = 0;
    const ModelPage* page = lookup(va, &base);
    for (const Access& a : kAccesses) {
      const WalkResult r = walk(*mem_, *state_, va, a);
      ++checked_walks_;
      if (!page) {
        ASSERT_EQ(r.outcome, WalkOutcome::kPageFault) << std::hex << va;
        ASSERT_EQ(r.error_code, access_error_bits(a, controls_, mode_)) << std::hex << va;
        continue;
      }
      const Rights rights{page->flags.writable, page->flags.user, page->flags.execute_disable};
      const uint32_t ec = check_access(rights, a, controls_, mode_);
      if (ec) {
        ASSERT_EQ(r.outcome, WalkOutcome::kPageFault) << std::hex << va;
        ASSERT_EQ(r.error_code, ec) << std::hex << va;
        continue;
      }
      ASSERT_TRUE(r.ok()) << std::hex << va << " ec " << r.error_code;
      const Translation& t = r.translation;
      ASSERT_EQ(t.pa, page->pa + (va - base)) << std::hex << va;
      ASSERT_EQ(t.size, page->size);
      ASSERT_EQ(t.rights.writable, page->flags.writable);
      ASSERT_EQ(t.rights.user, page->flags.user);
      ASSERT_EQ(t.rights.execute_disable, page->flags.execute_disable);
      ASSERT_EQ(t.global, page->flags.global);
      ASSERT_EQ(t.pat_index, page->flags.pat_index);
      ASSERT_EQ(t.dirty, page->flags.dirty || a.kind == AccessKind::kWrite);
    }
  }

  // One random operation; returns whether it was expected to be (and was) refused.
  void random_operation() {
    const double dice = static_cast<double>(rng_.below(100));
    const size_t writes_before = store_->writes.size();
    bool expect_error = false;
    bool threw = false;
    uint64_t va, bytes;
    if (dice < 45) {
      PageSize size = PageSize::k4K;
      const uint64_t roll = rng_.below(10);
      if (roll >= 6) size = large_;
      if (roll == 9 && ia32e_) size = PageSize::k1G;
      const uint64_t step = page_bytes(size);
      const uint64_t count = size == PageSize::k4K ? 1 + rng_.below(8) : 1 + rng_.below(2);
      va = pick() & ~(step - 1);
      bytes = std::min(count * step, arena_end(va) - va);
      const uint64_t pa = rng_.below(phys_limit(size) / step - count) * step;
      const PageFlags flags = random_flags(va + bytes - 1);
      expect_error = map_conflicts(va, bytes, size);
      try {
        editor_->map(root_, va, pa, bytes, size, flags);
      } catch (const Error&) {
        threw = true;
      }
      if (!threw) {
        for (uint64_t off = 0; off < bytes; off += step) model_[va + off] = {pa + off, size, flags};
      }
    } else {
      static const uint64_t kLengths[] = {1, 2, 3, 16, 512, 1024, 262144};
      va = pick() & ~(kPageSize - 1);
      const uint64_t pages = rng_.chance(0.5) ? 1 + rng_.below(16) : kLengths[rng_.below(7)];
      bytes = std::min(pages * kPageSize, arena_end(va) - va);
      expect_error = straddles(va, bytes);
      const auto first = model_.lower_bound(va);
      const auto last = model_.upper_bound(va + bytes - 1);
      if (dice < 75) {
        try {
          editor_->release_tables(editor_->unmap(root_, va, bytes));
        } catch (const Error&) {
          threw = true;
        }
        if (!threw) model_.erase(first, last);
      } else {
        const PageFlags rights = random_flags(va + bytes - 1);
        try {
          editor_->protect(root_, va, bytes, rights);
        } catch (const Error&) {
          threw = true;
        }
        if (!threw) {
          for (auto it = first; it != last; ++it) {
            PageFlags& f = it->second.flags;
            f.writable = rights.writable;
            f.user = rights.user;
            f.execute_disable = rights.execute_disable;
            f.global = rights.global;
          }
        }
      }
    }
    ASSERT_EQ(threw, expect_error) << "op " << ops_ << std::hex << " va " << va << " bytes "
                                   << bytes;
    if (threw) {
      ASSERT_EQ(store_->writes.size(), writes_before) << "a refused operation wrote";
      ++refused_;
    }
    check_address(va);
    check_address(va + bytes - 1);
    for (int i = 0; i < 8; ++i) check_address(pick());
  }

  void full_check() {
    for (const auto& [va, page] : model_) {
      check_address(va);
      check_address(va + page_bytes(page.size) - 1);
    }
    ASSERT_EQ(frames_->allocated_count(), expected_table_frames());
  }

  PagingMode mode_;
  PagingControls controls_;
  CpuFeatures features_;
  bool ia32e_ = false;
  PageSize large_ = PageSize::k2M;
  std::vector<PageSize> sizes_;
  std::unique_ptr<GuestMemory> mem_;
  std::unique_ptr<FrameAllocator> frames_;
  std::unique_ptr<DirectPageTableStore> store_;
  std::unique_ptr<PageTableEditor> editor_;
  std::unique_ptr<PagingState> state_;
  uint64_t root_ = 0;
  uint64_t big_ = 0;
  std::vector<uint64_t> arenas_;
  std::map<uint64_t, ModelPage> model_;
  Rng rng_{2026};
  int ops_ = 0;
  int refused_ = 0;
  uint64_t checked_walks_ = 0;
};

TEST_P(PagingProperty, WalkerAgreesWithDictionaryModelOverRandomEdits) {
  constexpr int kOperations = 4000;
  for (ops_ = 0; ops_ < kOperations; ++ops_) {
    ASSERT_NO_FATAL_FAILURE(random_operation());
    if (ops_ % 200 == 199) {
      ASSERT_NO_FATAL_FAILURE(full_check());
    }
  }
  ASSERT_NO_FATAL_FAILURE(full_check());
  // The run must exercise refusals and a populated address space, or it proves little.
  EXPECT_GT(refused_, kOperations / 50);
  EXPECT_GT(checked_walks_, 200000u);
  editor_->destroy_address_space(root_);
  EXPECT_EQ(frames_->allocated_count(), 0u);
  RecordProperty("refused", refused_);
  RecordProperty("walks", static_cast<int>(checked_walks_));
}

INSTANTIATE_TEST_SUITE_P(
    Modes, PagingProperty,
    ::testing::Values(Variant{PagingMode::k32Bit, false}, Variant{PagingMode::k32Bit, true},
                      Variant{PagingMode::kPae, false}, Variant{PagingMode::kPae, true},
                      Variant{PagingMode::k4Level, false}, Variant{PagingMode::k4Level, true},
                      Variant{PagingMode::k5Level, false}, Variant{PagingMode::k5Level, true}),
    [](const ::testing::TestParamInfo<Variant>& info) {
      return std::string(to_string(info.param.mode)) +
             (info.param.strict_supervisor ? "_smep_smap_nowp" : "");
    });

}  // namespace
}  // namespace shadowsim
