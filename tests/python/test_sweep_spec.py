"""Sweep specs: parsing, validation messages, point generation and hashes (docs/sweeps.md).
No simulation runs here."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest_sweep import DEFAULT_CONFIG, load_sweep_module, write_spec  # noqa: E402

sw = load_sweep_module()


def spec_of(tmp_path, **spec):
    return sw.load_spec(write_spec(tmp_path / "spec.json", **spec))


def test_grid_zip_seeds_product_in_order(tmp_path):
    spec = spec_of(tmp_path, name="t", overrides={"run.max_references": 1000},
                   grid={"machine.paging_mode": ["4level", "pae"],
                         "machine.tlb.stlb_enabled": [True, False]},
                   zip={"machine.vcpu.cpi": [1.0, 2.0, 0.5],
                        "guest.zero_page": [True, False, True]},
                   seeds=[7, 8])
    points = sw.generate_points(spec)
    assert len(points) == 2 * 2 * 3 * 2
    assert spec.axes == ["machine.paging_mode", "machine.tlb.stlb_enabled", "machine.vcpu.cpi",
                         "guest.zero_page"]
    # Grid first (keys in spec order, last fastest), then zip rows, then seeds innermost.
    assert points[0].axes == {"machine.paging_mode": "4level", "machine.tlb.stlb_enabled": True,
                              "machine.vcpu.cpi": 1.0, "guest.zero_page": True}
    assert [p.seed for p in points[:3]] == [7, 8, 7]
    assert points[2].axes["machine.vcpu.cpi"] == 2.0 and points[2].axes["guest.zero_page"] is False
    assert points[6].axes["machine.tlb.stlb_enabled"] is False
    assert points[-1].axes["machine.paging_mode"] == "pae"
    # Overrides as --set receives them: constant ones, axes, then the seed.
    assert points[0].overrides == ["run.max_references=1000", 'machine.paging_mode="4level"',
                                   "machine.tlb.stlb_enabled=true", "machine.vcpu.cpi=1.0",
                                   "guest.zero_page=true", "run.seed=7"]
    assert len({p.hash for p in points}) == len(points)
    assert [p.index for p in points] == list(range(len(points)))


def test_ranges_and_seed_count(tmp_path):
    spec = spec_of(tmp_path, grid={"machine.tlb.dtlb.array0.entries": {"range": [16, 65, 16]},
                                   "machine.vcpu.cpi": {"range": [0.1, 0.5, 0.1]},
                                   "run.quantum_cycles": {"range": [3, 0, -1]}},
                   seeds={"count": 3, "start": 5})
    assert spec.grid["machine.tlb.dtlb.array0.entries"] == [16, 32, 48, 64]
    assert spec.grid["machine.vcpu.cpi"] == [0.1, 0.2, 0.3, 0.4]   # no 0.30000000000000004
    assert spec.grid["run.quantum_cycles"] == [3, 2, 1]
    assert spec.seeds == [5, 6, 7]
    assert len(sw.generate_points(spec)) == 4 * 4 * 3 * 3
    assert spec_of(tmp_path, seeds={"count": 2}).seeds == [1, 2]
    assert spec_of(tmp_path, grid={"a.b": {"range": [0, 3]}}).grid["a.b"] == [0, 1, 2]


def test_no_axes_one_point_with_the_configs_seed(tmp_path):
    points = sw.generate_points(spec_of(tmp_path, base={"workload": {"trace": "t.json"},
                                                        "run": {"seed": 42}}))
    assert len(points) == 1 and points[0].axes == {} and points[0].seed == 42
    assert points[0].overrides == ["run.seed=42"]
    # A seed axis is the point's seed.
    points = sw.generate_points(spec_of(tmp_path, grid={"run.seed": [3, 4]}))
    assert [p.seed for p in points] == [3, 4]


def test_hashes_are_stable(tmp_path):
    kw = dict(overrides={"run.max_references": 1000, "machine.vcpus": 1},
              grid={"machine.paging_mode": ["pae"]}, seeds=[1])
    a = sw.generate_points(spec_of(tmp_path, **kw))[0]
    # The same point reached another way: keys reordered, the value moved from an axis to the
    # constant overrides, another name, another spec file: same hash.
    b = sw.generate_points(sw.parse_spec(
        {"base": DEFAULT_CONFIG, "name": "other",
         "overrides": {"machine.paging_mode": "pae", "machine.vcpus": 1,
                       "run.max_references": 1000}, "seeds": [1]},
        origin=str(tmp_path / "elsewhere.json"), spec_dir=str(tmp_path)))[0]
    assert a.hash == b.hash
    # The hash function itself is fixed (folders of older sweeps stay valid): a known value.
    assert sw.point_hash('{"run":{"seed":1}}', ["b.c=2", "a=\"x\""], 3) == \
        sw.point_hash('{"run":{"seed":1}}', ["a=\"x\"", "b.c=2"], 3) == "7b4a16d66f23bed6"
    # Anything that changes the run changes it.
    other = [sw.generate_points(spec_of(tmp_path, **dict(kw, seeds=[2])))[0].hash,
             sw.generate_points(spec_of(tmp_path, **dict(kw, overrides={
                 "run.max_references": 1001, "machine.vcpus": 1})))[0].hash,
             sw.generate_points(spec_of(tmp_path, **dict(kw, base={"run": {"seed": 1}})))[0].hash]
    assert len({a.hash, *other}) == 4
    # Comments and formatting of the base config do not count; its content does.
    base1 = tmp_path / "b1.json"
    base1.write_text('{\n  // comment\n  "run": {"seed": 1}, "workload": {"trace": "x"}}\n')
    base2 = tmp_path / "b2.json"
    base2.write_text('{"workload":{"trace":"x"},"run":{"seed":1}}')
    h1 = sw.generate_points(spec_of(tmp_path, base=str(base1)))[0].hash
    h2 = sw.generate_points(spec_of(tmp_path, base=str(base2)))[0].hash
    assert h1 == h2


def test_relative_paths(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "base.json").write_text('{"workload": {"trace": "../traces/a.json"}}')
    spec = spec_of(tmp_path, base="cfg/base.json", grid={"workload.trace": ["traces/b.json"]})
    assert spec.base_file == str(tmp_path / "cfg" / "base.json")
    assert json.loads(spec.base_text())["workload"]["trace"] == str(tmp_path / "traces" / "a.json")
    p = sw.generate_points(spec)[0]
    assert p.overrides[0] == f'workload.trace="{tmp_path / "traces" / "b.json"}"'
    assert p.axes == {"workload.trace": "traces/b.json"}   # as written


@pytest.mark.parametrize("spec, message", [
    ({"grid": {"a.b": []}}, 'grid["a.b"]: an empty list gives no points'),
    ({"grid": {"a.b": 3}}, 'grid["a.b"]: expected a list of values'),
    ({"grid": {"a.b": [1, 2, 1]}}, 'grid["a.b"][2]: duplicate value 1 (also at [0])'),
    ({"grid": {"a.b": {"range": [0, 10, 0]}}}, 'grid["a.b"].range: step must not be 0'),
    ({"grid": {"a.b": {"range": [5, 1]}}}, 'grid["a.b"].range: the range [5, 1] is empty'),
    ({"grid": {"a.b": {"range": "0:3"}}}, 'grid["a.b"].range: expected [start, stop]'),
    ({"grid": {"a.b": {"values": [1]}}}, 'grid["a.b"]: an object value must be'),
    ({"grid": {"a..b": [1]}}, "grid[\"a..b\"]: 'a..b' is not a config path"),
    ({"zip": {"a": [1, 2], "b": [1, 2, 3]}},
     'zip["b"]: 3 values, but zip["a"] has 2: zipped axes need the same length'),
    ({"zip": [{"a": [1]}, {"b": [1, 2], "c": [1]}]}, 'zip[1]["c"]: 1 values, but'),
    ({"zip": {"a": [1, 2, 1], "b": [3, 4, 3]}}, "zip: row 2 repeats row 0 (a=1, b=3)"),
    ({"grid": {"a": [1]}, "zip": {"a": [2]}}, 'zip["a"]: also set in grid'),
    ({"overrides": {"a": 1}, "grid": {"a": [2]}}, 'grid["a"]: also set in overrides'),
    ({"seeds": []}, "seeds: an empty list gives no points"),
    ({"seeds": [1, -2]}, "seeds[1]: expected an integer >= 0"),
    ({"seeds": {"count": 0}}, "seeds.count: expected an integer >= 1"),
    ({"seeds": {"n": 3}}, "seeds: expected a list or"),
    ({"seeds": [1], "grid": {"run.seed": [1, 2]}}, "seeds: run.seed is also set in grid"),
    ({"grid": {"run.seed": [1, "x"]}}, 'grid["run.seed"][1]: a seed is an integer >= 0'),
    ({"grids": {}}, "grids: unknown key"),
    ({"base": 3}, "base: expected a config file path or an inline config object"),
    ({"base": "missing.json"}, "base: "),
    ({"name": ""}, "name: expected a non-empty string"),
])
def test_errors_name_the_file_and_the_json_path(tmp_path, spec, message):
    path = write_spec(tmp_path / "bad-spec.json", **spec)
    with pytest.raises(sw.SpecError) as e:
        sw.generate_points(sw.load_spec(path))
    assert str(e.value).startswith(f"{path}: "), e.value
    assert message in str(e.value), e.value


def test_spec_file_errors(tmp_path):
    p = tmp_path / "s.json"
    p.write_text('{"base": "x.json",\n "grid": {"a": [1,]}}')
    with pytest.raises(sw.SpecError, match=r"s\.json: not valid JSON: .* line 2"):
        sw.load_spec(str(p))
    p.write_text('{"base": "x.json", "grid": {}, "grid": {}}')
    with pytest.raises(sw.SpecError, match="duplicate key 'grid'"):
        sw.load_spec(str(p))
    # Comments are allowed, as in configs; "//" inside strings is not a comment.
    p.write_text('{/* c */ "base": {"description": "a//b"}, // c\n "seeds": [1]}')
    assert sw.load_spec(str(p)).base_doc == {"description": "a//b"}

