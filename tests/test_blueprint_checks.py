"""A user blueprint's mistakes are one line naming the blueprint, the feature or field, and the
user's file and line: at load time (``tracer blueprints``) when the code and the declaration
disagree, and at run time when the feature code fails on the data (never "internal error" and a
polars plan). A run's stored error is capped; the whole text stays in its log.
"""

from __future__ import annotations

import subprocess
import textwrap

import pytest

from .conftest import venv_bin

HEAD = """\
import polars as pl
from tracer_kit.blueprints import Blueprint, Feature, Field


def build(valid, ctx):
    return valid.with_columns({features})


BLUEPRINT = Blueprint(
    name="{name}",
    description="orders",
    fields=(
        Field("order_id", "id", required=True),
        Field("amount", "float", required=True),
        Field("cost", "{kind}"),
    ),
    key=("order_id",),
    features=({declared}),
    build_features=build,
)
"""


def _blueprint(root, name, *, features, declared, kind="float"):
    folder = root / "blueprints"
    folder.mkdir(exist_ok=True)
    text = HEAD.format(name=name, features=features, declared=declared, kind=kind)
    (folder / f"{name}.py").write_text(textwrap.dedent(text))
    return folder / f"{name}.py"


def _tracer(root, *args):
    return subprocess.run(
        [venv_bin("tracer"), *args], cwd=root, capture_output=True, text=True, timeout=300
    )


MARGIN = 'Feature("margin", pl.Float64(), "amount - cost"),'


@pytest.mark.parametrize(
    ("kind", "features", "declared", "line", "says"),
    [
        # ("datetime" was the unknown kind here until it became a kind of its own)
        ("timestamp", 'margin=pl.col("amount") - pl.col("cost")', MARGIN, 15,
         "field 'cost': unknown kind 'timestamp'"),
        ("float", 'margin=pl.col("amount") - pl.col("costs")', MARGIN, 5,
         "the feature code reads column 'costs', which no field declares (fields: order_id, amount, cost)"),
        ("float", 'margin=pl.col("amount") - pl.col("cost")', MARGIN + ' Feature("markup", pl.Float64(), "x"),', 5,
         "feature 'markup' is declared but the code does not build it"),
        ("float", 'margin=pl.col("amount") - pl.col("cost"), markup=pl.col("amount") * 2', MARGIN, 5,
         "the code builds 'markup', which no Feature declares"),
    ],
)  # fmt: skip
def test_a_blueprint_that_disagrees_with_its_code_is_refused_when_it_loads(
    workdir, kind, features, declared, line, says
):
    path = _blueprint(
        workdir, f"orders_{line}_{len(says)}", features=features, declared=declared, kind=kind
    )
    done = _tracer(workdir, "blueprints")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert says in lines[0] and f"{path}:{line}" in lines[0]
    assert "internal error" not in lines[0] and "RESOLVED" not in lines[0].upper()


def test_feature_code_failing_on_the_data_is_one_line_and_the_stored_error_is_capped(workdir):
    _blueprint(
        workdir,
        "orders_runtime",
        features='margin=(pl.col("amount") * 1000).cast(pl.Int8, strict=True).cast(pl.Float64)',
        declared=MARGIN,
    )
    rows = "".join(f"A{i},{i}.5,1\n" for i in range(2000))
    (workdir / "orders.csv").write_text("order_id,amount,cost\n" + rows)
    done = _tracer(workdir, "run", "orders.csv", "-b", "orders_runtime", "--no-notebook")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: blueprint 'orders_runtime': its feature code failed (")
    assert "blueprints/orders_runtime.py:5): conversion from `f64` to `i8` failed" in lines[0]
    assert "plan" not in lines[0].lower() and len(lines[0]) < 800
    import tracer_kit as tk

    error = tk.query("SELECT error FROM runs")["error"].item()
    assert error.startswith("blueprint 'orders_runtime': its feature code failed")
    assert len(error) <= 500 + 80  # capped (the failing values listed after it are cut)


def test_a_long_error_is_cut_to_500_characters_where_it_is_stored():
    from tracer_kit.warehouse.runs import MAX_ERROR_CHARS, stored_error

    text = "x" * 2000
    kept = stored_error(text)
    assert kept.startswith("x" * MAX_ERROR_CHARS + "…") and "2,000 characters" in kept
    assert stored_error("short") == "short" and stored_error(None) is None
