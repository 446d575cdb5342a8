"""Edited notebooks are used, reruns say what they repeat, and old runs can be removed cleanly."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

import tracer_kit as tk

from .conftest import venv_bin

pytestmark = pytest.mark.slow


def _tracer(*args, cwd):
    return subprocess.run(
        [venv_bin("tracer"), *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def tiny(workdir):
    from tracer_kit._resources import resource_path

    src = resource_path("tracer_kit/samples/customers_tiny.csv")
    for name in ("crm_2024-05-01.csv", "crm_2024-06-01.csv", "crm_2024-07-01.csv", "other.csv"):
        shutil.copy(src, workdir / name)
    return workdir


def test_edited_notebook_is_run_and_init_keeps_edits(tiny):
    done = _tracer("init", "mine", cwd=tiny)
    assert done.returncode == 0, done.stderr
    nb_path = tiny / "mine" / "notebooks" / "blueprint.ipynb"
    nb = json.loads(nb_path.read_text())
    nb["cells"].append(
        {
            "cell_type": "code",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": ["print('EDITED-' + 'CELL')"],
            "id": "edited-cell",
        }  # fmt: skip
    )
    nb_path.write_text(json.dumps(nb))
    again = _tracer("init", "mine", cwd=tiny)
    assert f"kept your edited {nb_path.relative_to(tiny)}" in again.stdout
    assert "EDITED-" in nb_path.read_text()
    run = _tracer("run", "other.csv", "-b", "customer_churn", "--notebook", str(nb_path), cwd=tiny)
    assert run.returncode == 0, run.stderr
    run_id = tk.query("SELECT run_id FROM runs")["run_id"].item()
    executed = (tiny / "reports" / run_id / "blueprint.ipynb").read_text()
    assert "EDITED-CELL" in executed  # the printed output of the added cell
    forced = _tracer("init", "mine", "--force", cwd=tiny)
    assert forced.returncode == 0 and "EDITED-" not in nb_path.read_text()


def test_rerun_of_a_notebook_run_goes_through_the_notebook(tiny):
    first = tk.run_notebook("other.csv", "customer_churn", return_frame=False)
    done = _tracer("rerun", first.run_id, cwd=tiny)
    assert done.returncode == 0, done.stderr
    assert f"repeats run {first.run_id}" in done.stdout
    runs = tk.query("SELECT run_id, params FROM runs ORDER BY started_at")
    second_id, params = runs.row(1)
    assert json.loads(params)["rerun_of"] == first.run_id
    assert json.loads(params)["run_date"] == first.params["run_date"]
    assert (tiny / "reports" / second_id / "blueprint.ipynb").is_file()


def test_delete_and_prune_remove_rows_and_files_in_one_go(tiny):
    runs = [
        tk.run_pipeline(name, "customer_churn", return_frame=False)
        for name in ("crm_2024-05-01.csv", "crm_2024-06-01.csv", "crm_2024-07-01.csv", "other.csv")
    ]
    # the four files are byte-identical: one bronze load serves them all
    assert tk.query("SELECT count(*) AS n FROM bronze_files")["n"].item() == 1
    dry = _tracer("prune", "--keep-last", "1", "--dataset", "crm", "--dry-run", cwd=tiny)
    assert dry.returncode == 0, dry.stderr
    assert f"would delete run {runs[0].run_id}" in dry.stdout
    assert f"would delete run {runs[1].run_id}" in dry.stdout
    assert "customer_churn / crm: keeps 1, removes 2" in dry.stdout
    # the dry run says what stays too (issue: per dataset what stays and what goes)
    assert f"keep   {runs[2].run_id}" in dry.stdout and f"run {runs[2].run_id}" not in dry.stdout
    assert runs[3].run_id not in dry.stdout  # another dataset, not asked for
    assert tk.query("SELECT count(*) AS n FROM runs")["n"].item() == 4  # nothing went
    done = _tracer("prune", "--keep-last", "1", "--dataset", "crm", cwd=tiny)
    assert done.returncode == 0, done.stderr
    left = tk.query("SELECT run_id FROM runs ORDER BY started_at")["run_id"].to_list()
    assert left == [runs[2].run_id, runs[3].run_id]
    for gone in runs[:2]:
        assert not (tiny / "reports" / gone.run_id).exists()
        assert not (tiny / gone.outputs["parquet"]).exists()
        for table in ("quality_issues", "quarantine_customer_churn", "column_profiles"):
            n = tk.query(f"SELECT count(*) AS n FROM {table} WHERE run_id = '{gone.run_id}'")
            assert n["n"].item() == 0
    processed = tk.query("SELECT count(DISTINCT run_id) AS n FROM customer_churn_processed")
    assert processed["n"].item() == 2
    assert tk.query("SELECT count(*) AS n FROM bronze_customer_churn")["n"].item() == 200
    removal = tk.delete_runs([runs[2].run_id, runs[3].run_id])
    assert removal.bronze_loads == 1  # the last runs over that file: its bronze goes too
    assert tk.query("SELECT count(*) AS n FROM bronze_customer_churn")["n"].item() == 0
    assert not list((tiny / "data" / "bronze").rglob("*.parquet"))
    unknown = _tracer("runs", "delete", "nope", cwd=tiny)
    assert unknown.returncode == 1 and "no run 'nope'" in unknown.stderr


BROKEN = "customer_id,last_activity_date,account_created_date,total_value\n" + "".join(
    f"C{i},someday,never,abc\n" for i in range(20)
)  # every row invalid: the quality gate fails


def test_prune_keeps_the_last_good_run_when_the_newest_failed(tiny):
    good = [
        tk.run_pipeline(name, "customer_churn", return_frame=False)
        for name in ("crm_2024-05-01.csv", "crm_2024-06-01.csv")
    ]
    (tiny / "crm_2024-08-01.csv").write_text(BROKEN)
    with pytest.raises(tk.QualityGateError):
        tk.run_pipeline("crm_2024-08-01.csv", "customer_churn", return_frame=False)
    failed = tk.query("SELECT run_id FROM runs WHERE state = 'FAILED'")["run_id"].item()
    # keep-last counts completed runs only: the failed newest run takes no place
    assert tk.runs_to_prune(keep_last=1) == [good[0].run_id]
    # keep-last 0 still keeps the dataset's last good run, unless asked
    assert tk.runs_to_prune(keep_last=0) == [good[0].run_id]
    assert sorted(tk.runs_to_prune(keep_last=0, include_last_good=True)) == sorted(
        r.run_id for r in good
    )
    # failed runs go separately, by age
    assert tk.runs_to_prune(failed_older_than_days=1) == []
    assert tk.runs_to_prune(failed_older_than_days=0) == [failed]
    dry = _tracer("prune", "--keep-last", "0", "--dry-run", cwd=tiny)
    assert dry.returncode == 0, dry.stderr
    assert "customer_churn / crm: keeps 2, removes 1" in dry.stdout
    assert f"keep   {good[1].run_id} (the last good run)" in dry.stdout
    assert f"keep   {failed}" in dry.stdout
    assert f"would remove {good[0].run_id}" in dry.stdout
    nothing = _tracer("prune", cwd=tiny)
    assert nothing.returncode == 1 and "give --keep-last N" in nothing.stderr
    done = _tracer("prune", "--keep-last", "1", "--failed-older-than", "0", cwd=tiny)
    assert done.returncode == 0, done.stderr
    assert tk.query("SELECT run_id FROM runs")["run_id"].to_list() == [good[1].run_id]
    assert (tiny / good[1].outputs["parquet"]).is_file()


def test_a_run_being_read_is_not_deleted_under_the_reader(tiny):
    import sys

    run = tk.run_pipeline("other.csv", "customer_churn", return_frame=False)
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from tracer_kit.warehouse import reading_run\n"
            f"with reading_run({run.run_id!r}, warehouse='data/warehouse.duckdb'):\n"
            "    print('reading', flush=True); sys.stdin.readline(); time.sleep(1)\n",
        ],  # holds the run until told to let go, so a slow start of `tracer` cannot outlast it
        cwd=tiny,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "reading"
        busy = subprocess.run(
            [venv_bin("tracer"), "runs", "delete", run.run_id],
            cwd=tiny, capture_output=True, text=True, timeout=60,
            env={**__import__("os").environ, "TRACER_LOCK_TIMEOUT": "1"},
        )  # fmt: skip
        assert busy.returncode == 1
        assert busy.stderr.strip().splitlines() == [
            f"error: run {run.run_id} is being read by another process (tracer predict?) and was "
            "not released within 1 s; nothing was deleted, try again when it has finished"
        ]
        assert (tiny / run.outputs["parquet"]).is_file()
        assert tk.query("SELECT count(*) AS n FROM runs")["n"].item() == 1
        reader.stdin.write("done\n")
        reader.stdin.flush()  # the reader lets go a second later; the next delete waits for it
        waited = _tracer("runs", "delete", run.run_id, cwd=tiny)  # waits for the reader
        assert waited.returncode == 0, waited.stderr
        assert reader.wait(timeout=30) == 0
    finally:
        reader.kill()
    assert tk.query("SELECT count(*) AS n FROM runs")["n"].item() == 0
