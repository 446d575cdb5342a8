"""Every ```python block of the README runs as written, in order, in a fresh project folder.

A block preceded by ``<!-- not-runnable: why -->`` is skipped (the README's contributing
notes say when that is allowed: a block that needs a server, kernels or the user's own file).
"""

from __future__ import annotations

import re
import shutil

from .conftest import REPO

BLOCK = re.compile(r"(<!-- not-runnable:[^>]*-->\s*\n)?```python\n(.*?)```", re.S)


def _blocks() -> list[tuple[bool, str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return [(bool(m.group(1)), m.group(2)) for m in BLOCK.finditer(text)]


def test_the_readme_has_runnable_python_blocks():
    runnable = [code for skip, code in _blocks() if not skip]
    assert len(runnable) >= 3


def test_readme_python_blocks_run_as_written(workdir):
    shutil.copytree(REPO / "data" / "samples", workdir / "data" / "samples")
    namespace: dict[str, object] = {"__name__": "readme"}
    for skip, code in _blocks():
        if skip:
            continue
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README is ours
    assert namespace["result"].state == "COMPLETED"
    assert namespace["matrix"].height == 9750
