"""A run's life in the warehouse: start, timed stages, and exactly one end.

``PENDING -> IN_PROGRESS -> COMPLETED / FAILED / CANCELLED``. The in-process pipeline and the
notebook runner both hold a :class:`RunLifecycle`: stages are timed, logged and reported as
progress; leaving the ``with`` block on an exception records FAILED (the error's message)
or CANCELLED (Ctrl-C) unless a commit already ended the run.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from tracer_kit._testing import pause_for_tests
from tracer_kit.cells import shorten
from tracer_kit.errors import TracerError
from tracer_kit.types import RunState
from tracer_kit.warehouse import end_run, start_run

__all__ = ["STAGES", "ProgressFn", "RunLifecycle"]

log = logging.getLogger("tracer_kit")

STAGES = ("ingest", "validate", "features", "preprocess", "model", "store", "report")
ProgressFn = Callable[[str, int, int], None]


def _say_once(stage: str, caught: list[warnings.WarningMessage]) -> None:
    """Library warnings of a stage in tracer's words, each once (never a stderr block)."""
    seen: dict[tuple[str, str], int] = {}
    for w in caught:
        key = (
            w.category.__name__,
            str(w.message).strip().splitlines()[0] if str(w.message).strip() else "",
        )
        seen[key] = seen.get(key, 0) + 1
    for (category, message), times in seen.items():
        again = f" ({times} times)" if times > 1 else ""
        log.info("%s stage, a library noted%s: %s (%s)", stage, again, shorten(message), category)


class RunLifecycle:
    """One run's state changes and stage timings (see the module docstring)."""

    def __init__(
        self, warehouse: str | Path, run_id: str, *, progress: ProgressFn | None = None
    ) -> None:
        self.warehouse = warehouse
        self.run_id = run_id
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self.known: dict[str, Any] = {}  # fields worth keeping on a failure (input_sha256)
        self.ended = False

    def start(self, record: dict[str, Any], state: RunState = RunState.IN_PROGRESS) -> None:
        """Record the run (PENDING before a kernel starts, else IN_PROGRESS)."""
        start_run(self.warehouse, record, state=state)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time one stage, report its start as progress and log its end."""
        index = STAGES.index(name) if name in STAGES else len(STAGES)
        if self.progress:
            self.progress(name, index, len(STAGES))
        pause_for_tests(name)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        _say_once(name, caught)
        took = time.perf_counter() - start
        self.seconds[name] = round(self.seconds.get(name, 0.0) + took, 6)
        log.info(
            "%s done in %.2f s", name, took, extra={"fields": {"stage": name, "seconds": took}}
        )

    def committed(self) -> None:
        """A commit recorded the run's end state (COMPLETED, or FAILED at the gate)."""
        self.ended = True

    def handed_over(self) -> None:
        """Another process (a notebook kernel) owns the run's end from here on."""
        self.ended = True

    def end(self, state: RunState, error: str) -> None:
        """Record FAILED or CANCELLED, with the stage timings so far; removes staged files."""
        with contextlib.suppress(Exception):  # the run's own error matters more than this one
            end_run(
                self.warehouse,
                self.run_id,
                state,
                error=error,
                stage_seconds=self.seconds,
                fields=self.known,
            )
        self.ended = True

    def __enter__(self) -> RunLifecycle:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or self.ended:
            return
        if isinstance(exc, KeyboardInterrupt):
            self.end(RunState.CANCELLED, "cancelled by the user (Ctrl-C)")
        elif isinstance(exc, TracerError):
            log.error(str(exc))
            self.end(RunState.FAILED, str(exc))
        elif isinstance(exc, Exception):
            log.exception("run failed: %s", exc)
            self.end(RunState.FAILED, f"{type(exc).__name__}: {exc}")
