// Minimal visitors over a params struct's visit() list (models/common/params.h), standing in
// for the config loader: one records every dotted field name and checks defaults against
// their limits and choices; one assigns a number to a named field.
#pragma once

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include "common/params.h"

namespace shadowsim::test {

class RecordingVisitor {
 public:
  template <typename T>
  void value(const char* name, T& field, const char* description, Limits limits = {},
             const char* unit = "") {
    (void)unit;
    names.push_back(prefix_ + name);
    EXPECT_NE(std::string(description), "") << prefix_ << name;
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      EXPECT_GE(static_cast<double>(field), limits.min) << prefix_ << name;
      EXPECT_LE(static_cast<double>(field), limits.max) << prefix_ << name;
    }
  }
  template <typename E>
  void choice(const char* name, E& field, const char* description,
              std::initializer_list<Choice<E>> choices) {
    (void)description;
    names.push_back(prefix_ + name);
    bool listed = false;
    for (const Choice<E>& c : choices) listed = listed || c.value == field;
    EXPECT_TRUE(listed) << prefix_ << name << ": default not among the choices";
  }
  template <typename S>
  void group(const char* name, S& s, const char* description) {
    (void)description;
    const std::string saved = prefix_;
    prefix_ += std::string(name) + ".";
    s.visit(*this);
    prefix_ = saved;
  }

  std::vector<std::string> names;

 private:
  std::string prefix_;
};

// Sets the integer field at dotted path `target` to `number`; `found` tells whether it existed.
class SettingVisitor {
 public:
  SettingVisitor(std::string target, double number) : target_(std::move(target)), number_(number) {}

  template <typename T>
  void value(const char* name, T& field, const char*, Limits = {}, const char* = "") {
    if (prefix_ + name != target_) return;
    if constexpr (std::is_same_v<T, bool>) {
      field = number_ != 0;
    } else if constexpr (std::is_arithmetic_v<T>) {
      field = static_cast<T>(number_);
    }
    found = true;
  }
  template <typename E>
  void choice(const char* name, E& field, const char*, std::initializer_list<Choice<E>> choices) {
    if (prefix_ + name != target_) return;
    field = (choices.begin() + static_cast<int>(number_))->value;
    found = true;
  }
  template <typename S>
  void group(const char* name, S& s, const char*) {
    const std::string saved = prefix_;
    prefix_ += std::string(name) + ".";
    s.visit(*this);
    prefix_ = saved;
  }

  bool found = false;

 private:
  std::string prefix_;
  std::string target_;
  double number_;
};

template <typename P>
std::vector<std::string> field_names(P params) {
  RecordingVisitor v;
  params.visit(v);
  return v.names;
}

template <typename P>
P with_field(P params, const std::string& path, double number) {
  SettingVisitor v(path, number);
  params.visit(v);
  EXPECT_TRUE(v.found) << path;
  return params;
}

}  // namespace shadowsim::test
