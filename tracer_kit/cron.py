"""Cron expressions: checked once, and the times they are due in a time zone.

The five fields (``M H DoM Mon DoW``) are read by `cronsim <https://pypi.org/project/cronsim/>`_,
which follows Debian cron's rules, DST transitions included. Times are aware datetimes; the
schedule's wall-clock time is in the server's zone (:func:`server_timezone`).
"""

from __future__ import annotations

import datetime as dt
import os
from itertools import islice
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from tracer_kit.errors import ConfigError

__all__ = ["CRON_FORM", "check_cron", "due_slots", "next_due", "server_timezone"]

#: What a cron expression looks like, for error messages and help.
CRON_FORM = '"M H DoM Mon DoW", five fields, e.g. "0 6 * * *" (06:00 every day)'

#: The most slots counted between two times (a schedule down for years says "at least").
_MAX_COUNTED = 10_000


def check_cron(expression: str) -> str:
    """The expression, normalised to single spaces, when it parses.

    Raises
    ------
    ConfigError
        One line naming the expression, what is wrong and the expected form.
    """
    text = " ".join(str(expression).split())
    fields = text.split(" ") if text else []
    if len(fields) != 5:
        why = f"{len(fields)} field{'s' * (len(fields) != 1)}"
    else:
        try:
            CronSim(text, dt.datetime(2000, 1, 1))
            return text
        except CronSimError as exc:
            why = str(exc).lower() or "not a cron expression"
    raise ConfigError(f"cron {expression!r} does not parse ({why}); expected {CRON_FORM}")


def next_due(expression: str, after: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """The first time strictly after ``after`` that the expression is due, in ``zone``."""
    start = after.astimezone(zone).replace(second=0, microsecond=0)
    return next(iter(CronSim(expression, start))).astimezone(dt.UTC)


def due_slots(
    expression: str, after: dt.datetime, until: dt.datetime, zone: dt.tzinfo
) -> tuple[dt.datetime | None, int]:
    """The last time in ``(after, until]`` the expression was due, and how many times it was."""
    start = after.astimezone(zone).replace(second=0, microsecond=0)
    last, count = None, 0
    for moment in islice(CronSim(expression, start), _MAX_COUNTED):
        if moment > until:
            break
        last, count = moment, count + 1
    return (last.astimezone(dt.UTC) if last else None), count


def server_timezone(name: str | None = None) -> ZoneInfo:
    """The zone schedules are read in: ``name``, else ``TZ``, else the machine's, else UTC.

    Raises
    ------
    ConfigError
        When ``name`` (or ``TZ``) is not a time zone name (``Europe/Paris``, ``UTC``).
    """
    given = name or os.environ.get("TZ", "").lstrip(":")
    if given:
        try:
            return ZoneInfo(given)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"time zone {given!r} is not known; give a name such as Europe/Paris or UTC"
            ) from None
    return ZoneInfo(_machine_zone())


def _machine_zone() -> str:
    """The machine's zone name (``/etc/timezone`` or where ``/etc/localtime`` points)."""
    try:
        text = Path("/etc/timezone").read_text(encoding="utf-8").strip()
        if text:
            ZoneInfo(text)
            return text
    except (OSError, ZoneInfoNotFoundError, ValueError):
        pass
    link = Path("/etc/localtime")
    if link.is_symlink():
        target = str(link.resolve())
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    return "UTC"
