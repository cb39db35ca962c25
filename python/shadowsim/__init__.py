"""shadowsim: Python API of the shadow-paging simulator.

    import shadowsim
    r = shadowsim.run("configs/default.json", overrides={"run.max_references": 200000})
    r.flat["pcpu0.dtlb.miss_rate"]       # one statistic
    r.dataframe()                        # name, value, unit, description
    df = shadowsim.load("out/sweep")     # a run or sweep folder as a DataFrame
    recs = shadowsim.read_trace("workloads/traces/xz.sst.zst", limit=1000)

Reference: docs/python.md. Simulations run one at a time inside a process (SystemC's kernel is
process-global); calls from several threads are safe and are queued on a lock, with the GIL
released while they wait and simulate.
"""

try:
    from . import _shadowsim as _core
except ImportError as e:  # pragma: no cover - depends on how the package was found
    raise ImportError(
        "shadowsim: the C++ extension _shadowsim is missing or does not load ({}). Build the "
        "project (scripts/setup.sh, or cmake --build build) and import the package from the "
        "build's python/ folder: PYTHONPATH=build/python /usr/bin/python3 (docs/python.md)"
        .format(e)) from e

from .api import Error, Result, defaults, resolve, run
from .results import load
from .traces import (EVENT, EVENT_DTYPE, EVENT_KINDS, FETCH, READ, REF_KINDS, TRACE_DTYPE,
                     WRITE, read_trace, read_workload, workload_streams)

__version__ = _core.__version__
__git__ = _core.git_hash

__all__ = [
    "Error", "Result", "run", "resolve", "defaults", "load",
    "read_trace", "read_workload", "workload_streams",
    "TRACE_DTYPE", "EVENT_DTYPE", "REF_KINDS", "EVENT_KINDS", "READ", "WRITE", "FETCH", "EVENT",
    "__version__", "__git__",
]
