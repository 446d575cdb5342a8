"""The API's schedules and alerts: ``/schedules`` and ``/alerts`` under ``/api/v1``."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tracer_kit.connections import is_url
from tracer_kit.errors import ConfigError
from tracer_kit.history_page import alert_listing, schedule_listing
from tracer_kit.project import ALERT_CONDITIONS, AlertRule
from tracer_kit.server.alerts import destination_target
from tracer_kit.server.routes import ServerDep, authenticated_router
from tracer_kit.server.schedules import (
    ScheduleSpec,
    add_schedule,
    change_schedule,
    remove_schedule,
)
from tracer_kit.server.state import ApiError, Server

__all__ = ["automation_router"]

automation_router = authenticated_router()


class ScheduleBody(BaseModel):
    """A new schedule (``tracer schedule add``'s arguments)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    cron: str = Field(max_length=200, description='Five fields "M H DoM Mon DoW".')
    source: str = Field(
        max_length=4096, description="A file, folder or glob under the project, or a URL."
    )
    blueprint: str = Field(max_length=200)
    dataset: str | None = Field(None, max_length=200)
    notebook: bool = False
    config_file: str | None = Field(None, max_length=4096)


class SchedulePatch(BaseModel):
    """What may change of a schedule (each field optional)."""

    model_config = ConfigDict(extra="forbid")

    cron: str | None = Field(None, max_length=200)
    source: str | None = Field(None, max_length=4096)
    blueprint: str | None = Field(None, max_length=200)
    dataset: str | None = Field(None, max_length=200)
    notebook: bool | None = None
    config_file: str | None = Field(None, max_length=4096)
    paused: bool | None = None


def _inside(server: Server, source: str | None) -> None:
    """A schedule's source, config file: a URL, or under the project (or an allowed folder)."""
    if not source or is_url(source):
        return
    fixed = source.split("*")[0].split("?")[0].split("[")[0]
    path = Path(fixed)
    path = (path if path.is_absolute() else server.settings.project / path).resolve()
    escapes = glob.has_magic(source) and ".." in Path(source).parts  # (after the pattern)
    if escapes or not server.inside(path):
        raise ApiError(
            403,
            "forbidden",
            f"{source}: outside the project folder; start the server with --allow-path DIR",
        )


def _listing(server: Server) -> list[dict[str, Any]]:
    return schedule_listing(
        server.settings.warehouse, server.zone, server.clock(), queued=server.scheduler.queued()
    )


def _one(server: Server, name: str) -> dict[str, Any]:
    for view in _listing(server):
        if view["name"] == name:
            return view
    raise ApiError(
        404, "not_found", f"no schedule called {name!r}; GET /api/v1/schedules lists them"
    )


@automation_router.get("/schedules", tags=["schedules"], summary="Schedules, their next run")
def schedules(server: ServerDep) -> dict[str, Any]:
    """Every schedule; times in the server's time zone (``timezone``)."""
    return {"timezone": str(server.zone), "schedules": _listing(server)}


@automation_router.post("/schedules", status_code=201, tags=["schedules"], summary="Add a schedule")
def create_schedule(server: ServerDep, body: ScheduleBody) -> JSONResponse:
    """Keep a schedule; it fires first at the first time its cron is due from now."""
    _inside(server, body.source)
    _inside(server, body.config_file)
    spec = ScheduleSpec(**body.model_dump())
    add_schedule(
        server.settings.warehouse, spec, project=server.settings.project, now=server.clock()
    )
    return JSONResponse(_one(server, body.name), status_code=201)


@automation_router.get("/schedules/{name}", tags=["schedules"], summary="One schedule")
def schedule(server: ServerDep, name: str) -> dict[str, Any]:
    """The schedule's cron, source, state, next and last run."""
    return _one(server, name)


@automation_router.patch(
    "/schedules/{name}", tags=["schedules"], summary="Change, pause or resume a schedule"
)
def patch_schedule(server: ServerDep, name: str, body: SchedulePatch) -> dict[str, Any]:
    """Change the fields given; ``paused: false`` resumes (without catching up)."""
    _one(server, name)
    changes = body.model_dump(exclude_unset=True)
    _inside(server, changes.get("source"))
    _inside(server, changes.get("config_file"))
    change_schedule(
        server.settings.warehouse,
        name,
        changes,
        project=server.settings.project,
        now=server.clock(),
    )
    return _one(server, name)


@automation_router.delete("/schedules/{name}", tags=["schedules"], summary="Remove a schedule")
def delete_schedule(server: ServerDep, name: str) -> dict[str, Any]:
    """Forget the schedule (its runs stay)."""
    _one(server, name)
    remove_schedule(server.settings.warehouse, name)
    return {"removed": name}


@automation_router.post(
    "/schedules/{name}/run",
    status_code=202,
    tags=["schedules"],
    summary="Run a schedule now (queued behind its run if one goes)",
)
def run_schedule(server: ServerDep, name: str) -> JSONResponse:
    """Fire the schedule now; ``queued`` when its previous firing still runs."""
    _one(server, name)
    state = server.scheduler.run_now(name)
    return JSONResponse({**_one(server, name), "fired": state}, status_code=202)


@automation_router.get("/alerts", tags=["alerts"], summary="Alerts sent, newest first")
def alerts(
    server: ServerDep,
    dataset: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """Each alert: rule, event (firing or recovered), destination, status, attempts."""
    return {"alerts": alert_listing(server.settings.warehouse, dataset=dataset, limit=limit)}


@automation_router.get(
    "/alerts/rules", tags=["alerts"], summary="Alert rules and the destinations they send to"
)
def alert_rules(server: ServerDep) -> dict[str, Any]:
    """The rules (from tracer.yaml, then the API's), the conditions, the destinations."""
    own = {r.name for r in server.project_file.alerts.rules}
    destinations = server.project_file.alerts.destinations
    return {
        "rules": [
            {**r.model_dump(mode="json"), "origin": "tracer.yaml" if r.name in own else "api"}
            for r in server.alerts.rules()
        ],
        "conditions": {k: v[0] for k, v in ALERT_CONDITIONS.items()},
        "destinations": [
            {"name": "log", "type": "log", "target": "server log"},
            *[
                {"name": n, "type": d.type, "target": destination_target(d)}
                for n, d in destinations.items()
            ],
        ],
    }


@automation_router.post(
    "/alerts/rules", status_code=201, tags=["alerts"], summary="Add an alert rule"
)
def add_alert_rule(server: ServerDep, rule: Annotated[AlertRule, Body()]) -> JSONResponse:
    """Keep a rule; it judges the runs that end from now on."""
    server.alerts.add_rule(rule)
    return JSONResponse(rule.model_dump(mode="json"), status_code=201)


@automation_router.delete(
    "/alerts/rules/{name}", tags=["alerts"], summary="Remove an alert rule added through the API"
)
def remove_alert_rule(server: ServerDep, name: str) -> dict[str, Any]:
    """Forget a rule added through the API (a tracer.yaml rule is removed there)."""
    try:
        server.alerts.remove_rule(name)
    except ConfigError as exc:
        status = 404 if str(exc).startswith("no rule") else 409
        raise ApiError(status, "not_found" if status == 404 else "conflict", str(exc)) from None
    return {"removed": name}
