"""The repository frame: dependencies in sync, the public API exported and documented, the wheel self-contained."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile

import pytest
import yaml

import tracer_kit as tk

from .conftest import REPO


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted |= {d for d in extra if not d.startswith("tracer-kit")}
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) == wanted
    assert "python>=3.11" in env["dependencies"]


def _docs_text() -> str:
    """The README and every page of the documentation site."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    return "\n".join(p.read_text(encoding="utf-8") for p in pages)


def test_public_api_is_exported_and_documented():
    readme = _docs_text()
    for name in (
        "run_pipeline",
        "run_notebook",
        "run_batch",
        "read_table",
        "validate",
        "profile",
        "quality_report",
        "list_blueprints",
        "get_blueprint",
        "register_blueprint",
        "query",
    ):
        assert name in tk.__all__
        assert callable(getattr(tk, name))
        assert f"{name}(" in readme, f"{name} is not documented in the docs"


def test_import_is_lazy():
    code = "import sys, tracer_kit; print('papermill' in sys.modules, 'duckdb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_readme_quickstart_starts_with_the_two_commands():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"## Quickstart.*?```bash\n(.*?)```", readme, re.S).group(1)
    lines = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert lines[:2] == ["make demo", "make test"]


def test_blueprint_features_documented_in_readme():
    readme = _docs_text()
    from tracer_kit.blueprints import _BUILTIN_MODULES

    for bp in map(tk.get_blueprint, _BUILTIN_MODULES):
        for feature in bp.features:
            assert f"`{feature.name}`" in readme, f"{bp.name}.{feature.name} missing from README"


@pytest.mark.slow
def test_wheel_ships_notebook_and_templates(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    wheel = next(tmp_path.glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "tracer_kit/_templates/notebooks/blueprint.ipynb",
        "tracer_kit/_templates/templates/report.html.j2",
        "tracer_kit/_templates/templates/offline.html.j2",
        "tracer_kit/samples/customers_tiny.csv",
    ):
        assert needed in names


def test_every_public_module_declares_its_names():
    import importlib
    import pkgutil

    import tracer_kit

    names = [m.name for m in pkgutil.walk_packages(tracer_kit.__path__, "tracer_kit.")]
    public = [n for n in names if not any(part.startswith("_") for part in n.split(".")[1:])]
    assert "tracer_kit.workspace" in public and "tracer_kit.quality" in public
    for name in public:
        module = importlib.import_module(name)
        assert hasattr(module, "__all__"), name
        assert [n for n in module.__all__ if not hasattr(module, n)] == [], name


def test_only_the_warehouse_package_opens_the_warehouse():
    """Every warehouse read and write goes through tracer_kit.warehouse's functions."""
    from .conftest import REPO

    opened = []
    for path in sorted((REPO / "tracer_kit").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "duckdb.connect(" in text or "import duckdb" in text:
            opened.append(path.relative_to(REPO).as_posix())
    # _scratch opens an in-memory DuckDB for out-of-core group-bys, never the warehouse file;
    # connections opens a user's own DuckDB file given as a source (duckdb:///...), read-only
    # when it reads, never the warehouse
    outside = [p for p in opened if not p.startswith("tracer_kit/warehouse/")]
    assert outside == ["tracer_kit/_scratch.py", "tracer_kit/connections.py"]
    assert "tracer_kit/warehouse/connection.py" in opened
    connects = [p for p in opened if "duckdb.connect(" in (REPO / p).read_text(encoding="utf-8")]
    assert connects == [
        "tracer_kit/_scratch.py",
        "tracer_kit/connections.py",
        "tracer_kit/warehouse/connection.py",
    ]
    scratch = (REPO / "tracer_kit" / "_scratch.py").read_text(encoding="utf-8")
    assert 'duckdb.connect(":memory:"' in scratch or "duckdb.connect()" in scratch
    sources = (REPO / "tracer_kit" / "connections.py").read_text(encoding="utf-8")
    assert sources.count("duckdb.connect(") == 1
    assert "duckdb.connect(str(path), read_only=read_only)" in sources


def _code_lines(lines: list[str], node) -> int:
    """Lines of code in a function: its signature and body, without its docstring, comments or blanks."""
    import ast

    doc = None
    body = node.body
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(getattr(body[0], "value", None), ast.Constant)
    ):
        if isinstance(body[0].value.value, str):
            doc = (body[0].lineno, body[0].end_lineno)
    count = 0
    for number in range(node.lineno, node.end_lineno + 1):
        text = lines[number - 1].strip()
        if (doc and doc[0] <= number <= doc[1]) or not text or text.startswith("#"):
            continue
        count += 1
    return count


def test_no_function_in_the_package_is_over_60_lines():
    import ast

    from .conftest import REPO

    long = []
    for path in sorted((REPO / "tracer_kit").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = _code_lines(text.splitlines(), node)
                if n > 60:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({n} lines)")
    assert long == []


def test_make_lint_runs_the_complexity_rules():
    import tomllib

    from .conftest import REPO

    ruff = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["ruff"]
    assert {"C901", "PLR0912", "PLR0913", "PLR0915"} <= set(ruff["lint"]["select"])
    assert ruff["lint"]["mccabe"]["max-complexity"] == 10
    limits = ruff["lint"]["pylint"]
    assert (limits["max-branches"], limits["max-statements"], limits["max-args"]) == (12, 50, 9)


@pytest.mark.parametrize("module", ["tracer_kit.blueprints.stats", "tracer_kit.aggregates"])
def test_doctests_of_the_helpers_for_authors(module):
    import doctest
    import importlib

    failed, tried = doctest.testmod(importlib.import_module(module))
    assert tried > 0 and failed == 0


def test_blueprint_stats_are_exact_on_hand_counted_rows():
    import polars as pl

    import tracer_kit as tk

    rows = pl.LazyFrame(
        {"v": [4.0, 1.0, 4.0, 2.0, None, 3.0, 4.0, 5.0], "source_row": [1, 2, 3, 4, 5, 6, 7, 8]}
    )
    # sorted (value, row): (1,2) (2,4) (3,6) (4,1) (4,3) (4,7) (5,8): n = 7
    assert tk.stats.order_statistics(rows, "v", [1, 4, 6, 7, 9]) == [
        (1.0, 2),
        (4.0, 1),
        (4.0, 7),
        (5.0, 8),
    ]
    assert tk.stats.quantile_cuts(rows, "v", 4) == (7, [(1.0, 2), (3.0, 6), (4.0, 3)])
    assert tk.stats.column_bounds(rows, ["v", "source_row"]) == {
        "v": (1.0, 5.0),
        "source_row": (1, 8),
    }


def test_the_namespace_holds_only_the_public_api():
    """Issue 27: ``tk`` exported os, sys, Any and warnings."""
    assert set(dir(tk)) == {*tk.__all__, "__version__"}
    for name in ("os", "sys", "Any", "warnings", "importlib", "annotations"):
        with pytest.raises(AttributeError):
            getattr(tk, name)


def test_run_help_groups_its_options():
    from typer.testing import CliRunner

    from tracer_kit.cli import app

    text = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "120"}).output
    for panel in ("Model", "Reading the source", "Database sources", "HTTP API sources", "Spark"):
        assert f"─ {panel} " in text, panel
    model = text.split("─ Model ")[1].split("╰")[0]
    assert "--label" in model and "--positive" in model and "--format" not in model
