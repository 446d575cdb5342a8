"""Third-party modules with a start-up cost or a side effect, imported when first used.

:func:`altair`: altair imports jsonschema, whose format checkers import ``rfc3987_syntax`` when it is
installed (Jupyter's event schemas pull it in); that module builds Lark parsers at import,
which took 4.6 of the 5.5 s the report stage spent importing altair in a fresh process.
tracer-kit never asks jsonschema to check URI formats, so while altair is first imported
``rfc3987_syntax`` is blocked (Python's documented ``sys.modules[name] = None``) and then
unblocked, so code that imports it later still can.

:func:`pandera_polars`: pandera imports ``pyspark.pandas`` when pyspark is installed (the
``spark`` extra) only to see whether it is there, and pyspark then warns about pandas 3
although tracer-kit uses no pandas API of pyspark; ``pyspark.pandas`` is blocked the same way
while pandera is imported (0.1 s less, and no warning, whichever thread records warnings;
the Spark engine silences the warning for the process when it starts:
:func:`quiet_pyspark_pandas_warning`). pandera's import (it imports pandas) costs about half
a second, so a run or a validation starts it on a thread of its own as it begins
(:func:`preload_pandera`); the schema check at the end of validation then finds it loaded.

:func:`lean_process`: the ``tracer`` console script runs no code but tracer-kit's (and a
blueprint's), which uses only pandera's polars API. There pandera is imported, and its check
backends registered, as in an install without pandas (pandera supports that: its polars
extra needs no pandas): ``pandas`` and ``hypothesis`` (pandera's data synthesis) are absent
to the importing thread only, so 0.5 s of imports are skipped and any other code that imports
pandas, then or later, still gets it. A notebook or a server keeps pandera whole.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import warnings
from collections.abc import Iterator
from types import ModuleType

import polars as pl

__all__ = [
    "altair",
    "lean_process",
    "pandera_polars",
    "preload_pandera",
    "quiet_pyspark_pandas_warning",
]

_SLOW = "rfc3987_syntax"
#: pyspark's warning about pandas 3, given on each Arrow function of a Spark frame although
#: tracer-kit uses no pandas API of pyspark.
_PYSPARK_PANDAS = "PySpark does not yet fully support pandas"
#: The module whose import gives that warning; pandera imports it only to see it exists.
_PYSPARK_PANDAS_MODULE = "pyspark.pandas"

#: Runs in threads (the Spark engine's tests, a user's own) import altair once, together:
#: while one imports it, ``sys.modules`` already holds the half-made module.
_LOCK = threading.Lock()
_PRELOAD = threading.Lock()
_preloading = False
#: Modules pandera's polars API never needs; absent to it in a lean process.
_NOT_FOR_PANDERA = frozenset({"pandas", "hypothesis"})
_lean = False


@contextlib.contextmanager
def _blocked(name: str) -> Iterator[None]:
    """While the block runs, ``import name`` raises ImportError (unless it is loaded already).

    Python's documented ``sys.modules[name] = None``; the entry is taken out afterwards, so
    code that imports the module later still can.
    """
    block = name not in sys.modules
    if block:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if block and name in sys.modules and sys.modules[name] is None:
            del sys.modules[name]


class _AbsentToThread:
    """A meta-path finder: to one thread, the named top-level packages are not installed.

    It raises the very error a missing package gives (``No module named 'pandas'``), which is
    what pandera tells apart from a broken install. Other threads import them as usual.
    """

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        self.thread = threading.get_ident()

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.partition(".")[0] in self.names and threading.get_ident() == self.thread:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


@contextlib.contextmanager
def _absent(names: frozenset[str]) -> Iterator[None]:
    """While the block runs, the packages not yet loaded are missing to this thread."""
    finder = _AbsentToThread(frozenset(n for n in names if n not in sys.modules))
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def lean_process() -> None:
    """Mark this process as running only tracer-kit (the console script): pandera lean."""
    global _lean
    _lean = True


def altair() -> ModuleType:
    """The altair module (imported once per process, whichever thread asks first)."""
    with _LOCK:
        if "altair" in sys.modules:
            return sys.modules["altair"]
        with _blocked(_SLOW):
            import altair as alt
    return alt


def pandera_polars() -> ModuleType:
    """``pandera.polars`` (imported once, without ``pyspark.pandas``).

    pandera imports ``pyspark.pandas`` only to see whether it exists; blocked, it moves on.
    No warning filter is touched: filters are process-wide, and a stage that records its
    library warnings on another thread would record pyspark's warning anyway.
    """
    with _LOCK:
        if "pandera.polars" in sys.modules:
            return sys.modules["pandera.polars"]
        lean = _absent(_NOT_FOR_PANDERA) if _lean else contextlib.nullcontext()
        with _blocked(_PYSPARK_PANDAS_MODULE), lean:
            import pandera.polars as pa

            _register_check_backends(pa)
    return pa


def _register_check_backends(pa: ModuleType) -> None:
    """Validate one row, so pandera registers its check backends now (lean: without pandas).

    pandera registers them at a frame type's first check and remembers whether pandas was
    importable then; in a lean process that is while pandas is absent to this thread.
    """
    schema = pa.DataFrameSchema({"x": pa.Column(pl.Int64, pa.Check.ge(0))})
    schema.validate(pl.DataFrame({"x": [0]}))


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
