#!/usr/bin/python3
"""The Xen 2008 study end to end: run the sweeps of configs/xen2008/ and print the RFC's table
(xen-unstable 948397ecb8, "Walk the guest tables without the shadow lock") beside ours.

    /usr/bin/python3 scripts/xen2008.py [-o out/xen2008] [-j 2] [--seeds N] [--quick]

Runs `build/sim/shadowsim sweep` on configs/xen2008/study.sweep.json (paging mode x strategy x
seeds, 2 VCPUs) and up.sweep.json (one VCPU), resumable like any sweep, then reads the results
with shadowsim.load() and prints a markdown table. --quick runs a reduced study (one seed, the
first part of the build) for the test suite. The definitions of every figure are in
docs/validation.md.
"""
import argparse
import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sweep_module():
    """python/shadowsim/sweep.py on its own (standard library only; the package needs the
    built extension, which `import shadowsim` below finds through the build's .pth)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "shadowsim_sweep", os.path.join(ROOT, "python", "shadowsim", "sweep.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


load_json_file = _sweep_module().load_json_file

# What the RFC reports (commit message of 948397ecb8, kernel compile, 2 VCPUs on 2 PCPUs).
RFC = {
    "32bit": {"recheck": None, "removal_share": None, "speedup": 1.1},
    "pae": {"recheck": 7.2, "removal_share": 54.9, "speedup": 0.4},
    "4level": {"recheck": 3.7, "removal_share": 68.0, "speedup": 0.5},
}
MODE_NAMES = {"32bit": "32-bit", "pae": "PAE", "4level": "64-bit"}
# The reduced study (--quick; the test suite and the notebook's quick mode): one seed, the
# build's first 300,000 references.
QUICK_OVERRIDES = {"run.max_references": 300000}
QUICK_SEEDS = 1


def run_sweep(binary, spec_path, out_dir, jobs, overrides, seeds):
    """Writes a derived spec (reduced or with another seed count) and runs it."""
    spec = load_json_file(spec_path)
    spec["base"] = os.path.join(os.path.dirname(spec_path), spec["base"])
    if overrides:
        spec.setdefault("overrides", {}).update(overrides)
    if seeds:
        spec["seeds"] = {"count": seeds}
    os.makedirs(out_dir, exist_ok=True)
    derived = os.path.join(out_dir, "spec.json")
    with open(derived, "w") as f:
        json.dump(spec, f, indent=2)
    cmd = [binary, "sweep", derived, "-o", os.path.join(out_dir, "sweep"), "-j", str(jobs)]
    if subprocess.call(cmd) != 0:
        raise RuntimeError("xen2008: the sweep {} had failed points (see above)".format(spec_path))
    return os.path.join(out_dir, "sweep")


def mean_sd(values):
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return float("nan"), float("nan")
    m = sum(values) / len(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0
    return m, sd


def fmt(m, sd, digits=1):
    if math.isnan(m):
        return "-"
    return "{:.{d}f} ± {:.{d}f}".format(m, sd, d=digits) if sd else "{:.{d}f}".format(m, d=digits)


def rechecks(row):
    """Re-check rate (Xen's denominator: every guest walk) and the share of re-checks whose
    window saw a write-access removal (this VCPU's or another's), in percent."""
    walks = row["hv.shadow.shadow_guest_walk"]
    checks = row["hv.shadow.shadow_check_gwalk"]
    removal = (row["hv.recheck_cause.write_access_removal.self"] +
               row["hv.recheck_cause.write_access_removal.other"])
    self_removal = row["hv.recheck_cause.write_access_removal.self"]
    return (100.0 * checks / walks if walks else float("nan"),
            100.0 * removal / checks if checks else float("nan"),
            100.0 * self_removal / checks if checks else float("nan"))


def speedups(frame, by):
    """Per seed: makespan(locked) / makespan(unlocked) - 1, in percent, grouped by `by`."""
    out = {}
    for key, group in frame.groupby(by):
        per_seed = group.pivot_table(index="seed", columns="hypervisor.strategy",
                                     values="sim.makespan_cycles")
        if "locked" in per_seed and "unlocked" in per_seed:
            out[key] = [100.0 * (l / u - 1) for l, u in zip(per_seed["locked"],
                                                            per_seed["unlocked"])]
    return out


def table(study, up):
    lines = ["| guest | re-checks / guest walks (RFC) | from write-access removal (RFC) | "
             "of which self-caused | speed-up of unlocked (RFC) |",
             "|---|---|---|---|---|"]
    unlocked = study[study["hypervisor.strategy"] == "unlocked"]
    speed = speedups(study, "machine.paging_mode")
    for mode in ["32bit", "pae", "4level"]:
        rows = unlocked[unlocked["machine.paging_mode"] == mode]
        if rows.empty:
            continue
        r = [rechecks(row) for _, row in rows.iterrows()]
        rate, share, self_share = (mean_sd([x[i] for x in r]) for i in range(3))
        sp = mean_sd(speed.get(mode, []))
        ref = RFC[mode]
        lines.append("| {} | {} % ({}) | {} % ({}) | {} % | {} % ({}) |".format(
            MODE_NAMES[mode], fmt(*rate, digits=2),
            "-" if ref["recheck"] is None else "{} %".format(ref["recheck"]),
            fmt(*share), "-" if ref["removal_share"] is None else "{} %".format(ref["removal_share"]),
            fmt(*self_share), fmt(*sp, digits=2), "{} %".format(ref["speedup"])))
    up_speed = speedups(up.assign(one=1), "one").get(1, [])
    sp = mean_sd(up_speed)
    lines.append("")
    lines.append("Uniprocessor 64-bit guest: speed-up of unlocked {} % (negative: an overhead; the "
                 "RFC reports an overhead without a number).".format(fmt(*sp, digits=2)))
    seeds = len(study["seed"].unique())
    lines.append("Mean ± standard deviation over {} seed(s); locked and unlocked runs of a seed "
                 "share it.".format(seeds))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--out", default=os.path.join(ROOT, "out", "xen2008"))
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seeds", type=int, default=0, help="seeds per point (default: the spec's)")
    parser.add_argument("--quick", action="store_true",
                        help="a reduced study for tests: one seed, the build's first 300,000 "
                             "references")
    parser.add_argument("--binary", default=os.path.join(ROOT, "build", "sim", "shadowsim"))
    parser.add_argument("--trace", help="another workload manifest (default: the config's)")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                        help="one more override for every point (VALUE is JSON, else a string), "
                             "e.g. --set preset=modern")
    parser.add_argument("--fresh", action="store_true",
                        help="delete OUT first (otherwise finished points are reused)")
    args = parser.parse_args()
    if args.fresh and os.path.isdir(args.out):
        import shutil
        shutil.rmtree(args.out)
    overrides = dict(QUICK_OVERRIDES) if args.quick else {}
    if args.trace:
        overrides["workload.trace"] = os.path.abspath(args.trace)
    for item in args.set:
        path, _, value = item.partition("=")
        try:
            overrides[path] = json.loads(value)
        except ValueError:
            overrides[path] = value
    seeds = QUICK_SEEDS if args.quick else args.seeds
    specs = os.path.join(ROOT, "configs", "xen2008")
    try:
        study_dir = run_sweep(args.binary, os.path.join(specs, "study.sweep.json"),
                              os.path.join(args.out, "study"), args.jobs, overrides, seeds)
        up_dir = run_sweep(args.binary, os.path.join(specs, "up.sweep.json"),
                           os.path.join(args.out, "up"), args.jobs, overrides, seeds)
    except RuntimeError as e:
        sys.exit(str(e))
    import shadowsim  # the package (for load); after the sweeps, which need only the driver
    print(table(shadowsim.load(study_dir), shadowsim.load(up_dir)))


if __name__ == "__main__":
    main()
