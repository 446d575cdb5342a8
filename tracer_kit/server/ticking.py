"""A daemon thread that calls a function every few seconds until it is stopped."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["Ticking"]

log = logging.getLogger("tracer_kit.server")


class Ticking:
    """Calls ``tick`` every ``every`` seconds on a thread called ``name``; a failing tick is
    logged and the next one goes on (a warehouse busy this second is free the next).
    """  # noqa: D205

    def __init__(self, name: str, every: float, tick: Callable[[], None]) -> None:
        self.name, self.every, self.tick = name, every, tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start ticking."""
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking; wait (10 s at most) for a tick under way."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.tick()
            except Exception:
                log.exception("%s failed", self.name)
