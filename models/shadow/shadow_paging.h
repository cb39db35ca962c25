// The shadow page-table core of one domain (Xen's shadow code, 2008: multi.c, common.c), as
// separate steps the timed fault handler and the walk strategies call at the fixed points of the
// research notes' §2 A/B. It never takes a lock and knows nothing of time: every step adds what
// it did to a ShadowWork record, which the timed layer turns into cycles, and the timed layer
// owns the shadow lock, the version counter (gtable_dirty_version), TLB flushes and the
// fast-emulation memory. docs/shadow.md describes the model step by step.
//
// Machine memory is one GuestMemory: guest RAM is frames [0, guest_frames), the shadow pool a
// frame range above it. The p2m is the identity on guest RAM (gfn == mfn), a simplification;
// each gfn -> mfn step is still counted (ShadowWork::p2m_lookups). Shadow tables are real x86
// tables in that memory (PAE format for 2-on-3 and 3-on-3, 4-level for 4-on-4), so walk() with
// shadow_state(vcpu) walks them as the MMU does.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <vector>

#include "common/params.h"
#include "common/sparse_frame_array.h"
#include "common/stats.h"
#include "paging/paging_state.h"
#include "paging/walker.h"
#include "shadow/shadow_entry.h"
#include "shadow/shadow_hash.h"
#include "shadow/shadow_pool.h"
#include "shadow/shadow_types.h"
#include "shadow/vtlb.h"

namespace shadowsim {

class GuestMemory;

// Which guesses heuristic 1 of sh_remove_write_access tries (Xen common.c).
enum class WriteGuessList : uint8_t {
  kNone,     // heuristic 1 off (heuristic 2 and brute force remain)
  kXen2008,  // xen-unstable Feb 2008: w2k3 linear maps, Linux lowmem, 0xffff810000000000
  kXenHead,  // Xen HEAD: adds 0xffff880000000000, Solaris kpm, FreeBSD maps
};

struct ShadowParams {
  bool fast_fault_path = true;    // SHOPT_FAST_FAULT_PATH: magic not-present L1 entries
  bool writable_heuristic = true;  // SHOPT_WRITABLE_HEURISTIC: heuristics 1 and 2
  WriteGuessList guess_list = WriteGuessList::kXen2008;
  bool prefetch = true;            // SHOPT_PREFETCH
  uint32_t prefetch_distance = 32;  // PREFETCH_DISTANCE (multi.c), counting the faulting entry
  bool skip_verify = true;         // SHOPT_SKIP_VERIFY
  bool early_unshadow = true;      // SHOPT_EARLY_UNSHADOW

  template <class V>
  void visit(V& v) {
    v.value("fast_fault_path", fast_fault_path,
            "magic reserved-bit L1 entries for guest-not-present (SHOPT_FAST_FAULT_PATH)");
    v.value("writable_heuristic", writable_heuristic,
            "guess where writable mappings of a new page table are (SHOPT_WRITABLE_HEURISTIC)");
    v.choice("guess_list", guess_list, "linear-map guesses of write-access removal",
             {{"none", WriteGuessList::kNone}, {"xen2008", WriteGuessList::kXen2008},
              {"xen_head", WriteGuessList::kXenHead}});
    v.value("prefetch", prefetch,
            "fill following shadow L1 entries after a fault (SHOPT_PREFETCH)");
    v.value("prefetch_distance", prefetch_distance,
            "entries per prefetch, counting the faulting one (Xen PREFETCH_DISTANCE)",
            Limits{1, 512}, "entries");
    v.value("skip_verify", skip_verify,
            "skip validating emulated writes that leave an entry not present (SHOPT_SKIP_VERIFY)");
    v.value("early_unshadow", early_unshadow,
            "unshadow after two zero PTE writes in a row (SHOPT_EARLY_UNSHADOW)");
  }
};

// One level of a guest walk.
struct GuestWalkLevel {
  bool valid = false;
  uint64_t table_gfn = 0;  // frame of the table holding the entry
  uint64_t entry_pa = 0;   // guest-physical address of the entry
  uint64_t value = 0;      // the walk's copy: as read plus the A/D bits this walk sets
  uint8_t width = 8;
};

// Xen's walk_t: the guest walk of one fault with each level's table, entry and value.
struct GuestWalk {
  unsigned vcpu = 0;
  uint64_t va = 0;
  Access access;
  WalkResult result;  // outcome, #PF error code, references and the A/D updates to apply
  std::array<GuestWalkLevel, 5> levels;  // [1..4]; PAE level 3 is the PDPTE snapshot
  bool pse = false;   // the leaf is a guest superpage (PDE)
  uint64_t l1e = 0;   // the 4 KiB leaf in 64-bit layout (synthesized for a superpage)
  uint64_t gfn = 0;   // guest frame of va's 4 KiB page (when ok())

  bool ok() const { return result.ok(); }
};

// The shadow L1 entry a fault fixes (Xen's ptr_sl1e and sl1mfn).
struct ShadowL1Slot {
  uint64_t entry_pa = 0;    // machine address of the shadow L1 entry
  uint64_t shadow_mfn = 0;  // first frame of the L1/FL1 shadow holding it
};

struct Cr3Result {
  uint64_t shadow_cr3 = 0;   // what the hardware CR3 gets (PAE: the per-VCPU PDPT)
  bool flush_needed = false;  // write access was removed from the new top-level table(s)
};

struct ValidateResult {
  bool skipped = false;           // SKIP_VERIFY: nothing re-validated
  bool early_unshadowed = false;  // the early-unshadow detector removed the frame's shadows
  bool flush_needed = false;      // a shadow entry lost rights or changed frame
};

struct InvlpgResult {
  bool hardware_invlpg = false;  // a shadow L1 exists for va: the PCPU must invlpg it
  bool local_flush = false;      // va is in a splintered superpage (FL1): flush the local TLB
};

struct RemoveShadowsResult {
  bool removed_all = false;  // the frame is no longer shadowed (a top-level shadow in use
                             // by a VCPU, or fast mode missing a reference, can keep it)
  bool flush_needed = false;
};

// Xen page_info of a guest frame, as far as shadowing needs it.
struct FrameState {
  uint16_t shadow_flags = 0;    // bit (1 << type) per shadow of this frame
  uint32_t writable_count = 0;  // writable shadow L1 mappings of the frame (PGT_count)
  bool promoted() const { return shadow_flags != 0; }  // PGC_page_table
};

// One shadow entry of a shadow of some guest frame, with the guest entry it mirrors.
struct ShadowEntryView {
  ShadowType type = ShadowType::kNone;
  uint64_t shadow_mfn = 0;
  int level = 1;             // level of the entry (1: leaf)
  uint64_t sentry_pa = 0;
  uint64_t sentry = 0;
  uint64_t gentry_pa = 0;    // the guest entry (FL1: 0, no single guest entry)
  uint64_t gentry = 0;       // L1: 4 KiB leaf in 64-bit layout; FL1: frame + all rights (the
                             // parent shadow L2 entry carries the PDE's rights)
  bool guest_pse = false;    // level 2: the guest entry is a superpage
  uint64_t child_gfn = 0;    // level > 1 and present: key of the shadow it points at
  ShadowType child_type = ShadowType::kNone;
};

struct ShadowInfo {
  uint64_t mfn = 0;
  ShadowType type = ShadowType::kNone;
  uint64_t gfn = 0;  // backpointer (FL1: first frame of the superpage)
  uint32_t refcount = 0;
  bool pinned = false;
};

class ShadowPaging {
 public:
  // guest_mode decides the shadow mode (5-level: Error). The pool is frames
  // [pool_first_frame, +pool_pages) of `memory`, above guest RAM; for PAE shadows it must lie
  // below 4 GiB (CR3 is 32 bits). pool_pages below min_pool_pages() is an Error naming both.
  ShadowPaging(GuestMemory& memory, uint64_t guest_frames, uint64_t pool_first_frame,
               uint64_t pool_pages, PagingMode guest_mode, unsigned vcpus,
               ShadowParams params = {});

  // Xen's shadow_min_acceptable_pages (128 per VCPU, common.c) plus the PAE PDPT page(s),
  // rounded up to the pool's four-page unit.
  static uint64_t min_pool_pages(PagingMode guest_mode, unsigned vcpus);

  // --- CR3 (sh_update_cr3; research §3.1: removes write access, flushes, no version bump) ---
  // Records the VCPU's guest paging state (PAE: with its PDPTE snapshot), flushes its vTLB,
  // removes write access from the new top-level guest table(s), finds or makes their shadows
  // (prealloc included), pins them, and returns the shadow CR3 to load.
  Cr3Result update_cr3(unsigned vcpu, const PagingState& guest, ShadowWork& work);
  // The hardware's paging state for the VCPU: the shadow mode with CR3 = its shadow root.
  PagingState shadow_state(unsigned vcpu) const;
  const PagingState& guest_state(unsigned vcpu) const;

  // --- the fault path, in the order of research §2 ---
  // Guest walk with the VCPU's guest paging state (A5 / B4). A 1 GiB guest page is an Error.
  GuestWalk guest_walk(unsigned vcpu, uint64_t va, const Access& access, ShadowWork& work) const;
  // The walk's A/D updates with cmpxchg semantics: an entry that changed since it was read is
  // left alone (the walk copy keeps its bits). Returns the number written.
  unsigned apply_walk_ad(const GuestWalk& walk, ShadowWork& work);
  // sh_remove_write_access: true when a writable mapping was removed (a flush is needed).
  // level 0: a removal for another reason (heuristic 1 skipped).
  bool remove_write_access(unsigned vcpu, uint64_t gfn, int level, uint64_t fault_va,
                           ShadowWork& work);
  // Xen's gw_remove_write_accesses: L3 (4-level), L2 (PAE, 4-level), L1 unless a superpage.
  bool gw_remove_write_accesses(const GuestWalk& walk, ShadowWork& work);
  // shadow_check_gwalk's compare: re-read every level's entry (PAE L3 from the snapshot, L1
  // skipped for a superpage) and compare whole entries with the walk copy. true: unchanged.
  bool check_gwalk(const GuestWalk& walk, ShadowWork& work) const;
  // shadow_prealloc: make room for `count` shadows of `type` before a fault's allocations;
  // reclaim stage 1, then stage 2 (work.flush_all_pcpus); Error if still short.
  void prealloc(ShadowType type, unsigned count, ShadowWork& work);
  // shadow_get_and_create_l1e: hash lookups down the levels, creating (alloc + promote +
  // hash insert) and linking missing shadows from the walk's entries.
  ShadowL1Slot get_and_create_l1e(const GuestWalk& walk, ShadowWork& work);
  // l1e_propagate_from_guest for the walk's leaf.
  uint64_t propagate_l1e(const GuestWalk& walk, ShadowWork& work) const;
  // shadow_set_l1e: writes the entry, keeps writable-mapping counts; true if a flush is needed.
  bool set_l1e(const ShadowL1Slot& slot, uint64_t value, ShadowWork& work);
  // sh_prefetch: entries after the slot up to prefetch_distance (counting the slot) and the
  // shadow page's end; stops at an existing shadow entry and at a guest entry that would need
  // an A/D fault. Returns the number filled.
  unsigned prefetch(const ShadowL1Slot& slot, const GuestWalk& walk, ShadowWork& work);
  // The two checks of step A12: RAM at the frame, and whether it is a page table (emulate).
  bool gfn_is_ram(uint64_t gfn) const { return gfn < guest_frames_; }
  bool is_page_table(uint64_t gfn) const;
  // reset_early_unshadow: a fault was fixed (step A13).
  void reset_early_unshadow(unsigned vcpu);

  // --- emulated guest page-table writes (research §1.6) ---
  // Called after the emulated write of `width` bytes at offset `offset` of frame `gfn` is done
  // in guest memory; `old_value` is what those bytes held before. Runs the early-unshadow
  // detector, then (unless SKIP_VERIFY applies) re-validates every shadow of the frame, L1s
  // before L2s before L3s before L4s.
  ValidateResult validate_guest_write(unsigned vcpu, uint64_t gfn, uint64_t offset, int width,
                                      uint64_t old_value, ShadowWork& work);
  // sh_remove_shadows: unhook every shadow of the frame from its parents (fast: only through
  // the up-pointer), free it, demote the frame.
  RemoveShadowsResult remove_shadows(uint64_t gfn, bool fast, ShadowWork& work);
  // Bumped on every shadow free: the timed layer clears every VCPU's fast-emulation memory
  // when it moves (Xen shadow_free).
  uint64_t shadow_freed_generation() const { return freed_generation_; }

  // --- invlpg and the vTLB ---
  // sh_invlpg (no lock): flushes the VCPU's vTLB and reports what the PCPU must do.
  InvlpgResult invlpg(unsigned vcpu, uint64_t va, ShadowWork& work);
  VTlb& vtlb(unsigned vcpu) { return vcpus_.at(vcpu).vtlb; }

  // --- audit support ---
  FrameState frame_state(uint64_t gfn) const;
  // Every entry of every shadow of `gfn` (its table shadows, L1s first, then an FL1 keyed by
  // it). No counters move.
  void for_each_shadow_entry_of(uint64_t gfn,
                                const std::function<void(const ShadowEntryView&)>& fn) const;
  void for_each_shadow(const std::function<void(const ShadowInfo&)>& fn) const;
  // The shadow of (gfn, type), if any (no counters move, no chain reordering).
  std::optional<uint64_t> find_shadow(uint64_t gfn, ShadowType type) const;
  bool guest_nx(unsigned vcpu) const;
  bool magic_enabled() const { return magic_; }

  ShadowMode mode() const { return mode_; }
  unsigned vcpu_count() const { return static_cast<unsigned>(vcpus_.size()); }
  const ShadowPool& pool() const { return pool_; }
  ShadowHash& hash() { return hash_; }
  const ShadowParams& params() const { return params_; }

  void register_stats(StatsGroup g);

  // Counters named after Xen perf counters where one exists.
  struct Stats {
    uint64_t guest_walk = 0;            // shadow_guest_walk
    uint64_t check_gwalk = 0;           // shadow_check_gwalk (compares done)
    uint64_t inconsistent_gwalk = 0;    // shadow_inconsistent_gwalk
    uint64_t prealloc_1 = 0;            // shadow_prealloc_1
    uint64_t prealloc_2 = 0;            // shadow_prealloc_2
    uint64_t writeable = 0;             // shadow_writeable (removals past the early exit)
    std::array<uint64_t, 7> writeable_h{};  // shadow_writeable_h_1.._6 ([1..6])
    uint64_t writeable_bf = 0;          // shadow_writeable_bf
    uint64_t early_unshadow = 0;        // shadow_early_unshadow
    uint64_t unshadow = 0;              // shadow_unshadow (remove_shadows of a shadowed frame)
    uint64_t validate_gl1e_calls = 0;   // shadow_validate_gl1e_calls
    uint64_t validate_gl2e_calls = 0;
    uint64_t validate_gl3e_calls = 0;
    uint64_t validate_gl4e_calls = 0;
    uint64_t validate_skipped = 0;      // emulated writes SKIP_VERIFY did not validate
    uint64_t alloc = 0;                 // shadow_alloc
    uint64_t shadows_freed = 0;
    uint64_t promotions = 0;
    uint64_t demotions = 0;
    uint64_t prefetched = 0;
    uint64_t invlpg = 0;
    uint64_t cr3_updates = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  static constexpr uint32_t kNoShadow = ShadowHash::kNone;
  static constexpr uint64_t kNoGfn = ~0ULL;

  struct PageInfo {
    ShadowType type = ShadowType::kNone;
    uint64_t gfn = 0;
    uint32_t count = 0;  // references: parent entries, the pin, VCPU top-level slots
    uint64_t up = 0;     // machine address of the first parent entry (0: none)
    bool pinned = false;
    std::list<uint32_t>::iterator pin_pos;
  };
  struct Vcpu {
    std::optional<PagingState> guest;
    std::array<uint32_t, 4> top{kNoShadow, kNoShadow, kNoShadow, kNoShadow};
    uint64_t shadow_cr3 = 0;
    VTlb vtlb;
    uint64_t last_writeable_pte_smfn = 0;  // 0: none
    uint64_t last_emulated_gfn = kNoGfn;
  };

  uint32_t id_of(uint64_t mfn) const { return static_cast<uint32_t>(mfn - pool_.first_frame()); }
  uint64_t mfn_of(uint32_t id) const { return pool_.first_frame() + id; }
  uint64_t pa_of(uint32_t id) const { return mfn_of(id) << kPageShift; }
  int guest_entry_width() const { return mode_ == ShadowMode::k2on3 ? 4 : 8; }
  const PagingState& reserved_state(unsigned vcpu) const;

  uint64_t read_sentry(uint64_t pa, ShadowWork& work) const;
  void write_sentry(uint64_t pa, uint64_t value, ShadowWork& work);
  uint32_t lookup(uint64_t gfn, ShadowType type, ShadowWork& work) const;
  uint32_t make_shadow(uint64_t gfn, ShadowType type, ShadowWork& work);
  uint32_t find_or_make(uint64_t gfn, ShadowType type, ShadowWork& work);
  void destroy_shadow(uint32_t id, ShadowWork& work);
  void get_ref(uint32_t id, uint64_t entry_pa);
  void put_ref(uint32_t id, uint64_t entry_pa, ShadowWork& work);
  void pin(uint32_t id);
  void unpin(uint32_t id, ShadowWork& work);
  bool in_use_by_vcpu(uint32_t id) const;
  void set_toplevel(unsigned vcpu, unsigned slot, uint64_t gfn, ShadowType type,
                    ShadowWork& work);
  void write_pdpt(unsigned vcpu, ShadowWork& work);
  // Upper-level entry write with reference counting; `pair` for a 2-on-3 L2 (two entries).
  bool set_upper(uint64_t entry_pa, uint64_t value, bool pair, ShadowWork& work);
  bool set_l1e_at(uint64_t entry_pa, uint64_t value, ShadowWork& work);
  void unhook_top(uint32_t id, ShadowWork& work);
  bool rm_write_access_from_l1(unsigned vcpu, uint32_t id, uint64_t gfn, ShadowWork& work);
  bool guess_wrmap(unsigned vcpu, uint64_t va, uint64_t gfn, ShadowWork& work);
  // Machine address of va's shadow L1 entry in this VCPU's shadow tables, if linked.
  std::optional<uint64_t> shadow_l1e_pa(unsigned vcpu, uint64_t va, ShadowWork& work) const;
  void validate_entry(unsigned vcpu, ShadowType type, uint64_t gfn, uint64_t index,
                      ValidateResult& result, ShadowWork& work);
  uint64_t upper_value(unsigned vcpu, int level, uint64_t gentry, ShadowWork& work) const;
  void remove_references_to(uint32_t id, ShadowWork& work);
  LeafContext leaf_context(unsigned vcpu, uint64_t gentry, bool reserved) const;

  GuestMemory& memory_;
  uint64_t guest_frames_;
  PagingMode guest_mode_;
  ShadowMode mode_;
  ShadowParams params_;
  ShadowPool pool_;
  mutable ShadowHash hash_;
  bool magic_;
  uint64_t pdpt_mfn_ = 0;  // PAE modes: per-VCPU 32-byte PDPTs, 128 per page
  std::vector<PageInfo> pages_;
  SparseFrameArray<FrameState> frames_;  // per guest frame, chunks allocated on first touch
  std::vector<Vcpu> vcpus_;
  std::list<uint32_t> pinned_;  // most recently pinned first (Xen sh_pin moves to the head)
  uint64_t freed_generation_ = 0;
  mutable Stats stats_;
  PagingState default_state_;
};

}  // namespace shadowsim
