#include "workloads/trace_manifest.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "workloads/trace_reader.h"

namespace shadowsim {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr StreamOrigin kOrigins[] = {StreamOrigin::kInitial, StreamOrigin::kFork,
                                     StreamOrigin::kVfork, StreamOrigin::kThread};

const char* type_name(const json& j) {
  if (j.is_number_integer()) return "an integer";
  if (j.is_number()) return "a number";
  return j.type_name();
}

std::string shown(const json& j) {
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 40 ? s.substr(0, 40) + "..." : s;
}

// Checks one JSON object against its keys; every message carries the file and the JSON path.
class ObjectReader {
 public:
  ObjectReader(const std::string& file, const json& j, std::string where)
      : file_(file), j_(j), where_(std::move(where)) {
    if (!j.is_object()) fail(where_, fmt::format("expected an object, got {}", type_name(j)));
  }

  [[noreturn]] void fail(const std::string& at, const std::string& what) const {
    throw Error(fmt::format("{}: {}: {}", file_, at.empty() ? "(top level)" : at, what));
  }
  std::string at(const char* key) const { return where_.empty() ? key : where_ + "." + key; }

  const json* get(const char* key, bool required) {
    seen_.insert(key);
    auto it = j_.find(key);
    if (it == j_.end()) {
      if (required) fail(at(key), "missing; expected it to be present");
      return nullptr;
    }
    return &*it;
  }

  std::string string(const char* key, bool required, const char* expected = "a string") {
    const json* v = get(key, required);
    if (!v) return {};
    if (!v->is_string()) fail(at(key), fmt::format("expected {}, got {}", expected, type_name(*v)));
    return v->get<std::string>();
  }

  // Absent or null: nullopt.
  std::optional<uint64_t> unsigned_int(const char* key, bool required, uint64_t max,
                                       bool nullable = false) {
    const json* v = get(key, required);
    if (!v || (nullable && v->is_null())) return std::nullopt;
    const bool ok = v->is_number_unsigned() || (v->is_number_integer() && v->get<int64_t>() >= 0);
    if (!ok || v->get<uint64_t>() > max) {
      fail(at(key), fmt::format("expected an integer 0..{}{}, got {}", max,
                                nullable ? " or null" : "", shown(*v)));
    }
    return v->get<uint64_t>();
  }

  void no_unknown_keys(const char* allowed) const {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (!seen_.count(it.key())) {
        fail(at(it.key().c_str()), fmt::format("unknown key; expected only {}", allowed));
      }
    }
  }

 private:
  const std::string& file_;
  const json& j_;
  std::string where_;
  std::set<std::string> seen_;
};

std::string resolve(const std::string& manifest_path, const std::string& file) {
  const fs::path f(file);
  if (f.is_absolute()) return file;
  return (fs::path(manifest_path).parent_path() / f).lexically_normal().string();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open the manifest for reading", path));
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw Error(fmt::format("{}: read error", path));
  return s.str();
}

}  // namespace

const TraceStream* TraceManifest::find(uint32_t id) const {
  for (const TraceStream& s : streams) {
    if (s.id == id) return &s;
  }
  return nullptr;
}

uint32_t TraceManifest::recorded_cpus() const {
  if (!has_cpus()) return 0;
  if (cpus) return *cpus;
  uint32_t n = 0;
  for (const TraceStream& s : streams) n = std::max(n, *s.cpu + 1);
  return n;
}

TraceManifest parse_manifest(const std::string& json_text, const std::string& path,
                             bool check_files) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::parse_error& e) {
    // e.byte is the 1-based offset of the offending byte; name the line too.
    const auto bad = json_text.begin() + std::min(e.byte ? e.byte - 1 : 0, json_text.size());
    const size_t line = 1 + static_cast<size_t>(std::count(json_text.begin(), bad, '\n'));
    throw Error(fmt::format("{}:{}: not valid JSON ({})", path, line, e.what()));
  } catch (const json::exception& e) {  // a number out of range (1e400)
    throw Error(fmt::format("{}: not valid JSON: {}", path, e.what()));
  }
  TraceManifest m;
  m.path = path;
  ObjectReader top(path, doc, "");
  const uint64_t version = *top.unsigned_int("version", true, UINT32_MAX);
  if (version != TraceManifest::kVersion) {
    top.fail("version", fmt::format("manifest version {}; this build reads version {}", version,
                                     TraceManifest::kVersion));
  }
  const std::string mode = top.string("paging_mode", true, "one of 32bit, pae, 4level, 5level");
  try {
    m.paging_mode = paging_mode_from_string(mode);
  } catch (const Error&) {
    top.fail("paging_mode", fmt::format("expected one of 32bit, pae, 4level, 5level, got \"{}\"",
                                        mode));
  }
  m.name = top.string("name", false);
  m.command = top.string("command", false);
  const json* streams = top.get("streams", true);
  if (!streams->is_array() || streams->empty()) {
    top.fail("streams", fmt::format("expected a non-empty array of streams, got {}",
                                    streams->is_array() ? "an empty array" : type_name(*streams)));
  }
  constexpr uint32_t kMaxCpus = 1u << 16;
  if (auto cpus = top.unsigned_int("cpus", false, kMaxCpus)) {
    if (*cpus == 0) top.fail("cpus", fmt::format("expected an integer 1..{}, got 0", kMaxCpus));
    m.cpus = static_cast<uint32_t>(*cpus);
  }
  top.no_unknown_keys("version, paging_mode, name, command, cpus, streams");

  std::map<uint32_t, size_t> index_of_id;
  for (size_t i = 0; i < streams->size(); ++i) {
    const std::string where = fmt::format("streams[{}]", i);
    ObjectReader r(path, (*streams)[i], where);
    TraceStream s;
    s.id = static_cast<uint32_t>(*r.unsigned_int("id", true, UINT32_MAX));
    if (!index_of_id.emplace(s.id, i).second) {
      r.fail(r.at("id"), fmt::format("id {} is already used by streams[{}]; expected unique ids",
                                     s.id, index_of_id[s.id]));
    }
    s.file = r.string("file", true, "a file name relative to the manifest");
    if (s.file.empty()) r.fail(r.at("file"), "expected a file name, got \"\"");
    s.path = resolve(path, s.file);
    if (auto parent = r.unsigned_int("parent", false, UINT32_MAX, true)) {
      s.parent = static_cast<uint32_t>(*parent);
    }
    const std::string created =
        r.string("created", false, "one of initial, fork, vfork, thread");
    if (!created.empty()) {
      bool known = false;
      for (StreamOrigin o : kOrigins) {
        if (created == to_string(o)) {
          s.created = o;
          known = true;
        }
      }
      if (!known) {
        r.fail(r.at("created"), fmt::format("expected one of initial, fork, vfork, thread, got "
                                            "\"{}\"", created));
      }
    }
    if (s.parent && s.created == StreamOrigin::kInitial) {
      r.fail(created.empty() ? r.at("parent") : r.at("created"),
             "a stream with a parent was created by fork, vfork or thread; expected \"created\" "
             "to say which");
    }
    if (!s.parent && s.created != StreamOrigin::kInitial) {
      r.fail(r.at("parent"), fmt::format("a stream created by {} needs its parent; expected the "
                                         "parent's id", to_string(s.created)));
    }
    s.name = r.string("name", false);
    s.command = r.string("command", false);
    if (auto cpu = r.unsigned_int("cpu", false, kMaxCpus - 1)) {
      s.cpu = static_cast<uint32_t>(*cpu);
      if (m.cpus && *s.cpu >= *m.cpus) {
        r.fail(r.at("cpu"), fmt::format("CPU {} of a recording on {} CPUs (\"cpus\"); expected "
                                        "0..{}", *s.cpu, *m.cpus, *m.cpus - 1));
      }
    }
    if (i > 0 && s.cpu.has_value() != m.streams.front().cpu.has_value()) {
      r.fail(s.cpu ? r.at("cpu") : where,
             fmt::format("{}; expected every stream to have \"cpu\" or none",
                         s.cpu ? "has a CPU but streams[0] has none"
                               : "has no \"cpu\" but streams[0] has one"));
    }
    r.no_unknown_keys("id, file, parent, created, name, command, cpu");
    if (check_files && !fs::is_regular_file(s.path)) {
      r.fail(r.at("file"), fmt::format("\"{}\" (resolved: {}) does not exist or is not a file",
                                       s.file, s.path));
    }
    m.streams.push_back(std::move(s));
  }

  if (m.cpus && !m.has_cpus()) {
    top.fail("cpus", "the recording's CPU count without per-stream CPUs; expected \"cpu\" in "
                     "every stream too, or no \"cpus\"");
  }

  // Parents exist and the creation graph has no cycle (each stream's ancestry ends at an
  // initial stream within streams.size() steps).
  for (size_t i = 0; i < m.streams.size(); ++i) {
    const TraceStream& s = m.streams[i];
    if (!s.parent) continue;
    const std::string at = fmt::format("streams[{}].parent", i);
    if (!index_of_id.count(*s.parent)) {
      throw Error(fmt::format("{}: {}: no stream has id {}; expected the id of another stream",
                              path, at, *s.parent));
    }
    const TraceStream* p = &s;
    for (size_t steps = 0; p->parent; ++steps) {
      if (steps == m.streams.size()) {
        throw Error(fmt::format("{}: {}: stream {} is its own ancestor; expected the creation "
                                "chain to end at an initial stream", path, at, s.id));
      }
      p = &m.streams[index_of_id[*p->parent]];
    }
  }
  return m;
}

TraceManifest load_manifest(const std::string& path) {
  return parse_manifest(read_file(path), path);
}

std::string manifest_to_json(const TraceManifest& m) {
  json doc = json::object();
  doc["version"] = TraceManifest::kVersion;
  doc["paging_mode"] = to_string(m.paging_mode);
  if (!m.name.empty()) doc["name"] = m.name;
  if (!m.command.empty()) doc["command"] = m.command;
  if (m.cpus) doc["cpus"] = *m.cpus;
  json streams = json::array();
  for (const TraceStream& s : m.streams) {
    json j = json::object();
    j["id"] = s.id;
    j["file"] = s.file;
    j["parent"] = s.parent ? json(*s.parent) : json(nullptr);
    j["created"] = to_string(s.created);
    if (!s.name.empty()) j["name"] = s.name;
    if (!s.command.empty()) j["command"] = s.command;
    if (s.cpu) j["cpu"] = *s.cpu;
    streams.push_back(std::move(j));
  }
  doc["streams"] = std::move(streams);
  // Names and commands come from recordings (a perf comm, a lackey Command: line) and need not
  // be UTF-8: invalid bytes are written as U+FFFD rather than failing the whole import.
  return doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

void save_manifest(const TraceManifest& manifest, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << manifest_to_json(manifest);
  out.close();
  if (!out) throw Error(fmt::format("{}: cannot write the manifest", path));
}

bool is_manifest_file(const std::string& path) {
  if (fs::path(path).extension() == ".json") return true;
  std::ifstream in(path, std::ios::binary);
  char c;
  while (in.get(c)) {
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return c == '{';
  }
  return false;
}

TraceManifest load_workload(const std::string& path, PagingMode mode) {
  if (!fs::exists(path)) throw Error(fmt::format("{}: no such file", path));
  if (is_manifest_file(path)) return load_manifest(path);
  detect_trace_type(path);  // throws for a file that is neither
  TraceManifest m;
  m.paging_mode = mode;
  TraceStream s;
  s.file = s.path = path;
  s.name = fs::path(path).filename().string();
  m.streams.push_back(std::move(s));
  return m;
}

}  // namespace shadowsim
