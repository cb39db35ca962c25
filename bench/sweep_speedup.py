#!/usr/bin/python3
"""Sweep speed-up on 2 local workers over 1, and the sweep driver's own overhead per point.

    /usr/bin/python3 bench/sweep_speedup.py [--binary build/sim/shadowsim] [--points 16]
                                            [--repeat 3] [--max-references 0]

The same sweep (configs/default.json, the xz trace; `--points` points made of an STLB on/off
axis times seeds) runs into a fresh folder with -j 1 and with -j 2, best of `--repeat` each.
Printed (docs/performance.md, "Sweeps"):
  * wall time of the whole sweep, points/s, speed-up of -j 2 over -j 1 (ideal: 2.0);
  * simulated time per point: the simulator's own `host.wall_seconds` in stats.json;
  * process time per point: the shadowsim process as the driver sees it (start, config, trace
    loading, simulation, writing the results), minus the simulated time;
  * driver overhead per point: with -j 1, wall time minus the sum of the process times (spec,
    hashing, scheduling, writing point.json, the rename, progress), and the part of it the
    driver measures in its own code (set-up and finishing points).
Same machine-load caveats as every figure in docs/performance.md.
"""

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def load_sweep():
    spec = importlib.util.spec_from_file_location("_shadowsim_sweep_bench",
                                                  REPO / "python" / "shadowsim" / "sweep.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def one_sweep(sw, spec, jobs, binary, scratch):
    out = Path(tempfile.mkdtemp(prefix=f"j{jobs}-", dir=scratch))
    result = sw.run_sweep(spec, str(out), sw.LocalExecutor(binary, jobs), progress=None)
    if not result.ok or result.succeeded != result.total:
        raise SystemExit(f"sweep failed: {result.failures}")
    sim = sum(json.loads((d / "stats.json").read_text())["host"]["wall_seconds"]
              for d in (out / "points").iterdir())
    shutil.rmtree(out)
    return {"wall": result.wall_seconds, "process": result.point_seconds, "sim": sim,
            "driver_code": result.driver_seconds, "n": result.total}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.environ.get("SHADOWSIM_BINARY",
                                                       str(REPO / "build" / "sim" / "shadowsim")))
    ap.add_argument("--points", type=int, default=16, help="points (even; default 16)")
    ap.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    ap.add_argument("--max-references", type=int, default=0,
                    help="run.max_references of every point (0: the whole trace, ~0.2 s)")
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    sw = load_sweep()
    binary = os.path.abspath(args.binary)
    raw = {"name": "bench", "base": str(REPO / "configs" / "default.json"),
           "overrides": {"run.max_references": args.max_references},
           "grid": {"machine.tlb.stlb_enabled": [True, False]},
           "seeds": {"count": max(1, args.points // 2)}}
    spec = sw.parse_spec(raw, origin="bench", spec_dir=str(REPO))
    n = len(sw.generate_points(spec))
    print(f"sweep of {n} points (configs/default.json, run.max_references="
          f"{args.max_references}), {binary}, {os.cpu_count()} host CPUs, best of {args.repeat}")
    best = {}
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as scratch:
        one_sweep(sw, spec, 1, binary, scratch)  # warm the page cache
        for jobs in args.jobs:
            runs = [one_sweep(sw, spec, jobs, binary, scratch) for _ in range(args.repeat)]
            best[jobs] = min(runs, key=lambda r: r["wall"])
    base = best[args.jobs[0]]
    print()
    print("| workers | wall s | points/s | speed-up | simulated ms/point | process ms/point |")
    print("|---:|---:|---:|---:|---:|---:|")
    for jobs, r in best.items():
        print(f"| {jobs} | {r['wall']:.2f} | {r['n'] / r['wall']:.1f} | "
              f"{base['wall'] / r['wall']:.2f} | {1e3 * r['sim'] / r['n']:.1f} | "
              f"{1e3 * (r['process'] - r['sim']) / r['n']:.1f} |")
    one = best.get(1)
    if one:
        overhead = (one["wall"] - one["process"]) / one["n"]
        print()
        print(f"driver overhead per point (-j 1, wall - sum of process times): "
              f"{1e3 * overhead:.2f} ms ({100 * overhead * one['n'] / one['wall']:.1f} % of the "
              f"wall time); in the driver's own code (set-up, finishing points): "
              f"{1e3 * one['driver_code'] / one['n']:.2f} ms")
        print(f"process start-up and I/O per point (process time - simulated time): "
              f"{1e3 * (one['process'] - one['sim']) / one['n']:.1f} ms")


if __name__ == "__main__":
    main()
