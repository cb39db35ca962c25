// `shadowsim workload ...`: generate synthetic workloads (generators.h), list the kinds.
#include <boost/program_options.hpp>

#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "common/error.h"
#include "workloads/generators.h"

namespace shadowsim {
namespace {

namespace po = boost::program_options;

constexpr const char* kUsage =
    "usage: shadowsim workload <sub-command> [options]\n\n"
    "sub-commands:\n"
    "  generate KIND -o DIR   write a synthetic workload: DIR/manifest.json and a trace per\n"
    "                         stream, the same bytes for the same seed\n"
    "  list                   the kinds, one line each\n\n"
    "Run 'shadowsim workload <sub-command> --help' for its options. Kinds and their\n"
    "calibration: docs/workloads.md.\n";

// A usage error: reported with the sub-command's usage, exit status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

po::variables_map parse(int argc, char** argv, const po::options_description& visible,
                        const po::options_description& hidden,
                        const po::positional_options_description& positional) {
  po::options_description all;
  all.add(visible).add(hidden);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  return vm;
}

int list(int argc, char** argv, std::ostream& out) {
  po::options_description opts("options");
  opts.add_options()("help,h", "print this help");
  const po::variables_map vm = parse(argc, argv, opts, {}, {});
  if (vm.count("help")) {
    out << "usage: shadowsim workload list\n\nLists the workload kinds.\n\n" << opts;
    return 0;
  }
  for (const WorkloadKind& k : workload_kinds()) {
    out << fmt::format("{:<16}{}\n", k.name, k.description);
  }
  return 0;
}

int generate(int argc, char** argv, std::ostream& out) {
  const GeneratorParams d;
  po::options_description opts("options");
  opts.add_options()("help,h", "print this help")(
      "output,o", po::value<std::string>()->value_name("DIR"), "output folder (created)")(
      "seed", po::value<uint64_t>()->default_value(1)->value_name("N"), "random seed")(
      "scale", po::value<double>()->default_value(d.scale)->value_name("X"),
      "multiplies the work (faults, cycles, forks, references); 0.01 for a quick test")(
      "jobs", po::value<uint32_t>()->default_value(d.kernel_compile.jobs)->value_name("N"),
      "kernel-compile: make -jN")(
      "files", po::value<uint32_t>()->default_value(d.kernel_compile.files)->value_name("N"),
      "kernel-compile: compiled files")(
      "threads", po::value<uint32_t>()->default_value(d.threads.threads)->value_name("N"),
      "threads: threads created besides the main one");
  po::options_description hidden;
  hidden.add_options()("KIND", po::value<std::string>(), "");
  po::positional_options_description pos;
  pos.add("KIND", 1);
  const po::variables_map vm = parse(argc, argv, opts, hidden, pos);
  if (vm.count("help")) {
    out << "usage: shadowsim workload generate KIND -o DIR [--seed N] [--scale X] [--jobs N]\n"
           "       [--files N] [--threads N]\n\n"
           "Writes DIR/manifest.json and one binary trace per stream. KIND is one of\n"
           "'shadowsim workload list'. Same options, same bytes.\n\n"
        << opts;
    return 0;
  }
  if (!vm.count("KIND")) throw UsageError("missing argument KIND");
  if (!vm.count("output")) throw UsageError("missing option -o DIR");
  const std::string kind = vm["KIND"].as<std::string>();
  bool known = false;
  for (const WorkloadKind& k : workload_kinds()) known = known || kind == k.name;
  if (!known) {
    throw UsageError(fmt::format("unknown kind '{}'; see 'shadowsim workload list'", kind));
  }
  GeneratorParams p;
  p.scale = vm["scale"].as<double>();
  if (!(p.scale > 0)) throw UsageError(fmt::format("--scale {}: expected > 0", p.scale));
  p.kernel_compile.jobs = vm["jobs"].as<uint32_t>();
  p.kernel_compile.files = vm["files"].as<uint32_t>();
  p.threads.threads = vm["threads"].as<uint32_t>();
  if (p.kernel_compile.jobs == 0 || p.kernel_compile.files == 0) {
    throw UsageError("--jobs and --files: expected at least 1");
  }
  const std::string manifest =
      generate_workload(kind, p, vm["seed"].as<uint64_t>(), vm["output"].as<std::string>());
  out << fmt::format("{}: {} workload written\n", manifest, kind);
  return 0;
}

}  // namespace

int run_workload_command(int argc, char** argv, std::ostream& out, std::ostream& err) {
  if (argc < 2) {
    err << kUsage;
    return 2;
  }
  const std::string sub = argv[1];
  if (sub == "--help" || sub == "-h" || sub == "help") {
    out << kUsage;
    return 0;
  }
  try {
    if (sub == "generate") return generate(argc - 1, argv + 1, out);
    if (sub == "list") return list(argc - 1, argv + 1, out);
    err << fmt::format("shadowsim workload: unknown sub-command '{}'\n\n{}", sub, kUsage);
    return 2;
  } catch (const UsageError& e) {
    err << fmt::format("shadowsim workload {}: {}\nRun 'shadowsim workload {} --help' for "
                       "usage.\n", sub, e.what(), sub);
    return 2;
  } catch (const Error& e) {
    err << fmt::format("shadowsim workload {}: error: {}\n", sub, e.what());
    return 1;
  } catch (const std::exception& e) {  // filesystem and allocation failures
    err << fmt::format("shadowsim workload {}: error: {}\n", sub, e.what());
    return 1;
  }
}

}  // namespace shadowsim
