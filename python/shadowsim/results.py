"""Reading result folders into pandas: load().

A run folder is what `shadowsim run -o DIR` (or Result.to_dir) writes: DIR/stats.json and
DIR/stats.csv. A sweep folder (`shadowsim sweep SPEC -o DIR`) holds one run folder per finished
point, named by the hash of the point's resolved config, plus its point.json:

    DIR/points/<hash>/stats.json
    DIR/points/<hash>/point.json     {"axes": {"dotted.config.path": value, ...},
                                      "seed": N, "hash": "<hash>"}
    DIR/failed/<hash>.json           a point that failed (its error); ignored unless asked for

Anything else in DIR (the spec, logs, temporary files of points being written) is ignored, and
so is a points/<hash>/ folder without both files (a point still being written).
"""

import json
import os

from .stats import flatten_dict, flatten_stats, flatten_units

__all__ = ["load"]


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _config_columns(doc, config):
    """The requested resolved-config values of one stats.json, by dotted path."""
    if not config:
        return {}
    flat = flatten_dict(doc.get("config", {}))
    if config is True:
        return flat
    if isinstance(config, str):
        config = [config]
    out = {}
    for path in config:
        if path not in flat:
            raise KeyError("load(config=...): {!r} is not a config path; e.g. {}".format(
                path, ", ".join(list(flat)[:3])))
        out[path] = flat[path]
    return out


def _frame(rows, first_columns, stat_columns, units, kind):
    import pandas as pd
    columns = list(first_columns) + [c for c in stat_columns if c not in first_columns]
    frame = pd.DataFrame.from_records(rows, columns=columns)
    frame.attrs["kind"] = kind
    frame.attrs["stat_columns"] = [c for c in stat_columns if c not in first_columns]
    frame.attrs["units"] = units
    return frame


def _stat_column(name, reserved):
    # A statistic whose dotted name equals an axis or bookkeeping column keeps its data under
    # "stats.NAME" (statistic names and config paths do not overlap today).
    return "stats." + name if name in reserved else name


def _load_run(stats_path, config):
    doc = _read_json(stats_path)
    stats = flatten_stats(doc["stats"])
    units = flatten_units(doc["stats"])
    extra = _config_columns(doc, config)
    reserved = set(extra) | {"seed"}
    row = dict(extra)
    row["seed"] = doc.get("seed")
    named = {_stat_column(k, reserved): v for k, v in stats.items()}
    row.update(named)
    frame = _frame([row], list(extra) + ["seed"], list(named),
                   {_stat_column(k, reserved): u for k, u in units.items()}, "run")
    frame.attrs["axes"] = []
    return frame


def _failed_entries(failed_dir, done):
    """(hash, axes, seed, error) of each failed point that has not since succeeded."""
    if not os.path.isdir(failed_dir):
        return
    for name in sorted(os.listdir(failed_dir)):
        if not name.endswith(".json"):
            continue
        digest = name[:-len(".json")]
        if digest in done:
            continue
        try:
            info = _read_json(os.path.join(failed_dir, name))
        except (OSError, ValueError):
            continue  # being written
        if not isinstance(info, dict):
            info = {"error": info}
        # SweepDir.finish writes hash, axes, seed and the error text.
        axes, seed, error = info.get("axes"), info.get("seed"), info.get("error", "")
        yield info.get("hash", digest), axes or {}, seed, str(error)


def _load_sweep(root, include_failed, config):
    points_dir = os.path.join(root, "points")
    failed_dir = os.path.join(root, "failed")
    points = []  # (hash, point.json, stats.json document)
    if os.path.isdir(points_dir):
        for digest in sorted(os.listdir(points_dir)):
            folder = os.path.join(points_dir, digest)
            stats_file = os.path.join(folder, "stats.json")
            point_file = os.path.join(folder, "point.json")
            if not (os.path.isfile(stats_file) and os.path.isfile(point_file)):
                continue  # a point still being written, or a stray entry
            points.append((digest, _read_json(point_file), _read_json(stats_file)))

    axes = []  # first-seen order over all points
    for _, point, _ in points:
        for a in point.get("axes", {}):
            if a not in axes:
                axes.append(a)
    failed = list(_failed_entries(failed_dir, {d for d, _, _ in points})) \
        if include_failed else []
    for _, failed_axes, _, _ in failed:
        for a in failed_axes:
            if a not in axes:
                axes.append(a)

    rows, stat_columns, units, extra_columns, seen = [], [], {}, [], set()
    reserved = set(axes) | {"seed", "hash", "error"}
    for digest, point, doc in points:
        extra = {k: v for k, v in _config_columns(doc, config).items() if k not in axes}
        for k in extra:
            if k not in extra_columns:
                extra_columns.append(k)
        reserved.update(extra)
        row = dict(point.get("axes", {}))
        row.update(extra)
        row["seed"] = point.get("seed", doc.get("seed"))
        row["hash"] = point.get("hash", digest)
        for name, value in flatten_stats(doc["stats"]).items():
            column = _stat_column(name, reserved)
            if column not in seen:
                seen.add(column)
                stat_columns.append(column)
            row[column] = value
        for name, unit in flatten_units(doc["stats"]).items():
            units.setdefault(_stat_column(name, reserved), unit)
        if include_failed:
            row["error"] = None
        rows.append(row)
    for digest, failed_axes, seed, error in failed:
        row = dict(failed_axes)
        row.update({"seed": seed, "hash": digest, "error": error})
        rows.append(row)

    first = axes + extra_columns + ["seed", "hash"] + (["error"] if include_failed else [])
    frame = _frame(rows, first, stat_columns, units, "sweep")
    frame.attrs["axes"] = list(axes)
    order = [c for c in axes + ["seed"] if c in frame.columns]
    if order and len(frame) > 1:
        try:
            frame = frame.sort_values(order, kind="stable", na_position="last")
        except TypeError:  # an axis mixing types that do not compare (e.g. str and int)
            pass
    return frame.reset_index(drop=True)


def load(path, *, include_failed=False, config=None):
    """A run or sweep output folder as a tidy pandas.DataFrame.

    path: a run folder (PATH/stats.json; a stats.json file itself works too) gives one row; a
    sweep folder (PATH/points/<hash>/{stats,point}.json) gives one row per finished point,
    sorted by its axes and seed.

    Columns, in this order: the sweep's config axes, named by their dotted config path
    ("machine.tlb.stlb_entries"), with the values point.json gives; then `seed`; for a sweep,
    `hash` (the point's folder name) and, with include_failed, `error`; then every statistic
    named by its dotted name as in stats.csv ("pcpu0.dtlb.miss_rate"; histograms as
    NAME.count/.mean/.min/.max). A statistic whose name equals an axis column would be renamed
    "stats.NAME" (none does today).

    include_failed: also list the points in PATH/failed/ (one row each: axes, seed, hash and
    the error message; statistics empty); `error` is None for the points that finished.
    config: add resolved-config values of each run as columns: a dotted path or a list of
    them ("machine.paging_mode"), or True for every parameter.

    frame.attrs carries "kind" ("run" or "sweep"), "axes" (the axis columns), "stat_columns"
    and "units" ({statistic column: unit}) for labelling plots.
    """
    path = os.fspath(path)
    if os.path.isfile(path) and os.path.basename(path) == "stats.json":
        return _load_run(path, config)
    if not os.path.isdir(path):
        raise FileNotFoundError("{}: no such result folder".format(path))
    stats_file = os.path.join(path, "stats.json")
    if os.path.isfile(stats_file):
        return _load_run(stats_file, config)
    if os.path.isdir(os.path.join(path, "points")) or os.path.isdir(os.path.join(path, "failed")):
        return _load_sweep(path, include_failed, config)
    raise FileNotFoundError(
        "{}: neither a run folder (stats.json) nor a sweep folder (points/)".format(path))
