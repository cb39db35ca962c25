#!/bin/sh
# Records a small multi-process `make -j2` under valgrind lackey, one log per process image, for
# `shadowsim trace import-lackey` (docs/workloads.md, "Recording").
#
#   workloads/record/record-lackey-make.sh OUTDIR [c|shell]
#
# c (default): make -j2 of FILES (default 3) one-line C files and a link: gcc, cc1, as, collect2,
#   ld; about 25 processes, 7+ CPU-minutes, 100+ MB of zstd logs: produced, never committed.
# shell: make -j2 of two shell recipes (echo, cat): 7 logs, ~1 MB with zstd -19: the shipped
#   fixture tests/workloads/data/lackey-make/.
# Every log is compressed with zstd -19 as OUTDIR/PID.N.zst (the importer reads them as they are).
# Needs: apt-get install valgrind gcc make zstd
set -eu
OUT=${1:?usage: record-lackey-make.sh OUTDIR [c|shell]}
MODE=${2:-c}
FILES=${FILES:-3}
case $OUT in /*) ;; *) OUT=$(pwd)/$OUT ;; esac
mkdir -p "$OUT"
SRC=$(mktemp -d)
trap 'rm -rf "$SRC"' EXIT
cd "$SRC"
if [ "$MODE" = shell ]; then
  printf 'all: a.out b.out\na.out: ; echo a > a.out\nb.out: ; cat Makefile > b.out && true\n' \
    > Makefile
else
  objs=
  i=1
  while [ "$i" -le "$FILES" ]; do
    printf 'int f%d(int x) { return x * %d; }\n' "$i" "$i" > "f$i.c"
    objs="$objs f$i.o"
    i=$((i + 1))
  done
  printf 'int main(void) { return 0; }\n' > main.c
  printf 'prog: main.o%s\n\tgcc -o prog main.o%s\n%%.o: %%.c\n\tgcc -O2 -c $< -o $@\n' \
    "$objs" "$objs" > Makefile
fi
# %p.%n: the pre-exec half of a forked child and its exec'd image get separate files (%p alone
# lets the exec'd image overwrite the pre-exec half). --trace-sched=yes adds thread switches.
valgrind --tool=lackey --trace-mem=yes --trace-syscalls=yes --trace-sched=yes \
  --trace-children=yes --log-file="$OUT/%p.%n" make -j2 > /dev/null
for f in "$OUT"/*; do
  case $f in *.zst) ;; *) zstd -q -19 -T0 --rm -f "$f" ;; esac
done
du -sh "$OUT"
