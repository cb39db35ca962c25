"""Property tests (hypothesis) of the sweep-spec loader, python/shadowsim/sweep.py
(docs/fuzzing.md): for any file -- random bytes, random text, or JSON shaped more or less like a
spec -- load_spec either returns a Spec or raises SpecError whose message starts with the spec's
path; never any other exception. For a spec that loads, generate_points either raises SpecError
the same way or returns the same points (indices, hashes, axes, seeds, overrides) every time."""

import json
import os
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest_sweep import DEFAULT_CONFIG, load_sweep_module  # noqa: E402

sw = load_sweep_module()

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                       HealthCheck.too_slow])

# Scalars include what Python's json module accepts beyond JSON (NaN, Infinity), huge and
# negative integers, and floats at the edges of the double range.
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-10, max_value=10),
    st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.1, 0.5, 1e308, -1e308, 1e-300]),
    st.text(max_size=8),
    st.sampled_from(["4level", "pae", "machine.paging_mode", "run.seed", "", "a..b"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=12)
paths = st.one_of(st.sampled_from(["run.seed", "run.max_references", "machine.paging_mode",
                                   "machine.vcpu.cpi", "guest.zero_page", "workload.trace",
                                   "bad path", "a..b", ""]), st.text(max_size=12))
number = st.one_of(st.integers(min_value=-(2 ** 66), max_value=2 ** 66),
                   st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0, 1, 2, 3, -1, 0.1, 0.25, 1e9]))
ranges = st.builds(lambda a: {"range": a}, st.lists(number, min_size=0, max_size=4))
axis_values = st.one_of(st.lists(scalars, max_size=4), ranges, scalars)
seeds = st.one_of(st.lists(st.integers(min_value=-2, max_value=50), max_size=4),
                  st.fixed_dictionaries({"count": st.one_of(st.integers(min_value=-1,
                                                                        max_value=4),
                                                            st.sampled_from([10 ** 12, "3"]))},
                                        optional={"start": st.integers(-2, 2 ** 64)}),
                  values)
bases = st.one_of(st.just(DEFAULT_CONFIG), st.just("does-not-exist.json"), st.just(""),
                  st.just("a\x00b"), st.just("."), st.dictionaries(st.text(max_size=6), values,
                                                                    max_size=3), values)
specs = st.fixed_dictionaries({}, optional={
    "name": st.one_of(st.text(max_size=8), values),
    "description": st.one_of(st.text(max_size=8), values),
    "base": bases,
    "overrides": st.one_of(st.dictionaries(paths, values, max_size=3), values),
    "grid": st.one_of(st.dictionaries(paths, axis_values, max_size=3), values),
    "zip": st.one_of(st.dictionaries(paths, axis_values, max_size=3),
                     st.lists(st.dictionaries(paths, axis_values, max_size=2), max_size=2),
                     values),
    "seeds": seeds,
    "unknown": values,
})


def check_load(path):
    """load_spec + generate_points twice; only SpecError naming the file may escape."""
    try:
        spec = sw.load_spec(path)
    except sw.SpecError as e:
        assert str(e).startswith(f"{path}: "), str(e)
        return None
    try:
        first = [p.record() | {"index": p.index} for p in sw.generate_points(spec)]
    except sw.SpecError as e:
        assert str(e).startswith(f"{path}: "), str(e)
        return None
    second = [p.record() | {"index": p.index} for p in sw.generate_points(sw.load_spec(path))]
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert len({p["hash"] for p in first}) == len(first)
    return spec


@settings(max_examples=300, **SETTINGS)
@given(spec=specs)
def test_spec_shaped_json(tmp_path, spec):
    path = str(tmp_path / "spec.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(spec, f)  # NaN and Infinity written as Python's json writes them
    check_load(path)


@settings(max_examples=100, **SETTINGS)
@given(data=st.binary(max_size=300))
def test_random_bytes(tmp_path, data):
    path = str(tmp_path / "spec.json")
    with open(path, "wb") as f:
        f.write(data)
    check_load(path)


json_tokens = st.sampled_from(['{', '}', '[', ']', ':', ',', '"base"', '"grid"', '"zip"',
                               '"seeds"', '"range"', '"count"', '"run.seed"', '1', '-1', '0.5',
                               'NaN', 'Infinity', '-Infinity', 'true', 'null', '"x"', '//c\n',
                               '/*', '*/', '"\\ud800"', '1' * 5000, '[' * 3000])


@settings(max_examples=200, **SETTINGS)
@given(tokens=st.lists(json_tokens, max_size=30))
def test_json_token_soup(tmp_path, tokens):
    path = str(tmp_path / "spec.json")
    with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
        f.write("".join(tokens))
    check_load(path)


def test_named_findings(tmp_path):
    """The inputs hypothesis found (docs/fuzzing.md), each a SpecError naming file and path."""
    cases = {
        b"\xff\xfe{}": "not UTF-8",
        b"[" * 100000: "nested too deeply",
        b'{"base": {}, "grid": {"a.b": [1' + b"1" * 5000 + b"]}}": "not valid JSON",
        b'{"base": {}, "grid": {"a.b": [NaN]}}': "NaN",
        b'{"base": {}, "grid": {"a.b": {"range": [0, 1e30]}}}': 'grid["a.b"].range',
        b'{"base": {}, "grid": {"a.b": {"range": [-1e308, 1e308, 1e-300]}}}': 'grid["a.b"].range',
        b'{"base": {}, "grid": {"a.b": {"range": [0, 100000000000000000000]}}}':
            'grid["a.b"].range',
        b'{"base": {}, "seeds": {"count": 1000000000000}}': "seeds.count",
        # Found by review: an unpaired surrogate escape reached the point hash's UTF-8 encoding.
        b'{"base": {}, "grid": {"a.b": ["\\ud800"]}}': "unpaired UTF-16 surrogate",
        b'{"base": {"description": "\\udc00"}}': "unpaired UTF-16 surrogate",
        b'{"base": {}, "grid": {"a.b": [1e999]}}': "beyond a double",
        b'{"base": "a\\u0000b"}': "base",
        b'{"base": {}, "grid": {"a.b": {"range": [0, 1000]}, "c.d": {"range": [0, 1000]},'
        b' "e.f": {"range": [0, 1000]}}}': "points",
    }
    for i, (data, words) in enumerate(cases.items()):
        path = str(tmp_path / f"case{i}.json")
        with open(path, "wb") as f:
            f.write(data)
        try:
            sw.generate_points(sw.load_spec(path))
        except sw.SpecError as e:
            assert str(e).startswith(f"{path}: ") and words in str(e), (data[:60], str(e))
        else:
            raise AssertionError(f"no SpecError for {data[:60]!r}")
