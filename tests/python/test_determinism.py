"""Determinism (issue 8, item 4): the same config and seed give byte-identical statistics, host
timing aside, whoever runs them: one local worker or two, a Dask LocalCluster, the Slurm array
script, and shadowsim.run() from two threads of one process (docs/robustness.md).

The points are the ones where an ordering bug would show: four VCPUs of a multi-threaded
workload (TLB shootdowns) under shadow paging with the race auditor on, on two PCPUs (time
slices, preemption) and on four, for three walk strategies, two seeds each."""

import json
import os
import subprocess
import sys
import threading
from collections import OrderedDict

import pytest

import shadowsim

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest_sweep import REPO, load_sweep_module, sweep_cmd, write_spec  # noqa: E402

sw = load_sweep_module()
CLI = os.path.abspath(os.environ.get("SHADOWSIM_CLI") or
                      os.path.join(REPO, "build", "sim", "shadowsim"))
GRID = {"hypervisor.strategy": ["locked", "unlocked", "unlocked-compare"],
        "machine.pcpus": [2, 4]}
SEEDS = [1, 2]


def canonical_without(path, *keys):
    """stats.json as text, in its own key order, minus the given top-level keys."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f, object_pairs_hook=OrderedDict)
    for k in keys:
        doc.pop(k, None)
    return json.dumps(doc)


def run_cli(*args):
    r = subprocess.run(sweep_cmd(*args), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The workload, the base config and the spec; the points, run once by each executor."""
    root = tmp_path_factory.mktemp("determinism")
    subprocess.run([CLI, "workload", "generate", "threads", "-o", str(root / "threads"),
                    "--scale", "0.05", "--threads", "4"], check=True, capture_output=True)
    base = root / "base.json"
    base.write_text(json.dumps({
        "machine": {"vcpus": 4, "virtualization": "shadow"},
        "hypervisor": {"audit": True},
        "guest": {"random_frames": True},   # so that the seed matters
        "workload": {"trace": "threads/manifest.json"},
        "run": {"timeline": True}}))
    spec_path = write_spec(root / "spec.json", name="determinism", base=str(base), grid=GRID,
                           seeds=SEEDS)
    spec = sw.load_spec(spec_path)
    points = sw.generate_points(spec)
    assert len(points) == 12

    outs = {}
    outs["local -j 1"] = root / "j1"
    run_cli(spec_path, "-o", outs["local -j 1"], "-j", 1, "--binary", CLI)
    outs["local -j 2"] = root / "j2"
    run_cli(spec_path, "-o", outs["local -j 2"], "-j", 2, "--binary", CLI)

    try:  # without Dask the other executors are still compared
        import distributed
    except ImportError:
        distributed = None
    if distributed is not None:
        outs["dask"] = root / "dask"
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster:
            result = sw.run_sweep(spec, str(outs["dask"]),
                                  sw.DaskExecutor(cluster.scheduler_address, CLI), progress=None)
            assert result.ok and result.succeeded == len(points)

    # The Slurm array script, each array task started as Slurm would start it.
    outs["slurm"] = root / "slurm"
    run_cli(spec_path, "-o", outs["slurm"], "--binary", CLI, "--slurm")
    script = outs["slurm"] / "slurm" / "sweep.sbatch"
    for i in range(len(points)):
        subprocess.run(["bash", str(script)], check=True, capture_output=True, timeout=120,
                       env=dict(os.environ, SLURM_ARRAY_TASK_ID=str(i)))
    return {"root": root, "base": base, "points": points, "outs": outs}


def test_the_points_are_not_trivial(study):
    """The comparison means something only if these runs race: the lock is contended, VCPUs
    are preempted at 2 PCPUs, shootdowns happen, and the seed changes the outcome. (The
    auditor fails a run that lets a stale translation in, so every point passed it.)"""
    d = study["outs"]["local -j 1"] / "points"
    by_key = {}
    for p in study["points"]:
        with open(d / p.hash / "stats.json", encoding="utf-8") as f:
            stats = json.load(f)["stats"]
        by_key[(p.axes["hypervisor.strategy"], p.axes["machine.pcpus"], p.seed)] = stats
        assert stats["hv"]["lock"]["contended"]["value"] > 0
        assert stats["guest"]["tlb"]["shootdowns"]["value"] > 0
    assert by_key[("unlocked", 2, 1)]["vcpu0"]["preempted_cycles"]["value"] > 0
    assert by_key[("unlocked", 4, 1)]["vcpu0"]["preempted_cycles"]["value"] == 0
    makespan = {k: v["sim"]["makespan_cycles"]["value"] for k, v in by_key.items()}
    assert makespan[("unlocked", 2, 1)] != makespan[("unlocked", 2, 2)]
    assert makespan[("locked", 2, 1)] != makespan[("unlocked", 2, 1)]


@pytest.mark.parametrize("executor", ["local -j 2", "dask", "slurm"])
def test_every_executor_gives_the_same_bytes(study, executor):
    if executor not in study["outs"]:
        pytest.skip(f"{executor}: not installed")
    reference = study["outs"]["local -j 1"] / "points"
    other = study["outs"][executor] / "points"
    for p in study["points"]:
        a, b = reference / p.hash, other / p.hash
        assert (a / "stats.csv").read_bytes() == (b / "stats.csv").read_bytes(), p.axes
        assert canonical_without(a / "stats.json", "host") == \
            canonical_without(b / "stats.json", "host"), p.axes
        assert (a / "timeline.json").read_bytes() == (b / "timeline.json").read_bytes(), p.axes


def test_python_api_in_two_threads_gives_the_same_bytes(study, tmp_path):
    """shadowsim.run() in-process, two points at once from two threads (runs are serialised
    inside, each in a fresh SystemC context): the same statistics as the CLI's."""
    chosen = [p for p in study["points"] if p.axes["machine.pcpus"] == 2][:2]
    results = {}

    def work(p):
        results[p.hash] = shadowsim.run(str(study["base"]), overrides=p.overrides, seed=p.seed)

    threads = [threading.Thread(target=work, args=(p,)) for p in chosen]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reference = study["outs"]["local -j 1"] / "points"
    for p in chosen:
        results[p.hash].to_dir(tmp_path / p.hash)
        # config_file differs by construction (the sweep runs a copy of the base).
        assert canonical_without(tmp_path / p.hash / "stats.json", "host", "config_file") == \
            canonical_without(reference / p.hash / "stats.json", "host", "config_file")
        assert (tmp_path / p.hash / "stats.csv").read_bytes() == \
            (reference / p.hash / "stats.csv").read_bytes()
        assert results[p.hash].timeline.encode() == (reference / p.hash / "timeline.json").read_bytes()
