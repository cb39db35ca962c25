#include "config.h"
#include "presets.h"

#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>
#include <set>
#include <sstream>
#include <type_traits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"

namespace shadowsim {
namespace {

using nlohmann::json;

std::string join_path(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

std::string shown(const json& j) {
  // replace: whatever the value, a message must not fail (apply_override refuses non-UTF-8).
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

std::string format_limit(double x) {
  if (std::isinf(x)) return x < 0 ? "-inf" : "inf";
  if (x == static_cast<double>(static_cast<int64_t>(x))) {
    return fmt::format("{}", static_cast<int64_t>(x));
  }
  return fmt::format("{}", x);
}

// --- reading: JSON -> params ------------------------------------------------------------------

class JsonReader {
 public:
  JsonReader(const json& node, std::string path, const std::string& origin)
      : node_(node), path_(std::move(path)), origin_(origin) {}

  template <typename T>
  void value(const char* name, T& field, const char*, Limits limits = {}, const char* = "") {
    known_.insert(name);
    const auto it = node_.find(name);
    if (it == node_.end()) return;
    assign(*it, field, join_path(path_, name), limits);
  }

  template <typename E>
  void choice(const char* name, E& field, const char*, std::initializer_list<Choice<E>> choices) {
    known_.insert(name);
    const auto it = node_.find(name);
    if (it == node_.end()) return;
    std::string names;
    for (const Choice<E>& c : choices) {
      if (it->is_string() && it->template get<std::string>() == c.name) {
        field = c.value;
        return;
      }
      names += names.empty() ? "" : ", ";
      names += fmt::format("\"{}\"", c.name);
    }
    fail(join_path(path_, name), fmt::format("expected one of {}", names), *it);
  }

  template <typename S>
  void group(const char* name, S& sub, const char*) {
    known_.insert(name);
    const auto it = node_.find(name);
    if (it == node_.end()) return;
    const std::string path = join_path(path_, name);
    if (!it->is_object()) fail(path, "expected an object", *it);
    read_object(*it, sub, path, origin_);
  }

  template <typename S>
  static void read_object(const json& node, S& params, const std::string& path,
                          const std::string& origin) {
    JsonReader reader(node, path, origin);
    params.visit(reader);
    reader.reject_unknown_keys();
    try {
      validate_params(params);
    } catch (const ParamError& e) {
      throw Error(fmt::format("{}: {}: {}", origin, join_path(path, e.field()), e.what()));
    }
  }

 private:
  [[noreturn]] void fail(const std::string& path, const std::string& expected,
                         const json& got) const {
    throw Error(fmt::format("{}: {}: {}, got {}", origin_, path, expected, shown(got)));
  }

  void reject_unknown_keys() const {
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      if (known_.count(it.key())) continue;
      std::string names;
      for (const std::string& k : known_) names += (names.empty() ? "" : ", ") + k;
      throw Error(fmt::format("{}: {}: unknown key; expected one of: {}", origin_,
                              join_path(path_, it.key()), names));
    }
  }

  void assign(const json& j, bool& field, const std::string& path, Limits) const {
    if (!j.is_boolean()) fail(path, "expected true or false", j);
    field = j.get<bool>();
  }
  void assign(const json& j, std::string& field, const std::string& path, Limits) const {
    if (!j.is_string()) fail(path, "expected a string", j);
    field = j.get<std::string>();
  }
  void assign(const json& j, double& field, const std::string& path, Limits limits) const {
    if (!j.is_number()) fail(path, "expected a number", j);
    const double x = j.get<double>();
    if (x < limits.min || x > limits.max) {
      fail(path, fmt::format("expected a number in [{}, {}]", format_limit(limits.min),
                             format_limit(limits.max)), j);
    }
    field = x;
  }
  // Integers are range-checked exactly (no rounding through double): the limits are clamped to
  // the field's type first, and the message is built only on failure.
  template <typename T, typename = std::enable_if_t<std::is_integral_v<T>>>
  void assign(const json& j, T& field, const std::string& path, Limits limits) const {
    using Wide = std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>;
    const Wide type_min = static_cast<Wide>(std::numeric_limits<T>::min());
    const Wide type_max = static_cast<Wide>(std::numeric_limits<T>::max());
    const Wide lo = clamp_limit<Wide>(limits.min, type_min, type_max);
    const Wide hi = clamp_limit<Wide>(limits.max, type_min, type_max);
    bool ok = j.is_number_integer();
    Wide x = 0;
    if (ok && j.is_number_unsigned()) {
      const uint64_t u = j.get<uint64_t>();
      ok = u <= static_cast<uint64_t>(std::numeric_limits<Wide>::max());
      x = static_cast<Wide>(u);
    } else if (ok) {
      const int64_t v = j.get<int64_t>();
      ok = std::is_signed_v<Wide> || v >= 0;
      x = static_cast<Wide>(v);
    }
    if (!ok || x < lo || x > hi) {
      fail(path, fmt::format("expected an integer in [{}, {}]", lo, hi), j);
    }
    field = static_cast<T>(x);
  }

  // A double limit as an integer, clamped to the field type's range [type_min, type_max].
  template <typename W>
  static W clamp_limit(double limit, W type_min, W type_max) {
    if (limit <= static_cast<double>(type_min)) return type_min;
    if (limit >= static_cast<double>(type_max)) return type_max;
    return static_cast<W>(limit);
  }

  const json& node_;
  std::string path_;
  const std::string& origin_;
  std::set<std::string> known_;
};

// --- writing: params -> JSON ------------------------------------------------------------------

class JsonWriter {
 public:
  explicit JsonWriter(json& node) : node_(node) {}

  template <typename T>
  void value(const char* name, const T& field, const char*, Limits = {}, const char* = "") {
    node_[name] = field;
  }
  template <typename E>
  void choice(const char* name, const E& field, const char*,
              std::initializer_list<Choice<E>> choices) {
    for (const Choice<E>& c : choices) {
      if (c.value == field) node_[name] = c.name;
    }
  }
  template <typename S>
  void group(const char* name, S& sub, const char*) {
    json child = json::object();
    JsonWriter writer(child);
    sub.visit(writer);
    node_[name] = std::move(child);
  }

 private:
  json& node_;
};

// --- reference: params -> Markdown table ------------------------------------------------------

// Each struct gets a heading and a table of its own fields; nested structs follow as their own
// sections, so a table never mixes fields of two structs.
class DocWriter {
 public:
  template <typename S>
  static void document(std::string& out, S& params, const std::string& path,
                       const char* description) {
    out += fmt::format("\n### `{}`\n\n{}\n\n", path.empty() ? "(top level)" : path,
                       description);
    out += "| key | type | default | allowed | unit | description |\n";
    out += "|---|---|---|---|---|---|\n";
    DocWriter writer(out, path);
    params.visit(writer);
    for (auto& section : writer.nested_) section();
  }

  template <typename T>
  void value(const char* name, const T& field, const char* description, Limits limits = {},
             const char* unit = "") {
    std::string type, range;
    if constexpr (std::is_same_v<T, bool>) {
      type = "bool";
    } else if constexpr (std::is_same_v<T, std::string>) {
      type = "string";
    } else {
      type = std::is_integral_v<T> ? "integer" : "number";
      if (!std::isinf(limits.min) || !std::isinf(limits.max)) {
        range = fmt::format("[{}, {}]", format_limit(limits.min), format_limit(limits.max));
      }
    }
    row(name, type, json(field).dump(), range, unit, description);
  }
  template <typename E>
  void choice(const char* name, const E& field, const char* description,
              std::initializer_list<Choice<E>> choices) {
    std::string names, current;
    for (const Choice<E>& c : choices) {
      names += fmt::format("{}`{}`", names.empty() ? "" : ", ", c.name);
      if (c.value == field) current = fmt::format("\"{}\"", c.name);
    }
    row(name, "choice", current, names, "", description);
  }
  template <typename S>
  void group(const char* name, S& sub, const char* description) {
    row(name, "object", "", "", "", description);
    const std::string path = join_path(path_, name);
    nested_.push_back([this, &sub, path, description] { document(out_, sub, path, description); });
  }

 private:
  DocWriter(std::string& out, std::string path) : out_(out), path_(std::move(path)) {}
  void row(const char* name, const std::string& type, const std::string& def,
           const std::string& range, const char* unit, const char* description) {
    out_ += fmt::format("| `{}` | {} | {} | {} | {} | {} |\n", join_path(path_, name), type,
                        def.empty() ? "" : "`" + def + "`", range, unit, description);
  }
  std::string& out_;
  std::string path_;
  std::vector<std::function<void()>> nested_;
};

// --- overrides --------------------------------------------------------------------------------

void apply_override(json& doc, const std::string& assignment, const std::string& origin) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw Error(fmt::format("--set '{}': expected PATH=VALUE, e.g. run.seed=7", assignment));
  }
  const std::string path = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {  // not JSON: a plain string, which must be UTF-8 like JSON's
    value = text;
    try {
      (void)value.dump();
    } catch (const json::type_error&) {
      throw Error(fmt::format("{}: --set {}: the value is not UTF-8 text", origin, path));
    }
  }
  json* node = &doc;
  std::string walked;
  std::stringstream parts(path);
  std::string part;
  std::vector<std::string> keys;
  while (std::getline(parts, part, '.')) keys.push_back(part);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].empty()) throw Error(fmt::format("--set '{}': empty path segment", assignment));
    if (!node->is_object()) {
      throw Error(fmt::format("{}: --set {}: {} is not an object", origin, path, walked));
    }
    walked = join_path(walked, keys[i]);
    node = &(*node)[keys[i]];
    if (node->is_null() && i + 1 < keys.size()) *node = json::object();
    if (i + 1 == keys.size()) *node = value;
  }
}

SimConfig read_document(json doc, const std::string& origin,
                        const std::vector<std::string>& overrides, const std::string& base_dir) {
  if (!doc.is_object()) {
    throw Error(fmt::format("{}: the top level must be a JSON object, got {}", origin, shown(doc)));
  }
  for (const std::string& o : overrides) apply_override(doc, o, origin);
  // The preset first (every value starts from it), then the document over it, key by key.
  SimConfig config;
  if (doc.contains("preset")) {
    json only = json::object();
    only["preset"] = doc["preset"];
    JsonReader::read_object(only, config, "", origin);
    config = preset_config(config.preset);
  }
  JsonReader::read_object(doc, config, "", origin);
  if (config.machine.virtualization != Virtualization::kNative && config.hypervisor.vpid &&
      !config.machine.tlb.vpid) {
    throw Error(fmt::format("{}: hypervisor.vpid: the TLBs have no VPID tags (machine.tlb.vpid is "
                            "false, as on a Core 2): set hypervisor.vpid false", origin));
  }
  if (config.preset == HardwarePreset::kCore2_2008 &&
      config.machine.virtualization == Virtualization::kNested) {
    throw Error(fmt::format("{}: machine.virtualization: the core2-2008 preset has no EPT: nested "
                            "paging needs a later CPU (preset \"modern\")", origin));
  }
  if (config.workload.trace.empty()) {
    throw Error(fmt::format("{}: workload.trace: expected a trace file or manifest path", origin));
  }
  namespace fs = std::filesystem;
  fs::path trace(config.workload.trace);
  if (trace.is_relative() && !base_dir.empty()) trace = fs::path(base_dir) / trace;
  config.workload.trace = trace.lexically_normal().string();
  return config;
}

}  // namespace

SimConfig parse_config(const std::string& json_text, const std::string& origin,
                       const std::vector<std::string>& overrides) {
  json doc;
  try {
    doc = json::parse(json_text, nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: not valid JSON: {}", origin, e.what()));
  }
  return read_document(std::move(doc), origin, overrides, "");
}

SimConfig load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("{}: cannot open the config file", path));
  json doc;
  try {
    doc = json::parse(in, nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: not valid JSON: {}", path, e.what()));
  }
  const std::string dir = std::filesystem::path(path).parent_path().string();
  return read_document(std::move(doc), path, overrides, dir.empty() ? "." : dir);
}

std::string config_to_json(const SimConfig& config, int indent) {
  json doc = json::object();
  JsonWriter writer(doc);
  SimConfig copy = config;  // visit() is shared with the reader, so it is not const
  copy.visit(writer);
  return doc.dump(indent);
}

std::string config_defaults_json() { return config_to_json(SimConfig{}); }

std::string config_reference_markdown() {
  std::string out =
      "# Configuration reference\n\n"
      "Generated by `shadowsim config --doc` from the parameter structs themselves (the one place\n"
      "defaults live); a test fails when this file and the code disagree. Regenerate with\n"
      "`build/sim/shadowsim config --doc > docs/config.md`.\n\n"
      "A config is one JSON object (`//` comments allowed). Every key is optional; unknown keys,\n"
      "wrong types and out-of-range values are errors naming the JSON path. `shadowsim config\n"
      "--defaults` prints every default; `shadowsim run CONFIG --set PATH=VALUE` overrides one.\n";
  SimConfig defaults;
  DocWriter::document(out, defaults, "", "The sections of a config.");
  return out;
}

}  // namespace shadowsim
