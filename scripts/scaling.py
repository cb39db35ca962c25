#!/usr/bin/python3
"""Scaling and the nested baseline: run configs/xen2008/scaling.sweep.json and plot the
makespan of the recorded make -j16 build against the VCPU count, per design (shadow paging
with the locked walk, with the unlocked walk, nested paging), with as many PCPUs as VCPUs and
at 2x overcommit; with the shadow lock's contention and the cycles VCPUs lost to preemption
and to waiting for shootdown acknowledgements.

    /usr/bin/python3 scripts/scaling.py [-o out/scaling] [-j 2] [--max-vcpus 8] [--seeds 1]

Runs `build/sim/shadowsim sweep` on a spec derived from the committed one (fewer VCPU rows,
another seed count, more overrides), resumable like any sweep, reads it with shadowsim.load()
and prints a markdown table; the figures go to OUT/scaling_makespan.{png,pdf} and
OUT/scaling_overheads.{png,pdf} (error bars: standard deviation over the seeds, when more
than one). docs/validation.md, "Scaling and nested paging".
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "configs", "xen2008", "scaling.sweep.json")
GHZ = 2.5  # the model's nominal clock (docs/hypervisor.md, PCPUs), for the seconds column


def _sweep_module():
    """python/shadowsim/sweep.py on its own (standard library only), as scripts/xen2008.py."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "shadowsim_sweep", os.path.join(ROOT, "python", "shadowsim", "sweep.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


load_json_file = _sweep_module().load_json_file


def derive_spec(args):
    """The committed spec with the VCPU rows cut to --max-vcpus, the seed count and the
    overrides of the command line; a --set of a zipped path removes it from its zip group."""
    spec = load_json_file(args.spec)
    spec["base"] = os.path.join(os.path.dirname(os.path.abspath(args.spec)), spec["base"])
    overrides = spec.setdefault("overrides", {})
    extra = {}
    if args.max_references:
        extra["run.max_references"] = args.max_references
    if args.trace:
        extra["workload.trace"] = os.path.abspath(args.trace)
    for item in args.set:
        path, _, value = item.partition("=")
        try:
            extra[path] = json.loads(value)
        except ValueError:
            extra[path] = value
    groups = spec.get("zip", [])
    if isinstance(groups, dict):
        groups = [groups]
    kept = []
    for group in groups:
        group = {k: v for k, v in group.items() if k not in extra}
        if "machine.vcpus" in group and args.max_vcpus:
            rows = [i for i, v in enumerate(group["machine.vcpus"]) if v <= args.max_vcpus]
            group = {k: [v[i] for i in rows] for k, v in group.items()}
        if group and all(len(v) for v in group.values()):
            kept.append(group)
    spec["zip"] = kept
    overrides.update(extra)
    if args.seeds:
        spec["seeds"] = {"count": args.seeds}
    return spec


def design(row):
    if row["machine.virtualization"] == "nested":
        return "nested paging"
    return "shadow, " + row["hypervisor.strategy"]


DESIGNS = ["shadow, locked", "shadow, unlocked", "nested paging"]
STYLE = {"shadow, locked": ("tab:red", "o"), "shadow, unlocked": ("tab:blue", "s"),
         "nested paging": ("tab:green", "^")}


def summarise(frame):
    """One row per (design, vcpus, pcpus, seed) with the derived figures, then mean and sd over
    the seeds."""
    import pandas as pd
    cols = frame.columns
    per_vcpu = {name: [c for c in cols if re.fullmatch(r"vcpu\d+\." + name, c)]
                for name in ("preempted_cycles", "ack_wait_cycles", "preemptions", "spin_cycles")}
    rows = []
    for _, r in frame.iterrows():
        vcpus, makespan = int(r["machine.vcpus"]), float(r["sim.makespan_cycles"])
        vcpu_time = makespan * vcpus  # every VCPU exists for the whole makespan
        total = {k: float(sum(r[c] for c in v if not pd.isna(r[c]))) for k, v in per_vcpu.items()}
        acq = r.get("hv.lock.acquisitions", float("nan"))
        contended = r.get("hv.lock.contended", float("nan"))
        rows.append({
            "design": design(r), "vcpus": vcpus, "pcpus": int(r["machine.pcpus"]),
            "seed": r["seed"], "makespan": makespan / 1e9,
            "contended": 100.0 * contended / acq if acq and not pd.isna(acq) else float("nan"),
            "spin": 100.0 * total["spin_cycles"] / vcpu_time,
            "preempted": 100.0 * total["preempted_cycles"] / vcpu_time,
            "ack_wait": 100.0 * total["ack_wait_cycles"] / vcpu_time,
            "preemptions": total["preemptions"],
        })
    per_seed = pd.DataFrame(rows)
    per_seed["overcommit"] = per_seed["pcpus"] < per_seed["vcpus"]
    keys = ["design", "overcommit", "vcpus", "pcpus"]
    figures = ["makespan", "contended", "spin", "preempted", "ack_wait", "preemptions"]
    agg = per_seed.groupby(keys)[figures].agg(["mean", "std"]).reset_index()
    agg.columns = [a if not b else "{}_{}".format(a, b) for a, b in agg.columns]
    counts = per_seed.groupby(keys)["seed"].count().reset_index(name="seeds")
    agg = agg.merge(counts, on=keys)
    nested = agg[agg["design"] == "nested paging"][["overcommit", "vcpus", "makespan_mean"]]
    agg = agg.merge(nested.rename(columns={"makespan_mean": "nested_makespan"}),
                    on=["overcommit", "vcpus"], how="left")
    agg["vs_nested"] = 100.0 * (agg["makespan_mean"] / agg["nested_makespan"] - 1)
    order = {d: i for i, d in enumerate(DESIGNS)}
    agg["order"] = agg["design"].map(order)
    return agg.sort_values(["overcommit", "vcpus", "order"]).drop(columns="order")


def fmt(m, sd, digits):
    if m is None or (isinstance(m, float) and math.isnan(m)):
        return "-"
    if sd is not None and not math.isnan(sd) and sd > 0:
        return "{:.{d}f} ± {:.{d}f}".format(m, sd, d=digits)
    return "{:.{d}f}".format(m, d=digits)


def table(agg):
    lines = ["| design | VCPUs | PCPUs | makespan (G cycles) | vs nested | lock acquisitions "
             "contended | spinning (% of VCPU time) | preempted (%) | ack wait (%) | "
             "slices ended preempted |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in agg.iterrows():
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            r["design"], r["vcpus"], r["pcpus"], fmt(r["makespan_mean"], r["makespan_std"], 3),
            "-" if r["design"] == "nested paging" or math.isnan(r["vs_nested"])
            else "{:+.1f} %".format(r["vs_nested"]),
            "-" if r["design"] == "nested paging"
            else fmt(r["contended_mean"], r["contended_std"], 1) + " %",
            "-" if r["design"] == "nested paging" else fmt(r["spin_mean"], r["spin_std"], 1),
            fmt(r["preempted_mean"], r["preempted_std"], 1),
            fmt(r["ack_wait_mean"], r["ack_wait_std"], 2),
            fmt(r["preemptions_mean"], None, 0)))
    seeds = int(agg["seeds"].max()) if len(agg) else 0
    lines.append("")
    lines.append("Mean ± standard deviation over {} seed(s). Spinning, preempted and ack-wait "
                 "cycles are summed over the VCPUs and divided by VCPUs × makespan. 1 G cycles "
                 "= {:.0f} ms at the nominal {} GHz.".format(seeds, 1e3 / GHZ, GHZ))
    return "\n".join(lines)


def plot(agg, out_dir, subtitle):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    paths = []
    regimes = [(False, "PCPUs = VCPUs"), (True, "2× overcommit (PCPUs = VCPUs / 2)")]

    def errorbar(ax, sub, y, label, color, marker, linestyle="-"):
        err = sub[y + "_std"].fillna(0) if (sub["seeds"] > 1).any() else None
        ax.errorbar(sub["vcpus"], sub[y + "_mean"], yerr=err, label=label, color=color,
                    marker=marker, linestyle=linestyle, capsize=3)

    def log2_axis(ax, vcpus):
        ax.set_xscale("log", base=2)
        ax.set_xticks(vcpus)
        ax.set_xticklabels([str(v) for v in vcpus])

    # Makespan against VCPUs, one panel per regime.
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (over, title) in zip(axes, regimes):
        part = agg[agg["overcommit"] == over]
        for d in DESIGNS:
            sub = part[part["design"] == d]
            if len(sub):
                color, marker = STYLE[d]
                errorbar(ax, sub, "makespan", d, color, marker)
        log2_axis(ax, sorted(part["vcpus"].unique()))
        ax.set_title(title)
        ax.set_xlabel("VCPUs")
        ax.grid(True, alpha=0.3)
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter
    axes[0].set_ylabel("makespan (10⁹ cycles)")
    axes[0].set_yscale("log")
    axes[0].yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axes[0].yaxis.set_major_formatter(ScalarFormatter())
    axes[0].yaxis.set_minor_formatter(NullFormatter())
    axes[0].legend()
    fig.suptitle("make -j16 kernel build, 64-bit guest, {}".format(subtitle))
    fig.tight_layout()
    for ext in ("png", "pdf"):
        p = os.path.join(out_dir, "scaling_makespan." + ext)
        fig.savefig(p, dpi=150)
        paths.append(p)
    plt.close(fig)

    # Overheads: lock spinning, contended acquisitions, preempted and ack-wait time.
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for over, title in regimes:
        part = agg[agg["overcommit"] == over]
        ls = "--" if over else "-"
        tag = " (2× overcommit)" if over else " (PCPUs = VCPUs)"
        for d in DESIGNS[:2]:
            sub = part[part["design"] == d]
            if len(sub):
                color, marker = STYLE[d]
                errorbar(axes[0], sub, "spin", d + tag, color, marker, ls)
                errorbar(axes[1], sub, "contended", d + tag, color, marker, ls)
        if over:
            for d in DESIGNS:
                sub = part[part["design"] == d]
                if len(sub):
                    color, marker = STYLE[d]
                    errorbar(axes[2], sub, "preempted", d + ", preempted", color, marker, "--")
                    errorbar(axes[2], sub, "ack_wait", d + ", ack wait", color, marker, ":")
    vcpus = sorted(agg["vcpus"].unique())
    panels = [("shadow lock: spinning", "spinning (% of VCPU time)"),
              ("shadow lock: contention", "contended acquisitions (% of all)"),
              ("2× overcommit: waiting for a PCPU, for acks", "cycles (% of VCPU time)")]
    for ax, (title, label) in zip(axes, panels):
        log2_axis(ax, vcpus)
        ax.set_title(title)
        ax.set_xlabel("VCPUs")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    for ext in ("png", "pdf"):
        p = os.path.join(out_dir, "scaling_overheads." + ext)
        fig.savefig(p, dpi=150)
        paths.append(p)
    plt.close(fig)
    return paths


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", default=os.path.join(ROOT, "out", "scaling"))
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--spec", default=SPEC, help="the sweep spec (default "
                                                 "configs/xen2008/scaling.sweep.json)")
    ap.add_argument("--max-vcpus", type=int, default=0,
                    help="drop the rows with more VCPUs (default: all, up to 64)")
    ap.add_argument("--seeds", type=int, default=0, help="seeds per point (default: the spec's, 3)")
    ap.add_argument("--max-references", type=int, default=0,
                    help="run.max_references of every point (default: the whole build)")
    ap.add_argument("--binary", default=os.environ.get(
        "SHADOWSIM_BINARY", os.path.join(ROOT, "build", "sim", "shadowsim")))
    ap.add_argument("--trace", help="another workload manifest (default: the config's)")
    ap.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                    help="one more override for every point (VALUE is JSON, else a string)")
    ap.add_argument("--no-plot", action="store_true", help="the table only")
    ap.add_argument("--fresh", action="store_true", help="delete OUT first")
    args = ap.parse_args(argv)
    if args.fresh and os.path.isdir(args.out):
        import shutil
        shutil.rmtree(args.out)
    os.makedirs(args.out, exist_ok=True)
    spec = derive_spec(args)
    spec_path = os.path.join(args.out, "spec.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f, indent=2)
    sweep_dir = os.path.join(args.out, "sweep")
    # --allow-spec-change: a later run with more VCPU rows or seeds adds to the same folder.
    status = subprocess.call([args.binary, "sweep", spec_path, "-o", sweep_dir,
                              "-j", str(args.jobs), "--allow-spec-change"])
    if status not in (0, 1):
        sys.exit("scaling: the sweep failed (status {})".format(status))
    hashes = set()
    with open(os.path.join(sweep_dir, "points.jsonl")) as f:
        for line in f:
            if line.strip():
                hashes.add(json.loads(line)["hash"])
    import shadowsim  # the package (for load), after the sweep, which needs only the driver
    frame = shadowsim.load(sweep_dir, config=["preset", "guest.layout.kind"])
    frame = frame[frame["hash"].isin(hashes)]
    if frame.empty:
        sys.exit("scaling: no finished point")
    agg = summarise(frame)
    text = table(agg)
    print(text)
    with open(os.path.join(args.out, "scaling.md"), "w") as f:
        f.write(text + "\n")
    agg.to_csv(os.path.join(args.out, "scaling.csv"), index=False)
    if not args.no_plot:
        subtitle = "{} preset, {} guest layout".format(
            "/".join(sorted(frame["preset"].astype(str).unique())),
            "/".join(sorted(frame["guest.layout.kind"].astype(str).unique())))
        for p in plot(agg, args.out, subtitle):
            print("figure: " + p, file=sys.stderr)
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
