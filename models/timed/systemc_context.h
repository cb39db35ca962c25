// A fresh SystemC simulation context for each simulated system (sim/system.cpp) and each test
// that elaborates modules: SystemC 2.3 allows one elaboration per context, and a process (the
// Python module, a test binary) may run several systems. The first system uses the process's
// first context, which is never deleted (SystemC's globals point into it); a system that failed
// half-way through its elaboration leaves it unusable (time resolution already set), so later
// ones get new ones. Deleting the current context leaves a fresh one current (SystemC's globals
// must not dangle), which the next ScContext takes rather than leaking it. Uses two SystemC 2.3
// internals (sc_curr_simcontext, sc_default_global_context), exported by the Debian library
// (docs/setup.md). Declare it before the modules, so they are destroyed first.
#pragma once

#include <systemc>

namespace shadowsim {

class ScContext {
 public:
  ScContext() {
    static bool first_taken = false;
    if (first_taken || sc_core::sc_get_curr_simcontext() != first()) {
      if (sc_core::sc_get_curr_simcontext() != spare()) make_current(new sc_core::sc_simcontext());
      spare() = nullptr;  // taken (or no longer current)
    }
    first_taken = true;
    context_ = sc_core::sc_get_curr_simcontext();
    sc_core::sc_report_handler::set_actions("/OSCI/SystemC", sc_core::SC_INFO,
                                            sc_core::SC_DO_NOTHING);
    sc_core::sc_set_time_resolution(1, sc_core::SC_NS);  // one time unit = one cycle
  }
  ~ScContext() {
    if (context_ == first()) return;
    if (context_ == sc_core::sc_get_curr_simcontext()) {
      spare() = new sc_core::sc_simcontext();
      make_current(spare());
    }
    delete context_;
  }
  ScContext(const ScContext&) = delete;
  ScContext& operator=(const ScContext&) = delete;

 private:
  static sc_core::sc_simcontext* first() {
    static sc_core::sc_simcontext* const context = sc_core::sc_get_curr_simcontext();
    return context;
  }
  // The fresh context the last deletion left current, until an ScContext takes it.
  static sc_core::sc_simcontext*& spare() {
    static sc_core::sc_simcontext* context = nullptr;
    return context;
  }
  static void make_current(sc_core::sc_simcontext* context) {
    sc_core::sc_curr_simcontext = context;
    sc_core::sc_default_global_context = context;
  }
  sc_core::sc_simcontext* context_ = nullptr;
};

}  // namespace shadowsim
