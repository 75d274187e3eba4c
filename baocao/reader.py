"""Reading received files in isolation, so that no file can stop intake.

`read_isolated(paths, limits)` reads each file with `baocao.forms.read_file` in a worker
process of a small pool. Each worker runs under `RLIMIT_AS` (`limits.memory_mb`) and a per-file
`RLIMIT_CPU`, and the parent kills a worker that overruns `limits.seconds_per_file` of wall
clock. A worker that dies (abort, out of memory, SIGKILL, timeout) costs only the file it was
on: that file's outcome has `crashed=True` and a reason, the worker is replaced, and the other
files go on. Outcomes come back in input order.

Workers are fresh interpreters (`python -c ...`, i.e. spawn, never a fork of the caller, which
may be a Prefect process with threads) talking over two pipes with pickled messages; they
import only the reading code, not the caller's `__main__`, and get only the environment Python
needs (no secrets for a process that parses untrusted files). They start once per call and stay
for the whole batch, so a file costs one round trip, not one process.

Test and fault hooks (read from the caller's environment when `read_isolated` starts):
- `BAOCAO_READER_TEST_CRASH_ON=name[,name...]`: the worker calls `os.abort()` when it is given
  a file of that name, as calamine does when an allocation fails;
- `BAOCAO_READER_TEST_HANG_ON=name[,name...]`: the worker sleeps instead of reading the file,
  as a reader stuck in a loop would, until the parent's timeout kills it;
- `BAOCAO_FAULT=reader.file[:n]` (see `baocao.faults`): SIGKILL a worker at its n-th file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

from baocao.forms import FormError, ParsedFile, ReadLimits

__all__ = ["ReadLimits", "ReadOutcome", "read_isolated"]

CRASH_ENV = "BAOCAO_READER_TEST_CRASH_ON"
HANG_ENV = "BAOCAO_READER_TEST_HANG_ON"
_ENV_KEPT = ("PATH", "LANG", "LC_", "TZ", "TMPDIR", "PYTHON", "VIRTUAL_ENV", "BAOCAO_FAULT")
STARTUP_SECONDS = 10.0  # allowance for a worker's start-up, on top of its first file's time


@dataclass
class ReadOutcome:
    """One file's result: parsed, refused with a reason, or the reader died on it."""

    path: Path
    parsed: ParsedFile | None  # None when the file could not be read
    error: str = ""  # the user-facing reason (FormError text), "" when parsed
    crashed: bool = False  # the reader died, ran out of memory or time (a failed attempt)


def read_isolated(paths: list[Path], limits: ReadLimits, workers: int = 2) -> list[ReadOutcome]:
    """Read every file in a pool of worker processes; one outcome per path, in input order."""
    paths = [Path(p) for p in paths]
    outcomes: list[ReadOutcome | None] = [None] * len(paths)
    if not paths:
        return []
    hooks = {key: os.environ.get(key, "") for key in (CRASH_ENV, HANG_ENV)}
    pending = deque(range(len(paths)))
    pool = [_Worker(limits, hooks) for _ in range(max(1, min(workers, len(paths))))]
    try:
        while pending or any(w.job is not None for w in pool):
            for n, w in enumerate(pool):
                if w.job is None and pending:
                    if not w.alive:  # replaced only when there is work left for it
                        pool[n] = w = _Worker(limits, hooks)
                    w.give(pending.popleft(), paths, limits.seconds_per_file)
            busy = [w for w in pool if w.job is not None]
            timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready = wait([w.results for w in busy], timeout)
            for w in busy:
                index = w.job
                if w.results in ready:
                    outcome = w.take(paths[index])
                elif time.monotonic() >= w.deadline:
                    w.kill()
                    outcome = _crashed(
                        paths[index],
                        f"quá {limits.seconds_per_file:g} giây, đã dừng / timed out",
                    )
                else:
                    continue
                outcomes[index] = outcome
                if not w.alive:
                    w.close()
    finally:
        for w in pool:  # all told to leave first, so they leave together
            if w.job is not None:
                w.kill()
            w.close(wait=False)
        for w in pool:
            w.reap()
    return outcomes  # type: ignore[return-value]


def _crashed(path: Path, detail: str) -> ReadOutcome:
    return ReadOutcome(
        path=path,
        parsed=None,
        error=(
            f"{path.name}: trình đọc dừng khi đọc tệp ({detail}) / reader died on this file; "
            "tệp có thể hỏng hoặc quá lớn: mở bằng Excel, lưu lại dạng .xlsx rồi gửi lại"
        ),
        crashed=True,
    )


class _Worker:
    """A reader process and its two pipes; `job` is the index of the file it is on."""

    def __init__(self, limits: ReadLimits, hooks: dict[str, str]):
        job_r, job_w = os.pipe()
        res_r, res_w = os.pipe()
        self.stderr = tempfile.TemporaryFile()
        # a reader of untrusted files gets no secrets: only what Python and the hooks need
        env = {k: v for k, v in os.environ.items() if k.startswith(_ENV_KEPT)}
        env.update(hooks, RUST_BACKTRACE="0")
        src = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (src, env.get("PYTHONPATH"))))
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"from baocao.reader import _worker_main; _worker_main({job_r}, {res_w})",
            ],
            pass_fds=(job_r, res_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            env=env,
        )
        os.close(job_r)
        os.close(res_w)
        self.jobs = Connection(job_w, readable=False)
        self.results = Connection(res_r, writable=False)
        self.jobs.send(limits)
        self.job: int | None = None
        self.deadline = 0.0
        self.alive = True
        self.fresh = True  # its first file's time also covers the interpreter's start-up

    def give(self, index: int, paths: list[Path], seconds: float) -> None:
        self.job = index
        self.deadline = time.monotonic() + seconds + (STARTUP_SECONDS if self.fresh else 0)
        self.fresh = False
        try:
            self.jobs.send(str(paths[index].absolute()))
        except OSError:  # died before its first file; take() reports it
            pass

    def take(self, path: Path) -> ReadOutcome:
        self.job = None
        try:
            kind, value = self.results.recv()
        except (EOFError, OSError):
            self.alive = False
            return _crashed(path, self._death())
        if kind == "ok":
            return ReadOutcome(path=path, parsed=value)
        if kind == "error":
            return ReadOutcome(path=path, parsed=None, error=value)
        self.alive = kind != "fatal"
        return _crashed(path, value)

    def kill(self) -> None:
        self.job = None
        self.alive = False
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def _death(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            why = {
                "SIGABRT": "tiến trình bị hủy, thường do thiếu bộ nhớ / aborted, usually out of memory",
                "SIGKILL": "tiến trình bị dừng (SIGKILL) / killed",
                "SIGXCPU": "quá thời gian CPU / CPU time exceeded",
                "SIGSEGV": "lỗi truy cập bộ nhớ / segmentation fault",
            }.get(name, name)
        else:
            why = f"mã thoát {code} / exit code {code}"
        last = self._stderr_line()
        return f"{why}: {last}" if last else why

    def _stderr_line(self) -> str:
        """The first line of what the worker printed last (e.g. calamine's 'memory allocation
        of 549755813888 bytes failed'), short."""
        try:
            size = os.fstat(self.stderr.fileno()).st_size
            tail = os.pread(self.stderr.fileno(), 2048, max(0, size - 2048))
        except OSError:
            return ""
        lines = [ln.strip() for ln in tail.decode("utf-8", "replace").splitlines() if ln.strip()]
        interesting = [ln for ln in lines if "memory" in ln.lower() or "Error" in ln]
        line = (interesting or lines or [""])[-1]
        return line[:200]

    def close(self, wait: bool = True) -> None:
        """Close its pipes (an idle worker then leaves by itself); with `wait`, reap it."""
        for conn in (self.jobs, self.results):
            try:
                conn.close()
            except OSError:
                pass
        if wait:
            self.reap()

    def reap(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


# ---- the worker -------------------------------------------------------------------------


def _worker_main(job_fd: int, result_fd: int) -> None:
    """Runs in the reader process: limits first, then one file per message until EOF."""
    import resource

    from baocao.faults import checkpoint
    from baocao.forms import read_file

    jobs = Connection(job_fd, writable=False)
    results = Connection(result_fd, readable=False)
    try:
        limits: ReadLimits = jobs.recv()
    except EOFError:
        return
    _set_limit(resource.RLIMIT_CORE, 0)
    _set_limit(resource.RLIMIT_AS, limits.memory_mb * 1024 * 1024)
    crash_on = set(filter(None, os.environ.get(CRASH_ENV, "").split(",")))
    hang_on = set(filter(None, os.environ.get(HANG_ENV, "").split(",")))
    while True:
        try:
            job = jobs.recv()
        except (EOFError, OSError):
            os._exit(0)  # nothing to flush or finalise: leave at once
        path = Path(job)
        used = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        _set_limit(resource.RLIMIT_CPU, int(used + limits.seconds_per_file) + 2, soft_only=True)
        checkpoint("reader.file")
        if path.name in crash_on:
            os.abort()
        if path.name in hang_on:
            parent = os.getppid()
            while os.getppid() == parent:  # until killed, or orphaned
                time.sleep(0.2)
            os._exit(1)
        try:
            message = ("ok", read_file(path, limits))
        except FormError as exc:
            message = ("error", str(exc))
        except MemoryError:
            message = ("fatal", "hết bộ nhớ / out of memory")
        except RecursionError:
            message = ("fatal", "RecursionError")
        except Exception as exc:  # a bug or an unforeseen file: this file fails, not the batch
            message = ("crash", f"{type(exc).__name__}: {str(exc)[:200]}")
        try:
            results.send(message)
        except MemoryError:
            results.send(("fatal", "hết bộ nhớ khi gửi kết quả / out of memory"))
        if message[0] == "fatal":
            return


def _set_limit(which: int, value: int, *, soft_only: bool = False) -> None:
    import resource

    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, hard if soft_only else value))
