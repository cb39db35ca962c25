#include "workloads/locality_model.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <unordered_set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "workloads/lackey_import.h"
#include "workloads/trace_manifest.h"
#include "workloads/trace_reader.h"

namespace shadowsim {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kLocalityPageShift = 12;  // 4 KiB pages
constexpr const char* kModelKind = "shadowsim-locality-model";

int bucket_of(uint64_t distance) {  // distance >= 1
  int b = 0;
  while (distance >>= 1) ++b;
  return b;
}

// One side's move-to-front list while fitting a stream: the distinct pages most recent first (at
// most kLocalityMaxDepth), and every page the image has touched, to tell a first touch from a
// re-reference deeper than the list.
struct FitSide {
  std::vector<uint64_t> mtf;
  std::unordered_set<uint64_t> seen;
  uint64_t last = ~uint64_t{0};
  bool run_reuse = false;    // the current page-level reference is a re-reference
  bool run_written = false;  // ... and a write was counted for it

  void reset() {
    mtf.clear();
    seen.clear();
    last = ~uint64_t{0};
    run_reuse = run_written = false;
  }
  // A reference to `page`: counts a page-level reference when the page differs from the last.
  void reference(uint64_t page, bool write, LocalitySide* side) {
    if (page != last) {
      last = page;
      run_written = false;
      ++side->refs;
      const auto it = std::find(mtf.begin(), mtf.end(), page);
      if (it != mtf.end()) {
        const uint64_t distance = static_cast<uint64_t>(it - mtf.begin());  // >= 1: not `last`
        ++side->histogram[static_cast<size_t>(bucket_of(distance))];
        std::rotate(mtf.begin(), it, it + 1);
        run_reuse = true;
      } else {
        if (seen.insert(page).second) {
          ++side->cold;
          run_reuse = false;
        } else {
          ++side->far;
          run_reuse = true;
        }
        if (mtf.size() == kLocalityMaxDepth) mtf.pop_back();
        mtf.insert(mtf.begin(), page);
      }
    }
    if (write && run_reuse && !run_written) {
      ++side->writes;
      run_written = true;
    }
  }
};

std::string file_stem(const std::string& path) {
  std::string name = fs::path(path).filename().string();
  for (const char* ext : {".zst", ".lackey", ".sstx", ".sst", ".json"}) {
    const std::string e = ext;
    if (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0) {
      name.resize(name.size() - e.size());
    }
  }
  return name;
}

json side_json(const LocalitySide& s, bool data) {
  json j{{"refs", s.refs}, {"cold", s.cold}, {"far", s.far}, {"histogram", s.histogram}};
  if (data) j["writes"] = s.writes;
  return j;
}

// Reads one count: a non-negative integer.
uint64_t count_at(const std::string& file, const json& obj, const std::string& where,
                  const char* key) {
  const auto it = obj.find(key);
  if (it == obj.end()) throw Error(fmt::format("{}: {}.{}: missing", file, where, key));
  if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<int64_t>() >= 0)) {
    throw Error(fmt::format("{}: {}.{}: expected a non-negative integer, got {}", file, where,
                            key, it->dump()));
  }
  return it->get<uint64_t>();
}

LocalitySide side_from_json(const std::string& file, const json& j, const std::string& where,
                            bool data) {
  if (!j.is_object()) throw Error(fmt::format("{}: {}: expected an object", file, where));
  LocalitySide s;
  s.refs = count_at(file, j, where, "refs");
  s.cold = count_at(file, j, where, "cold");
  s.far = count_at(file, j, where, "far");
  if (data) s.writes = count_at(file, j, where, "writes");
  const auto h = j.find("histogram");
  if (h == j.end() || !h->is_array() || h->size() != kLocalityBuckets) {
    throw Error(fmt::format("{}: {}.histogram: expected an array of {} counts (distances 1, 2-3, "
                            "4-7, ...)", file, where, kLocalityBuckets));
  }
  uint64_t reuses = s.far;
  for (int b = 0; b < kLocalityBuckets; ++b) {
    const json& v = (*h)[static_cast<size_t>(b)];
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
      throw Error(fmt::format("{}: {}.histogram[{}]: expected a non-negative integer, got {}",
                              file, where, b, v.dump()));
    }
    s.histogram[static_cast<size_t>(b)] = v.get<uint64_t>();
    reuses += s.histogram[static_cast<size_t>(b)];
  }
  if (s.cold > s.refs || reuses != s.refs - s.cold || s.writes > s.refs - s.cold) {
    throw Error(fmt::format("{}: {}: inconsistent counts (refs {}, cold {}, far + histogram {}, "
                            "writes {}); expected refs = cold + far + histogram and writes <= "
                            "refs - cold", file, where, s.refs, s.cold, reuses, s.writes));
  }
  return s;
}

}  // namespace

void LocalitySide::add(const LocalitySide& o) {
  refs += o.refs;
  cold += o.cold;
  far += o.far;
  writes += o.writes;
  for (size_t b = 0; b < histogram.size(); ++b) histogram[b] += o.histogram[b];
}

double LocalityProgram::code_rate() const {
  return instructions ? static_cast<double>(code.reuses()) / static_cast<double>(instructions) : 0;
}
double LocalityProgram::data_rate() const {
  return instructions ? static_cast<double>(data.reuses()) / static_cast<double>(instructions) : 0;
}
double LocalityProgram::write_share() const {
  return data.reuses() ? static_cast<double>(data.writes) / static_cast<double>(data.reuses()) : 0;
}
void LocalityProgram::add(const LocalityProgram& o) {
  images += o.images;
  instructions += o.instructions;
  code.add(o.code);
  data.add(o.data);
}

const LocalityProgram& LocalityModel::lookup(const std::string& comm) const {
  const auto it = programs.find(comm.substr(0, 15));
  return it == programs.end() ? pooled : it->second;
}

std::string comm_of_command(const std::string& command) {
  const size_t start = command.find_first_not_of(" \t");
  if (start == std::string::npos) return {};
  const size_t end = command.find_first_of(" \t", start);
  std::string word = command.substr(start, end == std::string::npos ? std::string::npos
                                                                    : end - start);
  const size_t slash = word.find_last_of('/');
  if (slash != std::string::npos) word = word.substr(slash + 1);
  return word.substr(0, 15);  // TASK_COMM_LEN 16, with the terminating NUL
}

void fit_locality_stream(TraceReader& reader, const std::string& name, uint64_t max_records,
                         LocalityModel* model) {
  if (name.empty()) throw Error(fmt::format("{}: no program name to fit it under", reader.path()));
  LocalityProgram& p = model->programs[name.substr(0, 15)];
  p.name = name.substr(0, 15);
  FitSide code, data;
  std::vector<TraceRecord> batch(4096);
  uint64_t records = 0;
  bool image_open = false;
  while (const size_t n = reader.read(batch.data(), batch.size())) {
    for (size_t i = 0; i < n; ++i) {
      if (max_records && records == max_records) break;
      ++records;
      const TraceRecord& r = batch[i];
      if (!image_open) {
        ++p.images;
        image_open = true;
      }
      p.instructions += instructions_of(r);
      switch (r.kind) {
        case RefKind::kFetch: code.reference(r.va >> kLocalityPageShift, false, &p.code); break;
        case RefKind::kRead: data.reference(r.va >> kLocalityPageShift, false, &p.data); break;
        case RefKind::kWrite: data.reference(r.va >> kLocalityPageShift, true, &p.data); break;
        case RefKind::kEvent:
          if (reader.events()[r.va].kind == OsEventKind::kExec) {  // a new image, a new mm
            code.reset();
            data.reset();
            image_open = false;
          }
          break;
      }
    }
    if (max_records && records == max_records) break;
  }
}

void fit_locality(const std::string& input, const LocalityFitOptions& options,
                  LocalityModel* model) {
  if (fs::is_directory(input)) {
    static const std::regex kName(R"((\d{1,10})\.(\d{1,10})(\.lackey)?(\.zst)?)");
    std::vector<fs::path> names;
    for (const fs::directory_entry& e : fs::directory_iterator(input)) names.push_back(e.path());
    std::sort(names.begin(), names.end());
    size_t logs = 0;
    for (const fs::path& p : names) {
      if (!fs::is_regular_file(p) || !std::regex_match(p.filename().string(), kName)) continue;
      const LackeyLog log = read_lackey_header(p.string());
      std::string name = comm_of_command(log.command);
      if (name.empty()) name = file_stem(p.string());
      TraceOpenOptions o;
      o.format = TraceFormat::kLackey;
      auto reader = open_trace(p.string(), o);
      fit_locality_stream(*reader, name, options.max_records, model);
      ++logs;
    }
    if (!logs) {
      throw Error(fmt::format("{}: no lackey logs named PID.N (or PID.N.zst); expected the folder "
                              "of a valgrind --log-file=DIR/%p.%n recording", input));
    }
  } else if (trace_file_type(input).format == TraceFormat::kLackey) {
    const LackeyLog log = read_lackey_header(input);
    std::string name = comm_of_command(log.command);
    if (name.empty()) name = file_stem(input);
    auto reader = open_trace(input);
    fit_locality_stream(*reader, name, options.max_records, model);
  } else {
    const TraceManifest m = load_workload(input);
    for (const TraceStream& s : m.streams) {
      std::string name = !s.name.empty() ? comm_of_command(s.name)
                         : !s.command.empty() ? comm_of_command(s.command)
                                              : file_stem(s.path);
      auto reader = open_trace(s.path);
      fit_locality_stream(*reader, name, options.max_records, model);
    }
  }
  model->sources.push_back(fs::path(input).filename().string() +
                           (options.max_records ? fmt::format(" (first {} records per image)",
                                                              options.max_records)
                                                : std::string()));
  model->pooled = LocalityProgram{};
  model->pooled.name = "(pooled)";
  for (const auto& [name, p] : model->programs) model->pooled.add(p);
}

void save_locality_model(const LocalityModel& model, const std::string& path) {
  json programs = json::object();
  for (const auto& [name, p] : model.programs) {
    programs[name] = json{{"images", p.images},
                          {"instructions", p.instructions},
                          {"code", side_json(p.code, false)},
                          {"data", side_json(p.data, true)},
                          // Derived, for reading; recomputed from the counts on load.
                          {"code_refs_per_kiloinstruction", 1000 * p.code_rate()},
                          {"data_refs_per_kiloinstruction", 1000 * p.data_rate()},
                          {"write_share", p.write_share()}};
  }
  json doc{{"version", 1},
           {"kind", kModelKind},
           {"buckets", kLocalityBuckets},
           {"max_depth", kLocalityMaxDepth},
           {"sources", model.sources},
           {"programs", std::move(programs)}};
  std::ofstream out(path, std::ios::trunc);
  if (!out) throw Error(fmt::format("{}: cannot write", path));
  // Program names come from recordings and need not be UTF-8: invalid bytes become U+FFFD.
  out << doc.dump(1, ' ', false, json::error_handler_t::replace) << '\n';
  if (!out) throw Error(fmt::format("{}: write failed", path));
}

LocalityModel load_locality_model(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("{}: cannot read the locality model", path));
  std::stringstream text;
  text << in.rdbuf();
  json doc;
  try {
    doc = json::parse(text.str());
  } catch (const json::exception& e) {  // a syntax error, or a number out of range
    throw Error(fmt::format("{}: not valid JSON: {}", path, e.what()));
  }
  if (!doc.is_object()) throw Error(fmt::format("{}: expected a JSON object", path));
  // Not doc.value("kind", ...): it throws nlohmann's type_error for a kind that is not a string.
  const auto kind = doc.find("kind");
  if (kind == doc.end() || !kind->is_string() || kind->get<std::string>() != kModelKind) {
    throw Error(fmt::format("{}: kind: expected \"{}\" (made by shadowsim trace fit-locality)",
                            path, kModelKind));
  }
  if (count_at(path, doc, "(top level)", "version") != 1) {
    throw Error(fmt::format("{}: version: expected 1", path));
  }
  if (count_at(path, doc, "(top level)", "buckets") != kLocalityBuckets ||
      count_at(path, doc, "(top level)", "max_depth") != kLocalityMaxDepth) {
    throw Error(fmt::format("{}: buckets/max_depth: expected {} and {} (fitted by another "
                            "version?)", path, kLocalityBuckets, kLocalityMaxDepth));
  }
  LocalityModel m;
  if (const auto s = doc.find("sources"); s != doc.end() && s->is_array()) {
    for (const json& v : *s) {
      if (v.is_string()) m.sources.push_back(v.get<std::string>());
    }
  }
  const auto programs = doc.find("programs");
  if (programs == doc.end() || !programs->is_object() || programs->empty()) {
    throw Error(fmt::format("{}: programs: expected a non-empty object of fitted programs", path));
  }
  m.pooled.name = "(pooled)";
  for (auto it = programs->begin(); it != programs->end(); ++it) {
    const std::string where = "programs." + it.key();
    if (!it->is_object()) throw Error(fmt::format("{}: {}: expected an object", path, where));
    if (it.key().empty() || it.key().size() > 15) {
      throw Error(fmt::format("{}: {}: expected a name of 1..15 characters (a perf comm)", path,
                              where));
    }
    LocalityProgram p;
    p.name = it.key();
    p.images = count_at(path, *it, where, "images");
    p.instructions = count_at(path, *it, where, "instructions");
    const auto code = it->find("code");
    const auto data = it->find("data");
    if (code == it->end() || data == it->end()) {
      throw Error(fmt::format("{}: {}: expected 'code' and 'data'", path, where));
    }
    p.code = side_from_json(path, *code, where + ".code", false);
    p.data = side_from_json(path, *data, where + ".data", true);
    m.pooled.add(p);
    m.programs[p.name] = p;
  }
  return m;
}

// ---- the generator ----

LocalityGenerator::LocalityGenerator(uint64_t seed, uint32_t stream)
    : rng_(seed * 0x9e3779b97f4a7c15ULL + stream + 1) {}

void LocalityGenerator::to_front(std::vector<uint64_t>* list, size_t index) {
  std::rotate(list->begin(), list->begin() + static_cast<std::ptrdiff_t>(index),
              list->begin() + static_cast<std::ptrdiff_t>(index) + 1);
}

void LocalityGenerator::touch_page(std::vector<uint64_t>* list, uint64_t page, bool writable,
                                   bool keep) {
  for (size_t i = 0; i < list->size(); ++i) {
    if (((*list)[i] >> 1) == page) {
      const bool was = ((*list)[i] & 1) != 0;
      (*list)[i] = page << 1 | ((writable || (keep && was)) ? 1 : 0);
      to_front(list, i);
      return;
    }
  }
  if (list->size() == kLocalityMaxDepth) list->pop_back();
  list->insert(list->begin(), page << 1 | (writable ? 1 : 0));
}

void LocalityGenerator::forget(std::vector<uint64_t>* list, uint64_t from, uint64_t to) {
  if (to <= from) return;
  const uint64_t first = from >> kLocalityPageShift;
  const uint64_t last = (to - 1) >> kLocalityPageShift;
  list->erase(std::remove_if(list->begin(), list->end(),
                             [&](uint64_t e) { return (e >> 1) >= first && (e >> 1) <= last; }),
              list->end());
}

void LocalityGenerator::touch(RefKind kind, uint64_t va) {
  const uint64_t page = va >> kLocalityPageShift;
  switch (kind) {
    case RefKind::kFetch: touch_page(&code_, page, false, false); break;
    case RefKind::kWrite: touch_page(&data_, page, true, false); break;
    case RefKind::kRead: touch_page(&data_, page, false, true); break;
    case RefKind::kEvent: break;
  }
}

void LocalityGenerator::event(const OsEvent& e) {
  auto forget_range = [&](uint64_t addr, uint64_t length) {
    const uint64_t end = addr + length < addr ? ~uint64_t{0} : addr + length;
    forget(&code_, addr, end);
    forget(&data_, addr, end);
  };
  switch (e.kind) {
    case OsEventKind::kCreate:
      if (e.how == StreamOrigin::kFork) {  // COW: every private writable page write-protected
        for (uint64_t& entry : data_) entry &= ~uint64_t{1};
      }
      break;
    case OsEventKind::kExec:
    case OsEventKind::kExit:
      code_.clear();
      data_.clear();
      brk_ = 0;
      break;
    case OsEventKind::kMmap:
    case OsEventKind::kMunmap:
    case OsEventKind::kMprotect: forget_range(e.addr, e.length); break;
    case OsEventKind::kMremap:
      forget_range(e.addr, e.length);
      forget_range(e.new_addr, e.new_length);
      break;
    case OsEventKind::kBrk:
      if (brk_ && e.addr < brk_) forget_range(e.addr, brk_ - e.addr);
      brk_ = e.addr;
      break;
    case OsEventKind::kSwitch:
    case OsEventKind::kWait: break;
  }
}

size_t LocalityGenerator::pick_index(const LocalitySide& side, size_t size) {
  if (size <= 1) return 0;
  const uint64_t total = side.reuses();
  if (total == 0) return 1 + rng_.below(size - 1);
  uint64_t r = rng_.below(total);
  for (int b = 0; b < kLocalityBuckets; ++b) {
    const uint64_t n = side.histogram[static_cast<size_t>(b)];
    if (r >= n) {
      r -= n;
      continue;
    }
    const uint64_t lo = uint64_t{1} << b;
    const uint64_t hi = std::min<uint64_t>(uint64_t{1} << (b + 1), size);
    if (lo >= size) return size - 1;  // deeper than the pages known: the least recent one
    return static_cast<size_t>(lo + rng_.below(hi - lo));
  }
  return size - 1;  // far: the least recent page known
}

size_t LocalityGenerator::generate(uint64_t instructions, uint32_t cap,
                                   std::vector<TraceRecord>* out, uint64_t* rest,
                                   double* modelled) {
  *rest = instructions;
  *modelled = 0;
  if (!program_ || instructions == 0 || (code_.empty() && data_.empty())) return 0;
  const double code_rate = program_->code_rate();
  const double data_rate = program_->data_rate();
  const double expected = static_cast<double>(instructions) * (code_rate + data_rate);
  *modelled = expected;
  if (expected <= 0 || cap == 0) return 0;
  uint64_t n;
  if (expected >= static_cast<double>(cap)) {
    n = cap;
  } else {
    n = static_cast<uint64_t>(expected);
    if (rng_.chance(expected - static_cast<double>(n))) ++n;
  }
  n = std::min<uint64_t>(n, instructions);  // each fetch record stands for an instruction
  if (n == 0) return 0;
  const double code_share = code_rate / (code_rate + data_rate);
  const double write_share = program_->write_share();
  const size_t first = out->size();
  uint64_t fetches = 0;
  for (uint64_t k = 0; k < n; ++k) {
    bool fetch = rng_.chance(code_share);
    if (fetch && code_.empty()) fetch = false;
    if (!fetch && data_.empty()) fetch = true;
    TraceRecord r{};
    if (fetch) {
      const size_t i = pick_index(program_->code, code_.size());
      to_front(&code_, i);
      // Assumption: 4-byte fetches at 4-byte offsets (never crossing the page).
      r.kind = RefKind::kFetch;
      r.size = 4;
      r.va = (code_[0] >> 1 << kLocalityPageShift) + rng_.below(1024) * 4;
      ++fetches;
    } else {
      const size_t i = pick_index(program_->data, data_.size());
      to_front(&data_, i);
      const bool writable = (data_[0] & 1) != 0;
      const bool write = writable && rng_.chance(write_share);
      // Assumption: 8-byte data references at 8-byte offsets (never crossing the page).
      r.kind = write ? RefKind::kWrite : RefKind::kRead;
      r.size = 8;
      r.va = (data_[0] >> 1 << kLocalityPageShift) + rng_.below(512) * 8;
    }
    out->push_back(r);
  }
  // The instructions left once the fetch records have stood for theirs, spread evenly: each
  // synthetic record after an equal share, the rest before the record that follows.
  const uint64_t budget = instructions - fetches;
  const uint64_t per = std::min<uint64_t>(budget / (n + 1), UINT32_MAX);
  for (size_t k = first; k < out->size(); ++k) (*out)[k].gap = static_cast<uint32_t>(per);
  *rest = budget - per * n;
  return static_cast<size_t>(n);
}

}  // namespace shadowsim
