"""Parameter sweeps over the shadowsim binary: one ``shadowsim run`` process per point.

    /usr/bin/python3 -m shadowsim.sweep SPEC -o DIR [-j N] [--binary PATH] [--retry-failed]
                                        [--dask tcp://HOST:PORT] [--slurm [--partition P ...]]
                                        [--dry-run]

A sweep spec is JSON (``//`` comments allowed, as in configs)::

    {"name": "tlb-size",
     "base": "../configs/default.json",            # or an inline config object
     "overrides": {"run.max_references": 100000},  # applied to every point
     "grid": {"machine.paging_mode": ["4level", "pae"],
              "machine.tlb.stlb.entries": {"range": [512, 2049, 512]}},
     "zip": {"a.b": [1, 2], "c.d": [true, false]},  # varied together (same lengths)
     "seeds": [1, 2, 3]}                           # or {"count": 3[, "start": 1]}

Points = grid product x zip rows x seeds. A point's hash covers the base config (comments
removed, keys sorted), its sorted overrides and its seed; its results go to
``DIR/points/<hash>/`` (``point.json``, ``stats.json``, ``stats.csv``), written in ``DIR/tmp/``
and renamed into place, so a sweep killed at any moment (SIGKILL included) loses and duplicates
nothing: run it again and it skips the finished points. docs/sweeps.md is the reference.

Standard library only; Dask is imported only for ``--dask``.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import errno
import fcntl
import hashlib
import itertools
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, TextIO


def _import_executors():
    """shadowsim.executors when imported as shadowsim.sweep; the file next to this one when run
    as a script (python/shadowsim/sweep.py), which needs neither the package's __init__ nor the
    C++ extension it loads."""
    if __package__:
        from . import executors
        return executors
    here = os.path.dirname(os.path.abspath(__file__))
    # A script's folder goes first on sys.path; this one holds api.py, stats.py, traces.py...,
    # which must not shadow top-level modules of those names.
    while sys.path and os.path.abspath(sys.path[0] or ".") == here:
        sys.path.pop(0)
    name = "_shadowsim_sweep_executors"
    if name not in sys.modules:
        import importlib.util
        spec = importlib.util.spec_from_file_location(name, os.path.join(here, "executors.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_executors = _import_executors()
BASE_NAME = _executors.BASE_NAME
DaskExecutor = _executors.DaskExecutor
Job = _executors.Job
LocalExecutor = _executors.LocalExecutor
Outcome = _executors.Outcome
run_point_process = _executors.run_point_process
slurm_script = _executors.slurm_script
SWEEP_SCRIPT = os.path.abspath(__file__)

HASH_LENGTH = 16            # hex digits of SHA-256 kept in folder names (64 bits)
LAYOUT_VERSION = 1          # of the output folder (docs/sweeps.md)
SPEC_KEYS = ("name", "description", "base", "overrides", "grid", "zip", "seeds")
SEED_PATH = "run.seed"
TRACE_PATH = "workload.trace"


class SpecError(ValueError):
    """A sweep spec is invalid; the message names the file and the JSON path."""


class SweepError(RuntimeError):
    """The sweep cannot run (busy or mismatched output folder, missing binary, ...)."""


# --------------------------------------------------------------------------------------------
# JSON with comments (configs and specs allow // and /* */, like nlohmann's ignore_comments)


def strip_json_comments(text: str) -> str:
    """Removes // and /* */ comments outside strings; keeps line breaks (error line numbers)."""
    out: List[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
        elif c == '"':
            in_string = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            chunk = text[i:n if j < 0 else j + 2]
            out.append("\n" * chunk.count("\n"))
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _no_duplicate_keys(origin: str):
    def hook(pairs):
        obj: Dict[str, Any] = {}
        for k, v in pairs:
            if k in obj:
                raise SpecError(f"{origin}: duplicate key {k!r}")
            obj[k] = v
        return obj
    return hook


def load_json_file(path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise SpecError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except ValueError as e:  # a path with a NUL byte
        shown = path.replace("\0", "\\0")
        raise SpecError(f"{shown}: cannot read: {e}") from None
    return parse_json_text(text, path)


def _no_constants(origin: str):
    def hook(name: str):
        raise SpecError(f"{origin}: not valid JSON: {name} is not a JSON number")
    return hook


def _finite_float(origin: str):
    def hook(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):  # 1e999: Python's json would give inf
            raise SpecError(f"{origin}: not valid JSON: {text} is beyond a double")
        return value
    return hook


def parse_json_text(text: str, origin: str) -> Any:
    """JSON as the C++ loaders read it: comments allowed; NaN, Infinity and numbers beyond a
    double (which Python's json would accept), unpaired UTF-16 surrogates (\\ud800, which
    Python's json keeps in a str that cannot be encoded) and duplicate keys refused."""
    try:
        value = json.loads(strip_json_comments(text), object_pairs_hook=_no_duplicate_keys(origin),
                           parse_constant=_no_constants(origin), parse_float=_finite_float(origin))
        canonical(value).encode("utf-8")
        return value
    except UnicodeEncodeError:
        raise SpecError(f"{origin}: not valid JSON: a string holds an unpaired UTF-16 surrogate "
                        "(a \\uD800-\\uDFFF escape without its pair)") from None
    except json.JSONDecodeError as e:
        raise SpecError(f"{origin}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}")
    except RecursionError:
        raise SpecError(f"{origin}: not valid JSON: nested too deeply") from None
    except SpecError:
        raise
    except ValueError as e:  # an integer of more than 4300 digits
        raise SpecError(f"{origin}: not valid JSON: {e}") from None


def canonical(value: Any) -> str:
    """The one JSON spelling of a value used in hashes and --set overrides."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------------------------
# Spec


@dataclass
class Spec:
    name: str
    origin: str                         # the spec file (for messages), or "<spec>"
    spec_dir: str                       # relative paths in the spec resolve against it
    raw: Dict[str, Any]                 # the spec as read
    base_doc: Dict[str, Any]            # the base config as written (comments removed)
    base_file: Optional[str]            # absolute path of the base config, None when inline
    overrides: Dict[str, Any]
    grid: Dict[str, List[Any]]
    zips: List[Dict[str, List[Any]]]    # each group varies together
    seeds: Optional[List[int]]

    @property
    def base_canonical(self) -> str:
        return canonical(self.base_doc)

    @property
    def axes(self) -> List[str]:
        return list(self.grid) + [k for z in self.zips for k in z]

    def resolved_base(self) -> Dict[str, Any]:
        """The base config written to DIR/base.json: as written, but a relative workload.trace
        made absolute against the base file's folder (inline base: the spec's folder)."""
        doc = copy.deepcopy(self.base_doc)
        trace = doc.get("workload", {}).get("trace") if isinstance(doc.get("workload"), dict) \
            else None
        if isinstance(trace, str) and trace and not os.path.isabs(trace):
            where = os.path.dirname(self.base_file) if self.base_file else self.spec_dir
            doc["workload"]["trace"] = os.path.normpath(os.path.join(where, trace))
        return doc

    def base_text(self) -> str:
        return json.dumps(self.resolved_base(), indent=2, sort_keys=True) + "\n"


def _where(origin: str, path: str) -> str:
    return f"{origin}: {path}" if path else origin


def _check_dotted(name: Any, origin: str, path: str) -> str:
    parts = name.split(".") if isinstance(name, str) else []
    if not parts or not all(p and all(c.isalnum() or c in "_-" for c in p) for p in parts):
        raise SpecError(f"{_where(origin, path)}: {name!r} is not a config path "
                        "(dotted keys, e.g. machine.tlb.stlb_enabled)")
    return name


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def expand_range(r: Any, origin: str, path: str) -> List[Any]:
    """{"range": [start, stop, step]} -> values start, start+step, ... before stop (exclusive,
    like Python's range; [start, stop] steps by 1). Floats are start + i*step rounded to 12
    decimal places, so 0.1 steps give 0.3, not 0.30000000000000004."""
    where = _where(origin, path + ".range")
    if set(r) != {"range"}:
        raise SpecError(f"{_where(origin, path)}: an object value must be {{\"range\": "
                        "[start, stop, step]}}; lists give values")
    a = r["range"]
    if not isinstance(a, list) or len(a) not in (2, 3) or not all(_is_number(x) for x in a):
        raise SpecError(f"{where}: expected [start, stop] or [start, stop, step] (numbers)")
    start, stop = a[0], a[1]
    step = a[2] if len(a) == 3 else 1
    if step == 0:
        raise SpecError(f"{where}: step must not be 0")
    try:
        if all(isinstance(x, int) for x in (start, stop, step)):
            count = max(0, -((start - stop) // step))  # len(range()), without its 2^63 limit
        else:
            count = max(0, math.ceil((stop - start) / step - 1e-9))
    except (OverflowError, ValueError):  # beyond the doubles, or inf - inf
        raise SpecError(f"{where}: {a} gives no finite number of values") from None
    if count > 1_000_000:
        raise SpecError(f"{where}: {count} values; more than a million is surely a mistake")
    if all(isinstance(x, int) for x in (start, stop, step)):
        values: List[Any] = list(range(start, stop, step))
    else:
        values = [round(start + i * step, 12) for i in range(count)]
        values = [v for v in values if (v < stop if step > 0 else v > stop)]
    if not values:
        raise SpecError(f"{where}: the range {a} is empty")
    return values


def expand_values(v: Any, origin: str, path: str, unique: bool = True) -> List[Any]:
    if isinstance(v, dict):
        values = expand_range(v, origin, path)
    elif isinstance(v, list):
        if not v:
            raise SpecError(f"{_where(origin, path)}: an empty list gives no points")
        values = list(v)
    else:
        raise SpecError(f"{_where(origin, path)}: expected a list of values or "
                        f"{{\"range\": [start, stop, step]}}, got {canonical(v)}")
    seen: Dict[str, int] = {}
    for i, x in enumerate(values if unique else ()):
        key = canonical(x)
        if key in seen:
            raise SpecError(f"{_where(origin, path)}[{i}]: duplicate value {key} "
                            f"(also at [{seen[key]}])")
        seen[key] = i
    return values


def _key_path(section: str, key: str) -> str:
    return f'{section}["{key}"]'


def parse_spec(raw: Any, origin: str = "<spec>", spec_dir: str = ".") -> Spec:
    """Validates a spec (already parsed JSON); errors name `origin` and the JSON path."""
    spec_dir = os.path.abspath(spec_dir)
    if not isinstance(raw, dict):
        raise SpecError(f"{origin}: the top level must be a JSON object")
    for k in raw:
        if k not in SPEC_KEYS:
            raise SpecError(f"{origin}: {k}: unknown key (expected one of {', '.join(SPEC_KEYS)})")
    if "base" not in raw:
        raise SpecError(f"{origin}: base: missing (a config file path or an inline config)")

    name = raw.get("name")
    if name is None:
        name = Path(origin).stem if origin != "<spec>" else "sweep"
    if not isinstance(name, str) or not name:
        raise SpecError(f"{origin}: name: expected a non-empty string")
    if "description" in raw and not isinstance(raw["description"], str):
        raise SpecError(f"{origin}: description: expected a string")

    base = raw["base"]
    if isinstance(base, str):
        base_file = os.path.normpath(os.path.join(spec_dir, base))
        try:
            base_doc = load_json_file(base_file)
        except SpecError as e:
            raise SpecError(f"{origin}: base: {e}") from None
    elif isinstance(base, dict):
        base_file, base_doc = None, base
    else:
        raise SpecError(f"{origin}: base: expected a config file path or an inline config object")
    if not isinstance(base_doc, dict):
        raise SpecError(f"{origin}: base: the config's top level must be a JSON object")

    def section(key: str) -> Dict[str, Any]:
        v = raw.get(key, {})
        if not isinstance(v, dict):
            raise SpecError(f"{origin}: {key}: expected an object {{\"dotted.path\": ...}}")
        return v

    overrides = {}
    for k, v in section("overrides").items():
        overrides[_check_dotted(k, origin, _key_path("overrides", k))] = v

    grid = {}
    for k, v in section("grid").items():
        p = _key_path("grid", k)
        grid[_check_dotted(k, origin, p)] = expand_values(v, origin, p)

    zraw = raw.get("zip", [])
    groups = [zraw] if isinstance(zraw, dict) else zraw
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise SpecError(f"{origin}: zip: expected an object {{\"path\": [values], ...}} "
                        "(or a list of them)")
    zips: List[Dict[str, List[Any]]] = []
    for gi, g in enumerate(groups):
        sect = "zip" if isinstance(zraw, dict) else f"zip[{gi}]"
        if not g:
            raise SpecError(f"{origin}: {sect}: empty")
        group, length, first = {}, None, None
        for k, v in g.items():
            p = _key_path(sect, k)
            _check_dotted(k, origin, p)
            values = expand_values(v, origin, p, unique=False)  # rows must differ, not values
            if length is None:
                length, first = len(values), k
            elif len(values) != length:
                raise SpecError(f"{origin}: {p}: {len(values)} values, but "
                                f"{_key_path(sect, first)} has {length}: zipped axes need "
                                "the same length")
            group[k] = values
        rows: Dict[str, int] = {}
        for i in range(length or 0):
            row = canonical([group[k][i] for k in group])
            if row in rows:
                raise SpecError(f"{origin}: {sect}: row {i} repeats row {rows[row]} "
                                f"({', '.join(f'{k}={canonical(group[k][i])}' for k in group)})")
            rows[row] = i
        zips.append(group)

    seen: Dict[str, str] = {}
    for where, keys in [("overrides", overrides), ("grid", grid)] + \
            [("zip", z) for z in zips]:
        for k in keys:
            if k in seen:
                raise SpecError(f"{origin}: {_key_path(where, k)}: also set in {seen[k]}; "
                                "a path may appear once")
            seen[k] = where

    seeds = None
    if "seeds" in raw:
        s = raw["seeds"]
        if SEED_PATH in seen:
            raise SpecError(f"{origin}: seeds: {SEED_PATH} is also set in {seen[SEED_PATH]}; "
                            "give seeds in one place")
        if isinstance(s, dict):
            if not set(s) <= {"count", "start"} or "count" not in s:
                raise SpecError(f"{origin}: seeds: expected a list or {{\"count\": N, "
                                "\"start\": S}}")
            count, start = s["count"], s.get("start", 1)
            if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 1_000_000:
                raise SpecError(f"{origin}: seeds.count: expected an integer >= 1 "
                                "(at most 1000000)")
            if not isinstance(start, int) or isinstance(start, bool) or start < 0:
                raise SpecError(f"{origin}: seeds.start: expected an integer >= 0")
            seeds = list(range(start, start + count))
        elif isinstance(s, list):
            seeds = expand_values(s, origin, "seeds")
            for i, x in enumerate(seeds):
                if not isinstance(x, int) or isinstance(x, bool) or x < 0:
                    raise SpecError(f"{origin}: seeds[{i}]: expected an integer >= 0")
        else:
            raise SpecError(f"{origin}: seeds: expected a list of integers or {{\"count\": N}}")
    for where, keys in [("grid", grid)] + [("zip", z) for z in zips]:
        for i, x in enumerate(keys.get(SEED_PATH, [])):
            if not isinstance(x, int) or isinstance(x, bool) or x < 0:
                raise SpecError(f"{origin}: {_key_path(where, SEED_PATH)}[{i}]: a seed is an "
                                "integer >= 0")
    if SEED_PATH in overrides and (not isinstance(overrides[SEED_PATH], int)
                                   or isinstance(overrides[SEED_PATH], bool)):
        raise SpecError(f"{origin}: {_key_path('overrides', SEED_PATH)}: a seed is an integer")

    return Spec(name=name, origin=origin, spec_dir=spec_dir, raw=raw, base_doc=base_doc,
                base_file=base_file, overrides=overrides, grid=grid, zips=zips, seeds=seeds)


def load_spec(path: str) -> Spec:
    raw = load_json_file(path)
    return parse_spec(raw, origin=path, spec_dir=os.path.dirname(os.path.abspath(path)))


# --------------------------------------------------------------------------------------------
# Points


@dataclass
class Point:
    index: int                     # position in the spec's point order
    hash: str
    axes: Dict[str, Any]           # grid and zip values of this point
    seed: int
    overrides: List[str]           # what --set receives, in order ("path=<json>")

    def record(self) -> Dict[str, Any]:
        return {"axes": self.axes, "seed": self.seed, "hash": self.hash,
                "overrides": self.overrides}


def point_hash(base_canonical: str, overrides: Sequence[str], seed: int) -> str:
    """SHA-256 of the base config text, the sorted overrides and the seed (first 16 hex digits).
    `overrides` are "path=<canonical json>" strings as written in the spec, without run.seed."""
    doc = {"base": base_canonical, "overrides": sorted(overrides), "seed": seed}
    return hashlib.sha256(canonical(doc).encode("utf-8")).hexdigest()[:HASH_LENGTH]


def _base_seed(base_doc: Dict[str, Any]) -> int:
    run = base_doc.get("run")
    seed = run.get("seed") if isinstance(run, dict) else None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else 1


def generate_points(spec: Spec) -> List[Point]:
    """Grid product (in the spec's key order) x zip rows x seeds (innermost)."""
    total = math.prod([len(v) for v in spec.grid.values()] +
                      [len(next(iter(g.values()))) for g in spec.zips] +
                      [len(spec.seeds) if spec.seeds is not None else 1])
    if total > 1_000_000:
        raise SpecError(f"{spec.origin}: grid x zip x seeds: {total} points; more than a million "
                        "is surely a mistake")
    grid_keys = list(spec.grid)
    grid_rows = [dict(zip(grid_keys, combo))
                 for combo in itertools.product(*(spec.grid[k] for k in grid_keys))]
    zip_rows_per_group = [[{k: g[k][i] for k in g} for i in range(len(next(iter(g.values()))))]
                          for g in spec.zips]
    zip_rows = [dict(itertools.chain.from_iterable(r.items() for r in rows))
                for rows in itertools.product(*zip_rows_per_group)]
    seeds: List[Optional[int]] = list(spec.seeds) if spec.seeds is not None else [None]

    points: List[Point] = []
    by_hash: Dict[str, int] = {}
    for g, z, s in itertools.product(grid_rows, zip_rows, seeds):
        axes = {**g, **z}
        values = {**spec.overrides, **axes}
        seed = s if s is not None else values.pop(SEED_PATH, None)
        values.pop(SEED_PATH, None)
        if seed is None:
            seed = _base_seed(spec.base_doc)
        hashed = [f"{k}={canonical(v)}" for k, v in values.items()]
        h = point_hash(spec.base_canonical, hashed, seed)
        if h in by_hash:
            raise SpecError(f"{spec.origin}: points {by_hash[h]} and {len(points)} are the same "
                            f"point ({canonical(axes)}, seed {seed})")
        passed = []
        for k, v in values.items():
            if k == TRACE_PATH and isinstance(v, str) and v and not os.path.isabs(v):
                v = os.path.normpath(os.path.join(spec.spec_dir, v))
            passed.append(f"{k}={canonical(v)}")
        passed.append(f"{SEED_PATH}={seed}")
        by_hash[h] = len(points)
        points.append(Point(index=len(points), hash=h, axes=axes, seed=seed, overrides=passed))
    return points


# --------------------------------------------------------------------------------------------
# The output folder


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SweepDir:
    """DIR/sweep.json, base.json, points.jsonl, points/<hash>/, failed/<hash>.json, tmp/."""

    STALE_SECONDS = 7 * 24 * 3600

    def __init__(self, root: str):
        self.root = Path(root).absolute()
        self.points = self.root / "points"
        self.failed = self.root / "failed"
        self.tmp = self.root / "tmp"
        self._lock_fd: Optional[int] = None

    def create(self) -> None:
        for d in (self.root, self.points, self.failed, self.tmp):
            d.mkdir(parents=True, exist_ok=True)

    def lock(self) -> None:
        """One driver per folder (Slurm array tasks take no lock: renames keep them safe)."""
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise SweepError(f"{self.root}: another sweep driver is using this folder") \
                    from None
            raise
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def done(self) -> set:
        if not self.points.is_dir():
            return set()
        return {p.name for p in self.points.iterdir()
                if not p.name.startswith(".") and (p / "stats.json").is_file()}

    def failures(self) -> Dict[str, Dict[str, Any]]:
        out = {}
        if self.failed.is_dir():
            for p in sorted(self.failed.glob("*.json")):
                try:
                    out[p.stem] = json.loads(p.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    out[p.stem] = {"hash": p.stem, "error": "(unreadable failure record)"}
        return out

    def new_tmp(self, h: str) -> str:
        return str(self.tmp / f"{h}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}")

    def clean_tmp(self) -> int:
        """Removes what killed drivers (or Slurm tasks) left in tmp/: entries of this host whose
        process is gone, and anything older than a week."""
        if not self.tmp.is_dir():
            return 0
        host, removed, now = socket.gethostname(), 0, time.time()
        for p in self.tmp.iterdir():
            parts = p.name.split(".")   # HASH.HOST.PID.RANDOM (HOST may hold dots)
            stale = False
            if len(parts) >= 4 and ".".join(parts[1:-2]) == host:
                try:
                    stale = not _pid_alive(int(parts[-2]))
                except ValueError:
                    stale = True
            try:
                stale = stale or now - p.lstat().st_mtime > self.STALE_SECONDS
            except OSError:
                continue
            if stale:
                shutil.rmtree(p, ignore_errors=True)
                removed += 1
        return removed

    def finish(self, point: Dict[str, Any], tmp_dir: str, outcome: Outcome,
               extra: Dict[str, Any]) -> str:
        """Publishes a point atomically: 'done', 'failed', or 'duplicate' (already there)."""
        h = point["hash"]
        target = self.points / h
        if outcome.ok and outcome.files is not None:
            os.makedirs(tmp_dir, exist_ok=True)
            for name, text in outcome.files.items():
                (Path(tmp_dir) / name).write_text(text, encoding="utf-8")
        if outcome.ok:
            record = dict(point)
            record["run"] = {"seconds": round(outcome.seconds, 6), "host": outcome.host or
                             socket.gethostname(), **extra}
            # No fsync: the rename makes the folder appear whole to any later driver, whatever
            # kills this one (power loss aside, as for the simulator's own stats.json).
            (Path(tmp_dir) / "point.json").write_text(_json_text(record), encoding="utf-8")
            try:
                os.rename(tmp_dir, target)
                state = "done"
            except OSError as e:
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not target.is_dir():
                    raise
                shutil.rmtree(tmp_dir, ignore_errors=True)
                state = "duplicate"
            try:
                (self.failed / f"{h}.json").unlink()
            except FileNotFoundError:
                pass
            return state
        shutil.rmtree(tmp_dir, ignore_errors=True)
        record = dict(point)
        record.update(returncode=outcome.returncode, error=outcome.stderr,
                      command=outcome.command, host=outcome.host or socket.gethostname(),
                      seconds=round(outcome.seconds, 6),
                      time=datetime.datetime.now(datetime.timezone.utc).isoformat(
                          timespec="seconds"), **extra)
        _atomic_write(self.failed / f"{h}.json", _json_text(record))
        return "failed"


# --------------------------------------------------------------------------------------------
# Progress


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """`name [#####-----] 12/40 points, 1 failed, 3.2 points/s, ETA 0:00:09` on stderr:
    redrawn in place on a terminal, a line every few seconds otherwise."""

    def __init__(self, name: str, total: int, already: int, stream: Optional[TextIO],
                 every: float = 5.0):
        self.name, self.total, self.already = name, total, already
        self.stream = stream
        self.tty = bool(stream) and hasattr(stream, "isatty") and stream.isatty()
        self.every = 0.1 if self.tty else every
        self.start = time.monotonic()
        self.last = 0.0
        self.done = self.failed = 0

    def text(self) -> str:
        finished = self.already + self.done + self.failed
        width = 24
        filled = int(width * finished / self.total) if self.total else width
        elapsed = time.monotonic() - self.start
        n = self.done + self.failed
        rate = n / elapsed if elapsed > 0 else 0.0
        left = self.total - finished
        eta = _clock(left / rate) if rate > 0 else "?"
        failed = f", {self.failed} failed" if self.failed else ""
        return (f"{self.name} [{'#' * filled}{'-' * (width - filled)}] {finished}/{self.total} "
                f"points{failed}, {rate:.2f} points/s, ETA {eta}")

    def update(self, state: str, force: bool = False) -> None:
        if state == "failed":
            self.failed += 1
        else:
            self.done += 1
        self.show(force)

    def show(self, force: bool = False) -> None:
        if not self.stream:
            return
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return
        self.last = now
        if self.tty:
            self.stream.write("\r\033[K" + self.text())
        else:
            self.stream.write(self.text() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if not self.stream:
            return
        self.show(force=True)
        if self.tty:
            self.stream.write("\n")
        self.stream.write(f"{self.name}: {self.done + self.failed} point(s) run in "
                          f"{_clock(time.monotonic() - self.start)}\n")
        self.stream.flush()


# --------------------------------------------------------------------------------------------
# The driver


@dataclass
class SweepResult:
    total: int = 0                      # points in the spec
    skipped: int = 0                    # finished before this run
    succeeded: int = 0
    failures: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # every failed/ record
    done: int = 0                       # points of the spec finished, at the end
    wall_seconds: float = 0.0           # the whole run_sweep call
    point_seconds: float = 0.0          # sum of the shadowsim processes' wall times
    driver_seconds: float = 0.0         # the driver's own work (set-up, finishing points)

    @property
    def ok(self) -> bool:
        """Every point of the spec finished."""
        return self.done == self.total


def _sweep_record(spec: Spec, points: List[Point]) -> Dict[str, Any]:
    digest = hashlib.sha256("\n".join(p.hash for p in points).encode()).hexdigest()[:HASH_LENGTH]
    return {"layout": LAYOUT_VERSION, "name": spec.name,
            "spec_file": None if spec.origin == "<spec>" else os.path.abspath(spec.origin),
            "base_file": spec.base_file, "spec": spec.raw, "axes": spec.axes,
            "seeds": spec.seeds, "points": len(points), "points_digest": digest}


def _prepare(spec: Spec, points: List[Point], sweep: SweepDir, allow_spec_change: bool) -> None:
    record = _sweep_record(spec, points)
    sweep_json = sweep.root / "sweep.json"
    if sweep_json.is_file() and not allow_spec_change:
        try:
            old = json.loads(sweep_json.read_text(encoding="utf-8"))
        except ValueError:
            old = {}
        if old.get("points_digest") != record["points_digest"]:
            raise SweepError(
                f"{sweep.root} holds another sweep ({old.get('name')!r}, {old.get('points')} "
                f"points; this spec gives {len(points)} different ones): use another -o DIR, or "
                "--allow-spec-change to add this spec's points to it")
    _atomic_write(sweep_json, _json_text(record))
    _atomic_write(sweep.root / BASE_NAME, spec.base_text())
    _atomic_write(sweep.root / "points.jsonl",
                  "".join(canonical(p.record()) + "\n" for p in points))


def select_points(points: List[Point], done: set, failures: Dict[str, Any],
                  retry_failed: bool) -> List[Point]:
    if retry_failed:
        return [p for p in points if p.hash in failures and p.hash not in done]
    return [p for p in points if p.hash not in done and p.hash not in failures]


def run_sweep(spec: Spec, out_dir: str, executor, *, retry_failed: bool = False,
              progress: Optional[TextIO] = sys.stderr, allow_spec_change: bool = False,
              progress_every: float = 5.0) -> SweepResult:
    """Runs the spec's unfinished points (or, with retry_failed, only its failed ones)."""
    t0 = time.perf_counter()
    result = SweepResult()
    points = generate_points(spec)
    result.total = len(points)
    sweep = SweepDir(out_dir)
    sweep.create()
    sweep.lock()
    try:
        _prepare(spec, points, sweep, allow_spec_change)
        sweep.clean_tmp()
        done = sweep.done()
        failures = sweep.failures()
        for h in list(failures):
            if h in done:  # finished since (e.g. by a Slurm task): the record is stale
                (sweep.failed / f"{h}.json").unlink(missing_ok=True)
                del failures[h]
        todo = select_points(points, done, failures, retry_failed)
        result.skipped = sum(1 for p in points if p.hash in done)
        base_text = spec.base_text()
        jobs = [Job(hash=p.hash, overrides=p.overrides, workdir=str(sweep.root),
                    tmp_dir=sweep.new_tmp(p.hash), base_text=base_text,
                    payload=p.record()) for p in todo]
        bar = Progress(spec.name, len(todo) + result.skipped if not retry_failed else len(todo),
                       0 if retry_failed else result.skipped, progress, every=progress_every)
        extra = {"executor": executor.name}

        def finished(job: Job, outcome: Outcome) -> None:
            t = time.perf_counter()
            state = sweep.finish(job.payload, job.tmp_dir, outcome, extra)
            result.point_seconds += outcome.seconds
            if state != "failed":
                result.succeeded += 1
            result.driver_seconds += time.perf_counter() - t
            bar.update(state)

        result.driver_seconds += time.perf_counter() - t0
        if jobs:
            bar.show(force=True)
            try:
                executor.run(jobs, finished)
            finally:
                bar.close()
                for job in jobs:  # runs interrupted by Ctrl-C
                    if os.path.isdir(job.tmp_dir):
                        shutil.rmtree(job.tmp_dir, ignore_errors=True)
        t1 = time.perf_counter()
        hashes = {p.hash for p in points}
        result.failures = {h: r for h, r in sweep.failures().items() if h in hashes}
        result.done = len(sweep.done() & hashes)
        sweep.clean_tmp()
        result.driver_seconds += time.perf_counter() - t1
    finally:
        sweep.unlock()
    result.wall_seconds = time.perf_counter() - t0
    return result


def _error_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "(no error text)"


def report(result: SweepResult, out_dir: str, stream: TextIO = sys.stderr) -> None:
    pending = result.total - result.done - len(result.failures)
    stream.write(f"sweep: {result.total} point(s): {result.done} done ({result.skipped} before "
                 f"this run, {result.succeeded} now), {len(result.failures)} failed"
                 + (f", {pending} not run" if pending else "") +
                 f"; results in {out_dir}/points/\n")
    if result.failures:
        stream.write(f"failed points (records in {out_dir}/failed/; --retry-failed reruns them):\n")
        for h, r in result.failures.items():
            axes = ", ".join(f"{k}={canonical(v)}" for k, v in (r.get("axes") or {}).items())
            stream.write(f"  {h}  {axes or '-'}  seed {r.get('seed')}: "
                         f"{_error_line(r.get('error', ''))}\n")
    stream.flush()


# --------------------------------------------------------------------------------------------
# Slurm


def write_slurm(spec: Spec, out_dir: str, args: argparse.Namespace, binary: str,
                stream: TextIO = sys.stdout) -> Optional[Path]:
    """Writes DIR/slurm/points.jsonl (the unfinished points) and DIR/slurm/sweep.sbatch."""
    points = generate_points(spec)
    sweep = SweepDir(out_dir)
    sweep.create()
    sweep.lock()
    try:
        _prepare(spec, points, sweep, args.allow_spec_change)
        todo = select_points(points, sweep.done(), sweep.failures(), args.retry_failed)
        slurm = sweep.root / "slurm"
        (slurm / "logs").mkdir(parents=True, exist_ok=True)
        if not todo:
            stream.write(f"sweep {spec.name}: nothing to run ({len(points)} point(s) finished or "
                         "failed; --retry-failed for the failed ones)\n")
            return None
        points_file = slurm / "points.jsonl"
        _atomic_write(points_file, "".join(canonical(p.record()) + "\n" for p in todo))
        script = slurm_script(
            name=spec.name, sweep_dir=str(sweep.root), points_file=str(points_file),
            count=len(todo), binary=binary, python=sys.executable or "/usr/bin/python3",
            sweep_script=SWEEP_SCRIPT,
            points_per_task=args.points_per_task, partition=args.partition,
            time_limit=args.time, mem=args.mem, account=args.account,
            max_parallel=args.max_parallel, extra=args.slurm_option or (),
            timeout=args.timeout)
        path = slurm / "sweep.sbatch"
        _atomic_write(path, script)
        os.chmod(path, 0o755)
        stream.write(f"sweep {spec.name}: {len(todo)} point(s) to run; submit with\n"
                     f"  sbatch {path}\n")
        return path
    finally:
        sweep.unlock()


def run_point_main(argv: Sequence[str]) -> int:
    """`--run-point POINTS_FILE INDEX -o DIR --binary B`: one Slurm array task."""
    ap = argparse.ArgumentParser(prog="sweep.py --run-point")
    ap.add_argument("points_file")
    ap.add_argument("index", type=int)
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--points-per-task", type=int, default=1)
    ap.add_argument("--timeout", type=float)
    args = ap.parse_args(argv)
    lines = Path(args.points_file).read_text(encoding="utf-8").splitlines()
    k = max(1, args.points_per_task)
    chunk = lines[args.index * k:(args.index + 1) * k]
    if not chunk:
        sys.stderr.write(f"sweep: task {args.index}: no such point in {args.points_file}\n")
        return 2
    sweep = SweepDir(args.out)
    status = 0
    for line in chunk:
        point = json.loads(line)
        if (sweep.points / point["hash"] / "stats.json").is_file():
            print(f"{point['hash']}: already done")
            continue
        job = Job(hash=point["hash"], overrides=point["overrides"], workdir=str(sweep.root),
                  tmp_dir=sweep.new_tmp(point["hash"]), payload=point)
        outcome = run_point_process(job, args.binary, args.timeout)
        state = sweep.finish(point, job.tmp_dir, outcome, {"executor": "slurm"})
        print(f"{point['hash']}: {state} in {outcome.seconds:.2f} s")
        if state == "failed":
            sys.stderr.write(outcome.stderr)
            status = 1
    return status


# --------------------------------------------------------------------------------------------
# Command line


def default_binary() -> str:
    env = os.environ.get("SHADOWSIM_BINARY")
    if env:
        return env
    repo_build = Path(__file__).resolve().parent.parent.parent / "build" / "sim" / "shadowsim"
    if repo_build.is_file():
        return str(repo_build)
    return shutil.which("shadowsim") or str(repo_build)


def check_points(spec: Spec, points: List[Point], binary: str) -> Dict[str, str]:
    """`shadowsim config --check` on each point: hash -> error text of the invalid ones."""
    bad = {}
    with tempfile.TemporaryDirectory(prefix="shadowsim-sweep-check-") as d:
        Path(d, BASE_NAME).write_text(spec.base_text(), encoding="utf-8")
        for p in points:
            cmd = [binary, "config", "--check", BASE_NAME]
            for o in p.overrides:
                cmd += ["--set", o]
            r = subprocess.run(cmd, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
            if r.returncode != 0:
                bad[p.hash] = r.stderr
    return bad


def dry_run(spec: Spec, out_dir: str, binary: Optional[str], retry_failed: bool,
            stream: TextIO = sys.stdout) -> int:
    points = generate_points(spec)
    sweep = SweepDir(out_dir)
    done, failures = sweep.done(), sweep.failures()
    todo = {p.hash for p in select_points(points, done, failures, retry_failed)}
    bad = check_points(spec, [p for p in points if p.hash in todo], binary) if binary else {}
    stream.write(f"sweep {spec.name}: {len(points)} point(s); axes: "
                 f"{', '.join(spec.axes) or '(none)'}; seeds: "
                 f"{spec.seeds if spec.seeds is not None else 'from the config'}\n")
    for p in points:
        state = ("done" if p.hash in done else "failed" if p.hash in failures else "pending")
        if p.hash in todo and state == "failed":
            state = "retry"
        axes = ", ".join(f"{k}={canonical(v)}" for k, v in p.axes.items())
        stream.write(f"  {p.hash}  {state:7}  seed {p.seed:<4} {axes}\n")
        if p.hash in bad:
            stream.write(f"      invalid: {_error_line(bad[p.hash])}\n")
    stream.write(f"{len(done & {p.hash for p in points})} done, "
                 f"{sum(1 for p in points if p.hash in failures and p.hash not in done)} failed, "
                 f"{len(todo)} would run" + (f", {len(bad)} invalid" if bad else "") + "\n")
    if binary is None:
        stream.write("(configs not checked: no shadowsim binary found; pass --binary)\n")
    return 1 if bad else 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=os.environ.get("SHADOWSIM_SWEEP_PROG") or (
            "python3 -m shadowsim.sweep" if __package__ else "python3 python/shadowsim/sweep.py"),
        description="Run a shadowsim parameter sweep (docs/sweeps.md).")
    ap.add_argument("spec", help="sweep spec (JSON)")
    ap.add_argument("-o", "--out", required=True, help="output folder")
    ap.add_argument("-j", "--jobs", type=int, default=None,
                    help="points run at once by the local executor (default: nproc)")
    ap.add_argument("--binary", help="shadowsim binary (default: $SHADOWSIM_BINARY, else "
                    "build/sim/shadowsim of this repository, else shadowsim on PATH)")
    ap.add_argument("--retry-failed", action="store_true",
                    help="run only the points that failed before")
    ap.add_argument("--timeout", type=float, help="seconds before a point is killed (failed)")
    ap.add_argument("--dry-run", action="store_true",
                    help="list the points and their state and check their configs; run nothing")
    ap.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    ap.add_argument("--allow-spec-change", action="store_true",
                    help="let DIR, made by another spec, receive this spec's points too")
    dask = ap.add_argument_group("Dask distributed")
    dask.add_argument("--dask", metavar="tcp://HOST:PORT",
                      help="run points on the workers of this Dask scheduler")
    dask.add_argument("--worker-binary",
                      help="the binary's path on the workers (default: --binary)")
    dask.add_argument("--dask-timeout", type=float, default=30.0, metavar="SECONDS",
                      help="give up connecting to the scheduler after this long (default 30)")
    slurm = ap.add_argument_group("Slurm (writes DIR/slurm/sweep.sbatch; runs nothing)")
    slurm.add_argument("--slurm", action="store_true", help="write a job-array script")
    slurm.add_argument("--partition")
    slurm.add_argument("--time", help="time limit per array task, e.g. 00:30:00")
    slurm.add_argument("--mem", help="memory per array task, e.g. 2G")
    slurm.add_argument("--account")
    slurm.add_argument("--max-parallel", type=int, help="array tasks running at once (%%N)")
    slurm.add_argument("--points-per-task", type=int, default=1,
                       help="points each array task runs (default 1)")
    slurm.add_argument("--slurm-option", action="append", metavar="OPTION",
                       help="an extra #SBATCH line, e.g. --slurm-option=--qos=short")
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--run-point":
        return run_point_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.jobs is not None and args.jobs < 1:
            raise SweepError("-j: expected a number of workers >= 1")
        if args.points_per_task < 1:
            raise SweepError("--points-per-task: expected >= 1")
        if args.dask and args.slurm:
            raise SweepError("--dask and --slurm: choose one executor")
        spec = load_spec(args.spec)
        binary = os.path.abspath(args.binary or default_binary())
        have_binary = os.path.isfile(binary) and os.access(binary, os.X_OK)
        if args.dry_run:
            return dry_run(spec, args.out, binary if have_binary else None, args.retry_failed)
        if args.slurm:
            if not have_binary:
                sys.stderr.write(f"sweep: warning: {binary} is not here; the array tasks need "
                                 "it at that path\n")
            write_slurm(spec, args.out, args, binary)
            return 0
        if args.dask:
            executor = DaskExecutor(args.dask, binary, args.timeout, args.worker_binary,
                                    args.dask_timeout)
        else:
            if not have_binary:
                raise SweepError(f"{binary}: no shadowsim binary there (build it, or pass "
                                 "--binary / set SHADOWSIM_BINARY)")
            executor = LocalExecutor(binary, args.jobs, args.timeout)
        result = run_sweep(spec, args.out, executor, retry_failed=args.retry_failed,
                           progress=None if args.quiet else sys.stderr,
                           allow_spec_change=args.allow_spec_change)
        report(result, args.out)
        return 0 if result.ok else 1
    except (SpecError, SweepError, _executors.ExecutorError) as e:
        sys.stderr.write(f"sweep: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("sweep: interrupted; finished points are kept, run again to go on\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
