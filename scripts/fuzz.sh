#!/usr/bin/env bash
# Builds and runs the libFuzzer targets of fuzz/ (docs/fuzzing.md).
#
#   scripts/fuzz.sh [--seconds N] [TARGET...]   fuzz each target N seconds (default 600)
#   scripts/fuzz.sh --smoke [TARGET...]         CI: each target 10 s from its corpus, keeps nothing
#   scripts/fuzz.sh --build-only
#   scripts/fuzz.sh --list
#
# Targets: binary_trace text_trace lackey perf_script manifest locality_model config (default all,
# one after the other). Each runs on fuzz/corpus/TARGET (the committed, minimised corpus) with the
# dictionary fuzz/dict/*.dict of its format; new inputs go to a scratch folder, then the corpus
# and they are merged (-merge=1) into a fresh fuzz/corpus/TARGET: the fewest inputs that keep all
# their coverage, plus the inputs of fixed findings (finding-*). Crashes, timeouts and
# out-of-memory inputs land in fuzz/findings/TARGET/ (not committed); the script exits non-zero
# if any target found one. libFuzzer's log of each run is fuzz/findings/TARGET/log.txt.
#
# Environment: SHADOWSIM_FUZZ_BUILD_DIR (default build-fuzz), SHADOWSIM_FUZZ_CXX (default
# clang++-14), SHADOWSIM_FUZZ_JOBS (default: all cores). Not CXX/BUILD_DIR: a shell that
# exports those for the gcc build must not redirect this one.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${SHADOWSIM_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
CXX=${SHADOWSIM_FUZZ_CXX:-clang++-14}
ALL_TARGETS=(binary_trace text_trace lackey perf_script manifest locality_model config)

seconds=600
smoke=0
build_only=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) [ $# -ge 2 ] || { echo "fuzz.sh: --seconds needs a number" >&2; exit 2; }
               seconds=$2; shift 2 ;;
    --seconds=*) seconds=${1#*=}; shift ;;
    --smoke) smoke=1; seconds=10; shift ;;
    --build-only) build_only=1; shift ;;
    --list) printf '%s\n' "${ALL_TARGETS[@]}"; exit 0 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -eq 0 ] && targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
  case " ${ALL_TARGETS[*]} " in
    *" $t "*) ;;
    *) echo "fuzz.sh: unknown target '$t'; expected one of: ${ALL_TARGETS[*]}" >&2; exit 2 ;;
  esac
done

dict_of() {
  case "$1" in
    text_trace) echo text_trace ;;
    lackey) echo lackey ;;
    perf_script) echo perf_script ;;
    manifest|locality_model|config) echo json ;;
    *) echo "" ;;
  esac
}

# --- build: only the fuzz targets and the libraries they link ---------------------------------
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER="$CXX" -DSHADOWSIM_FUZZ=ON >/dev/null
fi
build_targets=()
for t in "${targets[@]}"; do build_targets+=("fuzz_$t"); done
cmake --build "$BUILD_DIR" --target "${build_targets[@]}" -- -j"${SHADOWSIM_FUZZ_JOBS:-$(nproc)}"
[ "$build_only" = 1 ] && exit 0

# --- run ---------------------------------------------------------------------------------------
failed=()
for t in "${targets[@]}"; do
  exe=$BUILD_DIR/fuzz/fuzz_$t
  corpus=$ROOT/fuzz/corpus/$t
  findings=$ROOT/fuzz/findings/$t
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/shadowsim-fuzz-$t.XXXXXX")
  mkdir -p "$corpus" "$findings"
  args=(-max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$findings/")
  d=$(dict_of "$t")
  [ -n "$d" ] && args+=(-dict="$ROOT/fuzz/dict/$d.dict")
  log=$findings/log.txt
  echo "== $t: ${seconds}s"
  status=0
  # New inputs go to the first folder (scratch); the corpus is only read.
  "$exe" "${args[@]}" -max_total_time="$seconds" "$scratch" "$corpus" >"$log" 2>&1 || status=$?
  grep -E '^(stat::|#[0-9]+ +DONE)' "$log" | sed 's/^/   /' || true
  if [ "$status" -ne 0 ]; then
    echo "   FAILED (exit $status): see $log and $findings/" >&2
    grep -E 'ERROR: |SUMMARY: |runtime error' "$log" | head -5 | sed 's/^/   /' >&2 || true
    failed+=("$t")
  elif [ "$smoke" = 0 ]; then  # (the smoke keeps nothing)
    # Keep the committed corpus minimal: merge the old corpus and the new inputs into an empty
    # folder (libFuzzer keeps the fewest, smallest inputs that give all their features), plus
    # the inputs of fixed findings (finding-*), which stay whatever their coverage.
    merged=$scratch.merged
    mkdir -p "$merged"
    if "$exe" -merge=1 -max_len=65536 -timeout=10 -rss_limit_mb=2048 "$merged" "$corpus" \
        "$scratch" >>"$log" 2>&1; then
      find "$corpus" -maxdepth 1 -type f -name 'finding-*' -exec cp {} "$merged/" \;
      rm -rf "$corpus" && mv "$merged" "$corpus"
      echo "   corpus: $(find "$corpus" -type f | wc -l) files, $(du -sk "$corpus" | cut -f1) KiB"
    else
      echo "   merge failed: see $log" >&2
      failed+=("$t")
    fi
    rm -rf "$merged"
  fi
  rm -rf "$scratch"
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz.sh: findings in: ${failed[*]}" >&2
  exit 1
fi
