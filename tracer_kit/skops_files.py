"""Fitted objects on disk: skops files (no pickle), byte-reproducible, read trusting known types only."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

from tracer_kit.errors import TracerError

__all__ = ["dump_skops", "load_skops"]

_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "tracer_kit.", "builtins.", "collections.", "polars.")
#: SciPy types scikit-learn's own estimators hold (SplineTransformer keeps B-splines).
_TRUSTED_NAMES = frozenset(
    {
        "scipy.interpolate._bsplines.BSpline",
        "scipy._lib.array_api_compat.numpy._aliases.asarray",
    }
)


_SKOPS_ID = re.compile(rb'"__id__": (\d+)|"(\d+)\.npy"')


def _stable_ids(schema: bytes) -> dict[bytes, bytes]:
    """Skops names objects by their Python ``id()``: number them by first appearance instead."""
    order: dict[bytes, bytes] = {}
    for match in _SKOPS_ID.finditer(schema):
        key = match.group(1) or match.group(2)
        order.setdefault(key, str(len(order) + 1).encode())
    return order


def dump_skops(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` with skops, byte for byte the same for the same object.

    skops names each object by its Python ``id()`` and stamps each zip entry with the time
    of writing; both are replaced (objects numbered by first appearance in the schema,
    entries dated 1980-01-01), so a rerun's file has the same SHA-256 as the original's.
    """
    import skops.io as sio

    raw = zipfile.ZipFile(io.BytesIO(sio.dumps(obj)))
    ids = _stable_ids(raw.read("schema.json"))

    def renamed(text: bytes) -> bytes:
        return _SKOPS_ID.sub(
            lambda m: (
                b'"__id__": ' + ids[m.group(1)] if m.group(1) else b'"' + ids[m.group(2)] + b'.npy"'
            ),
            text,
        )

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as stable:
        for entry in raw.infolist():
            name = renamed(f'"{entry.filename}"'.encode()).decode().strip('"')
            data = raw.read(entry.filename)
            data = renamed(data) if entry.filename == "schema.json" else data
            stable.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(out.getvalue())
    return path


def load_skops(path: str | Path, what: str) -> Any:
    """Load a skops file tracer-kit wrote, trusting only scikit-learn, NumPy and tracer-kit types.

    Raises
    ------
    TracerError
        When the file holds types from elsewhere (it was not written by tracer-kit); ``what``
        names the object in the message (e.g. ``"a preprocessor"``).
    """
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=str(path))
    foreign = [
        t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES) and t not in _TRUSTED_NAMES
    ]
    if foreign:
        raise TracerError(f"{path}: refusing to load {what} holding unexpected types {foreign}")
    return sio.load(str(path), trusted=untrusted)
