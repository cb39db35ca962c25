#!/usr/bin/python3
"""Compare a simulated replay of a recorded kernel build with the recording itself.

    /usr/bin/python3 scripts/compare_kbuild.py RECORDED STATS [--shadowsim BIN] [--markdown]
                                               [--check]

RECORDED is the `perf script` text of the build (.perf.txt or .perf.txt.zst; read through
`shadowsim trace perf-info --json`, BIN default build/sim/shadowsim) or the JSON that command
printed. STATS is the stats.json of `shadowsim run` on the workload imported from it
(docs/workloads.md, "Kernel build: recorded vs simulated"). Prints one table of the
guest-visible counts: user page faults and their error-code mix, process creations, execs,
exits, context switches and TLB flushes, recorded against simulated.

--check exits with status 1 when a count the replay must reproduce differs: creations, execs
and exits exactly; the fault count within 5 % and each error code's share within 3 points
(tolerances: assumptions, well above the differences the guest model's own fault-around, zero
page and COW decisions make on the shipped 3-file recording: docs/workloads.md).
"""

import argparse
import json
import os
import subprocess
import sys

FAULT_TOLERANCE = 0.05   # relative, total user faults
SHARE_TOLERANCE = 0.03   # absolute, share of each error code
CODES = ["0x4", "0x6", "0x7", "0x14"]  # user read/write not present, write protect, fetch


def load_recorded(path, shadowsim):
    if path.endswith(".json"):
        return read_json(path, "the output of 'shadowsim trace perf-info --json'")
    if not os.path.exists(shadowsim):
        sys.exit(f"compare_kbuild: {shadowsim}: no shadowsim binary (give --shadowsim BIN, or "
                 f"the JSON of 'shadowsim trace perf-info --json {path}')")
    out = subprocess.run([shadowsim, "trace", "perf-info", path, "--json"], check=False,
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"compare_kbuild: shadowsim trace perf-info {path} failed:\n{out.stderr}")
    return json.loads(out.stdout)


def flatten(stats, prefix=""):
    """stats.json's nested {"name": {"value": v, ...}} as {"a.b.c": v}."""
    flat = {}
    for key, node in stats.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(node, dict) and "value" in node and not isinstance(node["value"], dict):
            flat[name] = node["value"]
        elif isinstance(node, dict):
            flat.update(flatten(node, name))
    return flat


def read_json(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        sys.exit(f"compare_kbuild: {path}: cannot read {what}: {e.strerror}")
    except json.JSONDecodeError as e:
        sys.exit(f"compare_kbuild: {path}: not valid JSON ({e}); expected {what}")


def load_stats(path):
    doc = read_json(path, "the stats.json of 'shadowsim run'")
    if "stats" not in doc:
        sys.exit(f"compare_kbuild: {path}: no 'stats' object; expected the stats.json of "
                 "'shadowsim run'")
    return flatten(doc["stats"])


def need(stats, name, path):
    if name not in stats:
        sys.exit(f"compare_kbuild: {path}: no statistic '{name}' (docs/statistics.md)")
    return stats[name]


def per_vcpu(stats, suffix):
    return sum(v for k, v in stats.items()
               if k.startswith("vcpu") and k.count(".") == 1 and k.endswith("." + suffix))


def detail(recorded, reason, field):
    """One field of perf-info's flush_detail, summed over the reasons starting with `reason`."""
    if "flush_detail" not in recorded:
        sys.exit("compare_kbuild: the recorded counts have no 'flush_detail' (made by an older "
                 "shadowsim trace perf-info?)")
    return sum(d[field] for r, d in recorded["flush_detail"].items()
               if r.startswith(reason + " ("))


def build_rows(rec, sim, stats_path):
    codes_rec = rec.get("faults_by_error_code", {})
    codes_sim = {k[len("guest.fault_error_codes.ec_"):]: v for k, v in sim.items()
                 if k.startswith("guest.fault_error_codes.ec_")}
    faults_rec = rec["faults"]
    faults_sim = sum(codes_sim.values())
    rows = [("user page faults", faults_rec, faults_sim, "")]
    for code in sorted(set(CODES) | set(codes_rec) | {c for c, n in codes_sim.items() if n},
                       key=lambda c: int(c, 16)):
        r, s = codes_rec.get(code, 0), codes_sim.get(code, 0)
        rows.append((f"  error code {code}", r, s,
                     f"{100 * r / max(faults_rec, 1):.1f} % / {100 * s / max(faults_sim, 1):.1f} %"))
    forks = need(sim, "guest.forks", stats_path)
    vforks = need(sim, "guest.vforks", stats_path)
    threads = need(sim, "guest.threads", stats_path)
    events = rec.get("events", {})
    rows += [
        ("process creations", rec["forks"], forks + vforks + threads, "sched_process_fork"),
        ("  fork (copies the mm)", events.get("syscalls:sys_enter_clone", 0), forks,
         "recorded: clone entries"),
        ("  vfork / posix_spawn", events.get("syscalls:sys_enter_vfork", 0)
         + events.get("syscalls:sys_enter_clone3", 0), vforks, "recorded: vfork + clone3 entries"),
        ("  threads", rec.get("threads_created", 0), threads, ""),
        ("execs", rec["execs"], need(sim, "guest.execs", stats_path), ""),
        ("exits", rec["exits"], need(sim, "guest.exits", stats_path), ""),
        ("context switches", rec.get("switches", 0), per_vcpu(sim, "context_switches"),
         "sim: vcpuN.context_switches"),
        ("TLB flush events (all reasons)", rec["flushes"], None, "see the rows below"),
        ("kernel flush requests", detail(rec, "local MM shootdown", "events")
         + detail(rec, "local shootdown", "events"), need(sim, "guest.flush_requests", stats_path),
         "recorded: local (MM) shootdown"),
        ("  of which full", detail(rec, "local MM shootdown", "full")
         + detail(rec, "local shootdown", "full"),
         need(sim, "guest.full_flush_requests", stats_path), "recorded: pages -1"),
        ("  pages flushed one by one", detail(rec, "local MM shootdown", "pages")
         + detail(rec, "local shootdown", "pages"),
         need(sim, "guest.tlb.pages_flushed", stats_path), ""),
        ("remote shootdowns (IPIs sent)", detail(rec, "remote IPI send", "events"),
         need(sim, "guest.tlb.shootdowns", stats_path), "recorded: remote IPI send"),
        ("task-switch flushes (CR3)", detail(rec, "flush on task switch", "full"),
         per_vcpu(sim, "cr3_flushes"),
         f"recorded: pages -1; {detail(rec, 'flush on task switch', 'empty'):,} more switches "
         "needed none (PCID)"),
    ]
    return rows, codes_rec, codes_sim, faults_rec, faults_sim


def fmt(v):
    return "-" if v is None else f"{int(v):,}"


def diff(r, s):
    if s is None or r is None:
        return "-"
    if r == 0:
        return "-" if s == 0 else "new"
    return f"{100 * (s - r) / r:+.1f} %"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("recorded", help="perf script text (.perf.txt[.zst]) or perf-info --json")
    ap.add_argument("stats", help="stats.json of the shadowsim run")
    ap.add_argument("--shadowsim", default="build/sim/shadowsim", help="the shadowsim binary")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if creations/execs/exits differ or the fault mix is off")
    args = ap.parse_args()
    rec = load_recorded(args.recorded, args.shadowsim)
    sim = load_stats(args.stats)
    rows, codes_rec, codes_sim, faults_rec, faults_sim = build_rows(rec, sim, args.stats)

    header = ("count", "recorded", "simulated", "difference", "note")
    table = [(name, fmt(r), fmt(s), diff(r, s), note) for name, r, s, note in rows]
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|---|---:|---:|---:|---|")
        for row in table:
            print("| " + " | ".join([row[0].strip() if not row[0].startswith("  ")
                                     else "&nbsp;&nbsp;" + row[0].strip()] + list(row[1:])) + " |")
    else:
        widths = [max(len(str(x[i])) for x in table + [header]) for i in range(len(header))]
        line = "  ".join(f"{{:<{widths[0]}}}" if i == 0 or i == 4 else f"{{:>{widths[i]}}}"
                         for i in range(len(header)))
        print(line.format(*header))
        for row in table:
            print(line.format(*row))

    if args.check:
        problems = []
        by_name = {name.strip(): (r, s) for name, r, s, _ in rows}
        for name in ("process creations", "execs", "exits"):
            r, s = by_name[name]
            if r != s:
                problems.append(f"{name}: recorded {r}, simulated {s}")
        if abs(faults_sim - faults_rec) > FAULT_TOLERANCE * faults_rec:
            problems.append(f"user page faults: recorded {faults_rec}, simulated {faults_sim} "
                            f"(more than {100 * FAULT_TOLERANCE:.0f} % apart)")
        for code in CODES:
            r = codes_rec.get(code, 0) / max(faults_rec, 1)
            s = codes_sim.get(code, 0) / max(faults_sim, 1)
            if abs(r - s) > SHARE_TOLERANCE:
                problems.append(f"error code {code}: recorded {100 * r:.1f} %, simulated "
                                f"{100 * s:.1f} % (more than {100 * SHARE_TOLERANCE:.0f} points "
                                "apart)")
        if problems:
            print("compare_kbuild: check failed:\n  " + "\n  ".join(problems), file=sys.stderr)
            return 1
        print("compare_kbuild: check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
