"""The package's shape: no import circle, no import from a higher floor, few and marked lazy imports.

The import graph is read from the source (``ast``), every import counted: module level and
inside functions, and an import of ``a.b.c`` also counts as one of the package ``a.b``
(Python runs its ``__init__`` first). ``if TYPE_CHECKING:`` imports are not counted.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tracer_kit"

#: The floors, lowest first: a module may import from its own floor and the ones below.
#: A module's floor is that of the longest prefix listed for it.
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    (
        "foundation",
        (
            "errors",
            "settings",
            "workspace",
            "cells",
            "aggregates",
            "_testing",
            "_resources",
            "heavy",
            "types",
            "connections",
            "datasets",
            "display",
            "skops_files",
            "lazy",
            "_scratch",
            "server.client",
            "svg",
            "cron",
        ),
    ),
    ("options", ("options",)),
    ("spark primitives", ("spark.frame", "spark.session", "spark.columns", "spark.schemas")),
    ("ingest", ("ingest", "spark", "spark.source")),
    ("config", ("config", "project")),
    ("blueprints", ("blueprints", "engine")),
    ("quality", ("quality", "profiling", "drafting")),
    ("features", ("spark.features", "spark.engine", "preprocess", "recipe", "features")),
    ("model", ("model",)),
    ("record", ("outputs", "record")),
    ("warehouse", ("warehouse", "writing", "personal", "destinations", "failing")),
    ("report", ("report", "trained", "comparison", "trends", "history_page")),
    ("run", ("run", "stages", "pipeline")),
    ("interfaces", ("notebooks", "kernels", "widgets", "cli", "")),
    ("server", ("server", "launch")),
]


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    inside_function: bool
    text: str


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["tracer_kit", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_lazy_module(node: ast.AST) -> bool:
    """``name = lazy_module("tracer_kit....")`` (see :mod:`tracer_kit.lazy`)."""
    return (
        isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and getattr(node.value.func, "id", None) == "lazy_module"
        and len(node.value.args) == 1
        and isinstance(node.value.args[0], ast.Constant)
    )


def _imports() -> list[Import]:
    found = []
    for name, path in MODULES.items():
        source = path.read_text()
        lines = source.splitlines()
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]

        def visit(node: ast.AST, in_function: bool, name=name, package=package, lines=lines):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                    continue
                if isinstance(child, ast.ImportFrom):
                    if child.level:
                        base = package[: len(package) - child.level + 1]
                        module = ".".join([*base, *([child.module] if child.module else [])])
                    else:
                        module = child.module or ""
                    targets = [
                        f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module
                        for a in child.names
                    ]
                elif isinstance(child, ast.Import):
                    targets = [a.name for a in child.names]
                elif _is_lazy_module(child):  # lazy_module("tracer_kit.x"): an import declared
                    targets = [child.value.args[0].value]
                else:
                    targets = []
                for target in targets:
                    if target in MODULES and target != name:
                        text = lines[child.lineno - 1]
                        found.append(Import(name, target, child.lineno, in_function, text))
                nested = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
                visit(child, in_function or nested)

        visit(ast.parse(source), False)
    return found


IMPORTS = _imports()


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in IMPORTS:
        parts = imp.target.split(".")
        for k in range(2, len(parts) + 1):  # the packages on the way run their __init__ first
            step = ".".join(parts[:k])
            if step in MODULES and step != imp.source and not imp.source.startswith(step + "."):
                graph[imp.source].add(step)
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []
    counter = 0
    for root in sorted(MODULES):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    part = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        part.append(top)
                        if top == node:
                            break
                    if len(part) > 1:
                        circles.append(sorted(part))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return circles


def floor_of(module: str) -> int:
    """The floor number of ``module`` (its longest listed prefix)."""
    relative = module.removeprefix("tracer_kit").lstrip(".")
    best, best_len = None, -1
    for number, (_, prefixes) in enumerate(FLOORS):
        for prefix in prefixes:
            matches = relative == prefix or relative.startswith(prefix + ".") or prefix == ""
            if matches and len(prefix) > best_len:
                best, best_len = number, len(prefix)
    assert best is not None, module
    return best


def test_the_package_has_no_import_circle():
    assert _circles(_graph()) == []


def test_a_circle_would_be_found():
    graph = {"tracer_kit.errors": {"tracer_kit.types"}, "tracer_kit.types": {"tracer_kit.errors"}}
    assert _circles(graph) == [["tracer_kit.errors", "tracer_kit.types"]]


def test_every_module_is_on_a_floor_and_imports_only_from_its_floor_or_below():
    upward = [
        f"{imp.source} ({FLOORS[floor_of(imp.source)][0]}) imports {imp.target} "
        f"({FLOORS[floor_of(imp.target)][0]}) at line {imp.line}"
        for imp in IMPORTS
        if floor_of(imp.target) > floor_of(imp.source)
    ]
    assert upward == []


def test_no_module_imports_tracer_kit_inside_a_function():
    """A module that must not pay a dependency's start-up cost at import declares it with
    ``lazy_module`` at its top (:mod:`tracer_kit.lazy`): seen here, loaded when first used.
    """
    inside = [f"{i.source}:{i.line} {i.text.strip()}" for i in IMPORTS if i.inside_function]
    assert inside == []


def test_no_private_name_is_imported_across_modules():
    private = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tracer_kit"):
                private += [
                    f"{name} imports {a.name} from {node.module}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    assert private == []


def test_importing_tracer_kit_changes_no_process_wide_state():
    code = """
import json, os, sys, warnings
env, filters, modules = dict(os.environ), list(warnings.filters), set(sys.modules)
import tracer_kit
new = sorted(m for m in set(sys.modules) - modules if m.split(".")[0] not in sys.stdlib_module_names)
print(json.dumps({"env": dict(os.environ) == env, "filters": warnings.filters == filters,
                  "modules": new}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == {"env": True, "filters": True, "modules": ["tracer_kit"]}
