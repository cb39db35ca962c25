// The kernel-event stream of a real run: the text `perf script` prints for the tracepoints of
// docs/workloads.md ("Recording"): user page faults, TLB flushes, fork/exec/exit, context
// switches and the memory-management system calls, with the task, CPU and time of each. Read
// streamingly, one typed record per line (PerfScriptReader); summarised (summarize_perf_script);
// converted into a multi-stream workload of OS events and faulting references
// (import_perf_script), optionally with synthetic references between them from a fitted
// locality model (workloads/locality_model.h). Formats and assumptions: docs/trace-format.md,
// "perf script import" and "Locality model".
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "workloads/os_event.h"
#include "workloads/trace_record.h"

namespace shadowsim {

class InputBuffer;
class LineReader;

enum class PerfEventKind : uint8_t {
  kPageFault,    // exceptions:page_fault_user: address, ip, error_code
  kTlbFlush,     // tlb:tlb_flush: pages (-1: all), reason
  kFork,         // sched:sched_process_fork: child (the new task's TID), in the parent's context
  kExec,         // sched:sched_process_exec: filename
  kExit,         // sched:sched_process_exit: group_dead (-1 when the kernel does not print it)
  kSwitch,       // sched:sched_switch: prev_tid, next_tid, prev_state
  kMmap,         // syscalls:sys_enter_mmap: args addr, len, prot, flags, fd, off
  kMmapResult,   // syscalls:sys_exit_mmap: result
  kMunmap,       // syscalls:sys_enter_munmap: args addr, len
  kMprotect,     // syscalls:sys_enter_mprotect: args start, len, prot
  kBrk,          // syscalls:sys_enter_brk: args brk
  kBrkResult,    // syscalls:sys_exit_brk: result
  kMremap,       // syscalls:sys_enter_mremap: args addr, old_len, new_len, flags, new_addr
  kMremapResult, // syscalls:sys_exit_mremap: result
  kMadvise,      // syscalls:sys_enter_madvise: args start, len_in, behavior
  kClone,        // syscalls:sys_enter_clone: args clone_flags, newsp, parent_tidptr, ...
  kClone3,       // syscalls:sys_enter_clone3: args uargs, size (the flags are not printed)
  kForkCall,     // syscalls:sys_enter_fork
  kVforkCall,    // syscalls:sys_enter_vfork
  kOther,        // any other event: counted by name, otherwise ignored
};
constexpr int kPerfEventKinds = 20;
const char* to_string(PerfEventKind kind);  // the tracepoint name, "exceptions:page_fault_user"

// One line of `perf script` output. The string views point into the reader's buffer and are
// valid until the next next().
struct PerfRecord {
  PerfEventKind kind = PerfEventKind::kOther;
  uint64_t line = 0;        // in the file, from 1
  int64_t pid = -1;         // thread-group id when the line has PID/TID (perf script -F pid,tid);
                            // -1 when it has the TID only (perf script's default)
  uint32_t tid = 0;
  uint32_t cpu = 0;
  uint64_t time_ns = 0;     // perf's timestamp (seconds.microseconds, or .nanoseconds) in ns
  std::string_view comm;    // the task's name as perf printed it (may contain spaces)
  std::string_view event;   // "exceptions:page_fault_user"

  // kPageFault
  uint64_t address = 0, ip = 0, error_code = 0;
  // kTlbFlush: pages -1 is a full flush; reason the kernel's number (0 task switch, 1 remote
  // shootdown, 2 local shootdown, 3 local MM shootdown, 4 remote IPI send) and its text.
  int64_t pages = 0;
  int reason = -1;
  std::string_view reason_text;
  // kFork: the child's TID
  uint32_t child = 0;
  // kExec
  std::string_view filename;
  // kExit: 1 the whole process ended, 0 one thread of it, -1 not printed
  int group_dead = -1;
  // kSwitch
  uint32_t prev_tid = 0, next_tid = 0;
  std::string_view prev_state;  // "S", "D", "R+", ...
  // system call entries: the arguments in the tracepoint's order; exits: the result
  uint64_t args[6] = {};
  int nargs = 0;
  uint64_t result = 0;
};

// Reads `perf script` text (optionally zstd-compressed), one record per line. Lines:
//   COMM TID [CPU] SECONDS.FRACTION: EVENT: FIELDS
//   COMM PID/TID [CPU] SECONDS.FRACTION: EVENT: FIELDS
// (perf script's default fields, or -F comm,pid,tid,cpu,time,event,trace). Blank lines are
// skipped; anything else, and a known event whose fields do not parse, is an Error naming the
// file, the line number and the expected form.
class PerfScriptReader {
 public:
  explicit PerfScriptReader(const std::string& path);
  ~PerfScriptReader();
  PerfScriptReader(const PerfScriptReader&) = delete;
  PerfScriptReader& operator=(const PerfScriptReader&) = delete;

  bool next(PerfRecord* r);  // false at the end
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<LineReader> lines_;
};

struct PerfSummary {
  uint64_t lines = 0;  // records read
  uint64_t by_kind[kPerfEventKinds] = {};
  std::map<uint64_t, uint64_t> faults_by_error_code;
  std::map<std::string, uint64_t> flushes_by_reason;  // "local MM shootdown (3)"
  uint64_t flushed_pages = 0;  // of the flushes with a page count
  uint64_t full_flushes = 0;   // pages -1
  // By reason: flushes with pages -1 (full), with pages 0 (a task switch that needed no flush:
  // the kernel traces those too), and the pages of the others.
  std::map<std::string, uint64_t> full_flushes_by_reason, empty_flushes_by_reason,
      flushed_pages_by_reason;
  std::map<std::string, uint64_t> other_events;       // kOther by name
  uint64_t tasks = 0;          // distinct TIDs
  uint64_t processes = 0;      // distinct processes: thread groups when known, else TIDs
  uint64_t threads_created = 0;  // forks whose child joined the parent's thread group
  std::map<uint32_t, uint64_t> records_by_cpu;
  uint64_t first_ns = 0, last_ns = 0;
};

PerfSummary summarize_perf_script(const std::string& path);

// Converting to a workload (docs/trace-format.md, "perf script import"). The instruction count
// between two records of a task is its time on the CPU between them times `instructions_per_ns`.
struct PerfImportOptions {
  // Assumption: 2.5 instructions per ns of CPU time (e.g. 2.5 GHz at an IPC of 1.0). From the
  // research notes: cc1 for mm/memory.c retired 3.93 G instructions in about 1.5 s of CPU.
  double ghz = 2.5;
  double ipc = 1.0;
  // Assumption: a fault's reference is this many bytes (perf gives the address, not the size).
  uint8_t access_size = 1;
  // Streams are small and many, and a level-12 zstd context per stream costs more to set up
  // than it saves.
  int zstd_level = 3;
  std::string name;  // the manifest's name; default "perf FILE"
  // A locality model (shadowsim trace fit-locality; workloads/locality_model.h): when given,
  // synthetic references drawn from it are put between each task's records, at most
  // `refs_per_event` per gap (docs/trace-format.md, "Locality model"). Empty: none.
  std::string locality;
  // Assumption: 16 page-level references per gap keep the TLBs busy between faults while a
  // whole tinyconfig build (7.4 M faults) stays near 120 M references; a real gap (~200 K
  // instructions of cc1) holds thousands, so this is a sample (the import reports the ratio).
  uint32_t refs_per_event = 16;
  uint64_t seed = 1;  // of the synthetic references (one Rng per stream, from seed and stream id)
};

struct PerfImportResult {
  std::string manifest;
  uint64_t streams = 0;        // one per task (TID)
  uint64_t references = 0;     // one per recorded user fault
  uint64_t events_by_kind[kOsEventKinds] = {};
  uint64_t instructions = 0;
  uint64_t fillers = 0;        // fetch records added to carry gaps above 2^32-1 instructions
  uint64_t unmatched = 0;      // sys_exit lines without their sys_enter (ignored)
  std::map<int, uint64_t> created_by_origin;  // StreamOrigin -> streams
  // With a locality model: synthetic references written (by kind), and how many the model
  // expected for the same instructions before the cap (their ratio is the sampling factor).
  uint64_t synthetic = 0;
  uint64_t synthetic_by_kind[kRefKinds] = {};
  double modelled = 0;
  std::map<std::string, uint64_t> synthetic_by_program;  // the fitted program used ("(pooled)")
  // The recorded placement written to the manifest: the CPU count (highest CPU + 1) and the
  // streams per CPU (a stream's CPU: where it spent the most CPU time, else its first record's).
  uint32_t cpus = 0;
  std::map<uint32_t, uint64_t> streams_by_cpu;
};

// Two streaming passes over the file: the first finds each task's origin (fork, vfork, thread)
// and thread group, the second writes NNNN.sst.zst per task (NNNN the stream id: the TID, or
// TID + k * 2^22 for the k-th reuse of a TID) and the manifest.
PerfImportResult import_perf_script(const std::string& path, const std::string& manifest_path,
                                    const PerfImportOptions& options = {});

}  // namespace shadowsim
