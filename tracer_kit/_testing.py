"""Test hooks that cost nothing unless a test sets their environment variables."""

from __future__ import annotations

import os
import time
from pathlib import Path


def pause_for_tests(point: str) -> None:
    """Block at a named point when ``TRACER_TEST_PAUSE_AT=<point>``, so a test can kill the run there.

    ``TRACER_TEST_PAUSE_FILE`` (optional) is written when the pause starts, telling the test
    the process has reached the point; ``TRACER_TEST_PAUSE_SECONDS`` bounds the pause (60 s).
    """
    if os.environ.get("TRACER_TEST_PAUSE_AT") != point:
        return
    marker = os.environ.get("TRACER_TEST_PAUSE_FILE")
    if marker:
        Path(marker).write_text(point)
    time.sleep(float(os.environ.get("TRACER_TEST_PAUSE_SECONDS", "60")))


def test_clock_file() -> Path | None:
    """The file a test writes "now" in (``TRACER_TEST_CLOCK``: an ISO time), or None.

    A server started with it reads the time from that file wherever it schedules (its
    cron firings), so a test advances a day by writing a line instead of waiting one.
    """
    name = os.environ.get("TRACER_TEST_CLOCK")
    return Path(name) if name else None
