// Importing a multi-process valgrind lackey recording: the directory that
//   valgrind --tool=lackey --trace-mem=yes --trace-syscalls=yes --trace-children=yes
//            --log-file=DIR/%p.%n PROG ...
// writes (one log per process image) becomes one workload: a manifest plus one compact trace per
// process (docs/trace-format.md, "Multi-process lackey import"). Streaming: each log is read once
// through the lackey reader and written once; a process whose image was replaced by exec (two or
// more logs under one PID) has its halves joined by a second, binary pass.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "workloads/os_event.h"

namespace shadowsim {

struct LackeyImportOptions {
  int zstd_level = 12;   // of the stream files (.sst.zst)
  bool fetches = true;   // false: drop fetch records, folding them into the gaps
  std::string name;      // the manifest's name; default "lackey DIR"
};

// One log file (one process image).
struct LackeyLog {
  std::string path;
  uint32_t pid = 0;
  uint32_t seq = 0;              // valgrind's %n
  std::string command;           // the header's "Command:", unescaped
  std::optional<uint32_t> parent_pid;  // the header's "Parent PID:"
  bool forked_start = false;     // starts with the rest of a fork's clone line: a child's first image
  bool ends_in_exec = false;     // its last OS event is exec: an image that was replaced
  uint64_t records = 0;
  uint64_t events = 0;
};

// One process: one stream of the workload.
struct LackeyProcess {
  uint32_t pid = 0;                      // the stream id
  std::optional<uint32_t> parent;        // the creating process, if it was traced
  StreamOrigin created = StreamOrigin::kInitial;  // as the parent's create event requested it
  std::string file;                      // the stream file, relative to the manifest
  std::vector<LackeyLog> logs;           // its images in order: pre-exec halves first
  uint64_t records = 0;                  // of the joined stream, exec events added included
  uint64_t events_by_kind[kOsEventKinds] = {};
};

struct LackeyImportResult {
  std::string manifest;                  // the path written
  std::vector<LackeyProcess> processes;  // manifest order: by PID
  uint64_t logs = 0;
  uint64_t skipped_files = 0;            // in DIR but not named PID.N[.zst]
  uint64_t records = 0;
  uint64_t events = 0;
  // Children whose parent was traced but whose create event is missing from its log (a log cut
  // short): taken as forks.
  uint64_t children_without_create = 0;
};

// Imports every log in `dir` named PID.N, PID.N.zst, PID.N.lackey or PID.N.lackey.zst (other
// files are skipped and counted) into `manifest_path` and PID.sst.zst files beside it. Throws
// Error naming the file and line for a malformed log, and naming the files for an inconsistent
// recording (a PID with two final images, a child whose parent created it as something else...).
LackeyImportResult import_lackey_dir(const std::string& dir, const std::string& manifest_path,
                                     const LackeyImportOptions& options = {});

// The header of one log: "==PID== Command: ...", "==PID== Parent PID: N", and whether the first
// line after it continues a fork's clone line (" --> ..."). Reads only the first lines.
LackeyLog read_lackey_header(const std::string& path);

}  // namespace shadowsim
