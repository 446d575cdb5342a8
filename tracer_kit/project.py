"""``tracer.yaml`` at the project root: the server's settings, its inbox and its alerts.

The file holds the same keys as a ``--config`` file (the defaults of every run the server
starts by itself, from a schedule or the inbox) plus three sections::

    server:  {workers: 2, queue: 20, timezone: Europe/Paris, public_url: https://...}
    inbox:   {folder: data/inbox, settle_seconds: 2}
    alerts:
      destinations:
        ops:  {type: webhook, url: env:SLACK_WEBHOOK_URL}
        mail: {type: email, host: smtp.example.com, port: 587, username: env:SMTP_USER,
               password: env:SMTP_PASSWORD, sender: tracer@example.com, to: [data@example.com]}
      rules:
        - {name: gate, when: gate_failed, send_to: [ops, mail]}
        - {name: low_score, when: score_below, threshold: 90, send_to: [ops]}

A secret (a password, a webhook URL that is one) is given as ``env:NAME``, never written
in the file; :meth:`Destination.resolved` reads it when an alert is sent.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tracer_kit.config import load_config, validation_message
from tracer_kit.errors import ConfigError

__all__ = [
    "ALERT_CONDITIONS",
    "PROJECT_FILE",
    "AlertRule",
    "AlertsSection",
    "EmailDestination",
    "InboxSection",
    "LogDestination",
    "ProjectFile",
    "ServerSection",
    "WebhookDestination",
    "env_value",
    "load_project_file",
]

#: The project's settings file, at the project root.
PROJECT_FILE = "tracer.yaml"

#: Each condition an alert rule can watch: (what it says, its threshold's meaning, default).
ALERT_CONDITIONS: dict[str, tuple[str, str | None, float | None]] = {
    "gate_failed": ("the run stopped at its quality gate", None, None),
    "run_failed": ("the run failed for a reason other than its gate", None, None),
    "score_below": ("the quality score is below the threshold", "score (0-100)", None),
    "score_drop": (
        "the score dropped by more than the threshold against the dataset's previous run",
        "points",
        None,
    ),
    "drift": ("a column drifted: PSI above the threshold", "PSI", 0.25),
    "schedule_incomplete": ("a scheduled run did not complete (or found no new file)", None, None),
    "slow_run": (
        "the run took more than the threshold times its dataset's median",
        "times the median",
        3.0,
    ),
}


def env_value(reference: str, where: str) -> str:
    """The value an ``env:NAME`` reference names (a plain value is returned as it is).

    Raises
    ------
    ConfigError
        When the variable is not set (the message names it, never a value).
    """
    if not reference.startswith("env:"):
        return reference
    name = reference[4:]
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"{where}: the environment variable {name} is not set")
    return value


def _env_only(value: str | None, where: str) -> str | None:
    if value is not None and not value.startswith("env:"):
        raise ValueError(f"{where}: give the variable that holds it, as env:NAME")
    return value


class ServerSection(BaseModel):
    """``server:``: the pool, the time zone schedules are read in, the address links use."""

    model_config = ConfigDict(extra="forbid")

    workers: int | None = Field(None, ge=1, le=64)
    queue: int | None = Field(None, ge=1, le=10_000)
    #: The zone cron expressions are read in (default: ``TZ``, else the machine's).
    timezone: str | None = None
    #: The server's address as people reach it (links in alerts); default its own URL.
    public_url: str | None = None


class InboxSection(BaseModel):
    """``inbox:``: where files are dropped (``<folder>/<blueprint>/``) and when they count as
    complete (unchanged for ``settle_seconds``).
    """  # noqa: D205

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    folder: str = "data/inbox"
    settle_seconds: float = Field(2.0, ge=0, le=3600)
    poll_seconds: float = Field(1.0, gt=0, le=60)
    #: Run inbox files through the blueprint notebook (default: the pipeline alone).
    notebook: bool = False


class WebhookDestination(BaseModel):
    """A URL that receives each alert as JSON (Slack-compatible: a ``text`` field)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["webhook"]
    url: str
    #: Extra headers (a value may be ``env:NAME``), e.g. an Authorization header.
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("env:", "http://", "https://")):
            raise ValueError("an http(s) URL, or env:NAME naming the variable that holds it")
        return value


class EmailDestination(BaseModel):
    """Mail over SMTP (STARTTLS unless turned off), credentials from the environment."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["email"]
    host: str
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    username: str | None = None
    password: str | None = None
    sender: str
    to: list[str] = Field(min_length=1)
    #: A CA bundle to trust for STARTTLS (an internal mail server's own CA).
    ca_file: str | None = None

    @field_validator("username", "password")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return _env_only(value, "username and password")


class LogDestination(BaseModel):
    """The server's log (always there as ``log``)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["log"]


Destination = Annotated[
    WebhookDestination | EmailDestination | LogDestination, Field(discriminator="type")
]


class AlertRule(BaseModel):
    """When to alert (``when``, with its ``threshold``), for which datasets, and to whom."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]{0,62}$")
    when: Literal[tuple(ALERT_CONDITIONS)]  # type: ignore[valid-type]
    threshold: float | None = None
    #: Only these datasets (schedules, for ``schedule_incomplete``); default all.
    datasets: list[str] | None = None
    send_to: list[str] = Field(default_factory=lambda: ["log"], min_length=1)

    @model_validator(mode="after")
    def _threshold(self) -> AlertRule:
        _, meaning, default = ALERT_CONDITIONS[self.when]
        if meaning is None and self.threshold is not None:
            raise ValueError(f"{self.when} takes no threshold")
        if meaning is not None and self.threshold is None:
            if default is None:
                raise ValueError(f"{self.when} needs a threshold ({meaning})")
            self.threshold = default
        return self


class AlertsSection(BaseModel):
    """``alerts:``: named destinations, the rules, and how sending is retried."""

    model_config = ConfigDict(extra="forbid")

    destinations: dict[str, Destination] = Field(default_factory=dict)
    rules: list[AlertRule] = Field(default_factory=list)
    attempts: int = Field(4, ge=1, le=10)
    #: Seconds before the second attempt; doubled before each one after.
    backoff_seconds: float = Field(1.0, ge=0, le=300)
    timeout_seconds: float = Field(10.0, gt=0, le=300)

    @model_validator(mode="after")
    def _known_destinations(self) -> AlertsSection:
        names = {*self.destinations, "log"}
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"two rules are called {rule.name!r}")
            seen.add(rule.name)
            for target in rule.send_to:
                if target not in names:
                    raise ValueError(
                        f"rule {rule.name!r} sends to {target!r}; destinations: "
                        + ", ".join(sorted(names))
                    )
        return self


class ProjectFile(BaseModel):
    """The whole of ``tracer.yaml``: run defaults and the three sections."""

    model_config = ConfigDict(extra="forbid")

    server: ServerSection = Field(default_factory=ServerSection)
    inbox: InboxSection = Field(default_factory=InboxSection)
    alerts: AlertsSection = Field(default_factory=AlertsSection)
    #: The keys a ``--config`` file holds: the defaults of runs the server starts.
    run: dict[str, Any] = Field(default_factory=dict)


def load_project_file(project: str | Path) -> ProjectFile:
    """The project's ``tracer.yaml`` (defaults when there is none).

    Raises
    ------
    ConfigError
        One line naming the file and the key when the file or a value is not valid.
    """
    path = Path(project) / PROJECT_FILE
    if not path.exists():
        return ProjectFile()
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({exc})", path=path) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a mapping of settings, got {type(data).__name__}", path=path)
    sections = {k: data.pop(k) for k in ("server", "inbox", "alerts") if k in data}
    try:
        load_config(data)  # (the run keys are checked as a --config file's are)
        return ProjectFile.model_validate({**sections, "run": data})
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}", path=path) from None
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_message(exc)}", path=path) from None
