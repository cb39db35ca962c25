// `shadowsim trace ...`: inspect and convert traces (info, convert, head). sim/main.cpp passes
// its arguments from "trace" on; the streams are parameters so tests can run it in-process.
#pragma once

#include <ostream>

namespace shadowsim {

// argv[0] is "trace", argv[1] the sub-command. Returns 0 on success, 1 on bad input (the message
// names the file and line or record), 2 on a usage error.
int run_trace_command(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace shadowsim
