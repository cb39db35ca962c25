#include "tlb/tlb_level.h"

#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "common/error.h"

namespace shadowsim {
namespace {

constexpr PageSize kAllSizes[kPageSizeCount] = {PageSize::k4K, PageSize::k2M, PageSize::k4M,
                                                PageSize::k1G};

// Page sizes a translation can have in each mode (§4.3-4.5), in PagingMode order.
std::vector<PageSize> mode_sizes(PagingMode mode) {
  switch (mode) {
    case PagingMode::k32Bit: return {PageSize::k4K, PageSize::k4M};
    case PagingMode::kPae: return {PageSize::k4K, PageSize::k2M};
    case PagingMode::k4Level:
    case PagingMode::k5Level: return {PageSize::k4K, PageSize::k2M, PageSize::k1G};
  }
  return {};
}

std::string array_field(int i, const std::string& field) {
  return fmt::format("array{}.{}", i, field);
}

}  // namespace

const char* stats_name(PageSize size) {
  switch (size) {
    case PageSize::k4K: return "4k";
    case PageSize::k2M: return "2m";
    case PageSize::k4M: return "4m";
    case PageSize::k1G: return "1g";
  }
  return "?";
}

bool TlbLevelArrayParams::holds(PageSize size) const {
  switch (size) {
    case PageSize::k4K: return page_4k;
    case PageSize::k2M: return page_2m;
    case PageSize::k4M: return page_4m;
    case PageSize::k1G: return page_1g;
  }
  return false;
}

void TlbLevelArrayParams::validate() const {
  TlbArrayParams::validate();
  if (entries != 0 && !page_4k && !page_2m && !page_4m && !page_1g) {
    throw ParamError("page_4k", fmt::format("an array of {} entries holds no page size: set "
                                            "page_4k, page_2m, page_4m or page_1g",
                                            entries));
  }
}

TlbLevelArrayParams TlbLevelArrayParams::make(uint32_t entries, uint32_t ways, uint32_t latency,
                                              std::initializer_list<PageSize> sizes,
                                              Replacement replacement) {
  TlbLevelArrayParams p;
  p.entries = entries;
  p.ways = ways;
  p.latency = latency;
  p.replacement = replacement;
  for (PageSize s : sizes) {
    switch (s) {
      case PageSize::k4K: p.page_4k = true; break;
      case PageSize::k2M: p.page_2m = true; break;
      case PageSize::k4M: p.page_4m = true; break;
      case PageSize::k1G: p.page_1g = true; break;
    }
  }
  return p;
}

void TlbLevelParams::validate() const {
  std::array<int, kPageSizeCount> owner;
  owner.fill(-1);
  for (int i = 0; i < kMaxArrays; ++i) {
    const TlbLevelArrayParams& a = arrays[i];
    try {
      a.validate();
    } catch (const ParamError& e) {
      throw ParamError(array_field(i, e.field()), e.what());
    }
    if (a.entries == 0) continue;
    for (PageSize s : kAllSizes) {
      if (!a.holds(s)) continue;
      if (owner[size_index(s)] >= 0) {
        throw ParamError(array_field(i, std::string("page_") + stats_name(s)),
                         fmt::format("{} pages are already held by array{}: a page size lives in "
                                     "one array of a level",
                                     to_string(s), owner[size_index(s)]));
      }
      owner[size_index(s)] = i;
    }
  }
  if (enabled() && owner[size_index(PageSize::k4K)] < 0) {
    throw ParamError("array0.page_4k", "a TLB level needs an array holding 4K pages (larger "
                                       "pages fracture into them when no array holds their size)");
  }
}

bool TlbLevelParams::enabled() const {
  return std::any_of(arrays.begin(), arrays.end(),
                     [](const TlbLevelArrayParams& a) { return a.entries != 0; });
}

TlbLevel::TlbLevel(const TlbLevelParams& params, Rng& seeds) {
  params.validate();
  array_of_.fill(-1);
  int present = 0;
  for (const TlbLevelArrayParams& a : params.arrays) present += a.entries != 0 ? 1 : 0;
  arrays_.reserve(static_cast<size_t>(present));
  for (const TlbLevelArrayParams& a : params.arrays) {
    if (a.entries == 0) continue;
    for (PageSize s : kAllSizes) {
      if (a.holds(s)) array_of_[size_index(s)] = static_cast<int8_t>(arrays_.size());
    }
    arrays_.emplace_back(a, seeds.next());
    latency_ = std::max(latency_, a.latency);
  }
  if (!enabled()) return;
  for (PagingMode mode : {PagingMode::k32Bit, PagingMode::kPae, PagingMode::k4Level,
                          PagingMode::k5Level}) {
    std::vector<PageSize> stored;
    for (PageSize s : mode_sizes(mode)) stored.push_back(stored_size(s));
    std::sort(stored.begin(), stored.end(),
              [](PageSize a, PageSize b) { return page_bytes(a) < page_bytes(b); });
    stored.erase(std::unique(stored.begin(), stored.end()), stored.end());
    Probe& probe = probes_[static_cast<int>(mode)];
    for (PageSize s : stored) {
      Array* array = &arrays_[static_cast<size_t>(array_of_[size_index(s)])];
      probe.steps[probe.count++] = ProbeStep{array, static_cast<uint8_t>(page_shift(s)),
                                             static_cast<uint8_t>(size_index(s))};
    }
  }
}

PageSize TlbLevel::stored_size(PageSize size) const {
  if (holds(size)) return size;
  // 4M pages exist only in 32-bit paging and 1G pages only in IA-32e paging, so a 1G page is
  // never held as 4M pieces; a 4M page may become 2M pieces (assumption: what a core with 2M
  // entries only would do).
  PageSize best = PageSize::k4K;  // always held (TlbLevelParams::validate)
  for (PageSize s : kAllSizes) {
    if (!holds(s) || page_bytes(s) >= page_bytes(size) || page_bytes(s) <= page_bytes(best)) {
      continue;
    }
    if (size == PageSize::k1G && s == PageSize::k4M) continue;
    best = s;
  }
  return best;
}

void TlbLevel::fill(uint64_t va, const TlbEntry& page) {
  if (!enabled()) return;
  TlbEntry e = page;
  e.valid = true;
  const PageSize size = stored_size(page.size());
  if (size != page.size()) {
    const uint64_t page_va = page.vpn() << page_shift(page.size());
    const uint64_t piece = (va - page_va) & ~page_offset_mask(size);
    e.page_pa = page.page_pa + piece;
    e.key = TlbEntry::make_key(va >> page_shift(size), size);
    ++fractured_fills_;
    fractured_present_ = true;
  }
  Array& array = arrays_[static_cast<size_t>(array_of_[size_index(size)])];
  const uint32_t set = array.set_of(e.vpn());
  TlbEntry* slot = array.find(set, [&](const TlbEntry& x) {
    return x.key == e.key && x.matches(e.asid);
  });
  if (!slot) {
    slot = &array.victim(set);
    if (slot->valid) ++by_size_[size_index(slot->size())].evictions;
  }
  *slot = e;
  array.touch(slot);
  ++by_size_[size_index(size)].fills;
}

void TlbLevel::invalidate_address(uint64_t va, const TlbContext& tag, bool globals) {
  const uint32_t asid = TlbEntry::make_asid(tag);
  const auto covered = [&](const TlbEntry& x) {
    if (x.vpid() != tag.vpid) return false;
    return globals ? x.matches(asid) : (x.pcid() == tag.pcid && !x.global());
  };
  for (PageSize s : kAllSizes) {
    if (!holds(s)) continue;
    Array& array = arrays_[static_cast<size_t>(array_of_[size_index(s)])];
    const uint64_t vpn = va >> page_shift(s);
    const uint64_t key = TlbEntry::make_key(vpn, s);
    const uint32_t set = array.set_of(vpn);
    for (uint32_t w = 0; w < array.ways(); ++w) {
      TlbEntry& x = array.at(set, w);
      if (x.valid && x.key == key && covered(x)) {
        x.valid = false;
        ++invalidations_;
      }
    }
  }
  if (!fractured_present_) return;
  // Pieces of a larger page sit in other sets: find them by the page they came from.
  invalidate_if([&](const TlbEntry& x) {
    if (x.size() == x.source_size || !covered(x)) return false;
    const int shift = page_shift(x.source_size);
    return ((x.vpn() << page_shift(x.size())) >> shift) == (va >> shift);
  });
}

uint64_t TlbLevel::valid_count() const {
  uint64_t n = 0;
  for (const Array& a : arrays_) n += a.valid_count();
  return n;
}

void TlbLevel::register_stats(StatsGroup g) {
  g.formula(
      "hits",
      [this] {
        uint64_t n = 0;
        for (const SizeCounters& c : by_size_) n += c.hits;
        return static_cast<double>(n);
      },
      "lookups", "lookups served by this level (all page sizes)");
  g.counter("misses", &misses_, "lookups", "lookups that probed this level and found no entry");
  g.formula(
      "miss_rate",
      [this] {
        uint64_t hits = 0;
        for (const SizeCounters& c : by_size_) hits += c.hits;
        return ratio(misses_, hits + misses_);
      },
      "ratio", "misses / (hits + misses)");
  g.counter("fractured_fills", &fractured_fills_, "entries",
            "fills of a piece of a page larger than any size this level holds");
  g.counter("invalidations", &invalidations_, "entries", "entries removed by flushes");
  for (PageSize s : kAllSizes) {
    if (!holds(s)) continue;
    const StatsGroup sg = g.sub(stats_name(s));
    SizeCounters& c = by_size_[size_index(s)];
    sg.counter("hits", &c.hits, "lookups", "hits on entries of this size");
    sg.counter("fills", &c.fills, "entries",
               "entries of this size written (misses resolved with this size, after a walk or "
               "from the STLB)");
    sg.counter("evictions", &c.evictions, "entries", "valid entries of this size replaced");
  }
}

}  // namespace shadowsim
