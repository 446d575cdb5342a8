"""Third-party modules with a start-up cost or a side effect, imported when first used.

:func:`altair`: altair imports jsonschema, whose format checkers import ``rfc3987_syntax`` when it is
installed (Jupyter's event schemas pull it in); that module builds Lark parsers at import,
which took 4.6 of the 5.5 s the report stage spent importing altair in a fresh process.
tracer-kit never asks jsonschema to check URI formats, so while altair is first imported
``rfc3987_syntax`` is blocked (Python's documented ``sys.modules[name] = None``) and then
unblocked, so code that imports it later still can.

:func:`pandera_polars`: pandera imports ``pyspark.pandas`` when pyspark is installed (the
``spark`` extra), and pyspark then warns about pandas 3 although tracer-kit uses no pandas
API of pyspark; the warning is silenced for that import only, not for the process (the
Spark engine silences it for the process when it starts:
:func:`quiet_pyspark_pandas_warning`). pandera's import (it imports pandas) costs about half
a second, so a run or a validation starts it on a thread of its own as it begins
(:func:`preload_pandera`); the schema check at the end of validation then finds it loaded.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import warnings
from types import ModuleType

__all__ = ["altair", "pandera_polars", "preload_pandera", "quiet_pyspark_pandas_warning"]

_SLOW = "rfc3987_syntax"
#: pyspark's warning about pandas 3, given on each Arrow function of a Spark frame although
#: tracer-kit uses no pandas API of pyspark.
_PYSPARK_PANDAS = "PySpark does not yet fully support pandas"

#: Runs in threads (the Spark engine's tests, a user's own) import altair once, together:
#: while one imports it, ``sys.modules`` already holds the half-made module.
_LOCK = threading.Lock()
_PRELOAD = threading.Lock()
_preloading = False


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


def pandera_polars() -> ModuleType:
    """``pandera.polars`` (imported once, without pyspark's warning about pandas).

    The warning is filtered by one entry added for the import and removed after it (not
    ``catch_warnings``, which would put back the whole list and drop a filter another
    thread added meanwhile).
    """
    with _LOCK:
        if "pandera.polars" in sys.modules:
            return sys.modules["pandera.polars"]
        warnings.filterwarnings("ignore", message=_PYSPARK_PANDAS, category=FutureWarning)
        entry = warnings.filters[0]
        try:
            import pandera.polars as pa
        finally:
            with contextlib.suppress(ValueError):
                warnings.filters.remove(entry)
            warnings._filters_mutated()  # type: ignore[attr-defined]  # (the cache of seen warnings)
    return pa


def preload_pandera() -> None:
    """Start importing ``pandera.polars`` on a thread of its own, unless it is (being) loaded."""
    global _preloading
    with _PRELOAD:
        if _preloading or "pandera.polars" in sys.modules:
            return
        _preloading = True
    threading.Thread(target=pandera_polars, name="tracer-preload-pandera", daemon=True).start()


def quiet_pyspark_pandas_warning() -> None:
    """Silence pyspark's pandas-3 warning; the Spark engine calls it when a session is made.

    It is given on each of pyspark's Arrow functions, which the Spark engine calls while it
    runs, so it is filtered for the process once the Spark engine is used (never before).
    """
    warnings.filterwarnings("ignore", message=_PYSPARK_PANDAS, category=FutureWarning)
