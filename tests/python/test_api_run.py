"""shadowsim.run() and Result: round trip against the CLI, repeated runs in one process,
threads, dict and JSON-string configs, errors (docs/python.md)."""

import json
import os
import subprocess
import threading
import time

import pytest

import shadowsim

REPO = os.environ.get("SHADOWSIM_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.environ.get("SHADOWSIM_CLI") or os.path.join(REPO, "build", "sim", "shadowsim")
XZ = os.path.join(REPO, "workloads", "traces", "xz.json")
# configs/default.json has 100000 warm-up references: 50000 in the region of interest.
SMALL = ["run.max_references=150000"]


def cli(*args, **kwargs):
    return subprocess.run([CLI, *args], check=True, capture_output=True, text=True, **kwargs)


def without_host(doc):
    return {k: v for k, v in doc.items() if k != "host"}


def small_dict(**run):
    return {"machine": {"paging_mode": "4level"}, "workload": {"trace": XZ},
            "run": {"seed": 1, "warmup_references": 100000, "max_references": 150000, **run}}


def test_round_trip_matches_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    cli("run", "configs/default.json", "--set", SMALL[0], "-o", str(tmp_path / "cli"), "-q")
    r = shadowsim.run("configs/default.json", overrides=SMALL)
    assert r.to_dir(tmp_path / "py") == str(tmp_path / "py")

    cli_doc = json.loads((tmp_path / "cli" / "stats.json").read_text())
    py_doc = json.loads((tmp_path / "py" / "stats.json").read_text())
    assert without_host(py_doc) == without_host(cli_doc)
    assert set(py_doc["host"]) == {"wall_seconds", "references_per_second"}
    assert (tmp_path / "py" / "stats.csv").read_bytes() == \
        (tmp_path / "cli" / "stats.csv").read_bytes()
    assert not list((tmp_path / "py").glob("*.tmp"))

    # The Result's views agree with the files.
    assert r.record["config_file"] == "configs/default.json"
    assert r.record["roi"] == cli_doc["roi"] and r.record["roi"]["references"] == 50000
    assert r.record["seed"] == 1 and r.record["version"] == shadowsim.__version__
    assert r.record["git"] == cli_doc["shadowsim"]["git"]
    assert r.record["host"]["wall_seconds"] > 0
    assert r.config == cli_doc["config"]
    assert r.config["run"]["max_references"] == 150000
    assert r.stats["pcpu0"]["dtlb"]["hits"] == cli_doc["stats"]["pcpu0"]["dtlb"]["hits"]["value"]
    assert r["pcpu0.dtlb.hits"] == r.stats["pcpu0"]["dtlb"]["hits"]
    assert r.stats["sim"]["references"] == 50000

    import pandas as pd
    csv = pd.read_csv(tmp_path / "cli" / "stats.csv", keep_default_na=False)
    df = r.dataframe()
    assert list(df.columns) == ["name", "value", "unit", "description"]
    assert list(df["name"]) == list(csv["name"]) == list(r.flat)
    assert list(df["value"]) == pytest.approx(list(csv["value"]), rel=1e-12)
    assert list(df["unit"]) == list(csv["unit"])
    assert list(df["description"]) == list(csv["description"])
    assert isinstance(r.flat["pcpu0.walker.walks"], int)  # counters stay integers
    assert "shadowsim: 1 VCPU(s)" in r.summary


def test_interval_snapshots():
    r = shadowsim.run(small_dict(interval_references=10000))
    snaps = r.interval_dataframe()
    assert list(snaps.columns[:3]) == ["references", "cycles", "vcpu0.instructions"]
    assert list(snaps["references"]) == [10000, 20000, 30000, 40000, 50000][:len(snaps)]
    assert len(snaps) >= 4 and snaps["cycles"].is_monotonic_increasing
    assert snaps["vcpu0.instructions"].iloc[-1] <= r.flat["vcpu0.instructions"]
    assert shadowsim.run(small_dict()).interval_dataframe().empty


def test_version_defaults_and_resolve_match_cli(monkeypatch):
    monkeypatch.chdir(REPO)
    assert cli("version").stdout.split()[1] == shadowsim.__version__
    assert shadowsim.defaults() == json.loads(cli("config", "--defaults").stdout)
    assert shadowsim.resolve("configs/default.json", overrides={"run.seed": 7}) == json.loads(
        cli("config", "--check", "configs/default.json", "--set", "run.seed=7").stdout)


def test_two_runs_in_one_process_and_a_different_third():
    first = shadowsim.run(small_dict())
    second = shadowsim.run(small_dict())
    assert first.flat == second.flat
    assert without_host(first.document) == without_host(second.document)
    pae = shadowsim.run(small_dict(), overrides={"machine.paging_mode": "pae"})
    assert pae.config["machine"]["paging_mode"] == "pae"
    assert pae.flat != first.flat  # a new simulation, not the old one's statistics


def test_runs_from_two_threads_at_once():
    modes = ["4level", "pae", "32bit", "5level"]
    expected = {m: shadowsim.run(small_dict(), overrides={"machine.paging_mode": m}).flat
                for m in modes}
    results, errors = {}, []
    start = threading.Barrier(2)

    def worker(mine):
        try:
            start.wait()
            for m in mine:
                results[m] = shadowsim.run(small_dict(),
                                           overrides={"machine.paging_mode": m}).flat
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(modes[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == expected


def test_gil_is_released_while_simulating():
    # The whole trace (about 2.8 M references): long enough to see whether this thread runs.
    holder = {}
    sim = threading.Thread(target=lambda: holder.update(r=shadowsim.run(XZ_WHOLE)))
    stamps = [time.perf_counter()]
    sim.start()
    while sim.is_alive():
        time.sleep(0.001)
        stamps.append(time.perf_counter())
    sim.join()
    wall = holder["r"].record["host"]["wall_seconds"]
    longest_pause = max(b - a for a, b in zip(stamps, stamps[1:]))
    assert wall > 0.05
    assert longest_pause < wall / 2, (longest_pause, wall)


XZ_WHOLE = {"workload": {"trace": XZ}}


def test_dict_json_string_and_relative_trace(monkeypatch):
    by_dict = shadowsim.run(small_dict())
    by_json = shadowsim.run(json.dumps(small_dict()))
    assert by_json.flat == by_dict.flat
    assert by_dict.record["config_file"] == ""
    # A relative trace in a dict resolves against the current directory.
    monkeypatch.chdir(os.path.join(REPO, "workloads", "traces"))
    config = small_dict()
    config["workload"]["trace"] = "xz.json"
    assert shadowsim.run(config).flat == by_dict.flat
    # seed= sets run.seed after the overrides.
    r = shadowsim.run(config, overrides={"run.seed": 3}, seed=5)
    assert r.record["seed"] == 5 and r.config["run"]["seed"] == 5


def test_relative_trace_of_a_config_file_resolves_against_its_folder(tmp_path, monkeypatch):
    folder = tmp_path / "cfg"
    folder.mkdir()
    rel = os.path.relpath(XZ, folder)
    (folder / "c.json").write_text(json.dumps({"workload": {"trace": rel},
                                               "run": {"max_references": 1000}}))
    monkeypatch.chdir(tmp_path)
    r = shadowsim.run("cfg/c.json")
    assert r.stats["sim"]["references"] == 1000
    assert os.path.samefile(r.config["workload"]["trace"], XZ)  # relative to the cwd


def test_bad_configs_raise_with_the_simulators_message(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"machine": {"tlb": {"bogus": 1}}, "workload": {"trace": "x.sst"}}')
    with pytest.raises(shadowsim.Error) as e:
        shadowsim.run(str(bad))
    assert str(bad) in str(e.value) and "machine.tlb.bogus" in str(e.value)
    assert "unknown key" in str(e.value)
    assert isinstance(e.value, RuntimeError)

    with pytest.raises(shadowsim.Error, match=r"<config dict>: run\.seed"):
        shadowsim.run({"workload": {"trace": XZ}, "run": {"seed": "seven"}})
    with pytest.raises(shadowsim.Error, match="not valid JSON"):
        shadowsim.run('{"workload": ')
    with pytest.raises(shadowsim.Error, match="cannot open the config file"):
        shadowsim.run(str(tmp_path / "missing.json"))
    with pytest.raises(shadowsim.Error, match=r"machine\.paging_mode"):
        shadowsim.run(small_dict(), overrides=["machine.paging_mode=6level"])
    with pytest.raises(TypeError):
        shadowsim.run(42)
    with pytest.raises(TypeError):
        shadowsim.run(small_dict(), seed=True)

    # An error half-way through building the system (the trace is missing) leaves the process
    # able to simulate again.
    with pytest.raises(shadowsim.Error, match="nowhere.sst"):
        shadowsim.run({"workload": {"trace": str(tmp_path / "nowhere.sst")}})
    assert shadowsim.run(small_dict()).stats["sim"]["references"] == 50000
