#!/bin/sh
# Records the kernel-event stream of a kernel build with perf tracepoints (docs/workloads.md,
# "Recording"): user page faults, TLB flushes, fork/exec/exit, context switches and the mm system
# calls, as `perf script` text that `shadowsim trace perf-info` and `perf-import` read.
#
#   workloads/record/record-perf-kbuild.sh OUT.perf.txt [TARGETS...]
#
# TARGETS default to the three files of the shipped fixture (kernel/fork.o mm/memory.o
# kernel/exit.o); give `vmlinux` for the whole tinyconfig build (about 5 minutes on 2 CPUs,
# ~1 GB perf.data, ~60 MB of xz text). JOBS (default 2) sets make's -j (the shipped
# tests/workloads/data/kbuild-j16.perf.txt.zst: JOBS=16 and the 10 targets listed in
# docs/workloads.md, "Recording scripts"); KSRC an unpacked tree
# (default: /usr/src/linux-source-6.1.tar.xz unpacked under $WORK, default /tmp/shadowsim-kbuild).
# Needs root or kernel.perf_event_paranoid <= -1, and Debian's packages
#   apt-get install linux-perf linux-source-6.1 flex bison libelf-dev bc cpio gcc make xz-utils
set -eu
OUT=${1:?usage: record-perf-kbuild.sh OUT.perf.txt [TARGETS...]}
shift
[ $# -gt 0 ] || set -- kernel/fork.o mm/memory.o kernel/exit.o
JOBS=${JOBS:-2}
WORK=${WORK:-/tmp/shadowsim-kbuild}
case $OUT in /*) ;; *) OUT=$(pwd)/$OUT ;; esac
mkdir -p "$WORK"
if [ -z "${KSRC:-}" ]; then
  TARBALL=$(ls /usr/src/linux-source-6.1*.tar.xz | head -n 1)
  KSRC=$WORK/$(basename "$TARBALL" .tar.xz)
  [ -d "$KSRC" ] || tar -C "$WORK" -xJf "$TARBALL"
fi
cd "$KSRC"
[ -f .config ] || make -s tinyconfig
# Everything the targets depend on (headers, host tools, generated files) is built first and
# not recorded, so the recording holds the compiles themselves.
make -s -j"$JOBS" prepare
for t in "$@"; do rm -f "$t"; done
# clone/clone3/vfork/fork entries tell fork, vfork (posix_spawn) and threads apart;
# sys_exit_mremap gives mremap's result. -F comm,pid,tid,... prints PID/TID so threads are known.
perf record -q -o "$WORK/build.data" \
  -e exceptions:page_fault_user -e tlb:tlb_flush \
  -e sched:sched_process_fork -e sched:sched_process_exec -e sched:sched_process_exit \
  -e sched:sched_switch \
  -e syscalls:sys_enter_mmap -e syscalls:sys_exit_mmap -e syscalls:sys_enter_munmap \
  -e syscalls:sys_enter_mprotect -e syscalls:sys_enter_brk -e syscalls:sys_exit_brk \
  -e syscalls:sys_enter_mremap -e syscalls:sys_exit_mremap -e syscalls:sys_enter_madvise \
  -e syscalls:sys_enter_clone -e syscalls:sys_enter_clone3 -e syscalls:sys_enter_vfork \
  -e syscalls:sys_enter_fork \
  -- make -j"$JOBS" "$@"
perf script -F trace:comm,pid,tid,cpu,time,event,trace -i "$WORK/build.data" > "$OUT"
echo "$OUT: $(wc -l < "$OUT") lines; compress with: xz -9 -k $OUT  (or zstd -19)"
