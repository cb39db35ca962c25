// _shadowsim: the C++ half of the Python package (python/shadowsim/, docs/python.md). It stays
// thin: it runs a config and hands back the exact texts `shadowsim run -o` writes (stats.json,
// stats.csv) plus the summary, resolves configs, and reads traces into flat buffers; the Python
// side parses and shapes them.
//
// Threads: SystemC's kernel is process-global, so simulations are serialised by one mutex. The
// GIL is released before waiting for that mutex and stays released for the whole C++ part
// (config parsing, elaboration, simulation, result text), so other Python threads keep running.
// Each System makes a fresh simulation context (models/timed/systemc_context.h), which is what
// lets one process run any number of simulations one after the other.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "common/error.h"
#include "config.h"
#include "stats_output.h"
#include "system.h"
#include "version.h"
#include "workloads/os_event.h"
#include "workloads/trace_manifest.h"
#include "workloads/trace_reader.h"
#include "workloads/trace_record.h"

namespace py = pybind11;

namespace {

std::mutex& simulation_mutex() {
  static std::mutex mutex;
  return mutex;
}

struct RunTexts {
  std::string stats_json;
  std::string stats_csv;
  std::string summary;
  std::string timeline;  // run.timeline: trace-event JSON; empty otherwise
};

shadowsim::SimConfig resolve(const std::string& source, bool is_path, const std::string& origin,
                             const std::vector<std::string>& overrides) {
  return is_path ? shadowsim::load_config(source, overrides)
                 : shadowsim::parse_config(source, origin, overrides);
}

// source: a config file's path (is_path) or JSON text; origin names JSON text in messages;
// config_file is what stats.json records as "config_file".
py::dict run(const std::string& source, bool is_path, const std::string& origin,
             const std::string& config_file, const std::vector<std::string>& overrides) {
  RunTexts texts;
  {
    py::gil_scoped_release no_gil;
    const shadowsim::SimConfig config = resolve(source, is_path, origin, overrides);
    std::lock_guard<std::mutex> lock(simulation_mutex());
    shadowsim::System system(config, config_file);
    system.run();
    texts.stats_json = shadowsim::stats_json(system.stats(), system.record());
    texts.stats_csv = shadowsim::stats_csv(system.stats());
    texts.summary = system.summary();
    texts.timeline = system.timeline_json();
  }
  py::dict out;
  out["stats_json"] = texts.stats_json;
  out["stats_csv"] = texts.stats_csv;
  out["summary"] = texts.summary;
  out["timeline"] = texts.timeline;
  return out;
}

std::string resolve_json(const std::string& source, bool is_path, const std::string& origin,
                         const std::vector<std::string>& overrides) {
  py::gil_scoped_release no_gil;
  return shadowsim::config_to_json(resolve(source, is_path, origin, overrides));
}

// A numpy uint8 array over `records`' bytes, owning them (no copy); Python views it with the
// TraceRecord dtype.
py::array records_array(std::vector<shadowsim::TraceRecord>&& records) {
  auto* owned = new std::vector<shadowsim::TraceRecord>(std::move(records));
  py::capsule free_when_done(owned, [](void* p) {
    delete static_cast<std::vector<shadowsim::TraceRecord>*>(p);
  });
  return py::array_t<uint8_t>({static_cast<py::ssize_t>(owned->size() * sizeof(*owned->data()))},
                              reinterpret_cast<const uint8_t*>(owned->data()), free_when_done);
}

py::array events_array(const std::vector<shadowsim::OsEvent>& events) {
  // Columns in the order of shadowsim.EVENT_DTYPE (python/shadowsim/traces.py).
  py::array_t<uint64_t> out({static_cast<py::ssize_t>(events.size()), py::ssize_t{10}});
  auto a = out.mutable_unchecked<2>();
  for (size_t i = 0; i < events.size(); ++i) {
    const shadowsim::OsEvent& e = events[i];
    const py::ssize_t r = static_cast<py::ssize_t>(i);
    a(r, 0) = static_cast<uint64_t>(e.kind);
    a(r, 1) = static_cast<uint64_t>(e.how);
    a(r, 2) = e.prot;
    a(r, 3) = e.file ? 1 : 0;
    a(r, 4) = e.flags;
    a(r, 5) = e.stream;
    a(r, 6) = e.addr;
    a(r, 7) = e.length;
    a(r, 8) = e.new_addr;
    a(r, 9) = e.new_length;
  }
  return std::move(out);
}

// Reads one trace stream: its records (event records' `va` renumbered to index the stream's whole
// event list, not the batch's) and its events. limit 0: the whole stream.
py::tuple read_trace(const std::string& path, uint64_t limit, const std::string& format,
                     bool fetches, bool events) {
  static_assert(sizeof(shadowsim::TraceRecord) == 16 &&
                    offsetof(shadowsim::TraceRecord, size) == 1 &&
                    offsetof(shadowsim::TraceRecord, gap) == 4 &&
                    offsetof(shadowsim::TraceRecord, va) == 8,
                "python/shadowsim/traces.py's TRACE_DTYPE mirrors this layout");
  std::vector<shadowsim::TraceRecord> records;
  std::vector<shadowsim::OsEvent> event_list;
  std::string opened_path;
  {
    py::gil_scoped_release no_gil;
    shadowsim::TraceOpenOptions options;
    options.format = shadowsim::trace_format_from_string(format);
    options.fetches = fetches;
    options.events = events;
    std::unique_ptr<shadowsim::TraceReader> reader = shadowsim::open_trace(path, options);
    constexpr size_t kBatch = 1 << 16;
    while (limit == 0 || records.size() < limit) {
      size_t want = kBatch;
      if (limit != 0) want = static_cast<size_t>(std::min<uint64_t>(want, limit - records.size()));
      const size_t start = records.size();
      records.resize(start + want);
      const size_t n = reader->read(records.data() + start, want);
      records.resize(start + n);
      if (n == 0) break;
      const std::vector<shadowsim::OsEvent>& batch_events = reader->events();
      const uint64_t base = event_list.size();
      bool any_event = false;
      for (size_t i = start; i < start + n; ++i) {
        if (records[i].kind == shadowsim::RefKind::kEvent) {
          records[i].va += base;
          any_event = true;
        }
      }
      if (any_event) event_list.insert(event_list.end(), batch_events.begin(), batch_events.end());
    }
    records.shrink_to_fit();
  }
  return py::make_tuple(records_array(std::move(records)), events_array(event_list));
}

// The streams of a workload (a manifest, or a single trace as one stream).
py::list workload_streams(const std::string& path) {
  shadowsim::TraceManifest manifest;
  {
    py::gil_scoped_release no_gil;
    manifest = shadowsim::load_workload(path);
  }
  py::list out;
  for (const shadowsim::TraceStream& s : manifest.streams) {
    py::dict d;
    d["id"] = s.id;
    d["file"] = s.file;
    d["path"] = s.path;
    d["parent"] = s.parent ? py::cast(*s.parent) : py::none();
    d["created"] = shadowsim::to_string(s.created);
    d["name"] = s.name;
    d["command"] = s.command;
    out.append(std::move(d));
  }
  return out;
}

py::list names(const char* (*name_of)(uint8_t), int count) {
  py::list out;
  for (int i = 0; i < count; ++i) out.append(name_of(static_cast<uint8_t>(i)));
  return out;
}

}  // namespace

PYBIND11_MODULE(_shadowsim, m) {
  // SystemC prints its banner when the first simulation context is made; a user who set the
  // variable keeps their choice.
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  m.doc() = "C++ core of the shadowsim Python package; use the `shadowsim` package instead.";
  m.attr("__version__") = shadowsim::kVersion;
  m.attr("git_hash") = shadowsim::kGitHash;
  py::register_exception<shadowsim::Error>(m, "Error", PyExc_RuntimeError);

  m.def("run", &run, py::arg("source"), py::arg("is_path"), py::arg("origin"),
        py::arg("config_file"), py::arg("overrides"),
        "Simulates one config; returns {'stats_json', 'stats_csv', 'summary'} texts.");
  m.def("resolve", &resolve_json, py::arg("source"), py::arg("is_path"), py::arg("origin"),
        py::arg("overrides"), "The fully resolved config as JSON text.");
  m.def("defaults_json", [] { return shadowsim::config_defaults_json(); },
        "Every parameter's default as JSON text.");
  m.def("read_trace", &read_trace, py::arg("path"), py::arg("limit"), py::arg("format"),
        py::arg("fetches"), py::arg("events"),
        "(record bytes as uint8 array, events as an N x 10 uint64 array)");
  m.def("workload_streams", &workload_streams, py::arg("path"),
        "The streams of a manifest or single trace, as dicts.");
  m.attr("ref_kinds") = names(
      [](uint8_t k) { return shadowsim::to_string(static_cast<shadowsim::RefKind>(k)); }, 4);
  m.attr("event_kinds") = names(
      [](uint8_t k) { return shadowsim::to_string(static_cast<shadowsim::OsEventKind>(k)); },
      shadowsim::kOsEventKinds);
  m.attr("stream_origins") = names(
      [](uint8_t k) { return shadowsim::to_string(static_cast<shadowsim::StreamOrigin>(k)); }, 4);
}
