"""The documentation runs as written.

- Every ```python block of the README and of the site's pages (``docs/``, in the order of
  ``mkdocs.yml``'s nav) runs in order, in one fresh project folder holding the samples. A
  block preceded by ``<!-- not-runnable: why -->`` is skipped (the contributing notes say
  when that is allowed: a block that needs a server, a cluster, kernels or the user's own
  file).
- The tutorial runs as a newcomer would: its ```bash blocks in an empty folder with the
  venv's ``tracer`` on the PATH, then its ```python block there.
- The site builds strictly (``make docs`` does the same before the tests).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO

BLOCK = re.compile(r"(<!-- not-runnable:[^>]*-->\s*\n)?```(python|bash)\n(.*?)```", re.S)
TUTORIAL = "tutorial.md"


def _nav_pages(nav: list) -> list[str]:
    pages: list[str] = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def _pages() -> list[Path]:
    """The README, then every page of the site in its nav's order."""
    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]
    return [REPO / "README.md", *(REPO / "docs" / p for p in _nav_pages(nav))]


def _blocks(path: Path, language: str) -> list[tuple[bool, str]]:
    text = path.read_text(encoding="utf-8")
    return [(bool(m[1]), m[3]) for m in BLOCK.finditer(text) if m[2] == language]


def test_every_page_of_the_site_is_in_its_nav():
    listed = {p.resolve() for p in _pages()}
    written = {p.resolve() for p in (REPO / "docs").rglob("*.md")}
    assert written == listed - {(REPO / "README.md").resolve()}


def test_the_docs_have_runnable_python_blocks():
    runnable = [c for p in _pages() for skip, c in _blocks(p, "python") if not skip]
    assert len(runnable) >= 8


@pytest.fixture
def registries(monkeypatch):
    """The docs register a toy check, transform and output: they leave with the test."""
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


def test_python_blocks_of_the_readme_and_the_guide_run_as_written(workdir, registries):
    shutil.copytree(REPO / "data" / "samples", workdir / "data" / "samples")
    namespace: dict[str, object] = {"__name__": "docs"}
    for page in _pages():
        if page.name == TUTORIAL:
            continue  # (its blocks run in their own folder, below)
        for skip, code in _blocks(page, "python"):
            if not skip:
                exec(compile(code, str(page.relative_to(REPO)), "exec"), namespace)
    assert namespace["extended"].outputs["row_count"].endswith(".rows.txt")
    assert namespace["private"].personal == ["customer_id"]
    assert namespace["result"].state == "COMPLETED"
    assert namespace["matrix"].height == 9750


@pytest.mark.slow
def test_the_tutorial_runs_as_written_in_an_empty_folder(workdir):
    page = REPO / "docs" / TUTORIAL
    script = "set -euo pipefail\n" + "\n".join(code for _, code in _blocks(page, "bash"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-c", script], cwd=workdir, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "7043 rows in, 7021 valid, 22 quarantined" in done.stdout
    assert "delimiter '\\t'" in done.stdout  # the profile saw the tab
    assert (workdir / "to_fix.csv").read_text().count("\n") == 1 + 22
    assert (workdir / "scores.csv").read_text().splitlines()[
        0
    ] == "customer_id,prediction,confidence"
    namespace: dict[str, object] = {"__name__": "tutorial"}
    for skip, code in _blocks(page, "python"):
        if not skip:
            exec(compile(code, "docs/tutorial.md", "exec"), namespace)
    assert namespace["scores"].state == "COMPLETED"


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path):
    done = subprocess.run(
        [str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    reference = (tmp_path / "site" / "reference.html").read_text(encoding="utf-8")
    assert "Score a new file with a completed run" in reference  # docstrings became pages
    assert (tmp_path / "site" / "tutorial.html").is_file()
