"""Where sweep points run: local processes, Dask distributed, or a Slurm job array.

Each point is one ``shadowsim run`` subprocess (a fresh process per point: no SystemC context is
ever reused). Standard library only; dask/distributed are imported when the Dask executor is
made, never before. The driver (``shadowsim.sweep``) owns the output folder: executors hand it
one :class:`Outcome` per point and the driver writes the point folder atomically.

docs/sweeps.md describes the executors and their contracts.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional

# The config file every point runs, written by the driver into the sweep folder (and by a Dask
# worker into its scratch folder). Points always run with their working directory set to the
# folder holding it and this relative name, so stats.json's "config_file" is the same whatever
# executor ran the point (same point + seed -> identical stats.json apart from "host").
BASE_NAME = "base.json"

# Most of a failing run's stderr worth keeping (the end is kept: it holds the error).
STDERR_LIMIT = 64 * 1024


class ExecutorError(RuntimeError):
    """An executor cannot start (no Dask, scheduler unreachable, ...)."""


@dataclass
class Job:
    """One point to run: the driver fills it in, an executor runs it."""

    hash: str
    overrides: List[str]       # ["path=<json>", ...], passed as --set
    workdir: str               # folder holding BASE_NAME (local and Slurm runs)
    tmp_dir: str               # where the run writes (local); driver-created for remote results
    base_text: str = ""        # BASE_NAME's text, shipped to remote workers (Dask)
    payload: dict = field(default_factory=dict)  # driver's own data (axes, seed, ...)


@dataclass
class Outcome:
    """What running one point gave."""

    ok: bool
    returncode: Optional[int]
    stderr: str
    seconds: float             # wall time of the shadowsim process, as seen by whoever ran it
    command: List[str]
    host: str = ""
    # Result files returned as data (Dask). None: the run wrote them into job.tmp_dir itself.
    files: Optional[Dict[str, str]] = None


def shadowsim_command(binary: str, overrides: Iterable[str], out_dir: str) -> List[str]:
    cmd = [binary, "run", BASE_NAME]
    for o in overrides:
        cmd += ["--set", o]
    return cmd + ["-o", out_dir, "--quiet"]


def _tail(text: str) -> str:
    return text if len(text) <= STDERR_LIMIT else "...\n" + text[-STDERR_LIMIT:]


_SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None
_SH = "/bin/sh" if os.path.exists("/bin/sh") else None


def _launch(cmd: List[str]) -> List[str]:
    """cmd, killed when the driver dies (Linux): setpriv(1) sets PR_SET_PDEATHSIG=SIGKILL, then
    a shell checks that its parent is still the driver before it execs the simulator (a driver
    killed between fork and prctl would otherwise leave an orphan writing into tmp/)."""
    if not (_SETPRIV and _SH):
        return cmd
    check = f'[ "$PPID" = {os.getpid()} ] || exit 137; exec "$0" "$@"'
    return [_SETPRIV, "--pdeathsig", "KILL", "--", _SH, "-c", check] + cmd


def run_point_process(job: Job, binary: str, timeout: Optional[float] = None,
                      procs: Optional[dict] = None) -> Outcome:
    """Runs one point as a subprocess writing into job.tmp_dir (the local and Slurm path).

    The simulator dies with the driver (see _launch), so a driver killed with SIGKILL leaves no
    simulation running behind it.
    """
    cmd = shadowsim_command(binary, job.overrides, job.tmp_dir)
    launch = _launch(cmd)
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(launch, cwd=job.workdir, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except OSError as e:
        return Outcome(False, None, f"cannot start {binary}: {e}", 0.0, cmd)
    if procs is not None:
        procs[job.hash] = proc
    try:
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            seconds = time.perf_counter() - start
            return Outcome(False, None, _tail(err.decode(errors="replace")) +
                           f"\nsweep: killed after the {timeout:g} s point timeout", seconds, cmd)
    finally:
        if procs is not None:
            procs.pop(job.hash, None)
    seconds = time.perf_counter() - start
    stderr = _tail(err.decode(errors="replace"))
    ok = proc.returncode == 0 and os.path.isfile(os.path.join(job.tmp_dir, "stats.json"))
    if proc.returncode == 0 and not ok:
        stderr += "\nsweep: shadowsim exited with 0 but wrote no stats.json"
    return Outcome(ok, proc.returncode, stderr, seconds, cmd)


class LocalExecutor:
    """Points run as child processes of the driver, at most `jobs` at a time."""

    name = "local"

    def __init__(self, binary: str, jobs: Optional[int] = None, timeout: Optional[float] = None):
        self.binary = binary
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        self.timeout = timeout
        self._procs: dict = {}

    def run(self, jobs: List[Job], done: Callable[[Job, Outcome], None]) -> None:
        pending = iter(jobs)
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="sweep") as pool:
            running = {}

            def fill():
                while len(running) < self.jobs:
                    job = next(pending, None)
                    if job is None:
                        return
                    running[pool.submit(run_point_process, job, self.binary, self.timeout,
                                        self._procs)] = job

            try:
                fill()
                while running:
                    finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    for fut in finished:
                        job = running.pop(fut)
                        done(job, fut.result())
                    fill()
            except BaseException:
                # Ctrl-C (or a failure in the driver): stop what runs, start nothing more.
                pending = iter(())
                for proc in list(self._procs.values()):
                    try:
                        proc.send_signal(signal.SIGKILL)
                    except OSError:
                        pass
                raise


# --------------------------------------------------------------------------------------------
# Dask distributed


def dask_run_point(binary: str, base_text: str, overrides: List[str],
                   timeout: Optional[float] = None) -> dict:
    """Runs one point on a Dask worker and returns its result files as data.

    Self-contained on purpose (standard library only, imports inside): it is pickled by value,
    so a worker needs neither this package nor the repository, only `binary` and the trace files
    the config names at the same paths as on the driver.
    """
    import os as _os
    import socket as _socket
    import subprocess as _subprocess
    import tempfile as _tempfile
    import time as _time

    cmd = [binary, "run", "base.json"]
    for o in overrides:
        cmd += ["--set", o]
    cmd += ["-o", "out", "--quiet"]
    result = {"ok": False, "returncode": None, "stderr": "", "seconds": 0.0, "command": cmd,
              "host": _socket.gethostname(), "files": None}
    with _tempfile.TemporaryDirectory(prefix="shadowsim-point-") as scratch:
        with open(_os.path.join(scratch, "base.json"), "w", encoding="utf-8") as f:
            f.write(base_text)
        start = _time.perf_counter()
        try:
            proc = _subprocess.run(cmd, cwd=scratch, stdin=_subprocess.DEVNULL,
                                   stdout=_subprocess.DEVNULL, stderr=_subprocess.PIPE,
                                   timeout=timeout)
        except _subprocess.TimeoutExpired as e:
            err = (e.stderr or b"").decode(errors="replace")
            result.update(stderr=err + f"\nsweep: killed after the {timeout:g} s point timeout",
                          seconds=_time.perf_counter() - start)
            return result
        except OSError as e:
            result["stderr"] = f"cannot start {binary} on {result['host']}: {e}"
            return result
        result["seconds"] = _time.perf_counter() - start
        result["returncode"] = proc.returncode
        err = proc.stderr.decode(errors="replace")
        result["stderr"] = err if len(err) <= 65536 else "...\n" + err[-65536:]
        if proc.returncode == 0:
            # Every file the run wrote (stats.json, stats.csv, and timeline.json if
            # run.timeline is on), as the local executor keeps them all.
            files = {}
            out_dir = _os.path.join(scratch, "out")
            for name in sorted(_os.listdir(out_dir)) if _os.path.isdir(out_dir) else []:
                path = _os.path.join(out_dir, name)
                if _os.path.isfile(path):
                    with open(path, encoding="utf-8") as f:
                        files[name] = f.read()
            if "stats.json" in files:
                result.update(ok=True, files=files)
            else:
                result["stderr"] += "\nsweep: shadowsim exited with 0 but wrote no stats.json"
    return result


class DaskExecutor:
    """Points run on the workers of a Dask distributed scheduler (``tcp://HOST:PORT``).

    Each task runs the binary on its worker in a scratch folder and returns stats.json and
    stats.csv as text; the driver writes the point folder (no shared file system needed for
    results). Workers need the binary at `binary` (or `worker_binary`) and the trace files.
    """

    name = "dask"

    def __init__(self, address: str, binary: str, timeout: Optional[float] = None,
                 worker_binary: Optional[str] = None, connect_timeout: float = 30.0):
        self.address = address
        self.connect_timeout = connect_timeout
        self.binary = worker_binary or binary
        self.timeout = timeout

    def run(self, jobs: List[Job], done: Callable[[Job, Outcome], None]) -> None:
        try:
            from distributed import Client, as_completed
        except ImportError as e:  # pragma: no cover - depends on the machine
            raise ExecutorError("--dask needs Dask distributed (Debian: python3-distributed; "
                               "run with /usr/bin/python3)") from e
        try:
            import cloudpickle
            # Ship dask_run_point by value: workers need not import this package.
            cloudpickle.register_pickle_by_value(sys.modules[__name__])
        except Exception:  # noqa: BLE001 - older cloudpickle: workers must import shadowsim
            pass
        try:
            client = Client(self.address, timeout=f"{self.connect_timeout:g}s",
                            set_as_default=False)
        except (OSError, TimeoutError) as e:
            raise ExecutorError(f"--dask {self.address}: cannot reach the scheduler ({e})") \
                from None
        futures = {}
        run_id = uuid.uuid4().hex[:8]
        try:
            for job in jobs:
                fut = client.submit(dask_run_point, self.binary, job.base_text, job.overrides,
                                    self.timeout, key=f"shadowsim-point-{job.hash}-{run_id}",
                                    pure=False, retries=1)
                futures[fut] = job
            for fut in as_completed(list(futures), loop=client.loop):
                job = futures.pop(fut)
                try:
                    r = fut.result()
                except Exception as e:  # noqa: BLE001 - a worker died twice, or similar
                    done(job, Outcome(False, None, f"dask task failed: {e!r}", 0.0,
                                      shadowsim_command(self.binary, job.overrides, "out")))
                    continue
                done(job, Outcome(r["ok"], r["returncode"], r["stderr"], r["seconds"],
                                  r["command"], r["host"], r["files"]))
        finally:
            for fut in futures:
                fut.cancel()
            client.close()


# --------------------------------------------------------------------------------------------
# Slurm


def slurm_script(*, name: str, sweep_dir: str, points_file: str, count: int, binary: str,
                 python: str, sweep_script: str, points_per_task: int = 1,
                 partition: Optional[str] = None, time_limit: Optional[str] = None,
                 mem: Optional[str] = None, account: Optional[str] = None,
                 max_parallel: Optional[int] = None, extra: Iterable[str] = (),
                 timeout: Optional[float] = None) -> str:
    """The text of a job-array batch script: array index I runs points I*K .. I*K+K-1 of
    `points_file` (K = points_per_task) through ``python sweep.py --run-point`` (the script by
    its path: the array tasks need neither PYTHONPATH nor the package's C++ extension),
    which writes each point folder atomically like the local executor does."""
    tasks = (count + points_per_task - 1) // points_per_task
    array = f"0-{tasks - 1}" + (f"%{max_parallel}" if max_parallel else "")
    safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "sweep"
    log_dir = os.path.join(sweep_dir, "slurm", "logs")
    lines = [
        "#!/bin/bash",
        f"# shadowsim sweep '{safe_name}': {count} point(s) in {tasks} array task(s).",
        f"# Submit with: sbatch {shlex.quote(os.path.join(sweep_dir, 'slurm', 'sweep.sbatch'))}",
        "# Afterwards `shadowsim sweep SPEC -o DIR --dry-run` shows what is done;",
        "# re-running the sweep (or this script) skips finished points.",
        f"#SBATCH --job-name=shadowsim-{safe_name}",
        f"#SBATCH --array={array}",
        f"#SBATCH --output={log_dir}/%A_%a.out",
        "#SBATCH --ntasks=1",
        "#SBATCH --cpus-per-task=1",
    ]
    if partition:
        lines.append(f"#SBATCH --partition={partition}")
    if time_limit:
        lines.append(f"#SBATCH --time={time_limit}")
    if mem:
        lines.append(f"#SBATCH --mem={mem}")
    if account:
        lines.append(f"#SBATCH --account={account}")
    for opt in extra:
        opt = opt.strip()
        if "\n" in opt:
            raise ValueError(f"--slurm-option {opt!r}: one option per flag, no newlines")
        lines.append(f"#SBATCH {opt}")
    cmd = [python, sweep_script, "--run-point", points_file, "${SLURM_ARRAY_TASK_ID}",
           "-o", sweep_dir, "--binary", binary, "--points-per-task", str(points_per_task)]
    if timeout:
        cmd += ["--timeout", f"{timeout:g}"]
    quoted = " ".join('"${SLURM_ARRAY_TASK_ID}"' if c == "${SLURM_ARRAY_TASK_ID}"
                      else shlex.quote(c) for c in cmd)
    lines += [
        "set -euo pipefail",
        ': "${SLURM_ARRAY_TASK_ID:?run this script with sbatch (it is a job array)}"',
        f"exec {quoted}",
        "",
    ]
    return "\n".join(lines)
