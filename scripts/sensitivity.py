#!/usr/bin/python3
"""Sensitivity of the Xen 2008 study's conclusions to the model's assumed costs.

    /usr/bin/python3 scripts/sensitivity.py [-o out/sensitivity] [-j 2] [--modes 4level]
        [--seeds 1] [--full] [--params GLOB,...] [--factors 0.5,2] [--quick]

Varies every cost marked "assumption" (the table in scripts/sensitivity_params.json), one at a
time, by each factor (x0.5 and x2 by default), runs the study (configs/xen2008/kbuild.json,
locked and unlocked, sharing the seed) at the baseline and with each change, and reports which
of the study's conclusions change, per guest paging mode:

  sign       the sign of the speed-up of unlocked over locked (makespan(locked) /
             makespan(unlocked) - 1): "+", "-", or "0" within +-band (default 0.25 points,
             widened to 2 standard errors over the seeds);
  in-range   the re-check rate (Xen's denominator) is within a factor (default 2) of the RFC's
             (64-bit 3.7 %, PAE 7.2 %; the RFC gives none for 32-bit);
  majority   write-access removal is the majority cause of the re-checks (share > 50 %).

Everything runs through the sweep runner (`shadowsim sweep`): one generated spec, a grid over
the paging modes and the strategies and one zip whose rows are the baseline and each
(parameter, factor). Every row sets every parameter of the table (the baseline value but for
the one varied), so a point's hash does not depend on which parameters were selected: a later
run with more parameters or more modes reuses the finished points in the same -o DIR. Kill it
and run it again: finished points are kept.

To read a change against the model's own noise (a changed cost moves every interleaving of
the two VCPUs), the baseline alone is also run over --noise-seeds seeds (default 5, in
OUT/noise); a change of the speed-up beyond 2 sd sqrt(2/n) of that spread is marked "*".

Default size (reduced): the 64-bit guest, one seed, the build's first 300,000 references
(as scripts/xen2008.py --quick). --full: all three modes, 3 seeds, the whole build (~3 h on
2 cores for the whole table). --quick: 100,000 references, a plumbing test whose
figures mean nothing. docs/sensitivity.md explains how to read the table.
"""
import argparse
import fnmatch
import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARAMS_FILE = os.path.join(ROOT, "scripts", "sensitivity_params.json")
BASE_CONFIG = os.path.join(ROOT, "configs", "xen2008", "kbuild.json")


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

# The RFC (xen-unstable 948397ecb8): re-checks / guest walks, in percent.
RFC_RECHECK = {"32bit": None, "pae": 7.2, "4level": 3.7}
MODE_NAMES = {"32bit": "32-bit", "pae": "PAE", "4level": "64-bit"}
MODE_ALIASES = {"32bit": "32bit", "32-bit": "32bit", "32": "32bit", "pae": "pae",
                "4level": "4level", "64-bit": "4level", "64bit": "4level", "64": "4level"}
STRATEGIES = ["locked", "unlocked"]
BASELINE = "baseline"


# ------------------------------------------------------------------------------------------
# Parameters and their values


def load_parameters(path):
    table = load_json_file(path)["parameters"]
    seen = set()
    for p in table:
        if p["path"] in seen:
            sys.exit("sensitivity: {}: {} listed twice".format(path, p["path"]))
        seen.add(p["path"])
    return table


def select(table, patterns):
    """--params: comma-separated dotted paths or globs; a pattern without a dot also matches
    the last component (brute_force_* matches hypervisor.costs.brute_force_*)."""
    if not patterns:
        return list(table)
    chosen = []
    for pat in [p.strip() for p in patterns.split(",") if p.strip()]:
        hits = [p for p in table if fnmatch.fnmatchcase(p["path"], pat) or
                ("." not in pat and fnmatch.fnmatchcase(p["path"].rsplit(".", 1)[1], pat))]
        if not hits:
            sys.exit("sensitivity: --params {!r} matches no parameter of {} (--list shows "
                     "them)".format(pat, os.path.relpath(PARAMS_FILE)))
        chosen += [h for h in hits if h not in chosen]
    return chosen


def lookup(config, dotted):
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def resolve(binary, base, overrides):
    """The base config fully resolved with the constant overrides (`shadowsim config --check`)."""
    cmd = [binary, "config", "--check", base]
    for k, v in overrides.items():
        cmd += ["--set", "{}={}".format(k, json.dumps(v))]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if out.returncode != 0:
        sys.exit("sensitivity: {} failed:\n{}".format(" ".join(cmd), out.stderr))
    return json.loads(out.stdout)


def scaled(value, factor):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("not a number: {!r}".format(value))
    if isinstance(value, int):
        return int(math.floor(value * factor + 0.5))
    return round(value * factor, 12)


def applies(param, config):
    """False when the parameter cannot act in this configuration (scope in the table)."""
    vcpus = lookup(config, "machine.vcpus")
    pcpus = lookup(config, "machine.pcpus")
    scope = param.get("scope", "any")
    if scope == "overcommit":
        return pcpus != 0 and pcpus < vcpus
    if scope == "smp":
        return vcpus != 1
    if scope == "no-shadow":
        return lookup(config, "machine.virtualization") != "shadow"
    return True


# ------------------------------------------------------------------------------------------
# The study as one sweep


def build_spec(base, overrides, modes, seeds, table, baseline, variations):
    """Grid: modes x strategies. Zip: row 0 the baseline, then one row per variation; every row
    names every parameter of the table."""
    rows = [dict(baseline)]
    for path, factor, value in variations:
        row = dict(baseline)
        row[path] = value
        rows.append(row)
    zipped = {p["path"]: [r[p["path"]] for r in rows] for p in table}
    return {
        "name": "xen2008-sensitivity",
        "description": "scripts/sensitivity.py: the Xen 2008 study with each assumed cost "
                       "scaled, one at a time",
        "base": base,
        "overrides": overrides,
        "grid": {"machine.paging_mode": modes, "hypervisor.strategy": STRATEGIES},
        "zip": zipped,
        "seeds": {"count": seeds},
    }


def row_label(axes, baseline, variations):
    """(path, factor) of the variation a point's axes describe; (BASELINE, 1) for the baseline."""
    changed = [p for p, v in baseline.items() if axes.get(p) != v]
    if not changed:
        return (BASELINE, 1.0)
    if len(changed) != 1:
        return None
    for path, factor, value in variations:
        if path == changed[0] and axes[path] == value:
            return (path, factor)
    return None


# ------------------------------------------------------------------------------------------
# Figures and conclusions


def mean_sd(values):
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return float("nan"), float("nan"), 0
    m = sum(values) / len(values)
    sd = (math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
          if len(values) > 1 else 0.0)
    return m, sd, len(values)


def figures(rows):
    """rows: the points of one (mode, variation), every seed and both strategies. Returns the
    per-seed speed-ups and the unlocked runs' re-check rates and removal shares (percent)."""
    by_seed = {}
    for r in rows:
        by_seed.setdefault(r["seed"], {})[r["hypervisor.strategy"]] = r
    speedups, rates, shares = [], [], []
    for seed, pair in sorted(by_seed.items()):
        if "locked" in pair and "unlocked" in pair:
            speedups.append(100.0 * (pair["locked"]["sim.makespan_cycles"] /
                                     pair["unlocked"]["sim.makespan_cycles"] - 1))
        u = pair.get("unlocked")
        if u is not None:
            walks = u["hv.shadow.shadow_guest_walk"]
            checks = u["hv.shadow.shadow_check_gwalk"]
            removal = (u["hv.recheck_cause.write_access_removal.self"] +
                       u["hv.recheck_cause.write_access_removal.other"])
            rates.append(100.0 * checks / walks if walks else float("nan"))
            shares.append(100.0 * removal / checks if checks else float("nan"))
    return speedups, rates, shares


def conclusions(mode, speedups, rates, shares, band, factor):
    """The three conclusions as short strings (None: not defined)."""
    s, sd, n = mean_sd(speedups)
    width = max(band, 2 * sd / math.sqrt(n)) if n > 1 else band
    if math.isnan(s):
        sign = None
    else:
        sign = "+" if s > width else "-" if s < -width else "0"
    rate, _, _ = mean_sd(rates)
    ref = RFC_RECHECK[mode]
    if ref is None or math.isnan(rate):
        in_range = None
    else:
        in_range = "yes" if ref / factor <= rate <= ref * factor else "no"
    share, _, _ = mean_sd(shares)
    majority = None if math.isnan(share) else ("yes" if share > 50.0 else "no")
    return {"sign": sign, "in-range": in_range, "majority": majority}


def fmt(values, digits):
    m, sd, n = mean_sd(values)
    if math.isnan(m):
        return "-"
    if n > 1:
        return "{:.{d}f} ± {:.{d}f}".format(m, sd, d=digits)
    return "{:.{d}f}".format(m, d=digits)


def fmt_ms(ms, digits):
    m, sd, n = ms
    if math.isnan(m):
        return "-"
    return "{:.{d}f} ± {:.{d}f}".format(m, sd, d=digits)


def fmt_value(v):
    return "{:g}".format(v) if isinstance(v, float) else str(v)


def group_rows(frame, points, baseline, variations):
    """{(mode, (path, factor)): [rows]} for the points of this spec."""
    rows_by_key = {}
    for _, r in frame.iterrows():
        p = points.get(r["hash"])
        if p is None:
            continue
        label = row_label(p["axes"], baseline, variations)
        if label is None:
            continue
        rows_by_key.setdefault((r["machine.paging_mode"], label), []).append(r)
    return rows_by_key


def noise_of(rows_by_key, modes):
    """Seed-to-seed standard deviation of the baseline's figures, per mode."""
    out = {}
    for mode in modes:
        sp, rate, share = figures(rows_by_key.get((mode, (BASELINE, 1.0)), []))
        out[mode] = {"speedup": mean_sd(sp), "recheck": mean_sd(rate),
                     "removal_share": mean_sd(share)}
    return out


def report(frame, points, baseline, variations, modes, noise, args):
    """The tables (markdown) and a list of dicts for the CSV."""
    rows_by_key = group_rows(frame, points, baseline, variations)
    lines, csv_rows, flips = [], [], []
    n_seeds = len(frame["seed"].unique()) if len(frame) else 0
    for mode in modes:
        base_rows = rows_by_key.get((mode, (BASELINE, 1.0)), [])
        b_sp, b_rate, b_share = figures(base_rows)
        b_c = conclusions(mode, b_sp, b_rate, b_share, args.band, args.recheck_factor)
        ref = RFC_RECHECK[mode]
        lines.append("")
        lines.append("### {} guest".format(MODE_NAMES[mode]))
        lines.append("")
        lines.append("Baseline: speed-up of unlocked {} %, re-checks {} % of guest walks (RFC {}), "
                     "{} % of them from write-access removal. Conclusions: sign {}, re-check "
                     "rate within {:g}x of the RFC's {}, removal the majority cause {}.".format(
                         fmt(b_sp, 2), fmt(b_rate, 2),
                         "-" if ref is None else "{} %".format(ref), fmt(b_share, 1),
                         b_c["sign"] or "-", args.recheck_factor, b_c["in-range"] or "n/a",
                         b_c["majority"] or "-"))
        # A change of the speed-up counts as beyond noise (*) when larger than twice the
        # standard deviation of a difference of two means over n seeds: 2 sd sqrt(2 / n).
        threshold = float("nan")
        nz = noise.get(mode)
        if nz and nz["speedup"][2] > 1:
            threshold = 2 * nz["speedup"][1] * math.sqrt(2.0 / max(1, n_seeds))
            lines.append("Noise: over {} seeds the baseline's speed-up is {} %, its re-check "
                         "rate {} % and its removal share {} % (mean ± sd); a change of the "
                         "speed-up larger than 2·sd·√(2/n) = {:.2f} points (n = {} seed(s) per "
                         "row) is marked *.".format(
                             nz["speedup"][2], fmt_ms(nz["speedup"], 2),
                             fmt_ms(nz["recheck"], 2), fmt_ms(nz["removal_share"], 1),
                             threshold, n_seeds))
        lines.append("")
        lines.append("| parameter | factor | value | speed-up % | Δ speed-up | re-checks % | "
                     "from removal % | flipped |")
        lines.append("|---|---|---|---|---|---|---|---|")
        csv_rows.append({"mode": mode, "parameter": BASELINE, "factor": 1, "baseline_value": "",
                         "value": "", "speedup": mean_sd(b_sp)[0], "recheck": mean_sd(b_rate)[0],
                         "removal_share": mean_sd(b_share)[0], "flipped": "",
                         "beyond_noise": ""})
        for path, factor, value in variations:
            rows = rows_by_key.get((mode, (path, factor)), [])
            sp, rate, share = figures(rows)
            if not sp and not rate:
                flipped = "(not run)"
            else:
                c = conclusions(mode, sp, rate, share, args.band, args.recheck_factor)
                changed = ["{} {}→{}".format(k, b_c[k] or "-", c[k] or "-")
                           for k in ("sign", "in-range", "majority")
                           if c[k] != b_c[k] and not (c[k] is None and b_c[k] is None)]
                flipped = ", ".join(changed) if changed else "-"
                if changed:
                    flips.append((mode, path, factor, flipped))
            delta = mean_sd(sp)[0] - mean_sd(b_sp)[0]
            mark = "*" if not math.isnan(threshold) and abs(delta) > threshold else ""
            lines.append(("| `{}` | ×{:g} | {} → {} | {} → {} | {} | {} → {} | {} → {} "
                          "| {} |").format(path, factor, fmt_value(baseline[path]), fmt_value(value),
                                 fmt(b_sp, 2), fmt(sp, 2),
                                 "-" if math.isnan(delta) else "{:+.2f}{}".format(delta, mark),
                                 fmt(b_rate, 2), fmt(rate, 2),
                                 fmt(b_share, 1), fmt(share, 1), flipped))
            csv_rows.append({"mode": mode, "parameter": path, "factor": factor,
                             "baseline_value": baseline[path], "value": value,
                             "speedup": mean_sd(sp)[0], "recheck": mean_sd(rate)[0],
                             "removal_share": mean_sd(share)[0], "flipped": flipped,
                             "beyond_noise": bool(mark)})
        # The largest moves of the speed-up, the figure the conclusions are most fragile in.
        moves = []
        for r in csv_rows:
            if r["mode"] == mode and r["parameter"] != BASELINE and not math.isnan(r["speedup"]):
                moves.append((abs(r["speedup"] - mean_sd(b_sp)[0]), r))
        moves.sort(key=lambda x: -x[0])
        if moves:
            lines.append("")
            lines.append("Largest changes of the speed-up: " + "; ".join(
                "`{}` ×{:g}: {:+.2f} points".format(r["parameter"], r["factor"],
                                                    r["speedup"] - mean_sd(b_sp)[0])
                for _, r in moves[:5]) + ".")
    header = ["## Sensitivity of the Xen 2008 study's conclusions", "",
              "{} variation(s) of {} parameter(s) by ×{}, mode(s) {}, {} seed(s), {}; "
              "sign band ±{:g} points, re-check range ×{:g} of the RFC's.".format(
                  len(variations), len({v[0] for v in variations}),
                  ", ×".join("{:g}".format(f) for f in args.factor_list),
                  ", ".join(MODE_NAMES[m] for m in modes), n_seeds,
                  "run.max_references {:,}".format(args.max_references)
                  if args.max_references else "the whole build",
                  args.band, args.recheck_factor)]
    footer = ["", "Conclusions flipped: {} of {} variation(s) x mode(s){}".format(
        len(flips), len(variations) * len(modes), ":" if flips else ".")]
    for mode, path, factor, what in flips:
        footer.append("- {}: `{}` ×{:g}: {}".format(MODE_NAMES[mode], path, factor, what))
    return "\n".join(header + lines + footer), csv_rows


# ------------------------------------------------------------------------------------------


def run_sweep(cmd):
    status = subprocess.call(cmd)
    if status not in (0, 1):
        sys.exit("sensitivity: the sweep failed (status {}): {}".format(status, " ".join(cmd)))
    if status == 1:
        print("sensitivity: some points failed (listed above); their rows show '-'",
              file=sys.stderr)
    return status


def load_sweep(sweep_dir):
    """The finished points of the spec last run into sweep_dir (points.jsonl names them; the
    folder may hold points of earlier selections too)."""
    points = {}
    with open(os.path.join(sweep_dir, "points.jsonl")) as f:
        for line in f:
            if line.strip():
                p = json.loads(line)
                points[p["hash"]] = p
    import shadowsim  # the package (for load), after the sweep, which needs only the driver
    frame = shadowsim.load(sweep_dir)
    return frame[frame["hash"].isin(points)], points


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog=os.environ.get("SHADOWSIM_SENSITIVITY_PROG"),
                                 description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="docs/sensitivity.md")
    ap.add_argument("-o", "--out", default=os.path.join(ROOT, "out", "sensitivity"),
                    help="output folder (default out/sensitivity); finished points are reused")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                    help="simulations at a time (default: the number of CPUs)")
    ap.add_argument("--modes", help="guest paging modes, comma-separated: 32bit, pae, 4level "
                                    "(or 32-bit, PAE, 64-bit); default 4level (--full: all)")
    ap.add_argument("--seeds", type=int, help="seeds per point (default 1; --full: 3)")
    ap.add_argument("--full", action="store_true",
                    help="the full study: all modes, 3 seeds, the whole build")
    ap.add_argument("--quick", action="store_true",
                    help="plumbing test: 100,000 references (figures not meaningful)")
    ap.add_argument("--max-references", type=int,
                    help="run.max_references of every point (default 300,000; --full: 0 = all; "
                         "--quick: 100,000)")
    ap.add_argument("--params", help="only these parameters: comma-separated dotted paths or "
                                     "globs, e.g. 'hypervisor.costs.brute_force_*,atomic_cycles'")
    ap.add_argument("--factors", default="0.5,2", help="factors, comma-separated (default 0.5,2)")
    ap.add_argument("--noise-seeds", type=int,
                    help="also run the baseline alone over this many seeds (OUT/noise) to "
                         "measure the seed-to-seed spread the changes are read against "
                         "(default 5; --quick: 0, none)")
    ap.add_argument("--band", type=float, default=0.25,
                    help="speed-ups within +-BAND points count as sign 0 (default 0.25)")
    ap.add_argument("--recheck-factor", type=float, default=2.0,
                    help="'in range' means within this factor of the RFC's rate (default 2)")
    ap.add_argument("--include-inert", action="store_true",
                    help="also vary parameters whose scope cannot act here (e.g. the PCPU "
                         "scheduler's switch cost without overcommit)")
    ap.add_argument("--base", default=BASE_CONFIG, help="the study's config (default "
                                                       "configs/xen2008/kbuild.json)")
    ap.add_argument("--param-table", default=PARAMS_FILE, help="the parameter table (JSON)")
    ap.add_argument("--binary", default=os.environ.get(
        "SHADOWSIM_BINARY", os.path.join(ROOT, "build", "sim", "shadowsim")))
    ap.add_argument("--trace", help="another workload manifest (default: the config's)")
    ap.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                    help="one more override for every point (VALUE is JSON, else a string)")
    ap.add_argument("--fresh", action="store_true", help="delete OUT first")
    ap.add_argument("--list", action="store_true",
                    help="print the parameters with their baseline values and exit")
    ap.add_argument("--dry-run", action="store_true",
                    help="write the spec and show the points (shadowsim sweep --dry-run)")
    args = ap.parse_args(argv)
    modes = args.modes or ("32bit,pae,4level" if args.full else "4level")
    try:
        args.mode_list = [MODE_ALIASES[m.strip().lower()] for m in modes.split(",") if m.strip()]
    except KeyError as e:
        ap.error("--modes: unknown mode {} (32bit, pae, 4level)".format(e))
    args.mode_list = list(dict.fromkeys(args.mode_list))
    args.seeds = args.seeds or (3 if args.full else 1)
    if args.noise_seeds is None:
        args.noise_seeds = 0 if args.quick else 5
    if args.max_references is None:
        args.max_references = 100000 if args.quick else 0 if args.full else 300000
    try:
        args.factor_list = [float(f) for f in args.factors.split(",") if f.strip()]
    except ValueError:
        ap.error("--factors: numbers, comma-separated")
    if not args.factor_list or any(f <= 0 or f == 1 for f in args.factor_list):
        ap.error("--factors: positive numbers other than 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    table = load_parameters(args.param_table)
    overrides = {}
    if args.max_references:
        overrides["run.max_references"] = args.max_references
    if args.trace:
        overrides["workload.trace"] = os.path.abspath(args.trace)
    for item in args.set:
        path, _, value = item.partition("=")
        try:
            overrides[path] = json.loads(value)
        except ValueError:
            overrides[path] = value
    base = os.path.abspath(args.base)
    config = resolve(args.binary, base, overrides)
    baseline = {}
    for p in table:
        try:
            baseline[p["path"]] = lookup(config, p["path"])
        except KeyError:
            sys.exit("sensitivity: {} is not a config path of {}".format(p["path"], base))
    if args.list:  # also checks every path of the table against the config
        for p in table:
            print("{:50} {:>9} {:12} {:10} {}".format(
                p["path"], fmt_value(baseline[p["path"]]), p["unit"], p.get("scope", "any"),
                p["source"]))
        print("sensitivity: {} parameters, every one a config path of {}".format(
            len(table), os.path.relpath(base)))
        return 0
    if args.fresh and os.path.isdir(args.out):
        import shutil
        shutil.rmtree(args.out)

    variations, skipped = [], []
    for p in select(table, args.params):
        if not args.include_inert and not applies(p, config):
            skipped.append("{} (scope {})".format(p["path"], p["scope"]))
            continue
        for f in args.factor_list:
            v = scaled(baseline[p["path"]], f)
            if v == baseline[p["path"]]:
                skipped.append("{} ×{:g} (rounds to the baseline {})".format(
                    p["path"], f, baseline[p["path"]]))
                continue
            variations.append((p["path"], f, v))
    if skipped:
        print("sensitivity: not varied: " + "; ".join(skipped), file=sys.stderr)
    if not variations:
        sys.exit("sensitivity: nothing to vary")

    os.makedirs(args.out, exist_ok=True)
    spec = build_spec(base, overrides, args.mode_list, args.seeds, table, baseline, variations)
    spec_path = os.path.join(args.out, "spec.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f, indent=1)
    sweep_dir = os.path.join(args.out, "sweep")
    n_points = len(args.mode_list) * len(STRATEGIES) * (1 + len(variations)) * args.seeds
    print("sensitivity: {} variation(s), {} point(s) -> {}".format(
        len(variations), n_points, sweep_dir), file=sys.stderr)
    # --allow-spec-change: another selection of parameters, modes or seeds adds its points to
    # the same folder; the hashes of the points both selections share are the same.
    cmd = [args.binary, "sweep", spec_path, "-o", sweep_dir, "-j", str(args.jobs),
           "--allow-spec-change"]
    if args.dry_run:
        return subprocess.call(cmd + ["--dry-run"])
    status = run_sweep(cmd)
    noise = {}
    if args.noise_seeds > 1:
        # The baseline alone over several seeds: the spread the changes are read against.
        noise_spec = build_spec(base, overrides, args.mode_list, args.noise_seeds, table,
                                baseline, [])
        noise_path = os.path.join(args.out, "noise.spec.json")
        with open(noise_path, "w") as f:
            json.dump(noise_spec, f, indent=1)
        noise_dir = os.path.join(args.out, "noise")
        print("sensitivity: the baseline over {} seeds -> {}".format(args.noise_seeds, noise_dir),
              file=sys.stderr)
        status = max(status, run_sweep([args.binary, "sweep", noise_path, "-o", noise_dir,
                                        "-j", str(args.jobs), "--allow-spec-change"]))
        n_frame, n_points = load_sweep(noise_dir)
        noise = noise_of(group_rows(n_frame, n_points, baseline, []), args.mode_list)

    frame, points = load_sweep(sweep_dir)
    text, csv_rows = report(frame, points, baseline, variations, args.mode_list, noise, args)
    print(text)
    with open(os.path.join(args.out, "sensitivity.md"), "w") as f:
        f.write(text + "\n")
    import csv
    with open(os.path.join(args.out, "sensitivity.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(csv_rows[0]))
        w.writeheader()
        w.writerows(csv_rows)
    print("\nsensitivity: tables in {}, {}".format(
        os.path.join(args.out, "sensitivity.md"), os.path.join(args.out, "sensitivity.csv")),
        file=sys.stderr)
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
