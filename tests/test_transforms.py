"""Field transforms and personal data: values changed as declared, counted, and never shown."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import polars as pl
import pytest

import tracer_kit as tk

HEADER = "customer_id,last_activity_date,account_created_date,total_value,support_tickets,feature_usage_count,plan_type"
ROWS = [
    " c1 ,2024-05-01,2023-01-01,10,1,3, Basic ",
    "C2,2024-05-02,2023-01-01,11,1,3,PREMIUM",
    "c1,2024-05-03,2023-01-01,12,1,3,",
    "C3,2024-05-04,2023-01-01,-1,1,3,standard",
]
KEY = "a test key, not a real one"
CONFIG = {
    "transforms": {
        "customer_id": ["trim", "upper", "pseudonymise"],
        "plan_type": ["trim", "lower", "default=basic"],
    },
    "thresholds": {"max_high": 5, "min_score": 0},
}


def _hash(value: str) -> str:
    return hmac.new(KEY.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]


@pytest.fixture
def crm(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRACER_PSEUDONYMISE_KEY", KEY)
    path = workdir / "crm.csv"
    path.write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")
    return path


def test_transforms_change_values_before_the_checks_and_are_counted(crm):
    r = tk.run_pipeline(crm, "customer_churn", config=CONFIG)
    # trim + upper make row 3's "c1" a repeat of row 1's " c1 "; C3 is out of range
    assert (r.rows_in, r.rows_valid, r.rows_quarantined) == (4, 2, 2)
    reasons = tk.query(
        "SELECT source_row, reasons FROM quarantine_customer_churn ORDER BY 1"
    ).rows()
    assert reasons == [(3, ["duplicate_id"]), (4, ["out_of_range"])]
    assert r.params["transforms"] == [
        {"field": "customer_id", "transform": "trim", "changed": 1},
        {"field": "customer_id", "transform": "upper", "changed": 2},
        {"field": "customer_id", "transform": "pseudonymise", "changed": 4},
        {"field": "plan_type", "transform": "trim", "changed": 1},
        {"field": "plan_type", "transform": "lower", "changed": 2},
        {"field": "plan_type", "transform": "default=basic", "changed": 1},
    ]
    processed = r.frame.sort("source_row")
    assert processed["plan_type"].to_list() == ["basic", "premium"]
    assert processed["customer_id"].to_list() == [_hash("C1"), _hash("C2")]
    assert r.params["personal"] == ["customer_id"]


def test_personal_values_never_reach_the_report_or_the_warehouse_views(crm):
    r = tk.run_pipeline(crm, "customer_churn", config=CONFIG)
    html = Path(r.outputs["report"]).read_text(encoding="utf-8")
    assert "Field transforms" in html and "default=basic" in html
    assert "(hidden: personal)" in html  # the quarantined rows' raw records
    for raw in ('"customer_id": "C3"', '"customer_id": "c1"', _hash("C1")):
        assert raw not in html
    profile = tk.query(
        'SELECT "min", "max", hist_edges::VARCHAR FROM column_profiles WHERE "column" = \'customer_id\''
    ).row(0)
    assert profile == (None, None, "[]")
    # the key is never written anywhere
    runs = tk.query("SELECT params::VARCHAR AS p FROM runs")["p"].to_list()
    assert all(KEY not in p for p in runs)
    assert KEY not in Path(r.outputs["log"]).read_text(encoding="utf-8")


def test_issue_examples_of_a_personal_field_carry_positions_only(crm):
    q = tk.validate(crm, "customer_churn", config=CONFIG)
    dup = next(i for i in q.issues if i.check == "uniqueness")
    assert dup.examples and all("value" not in e for e in dup.examples)
    assert {"source_row", "source_line"} <= set(dup.examples[0])


def test_pseudonymise_without_a_key_is_one_clear_error(crm, monkeypatch):
    monkeypatch.delenv("TRACER_PSEUDONYMISE_KEY")
    with pytest.raises(
        tk.ConfigError, match="pseudonymise transform needs a key: set TRACER_PSEUDONYMISE_KEY"
    ):
        tk.validate(crm, "customer_churn", config=CONFIG)


def test_the_key_may_come_from_the_config_and_is_not_saved(crm, monkeypatch):
    monkeypatch.delenv("TRACER_PSEUDONYMISE_KEY")
    cfg = tk.Config(**CONFIG, pseudonymise_key=KEY)
    assert KEY not in json.dumps(cfg.model_dump(mode="json")) and KEY not in repr(cfg)
    q = tk.validate(crm, "customer_churn", config=cfg)
    assert q.valid.sort("source_row")["customer_id"].to_list() == [_hash("C1"), _hash("C2")]


@pytest.mark.parametrize(
    ("transforms", "message"),
    [
        ({"plan_type": ["shout"]}, "unknown transform 'shout' for field 'plan_type'; known: trim"),
        (
            {"plan_type": ["default"]},
            "transform 'default' for field 'plan_type' is written default=VALUE",
        ),
        ({"plan_type": ["trim=1"]}, "transform 'trim' for field 'plan_type' is written trim"),
        ({"total_value": ["pseudonymise"]}, "field 'total_value' is a float; only text fields"),
        ({"plan": ["trim"]}, "name field(s) 'plan' that blueprint 'customer_churn' does not have"),
    ],
)
def test_bad_transforms_are_one_clear_error(crm, transforms, message):
    with pytest.raises(tk.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tk.validate(crm, "customer_churn", config={"transforms": transforms})


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("trim", "  a b  ", "a b"),
        ("collapse_spaces", "a  \t b", "a b"),
        ("lower", "AbC", "abc"),
        ("upper", "AbC", "ABC"),
        ("email", " MAILTO:Ann@Example.COM ", "ann@example.com"),
        ("strip_html", "<b>Tom &amp; Jerry</b>&nbsp;<i>x</i>", "Tom & Jerry x"),
        ("default=basic", "  ", "basic"),
        ("default=basic", "premium", "premium"),
    ],
)
def test_each_built_in_transform(name, value, expected):
    from tracer_kit.quality.transforms import parse_step

    step = parse_step("f", name)
    out = pl.DataFrame({"f": [value]}).select(step.transform.apply(pl.col("f"), step.argument))
    assert out.item() == expected


def test_cli_options_build_the_same_config(workdir):
    from tracer_kit.cli import build_config

    (workdir / "tracer.yaml").write_text(
        "transforms:\n  plan_type: [trim]\npii: [customer_id]\npseudonymise_key: from-the-file\n"
    )
    cfg = build_config(
        workdir / "tracer.yaml",
        transforms=["customer_id=trim,upper,pseudonymise", "plan_type=lower,default=basic"],
        pii=["customer_id"],
    )
    assert cfg.quality.transforms == {
        "plan_type": ["lower", "default=basic"],
        "customer_id": ["trim", "upper", "pseudonymise"],
    }
    assert cfg.quality.pii == ["customer_id"]
    assert cfg.pseudonymise_key.get_secret_value() == "from-the-file"
    with pytest.raises(
        tk.ConfigError, match="--transform 'plan_type' should look like FIELD=STEP,STEP"
    ):
        build_config(None, transforms=["plan_type"])


@pytest.mark.slow
def test_tracer_run_with_transforms_from_the_command_line(crm):
    import subprocess

    from .conftest import venv_bin

    (crm.parent / "cfg.json").write_text('{"thresholds": {"max_high": 5}}')
    args = ["--config", "cfg.json", "--transform", "plan_type=trim,lower", "--pii", "customer_id"]
    done = subprocess.run(
        [venv_bin("tracer"), "run", str(crm), "-b", "customer_churn", "--no-notebook", *args],
        cwd=crm.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    counts = tk.query("SELECT params.transforms::VARCHAR AS t FROM runs").item()
    assert json.loads(counts) == [
        {"field": "plan_type", "transform": "trim", "changed": 1},
        {"field": "plan_type", "transform": "lower", "changed": 2},
    ]


def test_a_bad_transform_is_reported_before_a_notebook_kernel_starts(crm, monkeypatch):
    from tracer_kit.quality import check_compatible

    bp = tk.get_blueprint("customer_churn")
    with pytest.raises(tk.ConfigError, match="unknown transform 'shout'"):
        check_compatible(crm, bp, tk.Config(transforms={"plan_type": ["shout"]}))
    monkeypatch.delenv("TRACER_PSEUDONYMISE_KEY")
    with pytest.raises(tk.ConfigError, match="needs a key"):
        check_compatible(crm, bp, tk.Config(**CONFIG))
