"""What a server's worker process does: import everything once, then run jobs one at a time.

A worker is started by :class:`~tracer_kit.server.pool.WorkerPool` with one end of a pipe.
It imports tracer-kit's stages and their heavy dependencies (scikit-learn, skops, the
report's chart engine) before it says it is ready, so no job pays for them. Each job is a
dict (:data:`JOB_KINDS` names the kinds); the worker answers with messages:

- ``("event", {...})``: progress (stage, percent) or a log line;
- ``("out", text)`` / ``("err", text)``: a command's output, as it is written;
- ``("done", value)``: the job's JSON-ready result;
- ``("failed", {"error", "kind", "exit_code"})``: a :class:`TracerError` in one line.

Ctrl-C (SIGINT from the pool, for ``DELETE /runs/{id}`` or a server stopping) cancels the
job at hand: its run is recorded CANCELLED and the worker waits for the next job.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from tracer_kit import cli, kernels
from tracer_kit.connections import is_url, redact
from tracer_kit.errors import (
    CompatibilityError,
    ConfigError,
    IngestError,
    QualityGateError,
    TracerError,
    WarehouseBusyError,
)
from tracer_kit.notebooks import rerun, run_notebook
from tracer_kit.pipeline import predict, run_pipeline
from tracer_kit.profiling import profile
from tracer_kit.quality import validate
from tracer_kit.run import STAGES

__all__ = ["JOB_KINDS", "WARM_MODULES", "error_kind", "worker_main"]

#: Imported by a worker before it takes its first job (what a cold command pays for).
WARM_MODULES = (
    "sklearn.linear_model",
    "sklearn.ensemble",
    "sklearn.preprocessing",
    "skops.io",
    "pandera.polars",
    "tracer_kit.model",
    "tracer_kit.report",
    "nbformat",
    "papermill",
)

Send = Callable[[tuple[str, Any]], None]


def error_kind(exc: BaseException) -> str:
    """The API's ``kind`` for an error (the CLI's exit code tells the same apart)."""
    for cls, kind in (
        (QualityGateError, "quality_gate"),
        (CompatibilityError, "compatibility"),
        (IngestError, "ingest"),
        (ConfigError, "config"),
        (WarehouseBusyError, "busy"),
    ):
        if isinstance(exc, cls):
            return kind
    return "run"


class _Lines(io.TextIOBase):
    """A text stream that sends what is written as ``(channel, text)`` messages."""

    def __init__(self, send: Send, channel: str, tty: bool) -> None:
        self._send, self._channel, self._tty = send, channel, tty

    def write(self, text: str | bytes) -> int:
        if isinstance(text, bytes):  # (click writes bytes to a stream it takes for binary)
            text = text.decode("utf-8", "replace")
        if text:
            self._send((self._channel, text))
        return len(text)

    def isatty(self) -> bool:
        return self._tty

    def writable(self) -> bool:
        return True


@contextlib.contextmanager
def _captured(out: io.TextIOBase, err: io.TextIOBase, env: dict[str, str]) -> Iterator[None]:
    """stdout, stderr and some environment variables swapped for one job."""
    saved = sys.stdout, sys.stderr, {k: os.environ.get(k) for k in env}
    sys.stdout, sys.stderr = out, err  # type: ignore[assignment]
    os.environ.update(env)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved[0], saved[1]
        for key, value in saved[2].items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _command(job: dict[str, Any], send: Send) -> dict[str, Any]:
    """``tracer <argv>`` in this process, its output streamed; the exit code."""
    env = {"TRACER_INTERFACE": "cli"}
    if job.get("columns"):
        env["COLUMNS"] = str(job["columns"])
    tty = bool(job.get("tty"))
    before = Path.cwd()
    os.chdir(job["cwd"])
    try:
        with _captured(_Lines(send, "out", tty), _Lines(send, "err", tty), env):
            code = cli.run_command(list(job["argv"]))
    finally:
        os.chdir(before)
    return {"exit": code}


def _progress(send: Send) -> Callable[[str, int, int], None]:
    def progress(stage: str, index: int, total: int) -> None:
        percent = round(100 * index / max(total, 1))
        send(("event", {"type": "progress", "stage": stage, "percent": percent}))

    return progress


def _outcome(result: Any) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "state": str(result.state),
        "rows_in": result.rows_in,
        "rows_out": result.rows_out,
        "rows_quarantined": result.rows_quarantined,
    }


def _source(text: str) -> Any:
    return text if is_url(text) else Path(text)


def _run(job: dict[str, Any], send: Send) -> dict[str, Any]:
    common = {"config": job.get("config") or None, "run_id": job["run_id"], "return_frame": False}
    if job.get("notebook"):
        return _outcome(run_notebook(_source(job["source"]), job["blueprint"], **common))
    result = run_pipeline(
        _source(job["source"]), job["blueprint"], progress=_progress(send), **common
    )
    return _outcome(result)


def _rerun(job: dict[str, Any], send: Send) -> dict[str, Any]:
    result = rerun(job["of"], new_run_id=job["run_id"], progress=_progress(send))
    return _outcome(result)


def _predict(job: dict[str, Any], send: Send) -> dict[str, Any]:
    result = predict(
        job["model_run"],
        _source(job["source"]),
        prediction_run_id=job["run_id"],
        config=job.get("config") or None,
        progress=_progress(send),
    )
    return _outcome(result)


def _validate(job: dict[str, Any], send: Send) -> dict[str, Any]:
    q = validate(_source(job["source"]), job["blueprint"], config=job.get("config") or None)
    return cli.validation_summary(q, redact(job["source"]))


def _profile(job: dict[str, Any], send: Send) -> dict[str, Any]:
    p = profile(_source(job["source"]), config=job.get("config") or None)
    info = p.info
    return {
        "input": redact(job["source"]),
        "format": info.format,
        "size": info.size,
        "sha256": info.sha256,
        "rows": info.row_count,
        "rejected": p.rejects,
        "read_options": info.read_options(),
        "warnings": list(info.warnings),
        "columns": p.columns.to_dicts(),
    }


#: Every kind of job a worker runs, by the name the pool sends.
JOB_KINDS: dict[str, Callable[[dict[str, Any], Send], dict[str, Any]]] = {
    "command": _command,
    "run": _run,
    "rerun": _rerun,
    "predict": _predict,
    "validate": _validate,
    "profile": _profile,
}


def _warm_up() -> None:
    for name in WARM_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    assert STAGES  # (the run module is loaded too)


def _one_job(job: dict[str, Any], send: Send) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C cancels this job
    try:
        send(("done", JOB_KINDS[job["kind"]](job, send)))
    except TracerError as exc:
        send(("failed", {"error": str(exc), "kind": error_kind(exc), "exit_code": exc.exit_code}))
    except KeyboardInterrupt:
        send(("failed", {"error": "cancelled", "kind": "cancelled", "exit_code": 130}))
    except Exception as exc:  # a bug: one line for the caller, the traceback in the server log
        logging.getLogger("tracer_kit.server").exception("job %s failed", job.get("kind"))
        line = f"internal error ({type(exc).__name__}: {exc})"
        send(("failed", {"error": line, "kind": "internal", "exit_code": 1}))
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _locked_send(conn: Connection) -> Send:
    """``conn.send`` safe from two threads (a job's events and the kernel starter)."""
    lock = threading.Lock()

    def send(message: Any) -> None:
        with lock:
            conn.send(message)

    return send


def _refill_kernel(project: str, send: Send) -> None:
    """Start the next notebook run's kernel in the background; say its state when it is up."""

    def start() -> None:
        if kernels.warm_kernel_state()["state"] == "none":
            with contextlib.suppress(OSError, ValueError):
                send(("kernel", {"state": "starting"}))
        try:
            kernels.start_warm_kernel(project)
        except Exception as exc:  # (no kernel: notebook runs start their own, as before)
            logging.getLogger("tracer_kit.server").warning("warm kernel not started: %s", exc)
        with contextlib.suppress(OSError, ValueError):
            send(("kernel", kernels.warm_kernel_state()))

    threading.Thread(target=start, name="warm-kernel", daemon=True).start()


def worker_main(conn: Connection, project: str, warm_kernels: bool = False) -> None:
    """A worker's life: warm up, say ready, run jobs until told to stop (None) or orphaned.

    With ``warm_kernels``, the next notebook run's kernel is started ahead, after the
    warm-up and again after each job (:mod:`tracer_kit.kernels`).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the pool decides when a job is cancelled
    os.chdir(project)
    started = time.perf_counter()
    _warm_up()
    send = _locked_send(conn)
    send(("ready", {"pid": os.getpid(), "seconds": time.perf_counter() - started}))
    try:
        while True:
            if warm_kernels:
                _refill_kernel(project, send)
            try:
                job = conn.recv()
            except (EOFError, OSError):
                return
            if job is None:
                return
            _one_job(job, send)
    finally:
        kernels.discard_warm_kernel()
