"""Run locks: a reader of a run's files and a deleter of that run take turns.

A reader (``tracer predict`` reading a model) never sees a half-deleted run.

Each run has a lock file in ``<warehouse folder>/.locks/``. A reader holds it shared for as
long as it reads the run's files; ``tracer runs delete`` and ``tracer prune`` take it
exclusively before removing anything, waiting up to the lock timeout and then refusing with
one line. Locks are advisory (``flock``) and held by the process: a crash releases them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from tracer_kit.errors import WarehouseBusyError
from tracer_kit.warehouse.connection import LOCK_TIMEOUT, check_run_id
from tracer_kit.workspace import DEFAULT_WAREHOUSE

__all__ = ["LOCKS_FOLDER", "reading_run", "removing_runs"]

#: The folder beside the warehouse file that holds the run lock files.
LOCKS_FOLDER = ".locks"


def _lock_path(warehouse: str | Path, run_id: str) -> Path:
    folder = Path(warehouse).resolve().parent / LOCKS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{check_run_id(run_id)}.lock"


def _timeout(timeout: float | None) -> float:
    return (
        float(os.environ.get("TRACER_LOCK_TIMEOUT", LOCK_TIMEOUT)) if timeout is None else timeout
    )


@contextlib.contextmanager
def _flock(path: Path, kind: int, timeout: float, busy: str) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline, delay = time.monotonic() + timeout, 0.05
        while True:
            try:
                fcntl.flock(fd, kind | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseBusyError(busy) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        yield
    finally:
        os.close(fd)  # (closing releases the lock)


@contextlib.contextmanager
def reading_run(
    run_id: str, *, warehouse: str | Path = DEFAULT_WAREHOUSE, timeout: float | None = None
) -> Iterator[None]:
    """While inside, ``run_id``'s files are not deleted by another process."""
    wait = _timeout(timeout)
    busy = f"run {run_id} is being deleted by another process; try again in a moment"
    with _flock(_lock_path(warehouse, run_id), fcntl.LOCK_SH, wait, busy):
        yield


@contextlib.contextmanager
def removing_runs(
    run_ids: Sequence[str],
    *,
    warehouse: str | Path = DEFAULT_WAREHOUSE,
    timeout: float | None = None,
) -> Iterator[None]:
    """While inside, nobody reads the runs' files; waits for readers, then refuses in one line."""
    wait = _timeout(timeout)
    with contextlib.ExitStack() as stack:
        for run_id in sorted(set(run_ids)):  # (one order everywhere: no deadlock)
            busy = (
                f"run {run_id} is being read by another process (tracer predict?) and was not "
                f"released within {wait:g} s; nothing was deleted, try again when it has finished"
            )
            stack.enter_context(_flock(_lock_path(warehouse, run_id), fcntl.LOCK_EX, wait, busy))
        yield
