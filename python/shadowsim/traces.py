"""Traces as numpy arrays, read by the simulator's own readers (docs/trace-format.md): any
format `shadowsim trace info` opens (.sst binary, .sstx text, .lackey; each optionally .zst).
"""

import os

import numpy as np

from . import _shadowsim as _core

__all__ = ["TRACE_DTYPE", "EVENT_DTYPE", "REF_KINDS", "EVENT_KINDS", "READ", "WRITE", "FETCH",
           "EVENT", "read_trace", "read_workload", "workload_streams"]

#: One record, the C++ TraceRecord's exact layout (16 bytes):
#: kind (READ, WRITE, FETCH or EVENT), size (bytes accessed; 0 for an event), gap
#: (instructions retired since the previous record that have no record of their own), va
#: (virtual address; for an EVENT record, the index of its event in the events array).
#: A stream's instruction count is gap.sum() + (kind == FETCH).sum().
TRACE_DTYPE = np.dtype({"names": ["kind", "size", "gap", "va"],
                        "formats": ["u1", "u1", "<u4", "<u8"],
                        "offsets": [0, 1, 4, 8], "itemsize": 16})

#: One OS event (workloads/os_event.h); fields a kind does not use are 0. kind indexes
#: EVENT_KINDS; how: 0 initial, 1 fork, 2 vfork, 3 thread; prot: PROT_* bits; flags: MAP_* or
#: MREMAP_* bits.
EVENT_DTYPE = np.dtype([("kind", "u1"), ("how", "u1"), ("prot", "u1"), ("file", "?"),
                        ("flags", "<u4"), ("stream", "<u4"), ("addr", "<u8"),
                        ("length", "<u8"), ("new_addr", "<u8"), ("new_length", "<u8")])

#: Names of the record kinds, indexed by TRACE_DTYPE's kind: ("read", "write", "fetch", "event").
REF_KINDS = tuple(_core.ref_kinds)
READ, WRITE, FETCH, EVENT = range(4)
#: Names of the OS event kinds, indexed by EVENT_DTYPE's kind ("create", "exec", ...).
EVENT_KINDS = tuple(_core.event_kinds)

_FORMATS = ("auto", "binary", "text", "lackey")


def read_trace(path, limit=None, *, format="auto", fetches=True, events=True,
               with_events=False):
    """One trace stream as a numpy structured array of TRACE_DTYPE.

    limit: read at most this many records (None: the whole stream). format: "auto" (magic,
    then extension), "binary", "text" or "lackey". fetches=False drops fetch records and
    events=False drops event records, folding the instructions they stood for into the next
    record's gap, as the simulator does. with_events=True returns (records, events), events
    being an EVENT_DTYPE array that EVENT records' va index. Raises shadowsim.Error naming the
    file and record on a malformed trace.

    The whole stream is held in memory (16 bytes a record); use limit for large traces.
    """
    if format not in _FORMATS:
        raise ValueError("format: expected one of {}, got {!r}".format(_FORMATS, format))
    if limit is None:
        limit = 0
    elif limit < 0:
        raise ValueError("limit: expected None or a non-negative count, got {}".format(limit))
    elif limit == 0:
        records = np.zeros(0, TRACE_DTYPE)
        return (records, np.zeros(0, EVENT_DTYPE)) if with_events else records
    raw, raw_events = _core.read_trace(os.fspath(path), int(limit), format, bool(fetches),
                                       bool(events))
    records = raw.view(TRACE_DTYPE)
    if not with_events:
        return records
    ev = np.zeros(len(raw_events), EVENT_DTYPE)
    for i, name in enumerate(EVENT_DTYPE.names):
        ev[name] = raw_events[:, i] if len(raw_events) else 0
    return records, ev


def workload_streams(path):
    """The streams of a workload (a manifest, or a single trace as stream 0): a list of dicts
    with id, file, path (resolved), parent, created, name, command."""
    return _core.workload_streams(os.fspath(path))


def read_workload(path, limit=None, **options):
    """Every stream of a workload (manifest or single trace) as {stream id: records}; limit
    and options apply to each stream as in read_trace()."""
    return {s["id"]: read_trace(s["path"], limit, **options) for s in workload_streams(path)}
