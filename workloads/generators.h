// Synthetic workloads: a manifest plus one binary trace per stream, deterministic from a seed,
// whose OS events let the guest kernel (docs/guest.md) replay real process behaviour with
// implicit VMAs off. Kinds, layouts and calibration: docs/workloads.md.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace shadowsim {

// make -jN of a kernel tree (research notes workloads.md §3, §6).
struct KernelCompileParams {
  uint32_t files = 4;                 // compiled files; each is one make -> sh -> gcc -> cc1 tree
  uint32_t jobs = 2;                  // make -j2: the measured build (§3.1)
  uint32_t cc1_faults = 20000;        // §3.2: 21,513 / 19,806 / 18,916 faults per real cc1
  uint32_t instructions_per_fault = 200000;  // §3.2: 3.93 G instructions for ~20 K faults
  uint32_t creations_per_file = 26;   // §3.1: 11,152 creations for 426 files
  double fork_share = 0.16;           // §3.2: 19 % (3 files), 13 % (whole build) are real forks
  // cc1 error-code mix (§3.2): 75 % 0x6, 11 % 0x4, 7 % 0x14, 7 % 0x7. Reads not present are the
  // 0x7 pages' first reads (zero page) plus read-only data.
  double fetch_share = 0.07;
  double read_share = 0.11;
  double write_protect_share = 0.07;
  uint32_t helper_faults = 150;       // assumption: sh, cat, rm, as, gcc driver are small
  uint32_t helper_instructions_per_fault = 20000;  // assumption: short-lived, fault-dominated
  uint32_t refs_per_fault = 16;       // assumption: references to mapped pages between faults
};

// A parent forking children that write some of its pages and exit (COW breaks).
struct ForkExitParams {
  uint32_t forks = 200;
  uint32_t parent_pages = 1024;  // 4 MiB of written heap inherited by each child
  uint32_t child_writes = 32;    // pages each child writes (a COW copy each)
  uint32_t child_reads = 32;
  uint32_t parent_writes = 8;    // pages the parent writes after each fork (COW reuse)
};

// mmap, touch, munmap cycles.
struct MmapChurnParams {
  uint32_t cycles = 2000;
  uint32_t max_pages = 64;     // 1..64 pages: straddles Linux's 33-page flush ceiling
  double touch_share = 0.75;   // pages touched per mapping
  double file_share = 0.25;    // read-only file mappings (fault-around) among them
  double partial_unmap_share = 0.25;  // munmap the middle first (splits the VMA)
};

// One large-footprint random-access stream.
struct WalkStressParams {
  uint64_t footprint_mib = 512;   // 128 K pages: far beyond any STLB's reach
  uint32_t regions = 4;           // far apart, so upper-level entries miss as well
  uint64_t references = 2000000;  // after the first-touch pass
  double write_share = 0.3;
};

// One process with N threads sharing pages; each thread maps and unmaps its own regions, so
// every munmap shoots down the other VCPUs running the mm.
struct ThreadsParams {
  uint32_t threads = 4;         // created threads (plus the main thread)
  uint32_t shared_pages = 1024;
  uint32_t rounds = 200;
  uint32_t region_pages = 16;   // per round; below the 33-page ceiling: INVLPG per page
  uint32_t shared_refs = 64;    // references to the shared region per round
  double write_share = 0.3;
};

struct GeneratorParams {
  // Multiplies the amount of work (faults, cycles, forks, references), not the shapes; small
  // scales give quick tests. Every count keeps at least 1.
  double scale = 1.0;
  KernelCompileParams kernel_compile;
  ForkExitParams fork_exit;
  MmapChurnParams mmap_churn;
  WalkStressParams walk_stress;
  ThreadsParams threads;
};

struct WorkloadKind {
  const char* name;
  const char* description;
};
const std::vector<WorkloadKind>& workload_kinds();

// Writes OUT_DIR/manifest.json and OUT_DIR/NAME.sst per stream (OUT_DIR is created). The same
// kind, params and seed give byte-identical files. Throws Error for an unknown kind or bad params.
// Returns the manifest's path.
std::string generate_workload(const std::string& kind, const GeneratorParams& params,
                              uint64_t seed, const std::string& out_dir);

// `shadowsim workload ...`: argv[0] is "workload", argv[1] the sub-command (generate, list).
// Returns 0 on success, 1 on bad input, 2 on a usage error.
int run_workload_command(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace shadowsim
