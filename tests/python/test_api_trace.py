"""shadowsim.read_trace() / read_workload(): counts agree with `shadowsim trace info --json`
(docs/python.md)."""

import json
import os
import subprocess

import numpy as np
import pytest

import shadowsim

REPO = os.environ.get("SHADOWSIM_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.environ.get("SHADOWSIM_CLI") or os.path.join(REPO, "build", "sim", "shadowsim")
XZ_TRACE = os.path.join(REPO, "workloads", "traces", "xz.sst.zst")


def trace_info(path):
    out = subprocess.run([CLI, "trace", "info", "--json", path], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


@pytest.fixture(scope="module")
def xz():
    return shadowsim.read_trace(XZ_TRACE)


def test_xz_trace_matches_trace_info(xz):
    info = trace_info(XZ_TRACE)["total"]
    assert xz.dtype == shadowsim.TRACE_DTYPE and xz.dtype.itemsize == 16
    assert len(xz) == info["records"]
    kinds = np.bincount(xz["kind"], minlength=4)
    assert kinds[shadowsim.READ] == info["reads"]
    assert kinds[shadowsim.WRITE] == info["writes"]
    assert kinds[shadowsim.FETCH] == info["fetches"]
    assert kinds[shadowsim.EVENT] == info["events"] == 0
    assert int(xz["gap"].sum(dtype=np.uint64)) + int(kinds[shadowsim.FETCH]) == \
        info["instructions"]
    last_byte = xz["va"] + xz["size"] - 1
    assert int(xz["va"].min()) == info["min_va"] and int(last_byte.max()) == info["max_va"]
    assert len(np.unique(np.concatenate([xz["va"] >> 12, last_byte >> 12]))) == info["pages"]
    assert set(np.unique(xz["size"])) <= set(range(1, 256))
    assert shadowsim.REF_KINDS == ("read", "write", "fetch", "event")


def test_limit_and_dropping_fetches(xz):
    head = shadowsim.read_trace(XZ_TRACE, limit=1000)
    assert len(head) == 1000
    assert np.array_equal(head, xz[:1000])
    assert len(shadowsim.read_trace(XZ_TRACE, limit=0)) == 0
    data = shadowsim.read_trace(XZ_TRACE, limit=5000, fetches=False)
    assert len(data) == 5000 and not np.any(data["kind"] == shadowsim.FETCH)
    # The fetches' instructions move into the next record's gap.
    whole_data = xz[xz["kind"] != shadowsim.FETCH][:5000]
    assert np.array_equal(data["va"], whole_data["va"])
    assert int(data["gap"].sum()) > int(whole_data["gap"].sum())
    with pytest.raises(ValueError):
        shadowsim.read_trace(XZ_TRACE, format="csv")


def test_a_workload_with_events(tmp_path):
    subprocess.run([CLI, "workload", "generate", "fork-exit", "-o", str(tmp_path / "fe"),
                    "--scale", "0.01"], check=True, capture_output=True)
    manifest = str(tmp_path / "fe" / "manifest.json")
    info = trace_info(manifest)
    streams = shadowsim.workload_streams(manifest)
    assert [s["id"] for s in streams] == list(range(len(info["streams"])))
    assert streams[0]["created"] == "initial" and streams[0]["parent"] is None
    assert all(s["parent"] == 0 for s in streams[1:])
    workload = shadowsim.read_workload(manifest)
    assert sorted(workload) == [s["id"] for s in streams]
    for s, stream_info in zip(streams, info["streams"]):
        records, events = shadowsim.read_trace(s["path"], with_events=True)
        assert np.array_equal(records, workload[s["id"]])
        assert len(records) == stream_info["records"]
        is_event = records["kind"] == shadowsim.EVENT
        assert is_event.sum() == len(events) == stream_info["events"]
        # Event records index the stream's whole event list, in order.
        assert list(records["va"][is_event]) == list(range(len(events)))
        assert np.all(records["size"][is_event] == 0)
        by_kind = {k: int((events["kind"] == i).sum())
                   for i, k in enumerate(shadowsim.EVENT_KINDS)}
        assert by_kind == {k: v for k, v in stream_info["events_by_kind"].items()}
    # The parent's create events name its children.
    _, parent_events = shadowsim.read_trace(streams[0]["path"], with_events=True)
    creates = parent_events[parent_events["kind"] == shadowsim.EVENT_KINDS.index("create")]
    assert sorted(creates["stream"]) == [s["id"] for s in streams[1:]]
    # Dropping events leaves references only, and keeps every instruction before the last one.
    refs = shadowsim.read_trace(streams[0]["path"], events=False)
    assert not np.any(refs["kind"] == shadowsim.EVENT)


def test_a_corrupt_trace_names_the_file(tmp_path):
    bad = tmp_path / "bad.sstx"
    bad.write_text("this is not a trace\n")
    with pytest.raises(shadowsim.Error, match="bad.sstx"):
        shadowsim.read_trace(bad)
    with pytest.raises(shadowsim.Error):
        shadowsim.read_trace(tmp_path / "missing.sst")
