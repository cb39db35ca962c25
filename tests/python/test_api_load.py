"""shadowsim.load(): a run folder and a hand-made sweep folder (docs/python.md)."""

import json
import math
import os

import pytest

import shadowsim

REPO = os.environ.get("SHADOWSIM_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
XZ = os.path.join(REPO, "workloads", "traces", "xz.json")
BASE = {"workload": {"trace": XZ}, "run": {"max_references": 20000}}


@pytest.fixture(scope="module")
def runs():
    """(paging_mode, stlb_enabled) -> Result."""
    points = [("4level", True), ("pae", True), ("4level", False)]
    return {p: shadowsim.run(BASE, overrides={"machine.paging_mode": p[0],
                                              "machine.tlb.stlb_enabled": p[1]})
            for p in points}


def test_load_a_run_folder(tmp_path, runs):
    r = runs[("pae", True)]
    r.to_dir(tmp_path / "run")
    df = shadowsim.load(tmp_path / "run")
    assert len(df) == 1
    assert df.columns[0] == "seed"
    assert list(df.columns[1:]) == list(r.flat)
    assert df.loc[0, "seed"] == 1
    for name, value in r.flat.items():
        assert df.loc[0, name] == pytest.approx(value, rel=1e-12, nan_ok=True), name
    assert df.attrs["kind"] == "run" and df.attrs["axes"] == []
    assert df.attrs["units"]["sim.references"] == "references"
    # The stats.json file itself, and config columns on request.
    by_file = shadowsim.load(str(tmp_path / "run" / "stats.json"),
                             config=["machine.paging_mode", "run.max_references"])
    assert list(by_file.columns[:3]) == ["machine.paging_mode", "run.max_references", "seed"]
    assert by_file.loc[0, "machine.paging_mode"] == "pae"
    assert by_file.loc[0, "run.max_references"] == 20000
    assert "machine.tlb.stlb_enabled" in shadowsim.load(tmp_path / "run", config=True).columns
    with pytest.raises(KeyError, match="machine.nope"):
        shadowsim.load(tmp_path / "run", config="machine.nope")


def write_point(root, digest, axes, seed, result):
    folder = root / "points" / digest
    result.to_dir(folder)
    (folder / "point.json").write_text(json.dumps({"axes": axes, "seed": seed, "hash": digest}))


def test_load_a_sweep_folder(tmp_path, runs):
    root = tmp_path / "sweep"
    axes_of = {p: {"machine.paging_mode": p[0], "machine.tlb.stlb_enabled": p[1]} for p in runs}
    # Hashes in an order unlike the axes', to see the sort.
    for digest, p in zip(["c3", "a1", "b2"], runs):
        write_point(root, digest, axes_of[p], 1, runs[p])
    (root / "points" / "d4").mkdir()  # a point being written: no stats.json yet
    (root / "points" / "d4" / "stats.json.tmp").write_text("{")
    (root / "spec.json").write_text("{}")
    (root / "failed").mkdir()
    (root / "failed" / "e5.json").write_text(json.dumps(
        {"axes": {"machine.paging_mode": "32bit", "machine.tlb.stlb_enabled": True},
         "seed": 2, "hash": "e5", "error": "run.x: boom"}))

    df = shadowsim.load(root)
    assert len(df) == 3
    stat_names = list(runs[("4level", True)].flat)
    assert list(df.columns) == ["machine.paging_mode", "machine.tlb.stlb_enabled", "seed",
                                "hash"] + stat_names
    # Sorted by the axes, then the seed.
    assert list(zip(df["machine.paging_mode"], df["machine.tlb.stlb_enabled"])) == [
        ("4level", False), ("4level", True), ("pae", True)]
    assert list(df["hash"]) == ["b2", "c3", "a1"]
    for _, row in df.iterrows():
        flat = runs[(row["machine.paging_mode"], row["machine.tlb.stlb_enabled"])].flat
        for name in ("pcpu0.dtlb.hits", "pcpu0.walker.walks", "sim.makespan_cycles"):
            assert row[name] == flat[name]
    # The statistics differ between points (a column is not one point's data repeated).
    assert df["pcpu0.walker.walks"].nunique() > 1
    assert df.attrs["kind"] == "sweep"
    assert df.attrs["axes"] == ["machine.paging_mode", "machine.tlb.stlb_enabled"]
    assert df.attrs["stat_columns"] == stat_names

    with_failed = shadowsim.load(root, include_failed=True)
    assert len(with_failed) == 4
    assert list(with_failed.columns[:5]) == ["machine.paging_mode", "machine.tlb.stlb_enabled",
                                             "seed", "hash", "error"]
    failed = with_failed[with_failed["hash"] == "e5"].iloc[0]
    assert failed["error"] == "run.x: boom" and failed["seed"] == 2
    assert failed["machine.paging_mode"] == "32bit"
    assert math.isnan(failed["pcpu0.dtlb.hits"])
    assert with_failed["error"].isna().sum() == 3

    # Extra config columns beside the axes.
    extra = shadowsim.load(root, config=["run.max_references"])
    assert list(extra.columns[:4]) == ["machine.paging_mode", "machine.tlb.stlb_enabled",
                                       "run.max_references", "seed"]
    assert set(extra["run.max_references"]) == {20000}


def test_load_rejects_what_is_not_a_result(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such result folder"):
        shadowsim.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither a run folder"):
        shadowsim.load(tmp_path / "empty")
