// Module parameters. Each module keeps its parameters in a plain struct whose default member
// initialisers are the one place defaults live, and lists every field once in `visit`:
//
//   struct TlbArrayParams {
//     uint32_t entries = 64;
//     uint32_t ways = 4;
//     Replacement replacement = Replacement::kLru;
//
//     template <class V> void visit(V& v) {
//       v.value("entries", entries, "number of entries", Limits{1, 1 << 20});
//       v.value("ways", ways, "associativity", Limits{1, 1 << 20});
//       v.choice("replacement", replacement, "replacement policy",
//                {{"lru", Replacement::kLru}, {"plru", Replacement::kTreePlru},
//                 {"random", Replacement::kRandom}});
//     }
//     void validate() const {  // optional: checks across fields
//       if (entries % ways) throw ParamError("ways", "must divide entries");
//     }
//   };
//
// The JSON config loader, `shadowsim config --defaults` and docs/config.md are visitors over
// that list (sim/), so they cannot drift apart. A visitor provides:
//   value(name, field, description, Limits = {}, unit = "")   integers, double, bool, string
//   choice(name, enum_field, description, {{"name", value}, ...})
//   group(name, struct_field, description)                    nested struct with its own visit
#pragma once

#include <limits>
#include <string>
#include <type_traits>

#include "common/error.h"

namespace shadowsim {

struct Limits {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
};

template <typename E>
struct Choice {
  const char* name;
  E value;
};

// Thrown by a params struct's validate(): the loader prefixes the JSON path of the struct.
class ParamError : public Error {
 public:
  ParamError(std::string field, const std::string& message)
      : Error(message), field_(std::move(field)) {}
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

// Calls p.validate() when the struct has one.
template <typename P, typename = void>
struct HasValidate : std::false_type {};
template <typename P>
struct HasValidate<P, std::void_t<decltype(std::declval<const P&>().validate())>>
    : std::true_type {};
template <typename P>
void validate_params(const P& p) {
  if constexpr (HasValidate<P>::value) p.validate();
}

}  // namespace shadowsim
