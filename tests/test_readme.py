"""Every ```python block of the README runs as written, in order, in a fresh project folder.

A block preceded by ``<!-- not-runnable: why -->`` is skipped (the README's contributing
notes say when that is allowed: a block that needs a server, kernels or the user's own file).
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

from .conftest import REPO

BLOCK = re.compile(r"(<!-- not-runnable:[^>]*-->\s*\n)?```python\n(.*?)```", re.S)


def _blocks() -> list[tuple[bool, str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return [(bool(m.group(1)), m.group(2)) for m in BLOCK.finditer(text)]


def test_the_readme_has_runnable_python_blocks():
    runnable = [code for skip, code in _blocks() if not skip]
    assert len(runnable) >= 3


@pytest.fixture
def registries(monkeypatch):
    """The README registers a toy check, transform and output: they leave with the test."""
    from tracer_kit.ingest import READERS
    from tracer_kit.outputs import OUTPUTS
    from tracer_kit.quality import CHECKS, TRANSFORMS

    before = (list(CHECKS), dict(TRANSFORMS), dict(OUTPUTS), dict(READERS))
    monkeypatch.delenv("TRACER_PSEUDONYMISE_KEY", raising=False)
    yield
    CHECKS[:] = before[0]
    for registry, saved in zip((TRANSFORMS, OUTPUTS, READERS), before[1:], strict=True):
        registry.clear()
        registry.update(saved)
    os.environ.pop("TRACER_PSEUDONYMISE_KEY", None)


def test_readme_python_blocks_run_as_written(workdir, registries):
    shutil.copytree(REPO / "data" / "samples", workdir / "data" / "samples")
    namespace: dict[str, object] = {"__name__": "readme"}
    for skip, code in _blocks():
        if skip:
            continue
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README is ours
    assert namespace["extended"].outputs["row_count"].endswith(".rows.txt")
    assert namespace["private"].personal == ["customer_id"]
    assert namespace["result"].state == "COMPLETED"
    assert namespace["matrix"].height == 9750
