"""Sweeps that run the built binary (SHADOWSIM_BINARY, default build/sim/shadowsim):
local workers, resume after SIGKILL of the driver, failed points and their retry, Dask on a
LocalCluster, the Slurm array script (docs/sweeps.md)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest_sweep import (binary, load_sweep_module, read_json, sweep_cmd,  # noqa: E402
                            without_host, write_spec)

sw = load_sweep_module()
SMALL = {"run.max_references": 200000}   # ~0.05 s a point


@pytest.fixture(scope="module")
def shadowsim():
    path = binary()
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path}: no shadowsim binary (build it, or set SHADOWSIM_BINARY)")
    return path


def run(*args, check=None, **kw):
    r = subprocess.run(sweep_cmd(*args), capture_output=True, text=True, timeout=120, **kw)
    if check is not None:
        assert r.returncode == check, r.stderr
    return r


def point_dirs(out):
    d = out / "points"
    return sorted(p for p in d.iterdir()) if d.is_dir() else []


def assert_complete(out, expected):
    """Every point of the spec is there once, complete, under its own hash; nothing is left
    half-written."""
    dirs = point_dirs(out)
    assert sorted(p.name for p in dirs) == sorted(expected)
    for d in dirs:
        stats = read_json(d / "stats.json")
        assert stats["roi"]["references"] > 0
        assert (d / "stats.csv").read_text().startswith("name,value,unit,description")
        point = read_json(d / "point.json")
        assert point["hash"] == d.name
        assert stats["seed"] == point["seed"]
    assert list((out / "tmp").iterdir()) == []


def test_small_sweep_on_two_local_workers(tmp_path, shadowsim):
    spec = write_spec(tmp_path / "spec.json", name="small", overrides=SMALL,
                      grid={"machine.paging_mode": ["4level", "pae"],
                            "machine.tlb.stlb_enabled": [True, False]})
    out = tmp_path / "out"
    r = run(spec, "-o", out, "-j", 2, "--binary", shadowsim, check=0)
    assert "4/4 points" in r.stderr and "points/s" in r.stderr and "ETA" in r.stderr
    assert "4 point(s): 4 done (0 before this run, 4 now), 0 failed" in r.stderr
    points = sw.generate_points(sw.load_spec(spec))
    assert_complete(out, [p.hash for p in points])
    for p in points:
        rec = read_json(out / "points" / p.hash / "point.json")
        assert rec["axes"] == p.axes and rec["seed"] == 1 and rec["overrides"] == p.overrides
        stats = read_json(out / "points" / p.hash / "stats.json")
        assert stats["config"]["machine"]["paging_mode"] == p.axes["machine.paging_mode"]
        assert stats["config"]["run"]["max_references"] == 200000
    sweep = read_json(out / "sweep.json")
    assert sweep["spec"]["name"] == "small" and sweep["points"] == 4
    assert sweep["axes"] == ["machine.paging_mode", "machine.tlb.stlb_enabled"]
    assert len((out / "points.jsonl").read_text().splitlines()) == 4

    # Again: nothing to do, nothing rewritten.
    before = {d.name: (d / "stats.json").stat().st_mtime_ns for d in point_dirs(out)}
    r = run(spec, "-o", out, "-j", 2, "--binary", shadowsim, check=0)
    assert "4 done (4 before this run, 0 now)" in r.stderr
    assert before == {d.name: (d / "stats.json").stat().st_mtime_ns for d in point_dirs(out)}

    # Determinism: the same points run again elsewhere, one worker, give the same statistics.
    out2 = tmp_path / "out2"
    run(spec, "-o", out2, "-j", 1, "--binary", shadowsim, "--quiet", check=0)
    for p in points:
        assert without_host(read_json(out / "points" / p.hash / "stats.json")) == \
            without_host(read_json(out2 / "points" / p.hash / "stats.json"))

    # Another spec into the same folder is refused.
    other = write_spec(tmp_path / "other.json", overrides=SMALL, seeds=[5])
    r = run(other, "-o", out, "--binary", shadowsim, check=2)
    assert "holds another sweep" in r.stderr

    # --dry-run lists the points and their state and runs nothing.
    r = run(spec, "-o", out, "--binary", shadowsim, "--dry-run", check=0)
    assert r.stdout.count(" done ") == 4 and "0 would run" in r.stdout


def test_resume_after_sigkill_loses_and_duplicates_nothing(tmp_path, shadowsim):
    # 10 points of ~0.2 s each (the whole default trace) on 2 workers: ~1 s of work.
    spec = write_spec(tmp_path / "spec.json", name="resume",
                      grid={"machine.tlb.stlb_enabled": [True, False]}, seeds={"count": 5})
    out = tmp_path / "out"
    driver = subprocess.Popen(sweep_cmd(spec, "-o", out, "-j", 2, "--binary", shadowsim),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(point_dirs(out)) < 3 and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.01)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    done_before = {d.name: (d / "point.json").stat().st_ino for d in point_dirs(out)}
    assert 3 <= len(done_before) < 10, "the driver was not killed mid-sweep"
    for d in point_dirs(out):   # what is there is complete
        assert read_json(d / "stats.json")["roi"]["references"] > 0
        assert read_json(d / "point.json")["hash"] == d.name

    r = run(spec, "-o", out, "-j", 2, "--binary", shadowsim, check=0)
    ran = 10 - len(done_before)
    assert f"10 done ({len(done_before)} before this run, {ran} now)" in r.stderr, r.stderr
    points = sw.generate_points(sw.load_spec(spec))
    assert_complete(out, [p.hash for p in points])
    # The points finished before the kill were kept as they were, not run again.
    assert {d.name: (d / "point.json").stat().st_ino for d in point_dirs(out)
            if d.name in done_before} == done_before


def test_failed_points_are_listed_and_retried_alone(tmp_path, shadowsim):
    # A warm-up longer than the trace cannot work: that point fails at run time.
    spec = write_spec(tmp_path / "spec.json", name="fail", overrides={"run.max_references": 0},
                      grid={"run.warmup_references": [100000, 10 ** 9]})
    good, bad = sw.generate_points(sw.load_spec(spec))
    out = tmp_path / "out"
    r = run(spec, "-o", out, "-j", 2, "--binary", shadowsim, check=1)
    assert "1 done (0 before this run, 1 now), 1 failed" in r.stderr
    assert f"  {bad.hash}  run.warmup_references=1000000000  seed 1: " in r.stderr
    assert "before the warm-up was over" in r.stderr
    record = read_json(out / "failed" / f"{bad.hash}.json")
    assert record["hash"] == bad.hash and record["axes"] == bad.axes and record["seed"] == 1
    assert record["returncode"] == 1 and "warm-up" in record["error"]
    assert [d.name for d in point_dirs(out)] == [good.hash]

    # A plain re-run does not run the failed point again, but lists it.
    r = run(spec, "-o", out, "--binary", shadowsim, check=1)
    assert "0 now), 1 failed" in r.stderr and bad.hash in r.stderr
    assert (out / "failed" / f"{bad.hash}.json").stat().st_mtime_ns == \
        (out / "failed" / f"{bad.hash}.json").stat().st_mtime_ns
    # --retry-failed runs it alone (and it fails again: the simulator is deterministic).
    good_ino = (out / "points" / good.hash / "point.json").stat().st_ino
    r = run(spec, "-o", out, "--binary", shadowsim, "--retry-failed", check=1)
    assert "1/1 points, 1 failed" in r.stderr
    assert read_json(out / "failed" / f"{bad.hash}.json")["time"] >= record["time"]
    assert (out / "points" / good.hash / "point.json").stat().st_ino == good_ino


def test_a_retried_point_that_succeeds_leaves_failed(tmp_path, shadowsim):
    # A wrapper binary fails seed 2 while a marker file exists: a transient failure.
    marker = tmp_path / "fail-now"
    marker.touch()
    wrapper = tmp_path / "flaky-shadowsim"
    wrapper.write_text(f"""#!/bin/sh
case "$*" in *run.seed=2*) if [ -e '{marker}' ]; then echo 'injected failure' >&2; exit 3; fi;;
esac
exec '{shadowsim}' "$@"
""")
    wrapper.chmod(0o755)
    spec = write_spec(tmp_path / "spec.json", overrides=SMALL, seeds=[1, 2, 3])
    out = tmp_path / "out"
    r = run(spec, "-o", out, "--binary", wrapper, "-j", 2, check=1)
    assert "2 now), 1 failed" in r.stderr and "seed 2: injected failure" in r.stderr
    marker.unlink()
    r = run(spec, "-o", out, "--binary", wrapper, "--retry-failed", check=0)
    assert "3 done (2 before this run, 1 now), 0 failed" in r.stderr
    assert list((out / "failed").iterdir()) == []
    assert_complete(out, [p.hash for p in sw.generate_points(sw.load_spec(spec))])


def test_dask_executor_on_a_local_cluster(tmp_path, shadowsim):
    distributed = pytest.importorskip("distributed")
    spec_path = write_spec(tmp_path / "spec.json", name="dask", overrides=SMALL,
                           grid={"machine.paging_mode": ["4level", "pae", "32bit"]},
                           seeds=[1, 2])
    spec = sw.load_spec(spec_path)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        executor = sw.DaskExecutor(cluster.scheduler_address, shadowsim)
        result = sw.run_sweep(spec, str(tmp_path / "dask"), executor, progress=None)
        assert result.ok and result.succeeded == 6 and result.skipped == 0
        # The CLI form against the same scheduler: everything is already there.
        r = run(spec_path, "-o", tmp_path / "dask", "--dask", cluster.scheduler_address,
                "--binary", shadowsim, check=0)
        assert "6 done (6 before this run, 0 now)" in r.stderr
    points = sw.generate_points(spec)
    assert_complete(tmp_path / "dask", [p.hash for p in points])
    for p in points:
        assert read_json(tmp_path / "dask" / "points" / p.hash / "point.json")["run"][
            "executor"] == "dask"
    # Same points, local executor: identical statistics (determinism across executors).
    local = sw.run_sweep(spec, str(tmp_path / "local"), sw.LocalExecutor(shadowsim, 2),
                         progress=None)
    assert local.ok
    for p in points:
        assert without_host(read_json(tmp_path / "dask" / "points" / p.hash / "stats.json")) == \
            without_host(read_json(tmp_path / "local" / "points" / p.hash / "stats.json"))


def test_dask_scheduler_unreachable(tmp_path, shadowsim):
    pytest.importorskip("distributed")
    spec = write_spec(tmp_path / "spec.json", overrides=SMALL)
    r = run(spec, "-o", tmp_path / "o", "--binary", shadowsim, "--dask", "tcp://127.0.0.1:9",
            "--dask-timeout", 1)
    assert r.returncode == 2 and "cannot reach the scheduler" in r.stderr, r.stderr


def test_slurm_array_script(tmp_path, shadowsim):
    spec = write_spec(tmp_path / "spec.json", name="on slurm", overrides=SMALL,
                      grid={"machine.paging_mode": ["4level", "pae"]}, seeds=[1, 2])
    out = tmp_path / "out dir"   # a space: the script must quote paths
    r = run(spec, "-o", out, "--binary", shadowsim, "--slurm", "--partition", "short",
            "--time", "00:10:00", "--mem", "1G", "--max-parallel", "2",
            "--slurm-option=--qos=low", check=0)
    script = out / "slurm" / "sweep.sbatch"
    assert f"sbatch {script}" in r.stdout
    assert point_dirs(out) == []                      # nothing ran
    text = script.read_text()
    subprocess.run(["bash", "-n", str(script)], check=True)
    for line in ["#SBATCH --array=0-3%2", "#SBATCH --partition=short", "#SBATCH --time=00:10:00",
                 "#SBATCH --mem=1G", "#SBATCH --qos=low", "#SBATCH --job-name=shadowsim-on_slurm",
                 f"#SBATCH --output={out}/slurm/logs/%A_%a.out"]:
        assert line in text.splitlines(), line
    assert (out / "slurm" / "logs").is_dir()
    lines = (out / "slurm" / "points.jsonl").read_text().splitlines()
    points = sw.generate_points(sw.load_spec(spec))
    assert [json.loads(ln)["hash"] for ln in lines] == [p.hash for p in points]

    # Array task 2, as Slurm would start it: runs exactly line 2.
    env = dict(os.environ, SLURM_ARRAY_TASK_ID="2")
    subprocess.run(["bash", str(script)], check=True, env=env, capture_output=True, timeout=60)
    assert [d.name for d in point_dirs(out)] == [points[2].hash]
    assert read_json(out / "points" / points[2].hash / "point.json")["run"]["executor"] == "slurm"
    # Without the array variable, the script refuses to run.
    env.pop("SLURM_ARRAY_TASK_ID")
    assert subprocess.run(["bash", str(script)], env=env, capture_output=True).returncode != 0
    # A new script holds only what is left; a local run finishes the sweep.
    run(spec, "-o", out, "--binary", shadowsim, "--slurm", check=0)
    assert "#SBATCH --array=0-2" in script.read_text().splitlines()
    r = run(spec, "-o", out, "--binary", shadowsim, check=0)
    assert "4 done (1 before this run, 3 now)" in r.stderr
    assert_complete(out, [p.hash for p in points])


def test_module_entry_point(tmp_path, shadowsim):
    """`python3 -m shadowsim.sweep` works wherever the package imports (it loads the C++
    extension in its __init__, so this needs the build's python/ folder on the path)."""
    probe = subprocess.run([sys.executable, "-c", "import shadowsim.sweep"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("the shadowsim package does not import here (no built extension on "
                    "PYTHONPATH); the script form is tested above")
    spec = write_spec(tmp_path / "spec.json", overrides=SMALL)
    r = subprocess.run([sys.executable, "-m", "shadowsim.sweep", spec, "-o", tmp_path / "o",
                        "--binary", shadowsim], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert len(point_dirs(tmp_path / "o")) == 1
