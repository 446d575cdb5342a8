"""Trust: credentials stay with their origin, read-only means read-only, housekeeping keeps the
last good run, limits hold while reading, secrets are hidden, backups come back.

Each test names the item of the trust contract (docs/contracts.md, "Trust") it proves.
"""

from __future__ import annotations

import re

import polars as pl
import pytest

import tracer_kit as tk

from .api_server import TOKEN, running_api
from .test_api_source import RECORDS


@pytest.fixture(scope="module")
def two_origins():
    """The same API twice: on 127.0.0.1 (the user's origin) and on 127.0.0.2 (another one)."""
    with running_api(RECORDS) as home, running_api(RECORDS, host="127.0.0.2") as away:
        yield home, away


def _token_env(monkeypatch):
    monkeypatch.setenv("CRM_TOKEN", TOKEN)
    return {"token_env": "CRM_TOKEN", "records_path": "data", "backoff": 0.05}


def test_a_redirect_to_another_origin_is_followed_without_the_token(two_origins, monkeypatch):
    home, away = two_origins
    target = away.url("/auth/customers")
    with pytest.raises(tk.IngestError, match="HTTP 401"):  # away wants the token: never given
        tk.read_table(
            home.url(f"/away-redirect?to={target}"), api=tk.ApiOptions(**_token_env(monkeypatch))
        )
    assert home.hits("/away-redirect")[-1]["auth"] == f"Bearer {TOKEN}"
    assert [h["auth"] for h in away.hits("/auth/customers")] == [None]


def test_a_redirect_on_the_same_origin_keeps_the_token(two_origins, monkeypatch):
    home, _ = two_origins
    ing = tk.read_table(
        home.url(f"/away-redirect?to={home.url('/auth/customers')}"),
        api=tk.ApiOptions(**_token_env(monkeypatch)),
    )
    assert ing.info.row_count == 10
    assert home.hits("/auth/customers")[-1]["auth"] == f"Bearer {TOKEN}"


def test_a_next_link_to_another_origin_goes_without_the_token(two_origins, monkeypatch):
    home, away = two_origins
    before = len(away.hits("/cursor"))
    ing = tk.read_table(
        home.url(f"/away-link?to={away.url('/cursor?cursor=3')}"),
        api=tk.ApiOptions(paginate="next-link", **_token_env(monkeypatch)),
    )
    assert ing.frame.collect()["customer_id"].to_list()[:4] == ["C001", "C002", "C003", "C004"]
    assert home.hits("/away-link")[-1]["auth"] == f"Bearer {TOKEN}"
    assert [h["auth"] for h in away.hits("/cursor")[before:]] == [None]


def test_same_origin_refuses_a_redirect_or_link_elsewhere_in_one_line(two_origins, monkeypatch):
    home, away = two_origins
    opts = tk.ApiOptions(same_origin=True, **_token_env(monkeypatch))
    before = len(away.log)
    with pytest.raises(tk.IngestError, match="redirects to another origin .*--same-origin"):
        tk.read_table(home.url(f"/away-redirect?to={away.url('/cursor')}"), api=opts)
    linked = tk.ApiOptions(same_origin=True, paginate="next-link", **_token_env(monkeypatch))
    with pytest.raises(tk.IngestError, match="links to another origin .*--same-origin"):
        tk.read_table(home.url(f"/away-link?to={away.url('/cursor')}"), api=linked)
    assert len(away.log) == before  # nothing reached the other origin


# --------------------------------------------------------------------------- a project with one run


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A folder with one completed customer_churn run (no model: quick)."""
    from tracer_kit.datasets import write_samples

    root = tmp_path_factory.mktemp("project")
    sample = next(p for p in write_samples(root / "samples") if p.name == "customers.csv")
    result = tk.run_pipeline(
        sample,
        "customer_churn",
        config={"model": {"enabled": False}},
        warehouse=root / "data" / "warehouse.duckdb",
        output_dir=root / "reports",
        processed_dir=root / "data" / "processed",
        return_frame=False,
    )
    assert result.state == "COMPLETED"
    return root, result


def _tracer(root, *args):
    import subprocess

    from .conftest import venv_bin

    return subprocess.run(
        [venv_bin("tracer"), *args], cwd=root, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("COPY runs TO 'x.csv'", "COPY statements are not allowed"),
        ("EXPORT DATABASE 'dump'", "EXPORT statements are not allowed"),
        ("INSTALL httpfs", "statements are not allowed"),
        ("ATTACH 'other.duckdb' AS o", "ATTACH statements are not allowed"),
        ("SET enable_external_access = true", "SET statements are not allowed"),
        ("SELECT 1; SELECT 2", "give one SQL statement (got 2)"),
        ("SELECT * FROM read_csv('/etc/passwd')", "file system operations are disabled"),
        ("SELECT * FROM read_text('samples/customers.csv')", "file system operations are disabled"),
    ],
)
def test_a_query_only_reads_the_warehouse(project, sql, says):
    root, _ = project
    with pytest.raises(tk.TracerError, match=re.escape(says)):
        tk.query(sql, warehouse=root / "data" / "warehouse.duckdb")
    assert not (root / "x.csv").exists() and not (root / "dump").exists()


def test_a_query_still_reads_the_runs_files_through_the_views(project):
    root, result = project
    rows = tk.query(
        "SELECT count(*) AS n FROM customer_churn_processed",
        warehouse=root / "data/warehouse.duckdb",
    )
    assert rows["n"][0] == result.rows_out == 9750  # the sample's 10,000 rows less 250 quarantined


def test_query_out_never_overwrites_the_warehouse_a_runs_files_or_a_file(project):
    root, result = project
    warehouse = root / "data" / "warehouse.duckdb"
    before = warehouse.read_bytes()
    processed = result.outputs.parquet
    for target, says in [
        ("data/warehouse.duckdb", "is the warehouse itself"),
        (str(processed), "holds tracer's run files"),
        (f"reports/{result.run_id}/extra.csv", "holds tracer's run files"),
    ]:
        done = _tracer(root, "query", "SELECT 1 AS one", "--out", target, "--force")
        assert done.returncode == 1 and says in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert warehouse.read_bytes() == before
    (root / "mine.csv").write_text("precious\n")
    done = _tracer(root, "query", "SELECT 1 AS one", "--out", "mine.csv")
    assert done.returncode == 1 and "mine.csv exists; add --force" in done.stderr
    assert (root / "mine.csv").read_text() == "precious\n"
    done = _tracer(root, "query", "SELECT 1 AS one", "--out", "mine.csv", "--force")
    assert done.returncode == 0 and (root / "mine.csv").read_text() == "one\n1\n"


FORMULAS = "SELECT '=HYPERLINK(\"http://x\")' AS a, e'\\t=1+1' AS b, '+A1*2' AS c, '@SUM(A1)' AS d, -5 AS n, '-12.5' AS t, 'plain' AS p"


def test_csv_and_excel_cells_never_run_as_formulas(project):
    root, _ = project
    done = _tracer(root, "query", FORMULAS, "--out", "cells.csv")
    assert done.returncode == 0, done.stderr
    lines = (root / "cells.csv").read_text().splitlines()
    cells = pl.read_csv(root / "cells.csv", infer_schema=False).row(0)
    assert cells == (
        '\'=HYPERLINK("http://x")',
        "'\t=1+1",
        "'+A1*2",
        "'@SUM(A1)",
        "-5",
        "-12.5",
        "plain",
    )
    raw = _tracer(root, "query", FORMULAS, "--out", "raw.csv", "--raw-cells")
    assert raw.returncode == 0 and (root / "raw.csv").read_text().splitlines()[1].startswith(
        '"=HYPERLINK'
    )
    done = _tracer(root, "query", FORMULAS, "--out", "cells.xlsx")
    assert done.returncode == 0, done.stderr
    import openpyxl

    sheet = openpyxl.load_workbook(root / "cells.xlsx").active
    values = [c.value for c in sheet[2]]
    assert values == [
        '\'=HYPERLINK("http://x")',
        "'\t=1+1",
        "'+A1*2",
        "'@SUM(A1)",
        -5,
        "-12.5",
        "plain",
    ]
    assert all(c.data_type != "f" for c in sheet[2])  # no cell is a formula
    stdout = _tracer(root, "query", FORMULAS, "--output-format", "csv")
    assert stdout.stdout.splitlines()[1] == lines[1]


# --------------------------------------------------------------------------- secrets


def test_a_password_with_an_at_sign_is_hidden_whole():
    from tracer_kit.connections import parse_database_url, redact

    assert (
        redact("postgresql://u:PW@PW@db.example:5432/crm")
        == "postgresql://u:***@db.example:5432/crm"
    )
    assert parse_database_url("postgresql://u:p@ss@127.0.0.1:1/crm").display() == (
        "postgresql://u:***@127.0.0.1:1/crm"
    )
    assert redact("see https://ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9@github.example/x") == (
        "see https://***@github.example/x"
    )


SECRETS = {
    "auth": "Au7hValue",
    "pwd": "Pwd-Value-1",
    "jwt": "eyJhbGciOi.eyJzdWIi.sig",
    "code": "0authC0de",
    "tenant_ref": "MyOwnSecret42",  # named by --secret-param
    "page_size": "aB3dE5fG7hJ9kL1mN3pQ5rS7",  # no secret name, but it looks random
}


def test_every_planted_secret_is_masked_in_every_file_and_output(two_origins, tmp_path):
    home, _ = two_origins
    query = "&".join(f"{k}={v}" for k, v in SECRETS.items())
    url = home.url(f"/cursor?{query}")
    done = _tracer(
        tmp_path, "run", url, "-b", "customer_churn", "--records-path", "data",
        "--paginate", "cursor", "--reference-date", "2024-07-01", "--no-notebook", "--no-model",
        "--secret-param", "tenant_ref",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = done.stdout + done.stderr
    run_id = tk.query("SELECT run_id FROM runs", warehouse=tmp_path / "data/warehouse.duckdb")
    assert run_id.height == 1
    shown = _tracer(tmp_path, "runs", "show", run_id["run_id"][0])
    printed += shown.stdout + shown.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".duckdb" for p in files) and any(p.name == "report.html" for p in files)
    for name, secret in SECRETS.items():
        assert secret not in printed, name
        leaks = [str(p) for p in files if secret.encode() in p.read_bytes()]
        assert leaks == [], (name, leaks)
    assert (
        f"{home.url('/cursor')}?auth=***&pwd=***&jwt=***&code=***&tenant_ref=***&page_size=***"
        in shown.stdout
    )


# --------------------------------------------------------------------------- personal data at rest

KEY = "7f" * 32  # 32 bytes as 64 hex digits


def _ids(path):
    """The raw customer ids of a churn file: C000001..."""
    return pl.read_csv(path, infer_schema=False)["customer_id"].drop_nulls().to_list()


def test_personal_values_are_encrypted_at_rest_and_revealed_only_with_the_key(workdir, monkeypatch):
    from tracer_kit._resources import resource_path

    src = resource_path("tracer_kit/samples/customers_tiny.csv")
    monkeypatch.setenv("TRACER_ENCRYPTION_KEY", KEY)
    run = tk.run_pipeline(
        src, "customer_churn", config={"pii": ["customer_id"], "model": {"enabled": False}}
    )
    ids = _ids(src)
    stored = [
        p for p in (workdir / "data").rglob("*") if p.is_file() and "processed" not in p.parts
    ]
    assert any(p.suffix == ".duckdb" for p in stored) and any("bronze" in p.parts for p in stored)
    for p in stored:  # bronze, quarantine (in the warehouse) and every other stored file
        body = p.read_bytes()
        assert not [i for i in ids if i.encode() in body], p
    raw = tk.query("SELECT raw::VARCHAR AS raw FROM quarantine_customer_churn")["raw"][0]
    assert '"customer_id":"enc:v1:' in raw.replace(" ", "")
    revealed = tk.reveal(run.run_id)
    assert revealed.height == run.rows_quarantined == 5
    assert set(
        pl.Series([__import__("json").loads(r)["customer_id"] for r in revealed["raw"]])
    ) <= set(ids)
    bronze = tk.reveal(run.run_id, what="bronze")
    assert (
        bronze.height == 200 and __import__("json").loads(bronze["raw"][0])["customer_id"] == ids[0]
    )
    monkeypatch.setenv("TRACER_ENCRYPTION_KEY", "0a" * 32)
    with pytest.raises(tk.TracerError, match="not the one run .* was encrypted with"):
        tk.reveal(run.run_id)
    monkeypatch.delenv("TRACER_ENCRYPTION_KEY")
    with pytest.raises(tk.TracerError, match="set TRACER_ENCRYPTION_KEY"):
        tk.reveal(run.run_id)


def test_without_a_key_personal_values_are_pseudonymised_in_bronze(workdir, monkeypatch):
    from tracer_kit._resources import resource_path

    src = resource_path("tracer_kit/samples/customers_tiny.csv")
    monkeypatch.delenv("TRACER_ENCRYPTION_KEY", raising=False)
    run = tk.run_pipeline(
        src, "customer_churn", config={"pii": ["customer_id"], "model": {"enabled": False}}
    )
    assert run.params["personal_at_rest"] == {"mode": "pseudonymised", "columns": ["customer_id"]}
    bronze = tk.query("SELECT raw::VARCHAR AS raw FROM bronze_customer_churn ORDER BY source_row")
    first = __import__("json").loads(bronze["raw"][0])["customer_id"]
    assert re.fullmatch(r"tok:[0-9a-f]{32}", first)
    with pytest.raises(tk.TracerError, match="its values were pseudonymised"):
        tk.reveal(run.run_id)


def test_predict_with_another_pseudonymisation_key_is_one_clear_error(
    project, monkeypatch, tmp_path
):
    root, _ = project
    monkeypatch.chdir(root)
    monkeypatch.setenv("TRACER_PSEUDONYMISE_KEY", "training-key")
    cfg = {
        "transforms": {"customer_id": ["pseudonymise"]},
        "model": {"candidates": ["logistic_regression"]},
    }
    trained = tk.run_pipeline(
        "samples/customers.csv",
        "customer_churn",
        config=cfg,
        warehouse="data/warehouse.duckdb",
        output_dir="reports",
        processed_dir="data/processed",
    )
    assert trained.params["pseudonymise_key_fingerprint"]
    monkeypatch.setenv("TRACER_PSEUDONYMISE_KEY", "another-key")
    with pytest.raises(tk.ConfigError, match="not the one run .* was trained with"):
        tk.predict(trained.run_id, "samples/customers.csv", warehouse="data/warehouse.duckdb")


# --------------------------------------------------------------------------- backup, verify, restore, rebuild


def _two_runs(workdir):
    from tracer_kit._resources import resource_path

    src = resource_path("tracer_kit/samples/customers_tiny.csv")
    for name in ("crm_2024-05-01.csv", "crm_2024-06-01.csv"):
        (workdir / name).write_bytes(
            src.read_bytes().replace(b"C0000", name[8:12].encode()[:2] + b"00")
        )
    return [
        tk.run_pipeline(
            name, "customer_churn", config={"model": {"enabled": False}}, return_frame=False
        )
        for name in ("crm_2024-05-01.csv", "crm_2024-06-01.csv")
    ]


def _counts():
    return {
        t: tk.query(f"SELECT count(*) AS n FROM {t}")["n"].item()
        for t in ("runs", "customer_churn_processed", "quarantine_customer_churn", "quality_issues",
                  "column_profiles", "bronze_customer_churn")
    }  # fmt: skip


def test_a_damaged_warehouse_names_the_way_back(workdir):
    runs = _two_runs(workdir)
    warehouse = workdir / "data" / "warehouse.duckdb"
    warehouse.write_bytes(warehouse.read_bytes()[:4])  # truncated
    for args in (["runs"], ["query", "SELECT 1"], ["report", runs[0].run_id]):
        done = _tracer(workdir, *args)
        assert done.returncode == 1 and "internal error" not in done.stderr, done.stderr
        line = done.stderr.strip().splitlines()
        assert len(line) == 1 and "is damaged" in line[0]
        for command in ("tracer verify", "tracer restore BACKUP", "tracer rebuild"):
            assert command in line[0]


def test_backup_verify_and_restore_bring_everything_back(workdir):
    _two_runs(workdir)
    before = _counts()
    assert before["runs"] == 2 and before["customer_churn_processed"] == 2 * 195
    checked = tk.verify()
    assert checked.ok and checked.orphans == [] and checked.checked >= 8
    first = tk.backup(keep=2)
    assert (first.path / "manifest.json").is_file() and first.files >= 8
    second, third = tk.backup(keep=2), tk.backup(keep=2)
    assert third.removed == (first.path,) and not first.path.exists() and second.path.exists()
    # a run file changed behind tracer's back is found, and so is a stray file
    processed = next((workdir / "data" / "processed").rglob("*-*.parquet"))
    processed.write_bytes(processed.read_bytes()[:-10] + b"0123456789")
    (workdir / "data" / "processed" / "customer_churn" / "stray.parquet").write_bytes(b"x")
    found = tk.verify()
    assert not found.ok and any("changed since its run wrote it" in p for p in found.problems)
    assert [p.name for p in found.orphans] == ["stray.parquet"]
    done = _tracer(workdir, "verify")
    assert done.returncode == 1 and "failed verification" in done.stderr
    # the warehouse is lost: restore puts back the warehouse and the changed file
    warehouse = workdir / "data" / "warehouse.duckdb"
    warehouse.write_bytes(b"garbage")
    moved = tk.restore(third.path)
    assert moved is not None and moved.read_bytes() == b"garbage"  # kept aside, not deleted
    assert _counts() == before and tk.verify().ok


def test_a_backup_that_does_not_match_its_manifest_is_refused(workdir):
    _two_runs(workdir)
    taken = tk.backup()
    copy = next((taken.path / "files").rglob("*.parquet"))
    copy.write_bytes(b"tampered")
    before = (workdir / "data" / "warehouse.duckdb").read_bytes()
    with pytest.raises(tk.TracerError, match="is missing or changed"):
        tk.restore(taken.path)
    assert (workdir / "data" / "warehouse.duckdb").read_bytes() == before


def test_rebuild_recovers_every_completed_run_from_its_files(workdir):
    runs = _two_runs(workdir)
    (workdir / "crm_2024-08-01.csv").write_text("customer_id,last_activity_date\n1,never\n")
    with pytest.raises(tk.TracerError):
        tk.run_pipeline("crm_2024-08-01.csv", "customer_churn", return_frame=False)
    before = _counts()
    warehouse = workdir / "data" / "warehouse.duckdb"
    warehouse.write_bytes(b"\x00" * 100)
    done = _tracer(workdir, "rebuild")
    assert done.returncode == 0, done.stderr
    assert (
        f"recovered {runs[0].run_id}" in done.stdout
        and f"recovered {runs[1].run_id}" in done.stdout
    )
    assert "2 run(s) recovered, 0 not" in done.stdout
    after = _counts()
    assert after == {**before, "runs": 2}  # the failed run (no processed rows) is not recoverable
    row = tk.query(f"SELECT quality_score, rows_valid FROM runs WHERE run_id = '{runs[1].run_id}'")
    assert row.row(0) == (runs[1].quality_score, 195)
    assert tk.verify().ok
