// The set-associative array: geometry checks, and each replacement policy on hand-made
// sequences whose victims were worked out by hand (comments give the state after each step).
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "common/error.h"
#include "tlb/set_assoc_array.h"

namespace shadowsim {
namespace {

struct Entry {
  bool valid = false;
  uint64_t key = 0;
};
using Array = SetAssocArray<Entry>;

TlbArrayParams geometry(uint32_t entries, uint32_t ways, Replacement r = Replacement::kLru) {
  TlbArrayParams p;
  p.entries = entries;
  p.ways = ways;
  p.replacement = r;
  return p;
}

Entry* lookup(Array& a, uint64_t key) {
  Entry* e = a.find(a.set_of(key), [key](const Entry& x) { return x.key == key; });
  if (e) a.touch(e);
  return e;
}

// Inserts `key` and returns the way it went to; *evicted gets the key it replaced (or ~0).
uint32_t insert(Array& a, uint64_t key, uint64_t* evicted = nullptr) {
  const uint32_t set = a.set_of(key);
  Entry& slot = a.victim(set);
  if (evicted) *evicted = slot.valid ? slot.key : ~0ULL;
  slot.valid = true;
  slot.key = key;
  a.touch(&slot);
  for (uint32_t w = 0; w < a.ways(); ++w) {
    if (&a.at(set, w) == &slot) return w;
  }
  ADD_FAILURE() << "victim outside its set";
  return ~0u;
}

std::string param_error_field(const TlbArrayParams& p) {
  try {
    p.validate();
  } catch (const ParamError& e) {
    return e.field();
  }
  return "";
}

TEST(TlbArrayParams, GeometryIsCheckedAndNamesTheField) {
  EXPECT_EQ(param_error_field(geometry(64, 4)), "");
  EXPECT_EQ(param_error_field(geometry(1536, 12)), "");  // 128 sets
  EXPECT_EQ(param_error_field(geometry(12, 12)), "");    // fully associative, 12 ways
  EXPECT_EQ(param_error_field(geometry(0, 1)), "");      // "no array" is a valid slot value
  EXPECT_EQ(param_error_field(geometry(64, 3)), "ways");
  EXPECT_EQ(param_error_field(geometry(48, 4)), "entries");  // 12 sets
  EXPECT_EQ(param_error_field(geometry(1536, 12, Replacement::kTreePlru)), "replacement");
  EXPECT_EQ(param_error_field(geometry(128, 128, Replacement::kTreePlru)), "replacement");
  EXPECT_EQ(param_error_field(geometry(64, 64, Replacement::kTreePlru)), "");
  EXPECT_THROW(Array(geometry(0, 1), 1), Error);
  EXPECT_THROW(Array(geometry(64, 3), 1), ParamError);
  EXPECT_STREQ(to_string(Replacement::kTreePlru), "plru");
}

TEST(TlbArray, SetIndexIsTheLowKeyBitsAndFullAssociativityHasOneSet) {
  Array a(geometry(16, 4), 1);
  EXPECT_EQ(a.sets(), 4u);
  EXPECT_EQ(a.set_of(0), 0u);
  EXPECT_EQ(a.set_of(3), 3u);
  EXPECT_EQ(a.set_of(4), 0u);
  EXPECT_EQ(a.set_of(0x12345), 1u);
  // Five keys of one set in a 4-way array: the fifth evicts; keys of other sets do not.
  for (uint64_t k : {0, 4, 8, 12, 1, 2, 3}) insert(a, k);
  uint64_t evicted;
  insert(a, 16, &evicted);
  EXPECT_EQ(evicted, 0u);
  EXPECT_NE(lookup(a, 1), nullptr);

  Array fa(geometry(8, 8), 1);
  EXPECT_EQ(fa.sets(), 1u);
  for (uint64_t k = 0; k < 8; ++k) EXPECT_EQ(insert(fa, k * 977), k);  // invalid ways in order
  for (uint64_t k = 0; k < 8; ++k) EXPECT_NE(lookup(fa, k * 977), nullptr);
}

TEST(TlbArray, LruEvictsTheLeastRecentlyUsedWay) {
  Array a(geometry(4, 4, Replacement::kLru), 1);
  // Fills go to invalid ways in order: A0 B1 C2 D3, used in that order.
  EXPECT_EQ(insert(a, 'A'), 0u);
  EXPECT_EQ(insert(a, 'B'), 1u);
  EXPECT_EQ(insert(a, 'C'), 2u);
  EXPECT_EQ(insert(a, 'D'), 3u);
  ASSERT_NE(lookup(a, 'A'), nullptr);  // recency, oldest first: B C D A
  uint64_t evicted;
  EXPECT_EQ(insert(a, 'E', &evicted), 1u);  // C D A E
  EXPECT_EQ(evicted, 'B');
  ASSERT_NE(lookup(a, 'C'), nullptr);  // D A E C
  EXPECT_EQ(insert(a, 'F', &evicted), 3u);  // A E C F
  EXPECT_EQ(evicted, 'D');
  EXPECT_EQ(insert(a, 'G', &evicted), 0u);  // E C F G
  EXPECT_EQ(evicted, 'A');
  EXPECT_EQ(insert(a, 'H', &evicted), 1u);
  EXPECT_EQ(evicted, 'E');
  EXPECT_EQ(lookup(a, 'B'), nullptr);
}

TEST(TlbArray, TreePlruFollowsTheTreeNotTrueLru) {
  Array a(geometry(4, 4, Replacement::kTreePlru), 1);
  for (uint64_t k : {'A', 'B', 'C', 'D'}) insert(a, k);
  // Uses 0,1,2,3: root -> left half, left node -> way 0, right node -> way 2. Victim: way 0.
  uint64_t evicted;
  EXPECT_EQ(insert(a, 'E', &evicted), 0u);
  EXPECT_EQ(evicted, 'A');
  // Use of 0: root -> right half, right node still -> way 2. True LRU would evict B (way 1).
  EXPECT_EQ(insert(a, 'F', &evicted), 2u);
  EXPECT_EQ(evicted, 'C');
  // Use of 2: root -> left, left node -> way 1.
  EXPECT_EQ(insert(a, 'G', &evicted), 1u);
  EXPECT_EQ(evicted, 'B');
  // Use of 1: root -> right, right node (last set by the use of 2) -> way 3.
  EXPECT_EQ(insert(a, 'H', &evicted), 3u);
  EXPECT_EQ(evicted, 'D');
  // A hit moves the tree too: use G (way 1) then E (way 0) -> root right, right node -> way 2.
  ASSERT_NE(lookup(a, 'G'), nullptr);
  ASSERT_NE(lookup(a, 'E'), nullptr);
  EXPECT_EQ(a.policy_victim(0), 2u);
}

TEST(TlbArray, TreePlruEightWays) {
  Array a(geometry(8, 8, Replacement::kTreePlru), 1);
  for (uint64_t k = 0; k < 8; ++k) insert(a, 100 + k);
  EXPECT_EQ(a.policy_victim(0), 0u);  // uses 0..7 in order leave every node pointing left
  ASSERT_NE(lookup(a, 100), nullptr);
  // Use of way 0 points the root right; in the right half, the uses of 4..7 left node 3 and
  // node 6 pointing left: way 4. True LRU would pick way 1.
  EXPECT_EQ(a.policy_victim(0), 4u);
  ASSERT_NE(lookup(a, 104), nullptr);  // root left; node 2 -> right (after the use of 0) ...
  EXPECT_EQ(a.policy_victim(0), 2u);   // ... node 5 -> left (use of 3 set it): way 2
}

TEST(TlbArray, RandomReplacementIsReproducibleFromTheSeed) {
  const auto victims = [](uint64_t seed) {
    Array a(geometry(8, 8, Replacement::kRandom), seed);
    for (uint64_t k = 0; k < 8; ++k) insert(a, k);
    std::vector<uint32_t> ways;
    for (uint64_t k = 8; k < 200; ++k) ways.push_back(insert(a, k));
    return ways;
  };
  const std::vector<uint32_t> a = victims(42);
  EXPECT_EQ(a, victims(42));
  EXPECT_NE(a, victims(43));
  const std::set<uint32_t> distinct(a.begin(), a.end());
  EXPECT_EQ(distinct.size(), 8u);  // every way gets chosen over 192 draws
  for (uint32_t w : a) EXPECT_LT(w, 8u);
  // A hit does not consume randomness: the victim sequence is unchanged by lookups.
  Array b(geometry(8, 8, Replacement::kRandom), 42);
  for (uint64_t k = 0; k < 8; ++k) insert(b, k);
  std::vector<uint32_t> with_hits;
  for (uint64_t k = 8; k < 200; ++k) {
    lookup(b, k - 1);
    with_hits.push_back(insert(b, k));
  }
  EXPECT_EQ(with_hits, a);
}

TEST(TlbArray, AnInvalidWayIsFilledFirstUnderEveryPolicy) {
  for (Replacement r : {Replacement::kLru, Replacement::kTreePlru, Replacement::kRandom}) {
    Array a(geometry(4, 4, r), 7);
    for (uint64_t k = 0; k < 4; ++k) insert(a, k * 4);
    EXPECT_EQ(a.invalidate_if([](const Entry& e) { return e.key == 8; }), 1u);
    EXPECT_EQ(a.valid_count(), 3u);
    uint64_t evicted;
    EXPECT_EQ(insert(a, 40, &evicted), 2u) << to_string(r);
    EXPECT_EQ(evicted, ~0ULL);
    EXPECT_EQ(lookup(a, 8), nullptr);
  }
}

}  // namespace
}  // namespace shadowsim
