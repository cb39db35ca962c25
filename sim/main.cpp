// shadowsim command-line entry point. libsystemc provides main() and calls sc_main().
//   shadowsim run CONFIG [--set PATH=VALUE]... [-o OUTDIR] [--quiet]
//   shadowsim config --defaults | --doc | --check CONFIG [--set ...]
//   shadowsim trace info|convert|head ...
//   shadowsim workload list | generate KIND -o DIR [--seed N] [--scale X] ...
//   shadowsim sweep SPEC -o DIR [-j N] [--dask ADDR | --slurm] ...   (python/shadowsim/sweep.py)
//   shadowsim sensitivity [-o DIR] [--params GLOBS] ...              (scripts/sensitivity.py)
//   shadowsim demo | version
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <systemc>
#include <fmt/format.h>

#include "common/error.h"
#include "config.h"
#include "stats_output.h"
#include "system.h"
#include "version.h"
#include "walk_demo.h"
#include "workloads/generators.h"
#include "workloads/trace_cli.h"

namespace po = boost::program_options;

namespace {

constexpr int kBadInput = 1;
constexpr int kUsage = 2;

void usage(std::ostream& out) {
  out << "usage: shadowsim <command> [options]\n\n"
         "commands:\n"
         "  run       simulate a JSON config; writes OUTDIR/stats.json and stats.csv\n"
         "  config    print the defaults, the config reference, or a resolved config\n"
         "  trace     inspect and convert traces (info, convert, head)\n"
         "  workload  generate synthetic workloads (list, generate)\n"
         "  sweep     run a parameter sweep (docs/sweeps.md): SPEC -o DIR [-j N] [--dask ADDR | "
         "--slurm]\n"
         "  sensitivity  which conclusions of the Xen 2008 study move when an assumed cost is "
         "halved or doubled (docs/sensitivity.md)\n"
         "  demo      translate a handful of addresses in each paging mode and print the walks\n"
         "  version   print the version and git hash\n\n"
         "Run 'shadowsim <command> --help' for a command's options.\n";
}

// Parses `args` (without the command name) or prints help; returns -1 to go on, else an exit code.
int parse(const std::vector<std::string>& args, const po::options_description& visible,
          const po::positional_options_description& positional, po::variables_map& vm,
          const char* synopsis) {
  po::options_description all;
  all.add(visible);
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    if (vm.count("help")) {
      std::cout << synopsis << "\n\n" << visible;
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "shadowsim: " << e.what() << "\n\n" << synopsis << "\n\n" << visible;
    return kUsage;
  }
  return -1;
}

int run_command(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()("help,h", "show this help")(
      "config", po::value<std::string>()->required(), "JSON config file")(
      "set", po::value<std::vector<std::string>>()->composing(),
      "override one config value: PATH=VALUE (VALUE is JSON or a plain string); repeatable")(
      "out,o", po::value<std::string>(), "output folder (default: out/<config name>)")(
      "quiet,q", "do not print the summary");
  po::positional_options_description positional;
  positional.add("config", 1);
  po::variables_map vm;
  const int done = parse(args, options, positional, vm,
                         "usage: shadowsim run CONFIG [--set PATH=VALUE]... [-o OUTDIR]");
  if (done >= 0) return done;

  const std::string config_path = vm["config"].as<std::string>();
  const auto overrides =
      vm.count("set") ? vm["set"].as<std::vector<std::string>>() : std::vector<std::string>{};
  const shadowsim::SimConfig config = shadowsim::load_config(config_path, overrides);
  const std::string out_dir =
      vm.count("out") ? vm["out"].as<std::string>()
                      : (std::filesystem::path("out") /
                         std::filesystem::path(config_path).stem()).string();
  shadowsim::System system(config, config_path);
  system.run();
  shadowsim::write_results(out_dir, system.stats(), system.record());
  if (config.run.timeline) {
    shadowsim::write_file_atomically(
        (std::filesystem::path(out_dir) / "timeline.json").string(), system.timeline_json());
  }
  if (!vm.count("quiet")) {
    std::cout << system.summary() << fmt::format("results: {}/stats.json, {}/stats.csv{}\n",
                                                 out_dir, out_dir,
                                                 config.run.timeline
                                                     ? fmt::format(", {}/timeline.json", out_dir)
                                                     : "");
  }
  return 0;
}

int config_command(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()("help,h", "show this help")("defaults", "print every default as JSON")(
      "doc", "print the configuration reference (docs/config.md)")(
      "check", po::value<std::string>(), "validate CONFIG and print it fully resolved")(
      "set", po::value<std::vector<std::string>>()->composing(), "override, as for run");
  po::positional_options_description positional;
  po::variables_map vm;
  const int done = parse(args, options, positional, vm,
                         "usage: shadowsim config --defaults | --doc | --check CONFIG");
  if (done >= 0) return done;
  if (vm.count("defaults")) {
    std::cout << shadowsim::config_defaults_json() << "\n";
  } else if (vm.count("doc")) {
    std::cout << shadowsim::config_reference_markdown();
  } else if (vm.count("check")) {
    const auto overrides =
        vm.count("set") ? vm["set"].as<std::vector<std::string>>() : std::vector<std::string>{};
    std::cout << shadowsim::config_to_json(
                     shadowsim::load_config(vm["check"].as<std::string>(), overrides))
              << "\n";
  } else {
    std::cerr << "shadowsim config: expected --defaults, --doc or --check CONFIG\n";
    return kUsage;
  }
  return 0;
}

// `shadowsim sweep ...` and `shadowsim sensitivity ...` are Python scripts of this repository
// (standard library only, plus the built package for sensitivity's tables), run with Debian's
// interpreter and told to drive this very binary.
int python_command(const char* command, const char* script_env, const std::string& script_path,
                   const char* prog_env, int argc, char** argv) {
  const char* env = std::getenv(script_env);
  const std::string script = env ? env : std::string(SHADOWSIM_SOURCE_DIR) + "/" + script_path;
  if (!std::filesystem::exists(script)) {
    std::cerr << fmt::format("shadowsim {}: no script at {} (set {})\n", command, script,
                             script_env);
    return kBadInput;
  }
  const char* python_env = std::getenv("SHADOWSIM_PYTHON");
  // Debian's interpreter sees the python3-* packages; a python3 earlier on PATH may not.
  const std::string python = python_env                                   ? python_env
                             : access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3"
                                                                          : "python3";
  const std::string self = std::filesystem::canonical("/proc/self/exe").string();
  setenv(prog_env, fmt::format("shadowsim {}", command).c_str(), 1);
  std::vector<std::string> words = {python, script, "--binary", self};
  for (int i = 2; i < argc; ++i) words.emplace_back(argv[i]);  // a user's --binary comes later
  std::vector<char*> exec_argv;
  for (std::string& w : words) exec_argv.push_back(w.data());
  exec_argv.push_back(nullptr);
  std::cout.flush();
  std::cerr.flush();
  execvp(python.c_str(), exec_argv.data());
  std::cerr << fmt::format("shadowsim {}: cannot run {}: {}\n", command, python,
                           std::strerror(errno));
  return kBadInput;
}

int dispatch(int argc, char** argv) {
  if (argc < 2) {
    usage(std::cerr);
    return kUsage;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "--help" || command == "-h" || command == "help") {
    usage(std::cout);
    return 0;
  }
  if (command == "version" || command == "--version") {
    std::cout << fmt::format("shadowsim {} ({})\n", shadowsim::kVersion, shadowsim::kGitHash);
    return 0;
  }
  if (command == "run") return run_command(args);
  if (command == "sweep") {
    return python_command("sweep", "SHADOWSIM_SWEEP_SCRIPT", "python/shadowsim/sweep.py",
                          "SHADOWSIM_SWEEP_PROG", argc, argv);
  }
  if (command == "sensitivity") {
    return python_command("sensitivity", "SHADOWSIM_SENSITIVITY_SCRIPT", "scripts/sensitivity.py",
                          "SHADOWSIM_SENSITIVITY_PROG", argc, argv);
  }
  if (command == "config") return config_command(args);
  if (command == "trace") {
    return shadowsim::run_trace_command(argc - 1, argv + 1, std::cout, std::cerr);
  }
  if (command == "workload") {
    return shadowsim::run_workload_command(argc - 1, argv + 1, std::cout, std::cerr);
  }
  if (command == "demo") {
    if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
      std::cout << "usage: shadowsim demo\n\nBuilds a small address space in each paging mode "
                   "and prints the page-table\nreferences, A/D updates and result of a few "
                   "walks.\n";
      return 0;
    }
    if (!args.empty()) {
      std::cerr << fmt::format("shadowsim demo: unexpected argument '{}'\n", args[0]);
      return kUsage;
    }
    return shadowsim::run_walk_demo(std::cout);
  }
  std::cerr << fmt::format("shadowsim: unknown command '{}'\n\n", command);
  usage(std::cerr);
  return kUsage;
}

}  // namespace

extern "C" int sc_main(int argc, char** argv) {
  try {
    return dispatch(argc, argv);
  } catch (const shadowsim::Error& e) {
    std::cerr << "shadowsim: error: " << e.what() << '\n';
    return kBadInput;
  } catch (const std::exception& e) {
    std::cerr << "shadowsim: internal error (please report): " << e.what() << '\n';
    return 3;
  }
}

// Our own main() (it takes precedence over libsystemc's): SystemC prints its banner when its
// first simulation context is made, which its main() does before sc_main could stop it.
int main(int argc, char** argv) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  return sc_core::sc_elab_and_sim(argc, argv);
}
