#!/usr/bin/env bash
# The sanitizer build of the suite (issue 8; docs/sanitizers.md): every target built with
# AddressSanitizer + UndefinedBehaviorSanitizer (-DSHADOWSIM_SANITIZE=ON) in build-asan, then the
# test suite under ctest in two passes:
#   1. everything that does not start /usr/bin/python3: the C++ unit and property tests and the
#      CLI end-to-end tests, with LeakSanitizer on;
#   2. the tests that run Python (pytest, the notebooks, the studies, the bad-input corpus, the
#      kernel-build comparisons): the interpreter is not instrumented, so libasan is preloaded
#      into it (the extension module _shadowsim is), and leak checking is off (CPython and its
#      libraries keep their memory to exit). The shadowsim binary these tests start is the
#      sanitized one and inherits the same options.
#   scripts/sanitize.sh                      configure (once), build, both passes
#   SHADOWSIM_ASAN_BUILD_DIR=DIR ...         another build folder (default build-asan)
#   SHADOWSIM_ASAN_SKIP_PYTHON=1 ...         pass 1 only
#   SHADOWSIM_ASAN_QUICK=1 ...               pass 2 without the five long Python tests (CI: they
#                                            replay what pass 1 already replays, for 10 minutes)
# Any ASan or UBSan report fails the test that produced it; the script exits non-zero if any
# test failed (after running all of them) and prints the time of each step.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${SHADOWSIM_ASAN_BUILD_DIR:-build-asan}
JOBS=$(nproc)

start=$SECONDS
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  # -O1 -g: the usual ASan trade-off (fast enough, exact stacks); assert() stays on. The
  # sanitizer flags themselves come with SHADOWSIM_SANITIZE (top-level CMakeLists.txt):
  # -fsanitize=address,undefined, fatal UB, -D_GLIBCXX_ASSERTIONS (libstdc++'s bounds and
  # precondition checks, which ASan does not see inside a container's capacity or an object),
  # and for GCC --param=asan-stack=0 (no redzones around stack variables: SystemC's threads run
  # on QuickThreads stacks; an exception thrown there, or a simulation context deleted with its
  # threads suspended, leaves the redzones of frames that never returned poisoned, and later
  # frames at those addresses are reported as stack-buffer-overflow: 6 false reports in the C++
  # suite, docs/sanitizers.md; heap and global checks, LeakSanitizer and UBSan are unaffected)
  # and -Wno-maybe-uninitialized (GCC 12's false positives under -fsanitize inside std::regex;
  # the Release build keeps the warning an error).
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g" -DSHADOWSIM_SANITIZE=ON -DSHADOWSIM_WERROR=ON
fi
cmake --build "$BUILD_DIR" -j "$JOBS"
build_seconds=$((SECONDS - start))

# ASan, for every process of pass 1:
#   detect_stack_use_after_return=0  SystemC's threads (SC_THREAD, the VCPUs) are QuickThreads
#       coroutines that switch the stack pointer by hand; ASan's fake stacks for use-after-return
#       do not follow that and crash (docs/sanitizers.md). Only this detector is off.
#   detect_leaks=1                   LeakSanitizer at exit of each test binary and shadowsim run
#       (no suppressions: SystemC leaks nothing at exit that LeakSanitizer reports).
#   check_initialization_order=1:strict_init_order=1   static-initialisation-order bugs.
#   strict_string_checks=1           libc string functions check the whole argument.
#   detect_invalid_pointer_pairs=0   (default) pointer comparisons across objects are allowed.
#   abort_on_error=0:halt_on_error=1 the first report ends the process with a non-zero status.
#   color=never                      plain CI logs.
ASAN_COMMON="detect_stack_use_after_return=0:check_initialization_order=1:strict_init_order=1"
ASAN_COMMON+=":strict_string_checks=1:halt_on_error=1:abort_on_error=0:color=never"
# UBSan: the build already makes every report fatal (-fno-sanitize-recover=all); print the stack.
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:color=never"

# The tests that start /usr/bin/python3 (by name: not all of them carry the python label). A new
# test that runs Python must match this (name it python.*) or pass 1 runs it without libasan.
PYTHON_TESTS='^(python\.|notebooks\.|study\.|bad_inputs\.|cli\.kcompile_fault_mix$|workloads\.kbuild(_j16)?_compare$)'
# The long tests of pass 2 (under ASan, on 2 cores: 40 s to 3 minutes each, 10 minutes in all):
# sweeps, studies and notebooks driving the same shadowsim runs as pass 1 does.
SLOW_PYTHON_TESTS='^(python\.test_determinism|python\.test_sweep_run|study\.xen2008_quick|study\.sensitivity_quick|notebooks\.execute)$'
SKIP_SLOW=()
if [ -n "${SHADOWSIM_ASAN_QUICK:-}" ]; then SKIP_SLOW=(-E "$SLOW_PYTHON_TESTS"); fi

status=0
start=$SECONDS
ASAN_OPTIONS="$ASAN_COMMON:detect_leaks=1" \
  ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" -E "$PYTHON_TESTS" || status=1
cpp_seconds=$((SECONDS - start))

python_seconds=0
if [ -z "${SHADOWSIM_ASAN_SKIP_PYTHON:-}" ]; then
  start=$SECONDS
  # -FS .: the fixtures these tests require (the kbuild imports and runs, the kernel-compile
  # run) ran in pass 1 and left their outputs in the build folder; not again.
  # libstdc++ is preloaded too: the interpreter does not link it, and ASan's __cxa_throw
  # interceptor, set up when libasan starts, needs it loaded by then (otherwise the first C++
  # exception in the extension ends in "CHECK failed: ... real___cxa_throw != 0").
  LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libstdc++.so)" \
    ASAN_OPTIONS="$ASAN_COMMON:detect_leaks=0" \
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" -R "$PYTHON_TESTS" -FS . \
    "${SKIP_SLOW[@]}" || status=1
  python_seconds=$((SECONDS - start))
fi
echo "sanitize.sh: build ${build_seconds} s, C++/CLI tests ${cpp_seconds} s, Python tests" \
     "${python_seconds} s; $([ $status = 0 ] && echo passed || echo FAILED)"
exit $status
