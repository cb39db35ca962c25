// shadowsim command-line entry point. libsystemc provides main() and calls sc_main().
#include <cstring>
#include <iostream>
#include <string>

#include <fmt/format.h>

#include "common/error.h"
#include "version.h"
#include "walk_demo.h"

namespace {

void usage(std::ostream& out) {
  out << "usage: shadowsim <command> [options]\n\n"
         "commands:\n"
         "  demo      translate a handful of addresses in each paging mode and print the walks\n"
         "  version   print the version and git hash\n\n"
         "Run 'shadowsim <command> --help' for a command's options.\n";
}

int dispatch(int argc, char** argv) {
  if (argc < 2) {
    usage(std::cerr);
    return 2;
  }
  const std::string command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    usage(std::cout);
    return 0;
  }
  if (command == "version" || command == "--version") {
    std::cout << fmt::format("shadowsim {} ({})\n", shadowsim::kVersion, shadowsim::kGitHash);
    return 0;
  }
  if (command == "demo") {
    if (argc > 2 && (std::strcmp(argv[2], "--help") == 0 || std::strcmp(argv[2], "-h") == 0)) {
      std::cout << "usage: shadowsim demo\n\nBuilds a small address space in each paging mode "
                   "and prints the page-table\nreferences, A/D updates and result of a few "
                   "walks.\n";
      return 0;
    }
    if (argc > 2) {
      std::cerr << fmt::format("shadowsim demo: unexpected argument '{}'\n", argv[2]);
      return 2;
    }
    return shadowsim::run_walk_demo(std::cout);
  }
  std::cerr << fmt::format("shadowsim: unknown command '{}'\n\n", command);
  usage(std::cerr);
  return 2;
}

}  // namespace

extern "C" int sc_main(int argc, char** argv) {
  try {
    return dispatch(argc, argv);
  } catch (const shadowsim::Error& e) {
    std::cerr << "shadowsim: error: " << e.what() << '\n';
    return 1;
  }
}
