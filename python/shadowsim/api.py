"""Running simulations: run(), resolve(), defaults() and the Result of a run."""

import json
import operator
import os
from collections.abc import Mapping

from . import _shadowsim as _core
from .stats import flatten_stats, leaf_values, parse_csv_rows

#: Raised for every bad input the simulator reports (config file, JSON path, trace record...);
#: the message is the C++ one. A subclass of RuntimeError.
Error = _core.Error
Error.__module__ = "shadowsim"  # tracebacks say shadowsim.Error

__all__ = ["Error", "Result", "run", "resolve", "defaults"]


def _json_default(value):
    # numpy scalars (from a sweep grid, a DataFrame) and other objects with .item()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError("config value {!r} of type {} is not JSON".format(value,
                                                                      type(value).__name__))


def _source(config):
    """(source, is_path, origin, config_file) for the extension."""
    if isinstance(config, Mapping):
        return json.dumps(config, default=_json_default), False, "<config dict>", ""
    if isinstance(config, bytes):
        config = config.decode("utf-8")
    if isinstance(config, str) and config.lstrip().startswith("{"):
        return config, False, "<config JSON>", ""
    if isinstance(config, (str, os.PathLike)):
        path = os.fspath(config)
        return path, True, path, path
    raise TypeError("config: expected a path, a JSON string or a dict, got {}".format(
        type(config).__name__))


def _overrides(overrides, seed):
    """The "dotted.path=JSON" strings the C++ loader applies, in order."""
    if overrides is None:
        out = []
    elif isinstance(overrides, str):
        out = [overrides]
    elif isinstance(overrides, Mapping):
        out = ["{}={}".format(k, json.dumps(v, default=_json_default))
               for k, v in overrides.items()]
    else:
        out = [str(o) for o in overrides]
    if seed is not None:
        if isinstance(seed, bool):
            raise TypeError("seed: expected an integer, got a bool")
        seed = operator.index(seed)
        if seed < 0:
            raise ValueError("seed: expected a non-negative integer, got {}".format(seed))
        out.append("run.seed={}".format(seed))
    return out


def run(config, overrides=None, seed=None):
    """Simulates one config and returns its Result.

    config: a config file's path (relative trace paths resolve against its folder), a JSON
    string, or a dict nested like the JSON config (relative trace paths resolve against the
    current directory). overrides: "dotted.path=VALUE" strings as `shadowsim run --set` takes
    them (VALUE is JSON or a plain string), or a dict {dotted.path: value}. seed: sets
    run.seed, after the overrides. Raises shadowsim.Error with the simulator's message
    (naming the file or "<config dict>" and the JSON path) on bad input.

    Every run gets a fresh SystemC simulation context. Runs from several threads are safe: they
    are serialised inside (SystemC's kernel is process-global) and the GIL is released while a
    run waits and simulates.
    """
    source, is_path, origin, config_file = _source(config)
    out = _core.run(source, is_path, origin, config_file, _overrides(overrides, seed))
    return Result(out["stats_json"], out["stats_csv"], out["summary"], out["timeline"])


def resolve(config, overrides=None, seed=None):
    """The fully resolved config (every parameter, defaults included) as a dict, without
    simulating. Same arguments and errors as run()."""
    source, is_path, origin, _ = _source(config)
    return json.loads(_core.resolve(source, is_path, origin, _overrides(overrides, seed)))


def defaults():
    """Every parameter's default, nested like a JSON config (`shadowsim config --defaults`)."""
    return json.loads(_core.defaults_json())


def _write_atomically(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.replace(tmp, path)


class Result:
    """The outcome of one run.

    stats      nested dict as stats.json's "stats", each leaf replaced by its value (a
               histogram by {count, sum, mean, min, max, buckets})
    flat       {dotted name: value} in stats.csv's order; histograms as NAME.count/.mean/
               .min/.max
    config     the fully resolved config (dict)
    record     {"version", "git", "config_file", "seed", "roi": {...}, "host": {...}}
    intervals  stats.json's "intervals" (a list; empty unless run.interval_* was set); as a
               DataFrame: interval_dataframe()
    document   the whole stats.json as a dict (leaves with unit and description)
    summary    the few lines `shadowsim run` prints
    """

    def __init__(self, stats_json, stats_csv, summary="", timeline=""):
        self._stats_json = stats_json
        self._stats_csv = stats_csv
        # run.timeline: the Chrome trace-event JSON text (docs/statistics.md), else "".
        self.timeline = timeline
        self.summary = summary
        self.document = json.loads(stats_json)
        doc = self.document
        self.stats = leaf_values(doc["stats"])
        self._rows = parse_csv_rows(stats_csv)
        values = flatten_stats(doc["stats"])
        self.flat = {name: values[name] for name, _, _ in self._rows}
        self.config = doc["config"]
        self.intervals = doc.get("intervals", [])
        self.record = {
            "version": doc["shadowsim"]["version"],
            "git": doc["shadowsim"]["git"],
            "config_file": doc["config_file"],
            "seed": doc["seed"],
            "roi": doc["roi"],
            "host": doc["host"],
        }

    def __getitem__(self, name):
        """A statistic by dotted name: r["pcpu0.dtlb.hits"]; a histogram gives its dict."""
        if name in self.flat:
            return self.flat[name]
        node = self.stats
        for part in name.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(name)
            node = node[part]
        return node

    def dataframe(self):
        """pandas.DataFrame, one row per statistic (as stats.csv): name, value, unit,
        description."""
        import pandas as pd
        return pd.DataFrame(
            [(name, self.flat[name], unit, description) for name, unit, description in self._rows],
            columns=["name", "value", "unit", "description"])

    def interval_dataframe(self):
        """pandas.DataFrame of the interval snapshots (run.interval_references or
        run.interval_cycles), one row each: references, cycles, then every flat statistic's
        cumulative region-of-interest value (diff() the rows for per-interval figures)."""
        import pandas as pd
        rows = [{"references": s["references"], "cycles": s["cycles"], **s["values"]}
                for s in self.intervals]
        return pd.DataFrame(rows, columns=["references", "cycles"] + [n for n in self.flat])

    def to_dir(self, path):
        """Writes PATH/stats.json and PATH/stats.csv exactly as `shadowsim run -o PATH` does
        (each atomically: a temporary name, then a rename). Returns the path."""
        path = os.fspath(path)
        os.makedirs(path, exist_ok=True)
        _write_atomically(os.path.join(path, "stats.json"), self._stats_json)
        _write_atomically(os.path.join(path, "stats.csv"), self._stats_csv)
        if self.timeline:
            _write_atomically(os.path.join(path, "timeline.json"), self.timeline)
        return path

    def __repr__(self):
        return "<shadowsim.Result: {} statistics, {} ROI references, {} cycles>".format(
            len(self.flat), self.record["roi"]["references"], self.record["roi"]["cycles"])
