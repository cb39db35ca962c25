// A page-level locality model of real programs, fitted to lackey recordings, and the generator
// that uses it to put synthetic memory references between the recorded events of an
// event-granularity workload (the perf import of a kernel build: docs/trace-format.md, "Locality
// model"). What is modelled is what a TLB sees: the sequence of *pages* a program's fetches and
// data references move between, as LRU stack distances, and how many such page changes it makes
// per instruction. Everything within a page (and so every reference that hits the page the
// previous one was on) is left out: it cannot miss in a TLB.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/rng.h"
#include "workloads/os_event.h"
#include "workloads/trace_record.h"

namespace shadowsim {

class TraceReader;

// Stack distances are counted in power-of-two buckets: bucket b holds distances [2^b, 2^(b+1)),
// b = 0..kLocalityBuckets-1. Distance d means d other pages of the same side (code or data) were
// referenced since this page was (1: the page before the current one). A re-reference deeper than
// kLocalityMaxDepth is "far". Assumption: 4,096 pages is above every TLB modelled (the largest,
// Skylake's STLB, holds 1,536 4 KiB entries), so deeper reuse misses in any of them alike.
constexpr int kLocalityBuckets = 12;
constexpr uint32_t kLocalityMaxDepth = 1u << kLocalityBuckets;

// Counts of one side (code: fetches; data: reads and writes) of a program.
struct LocalitySide {
  uint64_t refs = 0;    // page-level references: a reference to another page than the previous
                        // one of this side (first touches and far ones included)
  uint64_t cold = 0;    // of which first touches of a page (in this process image)
  uint64_t far = 0;     // of which re-references deeper than kLocalityMaxDepth
  uint64_t writes = 0;  // data: page-level references with a write among them (cold included)
  std::array<uint64_t, kLocalityBuckets> histogram{};  // re-references by distance bucket

  uint64_t reuses() const { return refs - cold; }  // histogram total + far
  void add(const LocalitySide& o);
};

// The fitted counts of one program (all its process images in the recordings).
struct LocalityProgram {
  std::string name;           // as perf's comm would show it: basename, at most 15 characters
  uint64_t images = 0;        // process images (lackey logs or exec-separated stream parts)
  uint64_t instructions = 0;  // in those images
  LocalitySide code, data;

  // Re-references (not first touches) per instruction: what the generator emits between events.
  double code_rate() const;
  double data_rate() const;
  // Share of the data re-references that write (first touches excluded).
  double write_share() const;
  void add(const LocalityProgram& o);
};

struct LocalityModel {
  std::map<std::string, LocalityProgram> programs;  // by name
  LocalityProgram pooled;     // every program together: used for a name not fitted
  std::vector<std::string> sources;  // what it was fitted from

  // The program of this (perf comm) name, or `pooled`.
  const LocalityProgram& lookup(const std::string& comm) const;
};

struct LocalityFitOptions {
  uint64_t max_records = 0;  // per process image: fit only its first N records (0: all)
};

// Fits a model to `input`: a folder of a multi-process lackey recording (PID.N[.zst] logs: one
// image per log, named by its Command: header), a single lackey log (.lackey[.zst]; its Command:
// header names it, else the file name), or any trace or manifest open_trace/load_workload reads
// (a stream is named by the manifest's name for it, else its command, else the file name; its
// exec events start new images of the same name). Several inputs add up.
void fit_locality(const std::string& input, const LocalityFitOptions& options,
                  LocalityModel* model);
// The program name perf would print for a command line: the first word's basename, cut to 15
// characters (TASK_COMM_LEN - 1).
std::string comm_of_command(const std::string& command);

// Fits one stream (one process image per exec) under `name`; exposed for the tests.
void fit_locality_stream(TraceReader& reader, const std::string& name, uint64_t max_records,
                         LocalityModel* model);

// JSON: {"version": 1, "kind": "shadowsim-locality-model", "max_depth": 4096, "buckets": 12,
// "sources": [...], "programs": {NAME: {...}}}; the pooled program is recomputed on load.
void save_locality_model(const LocalityModel& model, const std::string& path);
LocalityModel load_locality_model(const std::string& path);  // Error naming file and JSON path

// The synthetic references of one stream (one task). It knows only the pages the stream's
// recorded faults touched, forgets them when the address space changes under them, and draws its
// references from them, so it never touches a page the guest has not been asked to map, never
// writes a page whose last recorded state is not writable (after a fork, its parent's pages are
// write-protected for COW) and never fetches from a page no fetch faulted in.
class LocalityGenerator {
 public:
  LocalityGenerator(uint64_t seed, uint32_t stream);

  void set_program(const LocalityProgram* program) { program_ = program; }
  const LocalityProgram* program() const { return program_; }

  // A recorded reference (a fault) of the stream: its page becomes the most recent one.
  void touch(RefKind kind, uint64_t va);
  // An OS event of the stream, after it is written: forgets the pages it unmaps or changes
  // (munmap, mprotect, mmap over them, mremap's old and new range, brk shrinking), all pages at
  // exec, and writability at a fork it makes.
  void event(const OsEvent& e);

  // Up to `cap` references standing for `instructions` instructions: their expected number from
  // the program's rates, rounded at random, capped; each with its gap, so that their
  // instructions plus `*rest` (the gap left for the record that follows) equal `instructions`.
  // Appends to `out`; returns how many it appended. `*modelled` receives the expected number
  // before the cap.
  size_t generate(uint64_t instructions, uint32_t cap, std::vector<TraceRecord>* out,
                  uint64_t* rest, double* modelled);

  size_t code_pages() const { return code_.size(); }
  size_t data_pages() const { return data_.size(); }

 private:
  // Most recent first; an entry is page << 1 | writable. At most kLocalityMaxDepth.
  static void to_front(std::vector<uint64_t>* list, size_t index);
  static void touch_page(std::vector<uint64_t>* list, uint64_t page, bool writable, bool keep);
  static void forget(std::vector<uint64_t>* list, uint64_t from, uint64_t to);
  size_t pick_index(const LocalitySide& side, size_t size);

  Rng rng_;
  const LocalityProgram* program_ = nullptr;
  std::vector<uint64_t> code_, data_;
  uint64_t brk_ = 0;  // the last break seen (0: none yet)
};

}  // namespace shadowsim
