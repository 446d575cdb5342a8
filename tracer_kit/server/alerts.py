"""Alerts: rules judged after every run, sent to webhooks, email and the log, never twice.

A rule (``tracer.yaml``'s ``alerts.rules``, or ``POST /api/v1/alerts/rules``) watches one
condition (:data:`~tracer_kit.project.ALERT_CONDITIONS`) per dataset (per schedule
for ``schedule_incomplete``). When it becomes true an alert ``firing`` is sent; while it
stays true nothing more; when a later run makes it false, one ``recovered``. A run the
condition cannot judge (no score, say) changes nothing.

Sending happens on threads of its own, so it never blocks or fails a run: each delivery
is tried ``attempts`` times with doubling backoff, and recorded in the ``alerts`` table
(rule, destination, status, attempts, the last error). A destination's URL is shown by
its origin only (a webhook URL often is its own secret).
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tracer_kit.errors import ConfigError, TracerError
from tracer_kit.project import (
    AlertRule,
    AlertsSection,
    EmailDestination,
    WebhookDestination,
    env_value,
)
from tracer_kit.trends import run_context
from tracer_kit.warehouse import (
    connect,
    delete_row,
    fetched_dicts,
    insert_row,
    table_rows,
    update_row,
    utcnow,
)

__all__ = ["Alerts", "condition_holds", "destination_target"]

log = logging.getLogger("tracer_kit.alerts")

#: Deliveries at once (a hanging webhook holds one thread, not the others).
_SENDERS = 4


def destination_target(destination: Any) -> str:
    """Where a destination sends, safe to show: a URL's origin, an SMTP server and recipients."""
    if isinstance(destination, WebhookDestination):
        if destination.url.startswith("env:"):
            return f"webhook (URL in ${destination.url[4:]})"
        parts = urlsplit(destination.url)
        return (
            f"webhook {parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/…"
        )
    if isinstance(destination, EmailDestination):
        return f"email via {destination.host}:{destination.port} to {', '.join(destination.to)}"
    return "server log"


def condition_holds(rule: AlertRule, context: dict[str, Any]) -> bool | None:
    """Whether a run (with its dataset's past, :func:`~tracer_kit.trends.run_context`) meets
    the rule's condition; None when the run cannot tell (no score, no earlier run).
    """  # noqa: D205
    run, previous = context["run"], context["previous"]
    gate, state, score = bool(run["gate_failed"]), run["state"], run["quality_score"]
    threshold = rule.threshold or 0.0
    if rule.when == "gate_failed":
        return True if gate else (None if state != "COMPLETED" else False)
    if rule.when == "run_failed":
        return None if state == "CANCELLED" else (state == "FAILED" and not gate)
    if rule.when == "score_below":
        return None if score is None else score < threshold
    if rule.when == "score_drop":
        before = previous["quality_score"] if previous else None
        return None if score is None or before is None else before - score > threshold
    if rule.when == "drift":
        psi = context["drift_psi"]
        return None if psi is None else psi > threshold
    if rule.when == "slow_run":
        median, seconds = context["median_seconds"], run["seconds"]
        return None if not median or seconds is None else seconds > threshold * median
    return None


def _what(rule: AlertRule, context: dict[str, Any]) -> str:
    """The firing condition in words, with the numbers."""
    run, previous = context["run"], context["previous"] or {}
    score, threshold = run["quality_score"], rule.threshold or 0.0
    facts: dict[str, Callable[[], str]] = {
        "gate_failed": lambda: f"the quality gate failed (score {score})",
        "run_failed": lambda: f"the run failed: {run['error']}",
        "score_below": lambda: f"score {score} is below {threshold:g}",
        "score_drop": lambda: f"score dropped from {previous.get('quality_score')} to {score}",
        "drift": lambda: (
            f"column {context['drift_column']!r} drifted (PSI {context['drift_psi']:.2f})"
        ),
        "slow_run": lambda: (
            f"took {run['seconds']:.1f} s, over {threshold:g}x the median "
            f"{context['median_seconds']:.1f} s"
        ),
    }
    return facts[rule.when]()


class Alerts:
    """Judges runs and schedule firings against the rules; sends and records alerts."""

    def __init__(
        self,
        section: AlertsSection,
        warehouse: Path,
        *,
        link: Callable[[str], str],
    ) -> None:
        self.section, self.warehouse, self.link = section, warehouse, link
        self.lock = threading.Lock()
        self.firing: dict[tuple[str, str], bool] = {}
        self._slots = threading.BoundedSemaphore(_SENDERS)
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Load which rules are firing, from the alerts already sent."""
        for row in table_rows(self.warehouse, "alerts", order="created_at"):
            subject = row["schedule"] or row["dataset"] or ""
            self.firing[(row["rule"], subject)] = row["event"] == "firing"

    def stop(self, grace: float = 10.0) -> None:
        """Wait (at most ``grace`` seconds) for deliveries under way."""
        end = time.monotonic() + grace
        for thread in list(self._threads):
            thread.join(max(0.0, end - time.monotonic()))

    # ----- rules -----
    def rules(self) -> list[AlertRule]:
        """The project's rules, then those added through the API."""
        added = [
            AlertRule.model_validate(r["rule"])
            for r in table_rows(self.warehouse, "alert_rules", order="created_at")
        ]
        return [*self.section.rules, *added]

    def add_rule(self, rule: AlertRule) -> None:
        """Keep a rule given through the API (its destinations must exist)."""
        names = {*self.section.destinations, "log"}
        unknown = [d for d in rule.send_to if d not in names]
        if unknown:
            raise ConfigError(
                f"send_to: no destination {unknown[0]!r}; tracer.yaml names "
                + ", ".join(sorted(names))
            )
        if any(r.name == rule.name for r in self.rules()):
            raise ConfigError(f"a rule called {rule.name!r} exists")
        row = {"name": rule.name, "rule": rule.model_dump(mode="json"), "created_at": utcnow()}
        insert_row(self.warehouse, "alert_rules", row)

    def remove_rule(self, name: str) -> None:
        """Forget a rule added through the API."""
        if any(r.name == name for r in self.section.rules):
            raise ConfigError(f"rule {name!r} is in tracer.yaml; remove it there")
        if not delete_row(self.warehouse, "alert_rules", name):
            raise ConfigError(f"no rule called {name!r}")

    # ----- judging -----
    def run_ended(self, run_id: str) -> None:
        """Judge a finished run against every rule of its dataset."""
        try:
            context = run_context(run_id, warehouse=self.warehouse)
        except TracerError:
            return
        run = context["run"]
        dataset = run["dataset"] or ""
        for rule in self.rules():
            if rule.when == "schedule_incomplete" or not _applies(rule, dataset):
                continue
            holds = condition_holds(rule, context)
            if holds is not None:
                self._judged(rule, dataset, holds, context, _what(rule, context))

    def firing_ended(self, schedule: dict[str, Any], state: str, why: str) -> None:
        """Judge a schedule's firing (``schedule_incomplete``)."""
        name = schedule["name"]
        runs = schedule.get("last_runs") or []
        context = {"run": {"run_id": runs[-1] if runs else None, "state": state}, "schedule": name}
        what = f"schedule {name!r} did not complete ({why or state.lower().replace('_', ' ')})"
        for rule in self.rules():
            if rule.when == "schedule_incomplete" and _applies(rule, name):
                self._judged(rule, name, state != "COMPLETED", context, what)

    def _judged(
        self, rule: AlertRule, subject: str, holds: bool, context: dict[str, Any], what: str
    ) -> None:
        with self.lock:
            was = self.firing.get((rule.name, subject), False)
            if holds == was:
                return
            self.firing[(rule.name, subject)] = holds
        event = "firing" if holds else "recovered"
        if not holds:
            what = f"recovered from {rule.when.replace('_', ' ')}"
        self._send(rule, subject, event, context, what)

    # ----- sending -----
    def _send(
        self, rule: AlertRule, subject: str, event: str, context: dict[str, Any], what: str
    ) -> None:
        run = context.get("run") or {}
        schedule = context.get("schedule")
        summary = f"{subject}: {what}" + (f" (run {run['run_id']})" if run.get("run_id") else "")
        body = self._body(rule, subject, event, context, summary)
        for name in rule.send_to:
            destination = self.section.destinations.get(name)
            record = {
                "alert_id": uuid.uuid4().hex,
                "created_at": utcnow(),
                "rule": rule.name,
                "event": event,
                "dataset": None if schedule else subject,
                "run_id": run.get("run_id"),
                "schedule": schedule,
                "destination": name,
                "target": destination_target(destination),
                "status": "sending",
                "attempts": 0,
                "summary": summary,
            }
            insert_row(self.warehouse, "alerts", record)
            thread = threading.Thread(
                target=self._deliver,
                args=(record["alert_id"], destination, body),
                name=f"alert-{name}",
                daemon=True,
            )
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _body(
        self, rule: AlertRule, subject: str, event: str, context: dict[str, Any], summary: str
    ) -> dict[str, Any]:
        run = {k: v for k, v in (context.get("run") or {}).items() if k != "gate_failed"}
        run_id = run.get("run_id")
        report = self.link(run_id) if run_id and context.get("schedule") is None else None
        mark = ":rotating_light:" if event == "firing" else ":white_check_mark:"
        text = f"{mark} tracer-kit {event.upper()} [{rule.name}] {summary}"
        return {
            "text": text + (f"\nReport: {report}" if report else ""),
            "event": event,
            "rule": rule.model_dump(mode="json"),
            "subject": subject,
            "schedule": context.get("schedule"),
            "run": json.loads(json.dumps(run, default=str)),
            "issues": _issues(self.warehouse, run_id) if run_id and event == "firing" else [],
            "report_url": report,
            "summary": summary,
        }

    def _deliver(self, alert_id: str, destination: Any, body: dict[str, Any]) -> None:
        with self._slots:
            error, attempts = None, 0
            delay = self.section.backoff_seconds
            for attempts in range(1, self.section.attempts + 1):
                try:
                    self._one(destination, body)
                    error = None
                    break
                except Exception as exc:  # every failure is one line in the record
                    error = _failure(exc)
                    update_row(
                        self.warehouse, "alerts", alert_id, {"attempts": attempts, "error": error}
                    )
                    if attempts < self.section.attempts:
                        time.sleep(delay)
                        delay *= 2
            status = "failed" if error else "sent"
            changes = {"status": status, "attempts": attempts, "error": error}
            if not error:
                changes["sent_at"] = utcnow()
            update_row(self.warehouse, "alerts", alert_id, changes)
            if error:
                log.warning("alert %s not sent after %s attempt(s): %s", alert_id, attempts, error)

    def _one(self, destination: Any, body: dict[str, Any]) -> None:
        timeout = self.section.timeout_seconds
        if isinstance(destination, WebhookDestination):
            _post_webhook(destination, body, timeout)
        elif isinstance(destination, EmailDestination):
            _send_email(destination, body, timeout)
        else:
            log.warning("ALERT %s", body["text"])


def _applies(rule: AlertRule, subject: str) -> bool:
    return rule.datasets is None or subject in rule.datasets


def _issues(warehouse: Path, run_id: str) -> list[dict[str, Any]]:
    """The run's quality issues, most severe first (at most 20)."""
    with connect(warehouse, read_only=True) as con:
        cur = con.execute(
            'SELECT severity, "column", "check", rows_affected, message FROM quality_issues '
            "WHERE run_id = ? ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 "
            "WHEN 'medium' THEN 2 ELSE 3 END, rows_affected DESC NULLS LAST LIMIT 20",
            [run_id],
        )
        return fetched_dicts(cur)


def _failure(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, TimeoutError) or "timed out" in str(exc):
        return "no answer in time (timed out)"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot reach it ({exc.reason})"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook that redirects is a failure: its body (and headers) go to the URL given only."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        raise urllib.error.HTTPError(
            req.full_url, code, f"redirected ({msg}), not followed", headers, fp
        )


def _post_webhook(destination: WebhookDestination, body: dict[str, Any], timeout: float) -> None:
    url = env_value(destination.url, "webhook url")
    headers = {k: env_value(v, f"webhook header {k}") for k, v in destination.headers.items()}
    request = urllib.request.Request(
        url,
        data=json.dumps(body, default=str).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "tracer-kit", **headers},
        method="POST",
    )
    opener = urllib.request.build_opener(_NoRedirect())
    with opener.open(request, timeout=timeout) as answer:
        answer.read(65536)


def _send_email(destination: EmailDestination, body: dict[str, Any], timeout: float) -> None:
    message = EmailMessage()
    message["Subject"] = (
        f"[tracer-kit] {body['event'].upper()} {body['rule']['name']}: {body['subject']}"
    )
    message["From"] = destination.sender
    message["To"] = ", ".join(destination.to)
    lines = [body["summary"], ""]
    if body["report_url"]:
        lines.append(f"Report: {body['report_url']}")
    lines += [f"- {i['severity']} {i['column'] or ''}: {i['message']}" for i in body["issues"]]
    message.set_content("\n".join(lines) + "\n")
    with smtplib.SMTP(destination.host, destination.port, timeout=timeout) as smtp:
        if destination.starttls:
            context = ssl.create_default_context(cafile=destination.ca_file)
            smtp.starttls(context=context)
        if destination.username:
            smtp.login(
                env_value(destination.username, "email username"),
                env_value(destination.password or "", "email password"),
            )
        smtp.send_message(message)
