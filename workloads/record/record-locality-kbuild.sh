#!/bin/bash
# Records lackey windows of the kernel build's main programs and fits the locality model the
# kernel-build workload uses between its recorded events (docs/trace-format.md, "Locality
# model"; docs/workloads.md, "Kernel build: recorded vs simulated"):
#
#   workloads/record/record-locality-kbuild.sh OUT.json [LINES]
#
#   * cc1 of kernel/exit.c (tinyconfig, the fixture's build): its first LINES (default 300 M)
#     lines of lackey output, i.e. a window from the start of the compile (~230 M instructions
#     of a compile that runs ~1-2 G): the whole compile would be ~30 GB of text;
#   * as of the same file's assembly: all of it (~13 M instructions);
#   * make, sh and cat: the shipped lackey recording tests/workloads/data/lackey-make/.
#
# Then `shadowsim trace fit-locality` of the three into OUT.json. The windows go to $WORK
# (default /tmp/shadowsim-kbuild; the kernel tree is the one record-perf-kbuild.sh unpacks, run
# it first) compressed with zstd; ~10 CPU-minutes and ~0.6 GB for the default LINES.
# Needs valgrind, gcc, zstd and a built shadowsim (SHADOWSIM, default build/sim/shadowsim).
set -euo pipefail
OUT=${1:?usage: record-locality-kbuild.sh OUT.json [LINES]}
LINES=${2:-300000000}
WORK=${WORK:-/tmp/shadowsim-kbuild}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
SHADOWSIM=${SHADOWSIM:-$REPO/build/sim/shadowsim}
case $OUT in /*) ;; *) OUT=$(pwd)/$OUT ;; esac
KSRC=${KSRC:-$(ls -d "$WORK"/linux-source-6.1* | head -n 1)}
[ -f "$KSRC/kernel/.exit.o.cmd" ] || {
  echo "$KSRC/kernel/.exit.o.cmd missing: run workloads/record/record-perf-kbuild.sh first" >&2
  exit 1
}
cd "$KSRC"
# Kbuild's own command line for kernel/exit.o, then the cc1 and as command lines gcc runs.
CMD=$(sed -n '1s/^cmd_kernel\/exit.o := //p' kernel/.exit.o.cmd)
eval "$(echo "$CMD" | sed "s#-c -o kernel/exit.o#-S -o $WORK/exit.s#")"
GCCN=$(eval "$(echo "$CMD" | sed "s#-o kernel/exit.o#-o $WORK/exit-lk.o#") -###" 2>&1)
CC1=$(echo "$GCCN" | grep '/cc1 ' | head -n 1 | sed "s#-o [^ ]*\.s#-o $WORK/exit-lk.s#")
AS=$(echo "$GCCN" | grep -E '^ *"?as"? ' | head -n 1 | sed "s#[^ ]*\.s\$#$WORK/exit.s#")
# lackey writes to fd 9; `head` ends the window (valgrind then stops on the closed pipe).
eval "valgrind --tool=lackey --trace-mem=yes --log-fd=9 $CC1" \
  9> >(head -n "$LINES" | zstd -3 -q > "$WORK/cc1-window.lackey.zst") 2>/dev/null || true
eval "valgrind --tool=lackey --trace-mem=yes --log-fd=9 $AS" \
  9> >(zstd -3 -q > "$WORK/as.lackey.zst") 2>/dev/null
sleep 2  # the zstd processes behind the pipes finish
"$SHADOWSIM" trace fit-locality "$REPO/tests/workloads/data/lackey-make" \
  "$WORK/cc1-window.lackey.zst" "$WORK/as.lackey.zst" -o "$OUT"
