"""altair, imported without a 4.6 s detour through jsonschema's URI grammar.

altair imports jsonschema, whose format checkers import ``rfc3987_syntax`` when it is
installed (Jupyter's event schemas pull it in); that module builds Lark parsers at import,
which took 4.6 of the 5.5 s the report stage spent importing altair in a fresh process.
tracer-kit never asks jsonschema to check URI formats, so while altair is first imported
``rfc3987_syntax`` is blocked (Python's documented ``sys.modules[name] = None``) and then
unblocked, so code that imports it later still can.
"""

from __future__ import annotations

import sys
import threading
from types import ModuleType

__all__ = ["altair"]

_SLOW = "rfc3987_syntax"
#: Runs in threads (the Spark engine's tests, a user's own) import altair once, together:
#: while one imports it, ``sys.modules`` already holds the half-made module.
_LOCK = threading.Lock()


def altair() -> ModuleType:
    """The altair module (imported once per process, whichever thread asks first)."""
    with _LOCK:
        block = _SLOW not in sys.modules and "altair" not in sys.modules
        if block:
            sys.modules[_SLOW] = None  # type: ignore[assignment]
        try:
            import altair as alt
        finally:
            if block and sys.modules.get(_SLOW, 0) is None:
                del sys.modules[_SLOW]
    return alt
