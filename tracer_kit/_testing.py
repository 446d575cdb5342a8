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
