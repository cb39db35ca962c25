"""Shared set-up of the sweep tests (tests/python/test_sweep*.py; docs/sweeps.md).

The sweep modules are loaded from the source tree by file path, so the tests need neither the
package's C++ extension nor a PYTHONPATH; the simulator is the built binary named by
SHADOWSIM_BINARY (default: build/sim/shadowsim of this repository).
"""

import importlib.util
import json
import os
import sys

REPO = os.environ.get("SHADOWSIM_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SWEEP_PY = os.path.join(REPO, "python", "shadowsim", "sweep.py")
DEFAULT_CONFIG = os.path.join(REPO, "configs", "default.json")
PYTHON = sys.executable or "/usr/bin/python3"


def load_sweep_module():
    name = "_shadowsim_sweep_under_test"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SWEEP_PY)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def binary():
    path = os.environ.get("SHADOWSIM_BINARY") or os.path.join(REPO, "build", "sim", "shadowsim")
    return os.path.abspath(path)


def write_spec(path, **spec):
    spec.setdefault("base", DEFAULT_CONFIG)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=1)
    return str(path)


def sweep_cmd(*args):
    return [PYTHON, SWEEP_PY, *map(str, args)]


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def without_host(stats_doc):
    """stats.json minus the one part that depends on the machine (docs/statistics.md)."""
    doc = dict(stats_doc)
    doc.pop("host", None)
    return doc
