"""Schedules, the inbox, alerts and the history page: on a real server with a clock the test
turns, a webhook receiver and an SMTP server of its own.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

import tracer_kit as tk
from tracer_kit.cron import check_cron, due_slots, next_due
from tracer_kit.datasets import customers
from tracer_kit.errors import ConfigError
from tracer_kit.project import AlertRule, AlertsSection, load_project_file
from tracer_kit.server.alerts import Alerts, condition_holds

from .alert_receivers import smtp_server, webhook_receiver
from .conftest import venv_bin
from .server_process import RunningServer, running_server

PARIS = ZoneInfo("Europe/Paris")
NO_MODEL = {"model": {"enabled": False}}


# ----- cron, rules and the project file, on their own -----
def test_a_cron_that_does_not_parse_is_one_line_naming_it_and_the_expected_form():
    with pytest.raises(ConfigError) as bad:
        check_cron("0 25 * * *")
    assert str(bad.value) == (
        "cron '0 25 * * *' does not parse (bad hour); expected \"M H DoM Mon DoW\", five "
        'fields, e.g. "0 6 * * *" (06:00 every day)'
    )
    with pytest.raises(ConfigError, match=r"cron 'daily' does not parse \(1 field\)"):
        check_cron("daily")
    assert check_cron(" 0  6 * *   1-5 ") == "0 6 * * 1-5"


def test_cron_is_read_in_the_servers_zone_and_missed_times_are_counted():
    after = dt.datetime(2026, 12, 6, 5, 30, tzinfo=dt.UTC)  # 06:30 in Paris (CET, UTC+1)
    assert next_due("0 6 * * *", after, PARIS) == dt.datetime(2026, 12, 7, 5, 0, tzinfo=dt.UTC)
    assert next_due("0 6 * * *", after, dt.UTC) == dt.datetime(2026, 12, 6, 6, 0, tzinfo=dt.UTC)
    # down from Dec 1 06:00 to Dec 6 06:00 Paris: due Dec 2, 3, 4, 5 and 6
    last, count = due_slots(
        "0 6 * * *",
        dt.datetime(2026, 12, 1, 5, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 6, 5, 0, tzinfo=dt.UTC),
        PARIS,
    )
    assert (last, count) == (dt.datetime(2026, 12, 6, 5, 0, tzinfo=dt.UTC), 5)
    # summer time: 06:00 in Paris is 04:00 UTC
    summer = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)
    assert next_due("0 6 * * *", summer, PARIS) == dt.datetime(2026, 7, 2, 4, 0, tzinfo=dt.UTC)


def _context(**run: object) -> dict:
    base = {
        "run_id": "r",
        "state": "COMPLETED",
        "gate_failed": False,
        "quality_score": 99.0,
        "seconds": 1.0,
        "error": None,
    }
    return {
        "run": {**base, **run},
        "previous": {"quality_score": 99.0},
        "drift_psi": 0.1,
        "drift_column": "x",
        "median_seconds": 1.0,
    }


@pytest.mark.parametrize(
    ("rule", "run", "holds"),
    [
        ({"when": "gate_failed"}, {"state": "FAILED", "gate_failed": True}, True),
        ({"when": "gate_failed"}, {}, False),
        ({"when": "gate_failed"}, {"state": "FAILED", "quality_score": None}, None),
        ({"when": "run_failed"}, {"state": "FAILED", "quality_score": None}, True),
        ({"when": "run_failed"}, {"state": "FAILED", "gate_failed": True}, False),
        ({"when": "run_failed"}, {"state": "CANCELLED"}, None),
        ({"when": "score_below", "threshold": 90}, {"quality_score": 89.99}, True),
        ({"when": "score_below", "threshold": 90}, {"quality_score": 90.0}, False),
        ({"when": "score_drop", "threshold": 2}, {"quality_score": 96.9}, True),
        ({"when": "score_drop", "threshold": 2}, {"quality_score": 97.0}, False),
        ({"when": "slow_run"}, {"seconds": 3.01}, True),
        ({"when": "slow_run"}, {"seconds": 3.0}, False),
    ],
)
def test_each_condition_judges_a_run_by_its_numbers(rule: dict, run: dict, holds: bool | None):
    assert condition_holds(AlertRule(name="r", **rule), _context(**run)) is holds


def test_drift_is_judged_on_the_largest_psi_and_unknown_without_an_earlier_run():
    rule = AlertRule(name="d", when="drift")
    assert rule.threshold == 0.25
    assert condition_holds(rule, {**_context(), "drift_psi": 0.26}) is True
    assert condition_holds(rule, {**_context(), "drift_psi": 0.25}) is False
    assert condition_holds(rule, {**_context(), "drift_psi": None}) is None


def test_the_project_file_takes_secrets_only_from_the_environment(tmp_path: Path):
    (tmp_path / "tracer.yaml").write_text(
        "alerts:\n  destinations:\n    mail: {type: email, host: smtp.example.com, "
        "password: hunter2, sender: a@example.com, to: [b@example.com]}\n"
    )
    with pytest.raises(ConfigError) as bad:
        load_project_file(tmp_path)
    message = str(bad.value)
    assert "tracer.yaml" in message and "env:NAME" in message and "hunter2" not in message
    (tmp_path / "tracer.yaml").write_text(
        "alerts:\n  rules:\n    - {name: gate, when: gate_failed, send_to: [slack]}\n"
    )
    with pytest.raises(ConfigError, match="rule 'gate' sends to 'slack'; destinations: log"):
        load_project_file(tmp_path)
    (tmp_path / "tracer.yaml").write_text("thresholds: {min_score: 101}\n")
    with pytest.raises(ConfigError, match="tracer.yaml: .*min_score"):
        load_project_file(tmp_path)


# ----- alerts judged on real runs, sent to a real receiver -----
def _run(path: Path, **config: object) -> str:
    try:
        result = tk.run_pipeline(path, "customer_churn", config={**NO_MODEL, **config})
    except tk.QualityGateError as exc:
        result = exc.result
    return result.run_id


def _wait(predicate, timeout: float = 60, what: str = "") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_slow_run_fires_once_and_recovers_and_a_webhook_that_hangs_is_recorded_failed(
    workdir: Path,
):
    small = [workdir / f"c_{i}.csv" for i in range(4)]
    for i, path in enumerate(small):
        customers(1_000, seed=i, label=True).write_csv(path)
    big = workdir / "c_big.csv"
    customers(300_000, seed=9, label=True).write_csv(big)
    warehouse = workdir / "data" / "warehouse.duckdb"
    with webhook_receiver() as hook, webhook_receiver() as stuck:
        stuck.hang = 100
        section = AlertsSection.model_validate(
            {
                "attempts": 2,
                "backoff_seconds": 0.1,
                "timeout_seconds": 0.5,
                "destinations": {
                    "hook": {"type": "webhook", "url": hook.url},
                    "stuck": {"type": "webhook", "url": stuck.url},
                },
                "rules": [{"name": "slow", "when": "slow_run", "send_to": ["hook", "stuck"]}],
            }
        )
        alerts = Alerts(section, warehouse, link=lambda run_id: f"http://x/reports/{run_id}")
        alerts.start()
        order = [*small[:3], big, small[3]]
        ids = [_run(p, output={"dataset": "c"}) for p in order]
        for run_id in ids:
            alerts.run_ended(run_id)
        alerts.stop(grace=30)
    # three quick runs make the median; the big one is over 3x it; the next is quick again
    assert hook.events() == [("slow", "firing", "c"), ("slow", "recovered", "c")]
    assert hook.received[0]["run"]["run_id"] == ids[3]
    assert hook.received[0]["text"].startswith(":rotating_light: tracer-kit FIRING [slow] c:")
    assert hook.received[0]["report_url"] == f"http://x/reports/{ids[3]}"
    sent = tk.query(
        "SELECT destination, event, status, attempts, error FROM alerts ORDER BY created_at, destination"
    )
    assert sent.rows() == [
        ("hook", "firing", "sent", 1, None),
        ("stuck", "firing", "failed", 2, "no answer in time (timed out)"),
        ("hook", "recovered", "sent", 1, None),
        ("stuck", "recovered", "failed", 2, "no answer in time (timed out)"),
    ]
    assert tk.query("SELECT count(*) AS n FROM runs WHERE state = 'COMPLETED'")["n"].item() == 5
