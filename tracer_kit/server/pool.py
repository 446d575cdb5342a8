"""A bounded queue of jobs and a pool of long-lived, warm worker processes.

Each worker (:func:`~tracer_kit.server.work.worker_main`) is a process of its own with a
pipe; one thread per worker hands it the next job and relays its messages to the job. A
worker that dies mid-job (killed, out of memory, a crash in native code) fails its job,
its run is recorded FAILED, and a fresh worker takes its place. The queue is bounded: a
full queue is :class:`QueueFull` (the API answers 429 with ``Retry-After``).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from tracer_kit.server.work import worker_main
from tracer_kit.types import ACTIVE_STATES, RunState
from tracer_kit.warehouse import end_run, run_row

__all__ = ["Job", "QueueFull", "WorkerPool"]

log = logging.getLogger("tracer_kit.server")

_ids = itertools.count(1)


class QueueFull(Exception):
    """The queue holds as many jobs as it may; try again later."""


@dataclass
class Job:
    """One piece of work, its progress and its outcome (the server's view of it)."""

    kind: str
    payload: dict[str, Any]
    run_id: str | None = None
    blueprint: str | None = None
    id: str = field(default_factory=lambda: f"job-{next(_ids)}")
    state: str = RunState.PENDING.value
    events: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    failure: dict[str, Any] | None = None
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    worker_pid: int | None = None
    changed: threading.Condition = field(default_factory=threading.Condition)
    output: queue.Queue[tuple[str, Any]] | None = None  # a command's stream, when streamed
    #: Who queued it when the server did: ``{"schedule": name}`` or ``{"inbox": path}``.
    origin: dict[str, str] = field(default_factory=dict)

    def note(self, event: dict[str, Any]) -> None:
        """Record an event and wake whoever waits for one."""
        with self.changed:
            self.events.append({**event, "at": time.time()})
            self.changed.notify_all()

    def finish(self, state: str, *, result: Any = None, failure: Any = None) -> None:
        """The job's end (once)."""
        with self.changed:
            if self.finished_at is not None:
                return
            self.state, self.result, self.failure = state, result, failure
            self.finished_at = time.time()
            self.events.append({"type": "end", "state": state, "at": self.finished_at})
            self.changed.notify_all()
        if self.output is not None:
            self.output.put(("end", None))

    @property
    def done(self) -> bool:
        """Ended (COMPLETED, FAILED or CANCELLED)."""
        return self.finished_at is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends; whether it did."""
        with self.changed:
            return self.changed.wait_for(lambda: self.done, timeout)


@dataclass
class _Worker:
    index: int
    process: Any = None
    conn: Connection | None = None
    ready: bool = False
    job: Job | None = None
    kernel: dict[str, Any] = field(default_factory=lambda: {"state": "none"})
    started: float = 0.0


def _noted_kernel(worker: _Worker, message: tuple[str, Any]) -> bool:
    """Keep a worker's kernel state from its message; whether the message was one."""
    kind, value = message
    if kind == "kernel":
        worker.kernel = value
    return kind == "kernel"


class WorkerPool:
    """``size`` warm workers serving a queue of at most ``queue_size`` waiting jobs."""

    def __init__(
        self,
        project: Path,
        *,
        size: int = 2,
        queue_size: int = 20,
        warehouse: Path,
        on_end: Callable[[Job], None] | None = None,
        warm_kernels: bool = False,
    ) -> None:
        self.project, self.size, self.warehouse = project, size, warehouse
        self.warm_kernels = warm_kernels
        self.queue: queue.Queue[Job | None] = queue.Queue(maxsize=queue_size)
        self.on_end = on_end
        self.restarts = 0
        self._ctx = multiprocessing.get_context("spawn")
        self._workers = [_Worker(i) for i in range(size)]
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # ----- life -----
    def start(self) -> None:
        """Start every worker and its relay thread."""
        for worker in self._workers:
            self._spawn(worker)
            thread = threading.Thread(
                target=self._serve, args=(worker,), name=f"worker-{worker.index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _spawn(self, worker: _Worker) -> None:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=worker_main,
            args=(child, str(self.project), self.warm_kernels),
            name=f"tracer-worker-{worker.index}",
        )
        process.daemon = True
        process.start()
        child.close()
        worker.process, worker.conn, worker.ready = process, parent, False
        worker.started = time.time()

    def wait_ready(self, timeout: float = 120.0) -> bool:
        """Block until every worker has warmed up; whether all did in time."""
        end = time.time() + timeout
        while time.time() < end:
            if all(w.ready for w in self._workers):
                return True
            time.sleep(0.05)
        return False

    def stop(self, grace: float = 30.0) -> None:
        """Stop taking jobs; cancel the waiting ones; let running ones finish within ``grace``
        seconds, then cancel them (Ctrl-C in the worker: the run is recorded CANCELLED).
        """  # noqa: D205
        self._stopping.set()
        while True:
            try:
                job = self.queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                self._cancelled(job, "the server stopped before the job started")
        end = time.time() + grace
        while time.time() < end and any(w.job for w in self._workers):
            time.sleep(0.05)
        for worker in self._workers:
            if worker.job is not None and worker.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid, signal.SIGINT)
        end = time.time() + 10
        while time.time() < end and any(w.job for w in self._workers):
            time.sleep(0.05)
        for _ in self._workers:
            with contextlib.suppress(queue.Full):
                self.queue.put_nowait(None)
        for worker in self._workers:
            self._end_process(worker)

    def _end_process(self, worker: _Worker) -> None:
        if worker.conn is not None:
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(None)
        if worker.process is not None:
            worker.process.join(5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
            if worker.job is not None:  # (killed with its job)
                self._worker_lost(worker, "the server stopped during the run")

    # ----- jobs -----
    def submit(self, job: Job) -> Job:
        """Queue a job; :class:`QueueFull` when the queue is full or the pool stopping."""
        if self._stopping.is_set():
            raise QueueFull("the server is stopping")
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            raise QueueFull(f"{self.queue.maxsize} jobs are waiting") from None
        return job

    def cancel(self, job: Job) -> bool:
        """Cancel a waiting job (dropped when a worker reaches it) or a running one (Ctrl-C)."""
        if job.done:
            return False
        if job.started_at is None:
            self._cancelled(job, "cancelled before it started")
            return True
        for worker in self._workers:
            if worker.job is job and worker.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid, signal.SIGINT)
                return True
        return False

    def depth(self) -> int:
        """Jobs waiting for a worker."""
        return self.queue.qsize()

    def status(self) -> list[dict[str, Any]]:
        """Each worker: pid, alive, ready, the job it runs."""
        return [
            {
                "worker": w.index,
                "pid": w.process.pid if w.process else None,
                "alive": bool(w.process and w.process.is_alive()),
                "ready": w.ready,
                "job": w.job.run_id or w.job.id if w.job else None,
                "kernel": w.kernel if self.warm_kernels else {"state": "off"},
            }
            for w in self._workers
        ]

    def _cancelled(self, job: Job, why: str) -> None:
        job.finish(RunState.CANCELLED.value, failure={"error": why, "kind": "cancelled"})
        if self.on_end:
            self.on_end(job)

    # ----- a worker's relay thread -----
    def _serve(self, worker: _Worker) -> None:
        while True:
            if not self._await_ready(worker):
                if self._stopping.is_set():
                    return
                continue
            job = self._next_job(worker)
            if job is None:
                return
            if job.done:  # (cancelled while it waited)
                continue
            worker.job = job
            job.started_at, job.worker_pid = time.time(), worker.process.pid
            job.state = RunState.IN_PROGRESS.value
            job.note({"type": "started", "worker": worker.index})
            self._relay(worker, job)
            worker.job = None

    def _next_job(self, worker: _Worker) -> Job | None:
        """The next queued job; meanwhile the worker's messages between jobs (its kernel)."""
        while True:
            try:
                return self.queue.get(timeout=0.5)
            except queue.Empty:
                pass
            with contextlib.suppress(EOFError, OSError):
                while worker.conn is not None and worker.conn.poll(0):
                    _noted_kernel(worker, worker.conn.recv())

    def _await_ready(self, worker: _Worker) -> bool:
        """Wait for the worker's ready message; restart it if it died warming up."""
        while not worker.ready:
            assert worker.conn is not None
            if worker.conn.poll(0.2):
                try:
                    kind, value = worker.conn.recv()
                except (EOFError, OSError):
                    kind, value = "died", None
                if kind == "ready":
                    worker.ready = True
                    log.info("worker %s ready in %.1f s", value["pid"], value["seconds"])
                    return True
            if not worker.process.is_alive() or worker.ready is None:
                if self._stopping.is_set():
                    return False
                self.restarts += 1
                self._spawn(worker)
        return True

    def _relay(self, worker: _Worker, job: Job) -> None:
        assert worker.conn is not None
        try:
            worker.conn.send({**job.payload, "kind": job.kind})
        except (OSError, ValueError):
            self._worker_lost(worker, "the worker stopped before the run started")
            return
        while True:
            try:
                ready = worker.conn.poll(0.2)
                message = worker.conn.recv() if ready else None
            except (EOFError, OSError):
                message, ready = None, True
            if ready and message is None or (not ready and not worker.process.is_alive()):
                self._worker_lost(worker, "the worker running it stopped (killed or crashed)")
                return
            if message is not None and self._handled(worker, job, message):
                return

    def _handled(self, worker: _Worker, job: Job, message: tuple[str, Any]) -> bool:
        """Act on one message of a worker running ``job``; True when the job has ended."""
        kind, value = message
        if kind in ("out", "err"):
            if job.output is not None:
                job.output.put((kind, value))
        elif kind == "event":
            job.note(value)
        elif _noted_kernel(worker, message):
            pass
        else:
            if self.warm_kernels:  # the worker checks its kernel after every job
                worker.kernel = {"state": "starting"}
            state = RunState.COMPLETED if kind == "done" else _failed_state(value)
            job.finish(state.value, **({"result": value} if kind == "done" else {"failure": value}))
            if self.on_end:
                self.on_end(job)
            return True
        return False

    def _worker_lost(self, worker: _Worker, why: str) -> None:
        """A worker died with a job: the job and its run FAILED, a new worker in its place."""
        job = worker.job
        if job is not None:
            job.finish(RunState.FAILED.value, failure={"error": why, "kind": "worker"})
            if job.run_id:
                _fail_run(self.warehouse, job.run_id, why)
            if self.on_end:
                self.on_end(job)
            worker.job = None
        with contextlib.suppress(Exception):
            worker.process.kill()
            worker.process.join(5)
        if not self._stopping.is_set():
            self.restarts += 1
            log.warning("worker %s stopped; starting another", worker.process.pid)
            self._spawn(worker)


def _failed_state(failure: dict[str, Any]) -> RunState:
    return RunState.CANCELLED if failure.get("kind") == "cancelled" else RunState.FAILED


def _fail_run(warehouse: Path, run_id: str, why: str) -> None:
    """Record FAILED for a run whose process died, if it was recorded as still going."""
    with contextlib.suppress(Exception):
        row = run_row(run_id, warehouse=warehouse)
        if row["state"] in [s.value for s in ACTIVE_STATES]:
            end_run(warehouse, run_id, RunState.FAILED, error=why)
