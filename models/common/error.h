// Project-wide error type. Every misuse of an API or bad input raises a shadowsim::Error whose
// message names what was wrong (the parameter, file/record or JSON path) and what was expected.
#pragma once

#include <stdexcept>
#include <string>

namespace shadowsim {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace shadowsim
