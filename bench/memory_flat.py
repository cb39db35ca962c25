#!/usr/bin/env python3
"""Peak memory while a long trace streams, at two lengths (issue 8, item 5; docs/performance.md).

Writes one single-process trace of N records and one of LONGER x N (the same program: an mmap of
a fixed region, then seeded random references into it, so the working set is the same and only
the length differs), converts both to the compressed binary format, and runs each through
`shadowsim trace info` (the reader alone), a native run and a shadow-paged run, measuring the
child's peak resident set (getrusage ru_maxrss). Prints a table and the long/short ratio per
command: a simulator that streams its input stays near 1.0; one that kept the trace (or
per-record state) would grow with the length.

  /usr/bin/python3 bench/memory_flat.py [--binary build/sim/shadowsim] [--records 2000000]
                                        [--longer 4] [--check 1.10]

--check R exits 1 if any ratio exceeds R (a measurement, not a unit test: the suite never runs it).
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIME = "/usr/bin/time"        # Debian package `time`
REGION = 0x7f0000000000
REGION_PAGES = 16384          # 64 MiB working set


def write_text_trace(path, records, seed):
    rng = random.Random(seed)
    with open(path, "w", encoding="ascii") as f:
        f.write(f"E mmap {REGION:#x} {REGION_PAGES * 4096:#x} rw- private,anonymous\n")
        lines = []
        for i in range(records):
            page = rng.randrange(REGION_PAGES)
            kind = "W" if i % 3 == 0 else "R"
            lines.append(f"{kind} {REGION + page * 4096 + (i % 512) * 8:#x} 8 +3\n")
            if len(lines) == 65536:
                f.writelines(lines)
                lines.clear()
        f.writelines(lines)


def peak_rss_kib(cmd):
    """Runs cmd under /usr/bin/time; returns (its peak RSS in KiB, seconds). Not getrusage from
    here: a child's ru_maxrss keeps the high-water mark of the Python process it was forked
    from (Linux carries it across exec), which hides anything below ~20 MiB."""
    start = time.perf_counter()
    r = subprocess.run([TIME, "-f", "peak-rss-kib %M", *cmd], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"memory_flat: {' '.join(cmd)} failed ({r.returncode}): {r.stderr}")
    rss = int(r.stderr.strip().splitlines()[-1].split()[-1])
    return rss, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=os.path.join(REPO, "build", "sim", "shadowsim"))
    ap.add_argument("--records", type=int, default=2_000_000, help="the short trace's records")
    ap.add_argument("--longer", type=int, default=4, help="the long trace is this many times longer")
    ap.add_argument("--check", type=float, default=None, help="fail if a ratio exceeds this")
    args = ap.parse_args()
    if not os.access(TIME, os.X_OK):
        sys.exit(f"memory_flat: needs {TIME} (Debian package 'time': apt-get install time)")

    with tempfile.TemporaryDirectory(prefix="shadowsim-memflat-") as tmp:
        traces = {}
        for name, n in (("short", args.records), ("long", args.records * args.longer)):
            text = os.path.join(tmp, f"{name}.sstx")
            write_text_trace(text, n, seed=1)
            traces[name] = (os.path.join(tmp, f"{name}.sst.zst"), n)
            subprocess.run([args.binary, "trace", "convert", text, traces[name][0]], check=True,
                           stdout=subprocess.DEVNULL)
            os.remove(text)
        def command(label, name, path):
            """The command of a row: the reader alone, or a run in one virtualization mode."""
            if label == "trace info (reader only)":
                return [args.binary, "trace", "info", path]
            cfg = os.path.join(tmp, f"{name}.json")
            with open(cfg, "w", encoding="utf-8") as f:
                json.dump({"workload": {"trace": path},
                           "machine": {"virtualization": label.split(", ")[1]}}, f)
            return [args.binary, "run", cfg, "-o", os.path.join(tmp, "out"), "-q"]

        rows = []
        for label in ("trace info (reader only)", "run, native", "run, shadow"):
            measured = {name: peak_rss_kib(command(label, name, path)) + (n, os.path.getsize(path))
                        for name, (path, n) in traces.items()}
            rows.append((label, measured))

    print(f"{'command':<26} {'records':>12} {'trace MB':>9} {'peak RSS MiB':>13} {'seconds':>8}")
    worst = 0.0
    for label, m in rows:
        for name in ("short", "long"):
            rss, secs, n, size = m[name]
            print(f"{label:<26} {n:>12,} {size / 1e6:>9.1f} {rss / 1024:>13.1f} {secs:>8.1f}")
        ratio = m["long"][0] / m["short"][0]
        worst = max(worst, ratio)
        print(f"{'':<26} long/short peak RSS: {ratio:.3f} for {args.longer}x the records")
    if args.check is not None and worst > args.check:
        print(f"memory_flat: a ratio of {worst:.3f} exceeds {args.check}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
