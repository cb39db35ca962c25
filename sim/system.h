// System assembly: builds the simulated machine of one run from its config — guest memory and
// the page-table memory model, one MMU (TLBs, paging-structure caches, walker) per PCPU, one VCPU
// per trace stream (natively pinned 1:1 to PCPUs), the guest kernel — registers every
// statistic, runs the SystemC kernel, and reports.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/stats.h"
#include "config.h"
#include "stats_output.h"

namespace shadowsim {

class System {
 public:
  // Elaborates the model (SystemC allows one elaboration per simulation context; a fresh context
  // is made if this process already ran one). Throws Error on bad input (trace, manifest).
  System(const SimConfig& config, std::string config_path);
  ~System();
  System(const System&) = delete;
  System& operator=(const System&) = delete;

  // Runs to the end of every stream or the reference limit. Throws Error on bad input met while
  // replaying (a corrupt record, an address the paging mode cannot hold).
  void run();

  const StatsRegistry& stats() const;
  const RunRecord& record() const;
  std::string summary() const;  // a few human-readable lines
  // run.timeline: the trace-event JSON of the run (empty when the timeline is off).
  std::string timeline_json() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shadowsim
