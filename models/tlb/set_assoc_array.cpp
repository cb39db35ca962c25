#include "tlb/set_assoc_array.h"

#include <fmt/format.h>

namespace shadowsim {
namespace {

bool power_of_two(uint32_t n) { return n && !(n & (n - 1)); }

}  // namespace

const char* to_string(Replacement replacement) {
  switch (replacement) {
    case Replacement::kLru: return "lru";
    case Replacement::kTreePlru: return "plru";
    case Replacement::kRandom: return "random";
  }
  return "?";
}

void TlbArrayParams::validate() const {
  if (entries == 0) return;  // no array in this slot
  if (ways == 0 || entries % ways != 0) {
    throw ParamError("ways", fmt::format("{} ways must divide the {} entries", ways, entries));
  }
  if (!power_of_two(entries / ways)) {
    throw ParamError("entries", fmt::format("{} entries / {} ways = {} sets: expected a power "
                                            "of two (the set index is the low page-number bits)",
                                            entries, ways, entries / ways));
  }
  if (replacement == Replacement::kTreePlru && (!power_of_two(ways) || ways > 64)) {
    throw ParamError("replacement", fmt::format("tree-PLRU needs a power-of-two number of ways "
                                                "up to 64, not {}; use lru or random",
                                                ways));
  }
}

void check_array_params(const TlbArrayParams& params) {
  params.validate();
  if (params.entries == 0) throw ParamError("entries", "an array needs at least one entry");
}

}  // namespace shadowsim
