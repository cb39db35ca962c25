#!/usr/bin/python3
"""Execute the notebooks of notebooks/ in quick mode and check them (docs/notebooks.md).

    /usr/bin/python3 tests/notebooks/run_notebooks.py [--binary PATH] [--kbuild-trace PATH]
                                                      [--out DIR] [--jobs N] [--full] [NOTEBOOK ...]

For each notebook (default: tutorial and xen2008): checks that the file in the repository holds
no outputs, executes it with nbclient on a Jupyter kernel pinned to this interpreter (run it
with /usr/bin/python3, Debian's, which has ipykernel, numpy, pandas and matplotlib), fails on
the first cell that raises, and checks that the figure files the notebook promises exist as
PNG and PDF. The executed notebooks are written to OUT/executed/ for inspection.

The notebooks read their parameters from the environment, which this script sets for the
kernel: SHADOWSIM_NOTEBOOK_QUICK=1 (the reduced study; not with --full),
SHADOWSIM_NOTEBOOK_OUT=OUT, SHADOWSIM_NOTEBOOK_JOBS, SHADOWSIM_SOURCE_DIR, and, when given
(option or environment), SHADOWSIM_BINARY and SHADOWSIM_KBUILD_TRACE. `import shadowsim` in the
kernel follows PYTHONPATH (ctest sets the build's python folder).

OUT defaults to a temporary folder, removed afterwards unless --keep or a failure. A given OUT is emptied
first if this script made it (it holds .run_notebooks); a non-empty folder it did not make is
refused.
"""
import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
MARKER = ".run_notebooks"

# The figures each notebook saves, relative to OUT, per mode (quick, full); each as .png and .pdf.
FIGURES = {
    "tutorial": {True: ["tutorial/stlb-size"], False: ["tutorial/stlb-size"]},
    "xen2008": {
        True: ["xen2008-quick/rechecks", "xen2008-quick/speedup", "xen2008-quick/overheads"],
        False: ["xen2008/rechecks", "xen2008/speedup", "xen2008/overheads"],
    },
}
MAGIC = {".png": b"\x89PNG\r\n\x1a\n", ".pdf": b"%PDF-"}


def fail(message):
    print("run_notebooks: FAIL: " + message, flush=True)
    sys.exit(1)


def check_clean(path, nb):
    """The committed notebook carries no outputs or execution counts."""
    dirty = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    if dirty:
        fail("{} has outputs in code cells {} (clear them before committing: "
             "/usr/bin/python3 -m nbconvert --clear-output --inplace NOTEBOOK)".format(path, dirty))


def kernel_manager(folder):
    """A kernel spec of our own, pinned to this interpreter: a user's python3 kernel (a pyenv
    or venv one) cannot replace Debian's /usr/bin/python3 by accident."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    spec_dir = folder / "shadowsim-notebook-test"
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 ({})".format(sys.executable), "language": "python"}))
    specs = KernelSpecManager(kernel_dirs=[str(folder)])
    return KernelManager(kernel_name="shadowsim-notebook-test", kernel_spec_manager=specs)


def execute(name, out, kernels, timeout):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    path = NOTEBOOKS / (name + ".ipynb")
    nb = nbformat.read(str(path), as_version=4)
    check_clean(path, nb)
    km = kernel_manager(kernels)
    client = NotebookClient(nb, km=km, timeout=timeout,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    start = time.monotonic()
    error = None
    try:
        client.execute()
    except CellExecutionError as e:
        error = re.sub(r"\x1b\[[0-9;]*m", "", str(e))  # without the traceback's colours
    finally:
        if km.has_kernel:  # nbclient leaves a kernel manager it was given running
            km.shutdown_kernel(now=True)
        executed = out / "executed" / (name + ".ipynb")
        executed.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(executed))
    seconds = time.monotonic() - start
    if error is not None:
        fail("{}: a cell raised (executed copy: {}):\n{}".format(path, executed, error))
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [c for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    unrun = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    if errors or unrun:
        fail("{}: {} cell(s) with an error output, code cells {} not run".format(path, len(errors), unrun))
    for c in code:  # shown, not failed on: warnings
        for o in c.get("outputs", []):
            if o.get("output_type") == "stream" and o.get("name") == "stderr" and "Warning" in o.get("text", ""):
                print("  [{} stderr] {}".format(name, o["text"].strip()[:1000]))
    print("run_notebooks: {}: {} code cells ran in {:.1f} s".format(name, len(code), seconds), flush=True)


def check_figures(name, out, quick):
    for stem in FIGURES[name][quick]:
        for ext, magic in MAGIC.items():
            path = out / (stem + ext)
            if not path.is_file() or path.stat().st_size < 1000:
                fail("{}: figure {} missing or empty".format(name, path))
            with open(path, "rb") as f:
                if f.read(len(magic)) != magic:
                    fail("{}: {} is not a {} file".format(name, path, ext[1:].upper()))
    print("run_notebooks: {}: {} figure(s) as PNG and PDF".format(name, len(FIGURES[name][quick])))


def prepare_out(out):
    if out.exists():
        if (out / MARKER).exists():
            shutil.rmtree(out)
        elif any(out.iterdir()):
            fail("{} is not empty and was not made by this script; give another --out".format(out))
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by tests/notebooks/run_notebooks.py; emptied by its next run\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", default=["tutorial", "xen2008"],
                        help="names under notebooks/ (default: tutorial xen2008)")
    parser.add_argument("--binary", default=os.environ.get("SHADOWSIM_BINARY"),
                        help="the shadowsim CLI (default: $SHADOWSIM_BINARY, else build/sim/shadowsim)")
    parser.add_argument("--kbuild-trace", default=os.environ.get("SHADOWSIM_KBUILD_TRACE"),
                        help="the kernel-build manifest for xen2008 (default: $SHADOWSIM_KBUILD_TRACE, "
                             "else the one configs/xen2008/kbuild.json names)")
    parser.add_argument("--out", help="output folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary output folder")
    parser.add_argument("--jobs", type=int, default=2, help="sweep points run at once (default 2)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    parser.add_argument("--full", action="store_true", help="the full study, not the quick one")
    args = parser.parse_args()
    names = [Path(n).stem for n in args.notebooks]
    for name in names:
        if name not in FIGURES:
            fail("unknown notebook {} (known: {})".format(name, ", ".join(FIGURES)))

    temporary = args.out is None
    out = Path(tempfile.mkdtemp(prefix="shadowsim-notebooks-")) if temporary else Path(args.out).resolve()
    if not temporary:
        prepare_out(out)
    quick = not args.full
    env = {"SHADOWSIM_NOTEBOOK_OUT": str(out), "SHADOWSIM_NOTEBOOK_JOBS": str(args.jobs),
           "SHADOWSIM_SOURCE_DIR": str(ROOT), "SHADOWSIM_NOTEBOOK_QUICK": "1" if quick else "",
           "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    if args.binary:
        env["SHADOWSIM_BINARY"] = str(Path(args.binary).resolve())
    if args.kbuild_trace:
        trace = Path(args.kbuild_trace).resolve()
        if not trace.is_file():
            fail("the kbuild manifest {} does not exist".format(trace))
        env["SHADOWSIM_KBUILD_TRACE"] = str(trace)
    os.environ.update(env)  # the kernel inherits this process's environment
    print("run_notebooks: {} mode, output in {}, binary {}, kbuild trace {}".format(
        "quick" if quick else "full", out, env.get("SHADOWSIM_BINARY", "(default)"),
        env.get("SHADOWSIM_KBUILD_TRACE", "(the config's)")), flush=True)

    start = time.monotonic()
    passed = False
    try:
        with tempfile.TemporaryDirectory(prefix="shadowsim-kernels-") as kernels:
            for name in names:
                execute(name, out, Path(kernels), args.timeout)
                check_figures(name, out, quick)
        passed = True
        print("run_notebooks: PASS: {} notebook(s) in {:.1f} s".format(len(names), time.monotonic() - start))
    finally:
        if temporary and passed and not args.keep:
            shutil.rmtree(out, ignore_errors=True)
        elif temporary:
            print("run_notebooks: output kept in", out)


if __name__ == "__main__":
    main()
