"""The REST API under ``/api/v1``: runs, their data and reports, validation, the catalogue.

Every route needs ``Authorization: Bearer <token or key>`` (:meth:`Server.principal`).
Work goes to the warm workers (``POST /runs`` answers 202 with the run id at once);
reads come from the warehouse in one short read each.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import queue
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
from fastapi import APIRouter, Body, Depends, File, Form, Header, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask

from tracer_kit.blueprints import get_blueprint, list_blueprints
from tracer_kit.connections import is_url, redact
from tracer_kit.errors import TracerError
from tracer_kit.failing import failing_rows
from tracer_kit.ingest import input_extensions
from tracer_kit.server.client import CLIENT_COMMANDS
from tracer_kit.server.pool import Job
from tracer_kit.server.state import ApiError, Server, principal_of, server_of
from tracer_kit.trends import RUN_COLUMNS, dataset_history, datasets, list_runs, runs_summary
from tracer_kit.types import SCORE_PARTS
from tracer_kit.warehouse import connect, dataset_name, delete_runs, new_run_id, query, run_row

__all__ = ["ERRORS", "ErrorBody", "ServerDep", "authenticated_router", "router"]


def _server(request: Request) -> Server:
    return server_of(request)


def _principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    return principal_of(request, authorization)


class ErrorBody(BaseModel):
    """Every error's body: the one line the CLI would print, and what kind of error it is."""

    error: str
    kind: str


#: The error answers every route may give (documented in the OpenAPI document).
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": what}
    for status, what in (
        (400, "A body that does not parse (JSON or multipart)"),
        (401, "No token, or not a valid one"),
        (403, "Not allowed (a path outside the project, SQL turned off)"),
        (404, "No such run or dataset"),
        (413, "The upload is over the size limit"),
        (422, "A bad request or source (the error names it)"),
        (429, "The queue is full, or the key's rate limit reached (see Retry-After)"),
        (503, "The warehouse is busy"),
    )
}


def authenticated_router() -> APIRouter:
    """A router whose every route needs the token or a key, documenting the errors."""
    return APIRouter(dependencies=[Depends(_principal)], responses=ERRORS)


router = authenticated_router()

ServerDep = Annotated[Server, Depends(_server)]
Principal = Annotated[str, Depends(_principal)]
RunId = Annotated[str, Query(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]


# ----- sources -----
def _kept_upload(server: Server, upload: UploadFile) -> tuple[Path, str]:
    """Store an upload under a generated name (the client's name chooses only the format)."""
    name = Path(upload.filename or "upload").name
    endings = input_extensions()
    suffix = ""
    rest = name
    while (ending := Path(rest).suffix.lower()) in endings and ending:
        suffix, rest = ending + suffix, rest[: -len(ending)]
    if not suffix:
        raise ApiError(
            422, "ingest", f"{name}: not a format tracer-kit reads (one of {', '.join(endings)})"
        )
    server.settings.uploads.mkdir(parents=True, exist_ok=True)
    path = server.settings.uploads / f"{uuid.uuid4().hex}{suffix}"
    with path.open("xb") as out:
        shutil.copyfileobj(upload.file, out, 1 << 20)
    return path, dataset_name(name)


def _checked_source(server: Server, source: str) -> str:
    """A source given by name: a URL as written, or a path inside the project (or allowed)."""
    if is_url(source):
        return source
    path = Path(source)
    path = (path if path.is_absolute() else server.settings.project / path).resolve()
    if not server.inside(path):
        raise ApiError(
            403,
            "forbidden",
            f"{source}: outside the project folder; start the server with --allow-path DIR "
            "to read from DIR",
        )
    if not path.exists():
        raise ApiError(422, "ingest", f"{source}: no such file")
    return str(path)


def _source(
    server: Server, upload: UploadFile | None, source: str | None
) -> tuple[str, str | None]:
    """The job's source and the dataset it names (an upload is named by its client name)."""
    if (upload is None) == (not source):
        raise ApiError(
            422, "request", "send a file (multipart field `file`) or a `source`, not both"
        )
    if upload is not None:
        path, dataset = _kept_upload(server, upload)
        return str(path), dataset
    return _checked_source(server, str(source)), None


def _config(text: str | None, dataset: str | None) -> dict[str, Any]:
    try:
        config = json.loads(text) if text else {}
    except ValueError as exc:
        raise ApiError(422, "config", f"config: not JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ApiError(422, "config", "config: a JSON object of Config fields")
    if dataset:
        config.setdefault("output", {})["dataset"] = dataset
    return config


def _queued(server: Server, job: Job) -> JSONResponse:
    server.submit(job)
    body = {"run_id": job.run_id, "state": job.state, "links": _links(job.run_id or "")}
    return JSONResponse(body, status_code=202, headers={"Location": f"runs/{job.run_id}"})


def _links(run_id: str) -> dict[str, str]:
    base = f"/api/v1/runs/{run_id}"
    parts = ("report", "processed", "quarantine", "predictions", "events")
    return {"self": base, **{p: f"{base}/{p}" for p in parts}}


FileField = Annotated[UploadFile | None, File(description="The file to run (multipart).")]
SourceField = Annotated[
    str | None,
    Form(description="Instead of a file: a path under the project, a database URL or an API URL."),
]
ConfigField = Annotated[str | None, Form(description="Config fields as a JSON object.")]
DatasetField = Annotated[str | None, Form(description="The dataset name history compares by.")]


# ----- runs -----
@router.post("/runs", status_code=202, tags=["runs"], summary="Start a run (answers at once)")
def start_run(
    server: ServerDep,
    blueprint: Annotated[str, Form(description="A blueprint name (GET /blueprints).")],
    file: FileField = None,
    source: SourceField = None,
    config: ConfigField = None,
    dataset: DatasetField = None,
    engine: Annotated[Literal["polars"], Form()] = "polars",
    notebook: Annotated[bool, Form(description="Run through the blueprint notebook.")] = False,
) -> JSONResponse:
    """Queue a run of a file (multipart upload) or a source through a blueprint."""
    bp = get_blueprint(blueprint).name
    path, named = _source(server, file, source)
    payload = {
        "run_id": new_run_id(),
        "source": path,
        "blueprint": blueprint,
        "config": _config(config, dataset or named),
        "notebook": notebook,
    }
    return _queued(server, Job("run", payload, run_id=payload["run_id"], blueprint=bp))


@router.get("/runs", tags=["runs"], summary="Runs, newest first, filtered and paginated")
def runs(
    server: ServerDep,
    blueprint: str | None = None,
    dataset: str | None = None,
    state: Annotated[
        str | None, Query(pattern="^(PENDING|IN_PROGRESS|COMPLETED|FAILED|CANCELLED)$")
    ] = None,
    since: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    """The runs in the warehouse matching every filter given."""
    with server.replica.reads():  # (one copy for the page and the runs not recorded yet)
        total, page = list_runs(
            warehouse=server.settings.warehouse,
            blueprint=blueprint,
            dataset=dataset,
            state=state,
            since=_naive(since),
            limit=limit,
            offset=offset,
        )
        unrecorded = _unrecorded(server.settings.warehouse, server.in_flight())
    for row in page:
        row["input_path"] = redact(row["input_path"] or "")
    queued = [
        {"run_id": j.run_id, "blueprint": j.blueprint, "state": j.state}
        for j in unrecorded
        if state in (None, j.state) and blueprint in (None, j.blueprint) and not (dataset or since)
    ]  # (queued, or just taken by a worker: not in the warehouse yet)
    if offset == 0:
        page = [*queued, *page][:limit]
    return {"total": total + len(queued), "limit": limit, "offset": offset, "runs": page}


def _unrecorded(warehouse: Path, jobs: list[Job]) -> list[Job]:
    """The jobs whose run the warehouse does not hold yet."""
    if not jobs or not warehouse.exists():
        return jobs
    with connect(warehouse, read_only=True) as con:
        known = con.execute(
            "SELECT run_id FROM runs WHERE list_contains(?, run_id)", [[j.run_id for j in jobs]]
        ).fetchall()
    recorded = {r for (r,) in known}
    return [j for j in jobs if j.run_id not in recorded]


def _naive(moment: dt.datetime | None) -> dt.datetime | None:
    """A time as the warehouse keeps it: UTC without a zone."""
    if moment is None or moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(dt.UTC).replace(tzinfo=None)
    except OverflowError:
        raise ApiError(422, "request", f"since: {moment} is out of range") from None


def _job_view(job: Job) -> dict[str, Any]:
    view: dict[str, Any] = {"run_id": job.run_id, "blueprint": job.blueprint, "state": job.state}
    if job.failure:
        view["error"] = job.failure["error"]
    return {**view, **_job_facts(job), "links": _links(job.run_id or "")}


def _job_facts(job: Job) -> dict[str, Any]:
    """What only the server knows of a run: its progress while it runs, its error's kind."""
    if job.failure:
        return {"error_kind": job.failure.get("kind")}
    if job.done:
        return {}
    stages = [e for e in job.events if e.get("type") == "progress"]
    last = stages[-1] if stages else {"stage": None, "percent": 0}
    return {"progress": {"stage": last["stage"], "percent": last["percent"]}}


def _row(server: Server, run_id: str) -> dict[str, Any] | None:
    try:
        with server.replica.reads():
            return run_row(run_id, warehouse=server.settings.warehouse)
    except TracerError:
        return None


def _run_view(row: dict[str, Any]) -> dict[str, Any]:
    keys = [k for k in RUN_COLUMNS if k != "input_path"]  # (the input shown redacted)
    view = {k: row[k] for k in keys}
    view["input"] = redact(row["input_path"] or "")
    view["score_parts"] = {
        k: row["score_parts"][k] for k in SCORE_PARTS if k in (row["score_parts"] or {})
    }
    view["issues"] = row["issues"]
    view["stage_seconds"] = row["stage_seconds"]
    view["outputs"] = {
        k: Path(v).name
        for k, v in row["outputs"].items()
        if isinstance(v, str) and not k.endswith("sha256") and Path(v).exists()
    }
    return {**view, "links": _links(row["run_id"])}


@router.get(
    "/runs/{run_id}",
    tags=["runs"],
    summary="One run: state, counts, score, issues, timings, outputs",
)
def run(server: ServerDep, run_id: str) -> dict[str, Any]:
    """A run's state and, once it has them, its counts, score, parts, issues and outputs."""
    job = server.job(run_id)
    if job is not None and job.started_at is None:  # (queued)
        return _job_view(job)
    row = _row(server, run_id)
    if row is None:
        if job is not None:
            return _job_view(job)
        raise ApiError(404, "not_found", f"no run {run_id!r}; GET /api/v1/runs lists them")
    view = _run_view(row)
    if job is not None and not job.done:  # recorded, but its job still writes files (HTML)
        view["state"] = job.state
    return {**view, **(_job_facts(job) if job is not None else {})}


@router.delete(
    "/runs/{run_id}",
    tags=["runs"],
    summary="Cancel a queued or running run, or delete a finished one",
)
def delete_run(server: ServerDep, run_id: str) -> JSONResponse:
    """Cancel the run if it is still going; else delete it and its files."""
    job = server.job(run_id)
    if job is not None and not job.done:
        server.pool.cancel(job)
        return JSONResponse({"run_id": run_id, "state": "CANCELLING"}, status_code=202)
    if _row(server, run_id) is None:
        raise ApiError(404, "not_found", f"no run {run_id!r}; GET /api/v1/runs lists them")
    removal = delete_runs([run_id], warehouse=server.settings.warehouse)
    return JSONResponse({"deleted": removal.run_ids, "files": len(removal.files)})


@router.post(
    "/runs/{run_id}/rerun",
    status_code=202,
    tags=["runs"],
    summary="Run a run again with its stored parameters",
)
def rerun_run(server: ServerDep, run_id: str) -> JSONResponse:
    """A new run with the stored parameters of ``run_id``."""
    row = _row(server, run_id)
    if row is None:
        raise ApiError(404, "not_found", f"no run {run_id!r}; GET /api/v1/runs lists them")
    payload = {"run_id": new_run_id(), "of": run_id}
    return _queued(
        server, Job("rerun", payload, run_id=payload["run_id"], blueprint=row["blueprint"])
    )


@router.post(
    "/runs/{run_id}/predict",
    status_code=202,
    tags=["runs"],
    summary="Score a new source with the run's model",
)
def predict_run(
    server: ServerDep,
    run_id: str,
    file: FileField = None,
    source: SourceField = None,
    config: ConfigField = None,
) -> JSONResponse:
    """A scoring run of a new file with the saved model of ``run_id``."""
    row = _row(server, run_id)
    if row is None:
        raise ApiError(404, "not_found", f"no run {run_id!r}; GET /api/v1/runs lists them")
    path, named = _source(server, file, source)
    payload = {
        "run_id": new_run_id(),
        "model_run": run_id,
        "source": path,
        "config": _config(config, named),
    }
    return _queued(
        server, Job("predict", payload, run_id=payload["run_id"], blueprint=row["blueprint"])
    )


# ----- a run's outputs -----
def _finished_row(server: Server, run_id: str) -> dict[str, Any]:
    row = _row(server, run_id)
    if row is None:
        raise ApiError(404, "not_found", f"no run {run_id!r}; GET /api/v1/runs lists them")
    return row


def _output(row: dict[str, Any], key: str, what: str) -> Path:
    path = row["outputs"].get(key)
    if not path or not Path(path).is_file():
        state = row["state"]
        raise ApiError(404, "not_found", f"run {row['run_id']} ({state}) has no {what}")
    return Path(path)


@router.get(
    "/runs/{run_id}/report",
    tags=["outputs"],
    summary="The run's HTML report",
    response_class=FileResponse,
)
def report(server: ServerDep, run_id: str) -> FileResponse:
    """The self-contained HTML report."""
    path = _output(_finished_row(server, run_id), "report", "report")
    return FileResponse(path, media_type="text/html")


Format = Annotated[Literal["json", "csv", "parquet"] | None, Query(alias="format")]
Page = Annotated[int, Query(ge=0, le=10**9)]
Size = Annotated[int, Query(ge=1, le=10_000)]


def _wanted(accept: str | None, fmt: str | None) -> str:
    if fmt:
        return fmt
    accept = accept or ""
    if "text/csv" in accept:
        return "csv"
    if "parquet" in accept:
        return "parquet"
    return "json"


def _table(frame: pl.LazyFrame, fmt: str, offset: int, limit: int, name: str) -> Response:
    """Rows as a JSON page, or all of them as CSV or Parquet."""
    if fmt == "json":
        total = frame.select(pl.len()).collect().item()
        page = frame.slice(offset, limit).collect()
        rows = json.loads(page.write_json())
        return JSONResponse({"total": total, "offset": offset, "limit": limit, "rows": rows})
    tmp = Path(tempfile.mkdtemp(prefix="tracer-download-"))
    out = tmp / f"{name}.{fmt}"
    if fmt == "csv":
        frame.sink_csv(out)
        media = "text/csv"
    else:
        frame.sink_parquet(out)
        media = "application/vnd.apache.parquet"
    cleanup = BackgroundTask(shutil.rmtree, tmp, ignore_errors=True)
    return FileResponse(out, media_type=media, filename=out.name, background=cleanup)


def _data_route(kind: str, key: str | None, what: str) -> None:
    @router.get(
        f"/runs/{{run_id}}/{kind}",
        tags=["outputs"],
        summary=f"The run's {what}: JSON pages, CSV or Parquet",
    )
    def data(
        server: ServerDep,
        run_id: str,
        accept: Annotated[str | None, Header()] = None,
        format: Format = None,
        offset: Page = 0,
        limit: Size = 100,
    ) -> Response:
        row = _finished_row(server, run_id)
        if key is None:
            frame = failing_rows(run_id, warehouse=server.settings.warehouse).lazy()
        else:
            frame = pl.scan_parquet(_output(row, key, what))
        return _table(frame, _wanted(accept, format), offset, limit, f"{run_id}-{kind}")

    data.__name__ = f"run_{kind}"


_data_route("processed", "parquet", "processed rows")
_data_route("quarantine", None, "quarantined rows")
_data_route("predictions", "predictions", "predictions")


@router.get(
    "/runs/{run_id}/events", tags=["runs"], summary="The run's progress as server-sent events"
)
async def events(server: ServerDep, run_id: str) -> StreamingResponse:
    """``progress`` events (stage, percent) while the run goes, then one ``end`` (its state)."""
    job = server.job(run_id)
    if job is None:
        row = await asyncio.to_thread(_row, server, run_id)
        if row is None:
            raise ApiError(404, "not_found", f"no run {run_id!r}; GET /api/v1/runs lists them")
        ended = {
            "type": "end",
            "state": row["state"],
            "rows_in": row["rows_in"],
            "rows_out": row["rows_out"],
        }
        return StreamingResponse(iter([_sse(ended)]), media_type="text/event-stream")
    return StreamingResponse(_job_events(server, job), media_type="text/event-stream")


def _sse(event: dict[str, Any]) -> str:
    return f"event: {event.get('type', 'progress')}\ndata: {json.dumps(event, default=str)}\n\n"


async def _job_events(server: Server, job: Job) -> AsyncIterator[str]:
    sent, quiet = 0, 0.0
    while True:
        new = job.events[sent:]
        for event in new:
            if event["type"] == "end":
                row = await asyncio.to_thread(_row, server, job.run_id or "")
                extra = (
                    {k: row[k] for k in ("rows_in", "rows_out", "rows_quarantined")} if row else {}
                )
                yield _sse({**event, **extra, "error": (job.failure or {}).get("error")})
                return
            yield _sse(event)
        sent += len(new)
        quiet = 0.0 if new else quiet + 0.1
        if quiet >= 15:
            yield ": still running\n\n"
            quiet = 0.0
        await asyncio.sleep(0.1)


# ----- synchronous answers -----
def _sync(
    server: Server, kind: str, payload: dict[str, Any], timeout: float = 600
) -> dict[str, Any]:
    job = server.submit(Job(kind, payload))
    if not job.wait(timeout):
        server.pool.cancel(job)
        raise ApiError(504, "timeout", f"{kind} took longer than {timeout:.0f} s; use POST /runs")
    if job.failure:
        status = 503 if job.failure["kind"] == "busy" else 422
        raise ApiError(status, job.failure["kind"], job.failure["error"])
    return job.result or {}


@router.post(
    "/validate", tags=["checks"], summary="Check a source against a blueprint (synchronous)"
)
def validate_source(
    server: ServerDep,
    blueprint: Annotated[str, Form()],
    file: FileField = None,
    source: SourceField = None,
    config: ConfigField = None,
) -> dict[str, Any]:
    """Score, parts, issues and the gate's verdict; nothing is written to the warehouse."""
    get_blueprint(blueprint)
    path, _ = _source(server, file, source)
    try:
        return _sync(
            server,
            "validate",
            {"source": path, "blueprint": blueprint, "config": _config(config, None)},
        )
    finally:
        _drop_upload(server, path, file)


@router.post(
    "/profile", tags=["checks"], summary="A source's metadata and per-column summary (synchronous)"
)
def profile_source(
    server: ServerDep,
    file: FileField = None,
    source: SourceField = None,
    config: ConfigField = None,
) -> dict[str, Any]:
    """How the source was read, its rows, and type, nulls, distinct, min and max per column."""
    path, _ = _source(server, file, source)
    try:
        return _sync(server, "profile", {"source": path, "config": _config(config, None)})
    finally:
        _drop_upload(server, path, file)


def _drop_upload(server: Server, path: str, upload: UploadFile | None) -> None:
    """A file uploaded only to be checked is not kept."""
    if upload is not None:
        Path(path).unlink(missing_ok=True)


# ----- the catalogue -----
@router.get("/blueprints", tags=["catalogue"], summary="The blueprints this server knows")
def blueprints() -> dict[str, Any]:
    """Each blueprint's name, description, fields and whether it has a model."""
    return {
        "blueprints": [
            {
                "name": bp.name,
                "description": bp.description,
                "fields": [f.name for f in bp.fields],
                "required": [f.name for f in bp.fields if f.required],
            }
            for bp in list_blueprints()
        ]
    }


@router.get("/datasets", tags=["catalogue"], summary="Datasets with their latest run")
def dataset_list(server: ServerDep) -> dict[str, Any]:
    """Each dataset: blueprint, runs, and its latest run's state, score and rows."""
    with server.replica.reads():
        return {"datasets": datasets(warehouse=server.settings.warehouse)}


@router.get(
    "/datasets/{name}/history", tags=["catalogue"], summary="Score, parts, rows and drift per run"
)
def history(server: ServerDep, name: str) -> dict[str, Any]:
    """One entry per run of the dataset, oldest first."""
    try:
        with server.replica.reads():
            frame = dataset_history(name, warehouse=server.settings.warehouse)
    except TracerError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    return {"dataset": name, "runs": json.loads(frame.write_json())}


@router.get(
    "/analytics/summary",
    tags=["catalogue"],
    summary="Runs by state and blueprint, rows, gate failures, mean scores",
)
def summary(
    server: ServerDep,
    since: dt.datetime | None = None,
    days: Annotated[int | None, Query(ge=1, le=3650)] = None,
) -> dict[str, Any]:
    """Over the window (``since``, or the last ``days``; default all time)."""
    if since is None and days is not None:
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    with server.replica.reads():
        body = runs_summary(warehouse=server.settings.warehouse, since=_naive(since))
    return {"since": since, **body}


@router.post("/query", tags=["catalogue"], summary="Read-only SQL on the warehouse (--allow-sql)")
def sql(
    server: ServerDep,
    statement: Annotated[str, Body(embed=True, alias="sql", max_length=100_000)],
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> dict[str, Any]:
    """One SELECT; no file outside the warehouse can be read, nothing can be written."""
    if not server.settings.allow_sql:
        raise ApiError(
            403, "forbidden", "SQL is off; start the server with --allow-sql to allow it"
        )
    frame = query(statement, warehouse=server.settings.warehouse)
    rows = json.loads(frame.head(limit).write_json())
    return {"columns": frame.columns, "rows": rows, "truncated": frame.height > limit}


# ----- the CLI's commands -----
@router.post(
    "/commands", tags=["cli"], summary="Run a tracer command for the CLI (local token only)"
)
def command(
    server: ServerDep,
    principal: Principal,
    argv: Annotated[list[str], Body(max_length=200)],
    cwd: Annotated[str, Body()],
    tty: Annotated[bool, Body()] = False,
    columns: Annotated[int | None, Body(ge=20, le=1000)] = None,
) -> StreamingResponse:
    """The command's stdout and stderr as JSON lines as they are written, then its exit code."""
    if principal != "local":
        raise ApiError(403, "forbidden", "commands are for the project's own CLI (the local token)")
    if not argv or argv[0] not in CLIENT_COMMANDS:
        raise ApiError(422, "request", f"argv: one of {', '.join(sorted(CLIENT_COMMANDS))}")
    folder = Path(cwd).resolve()
    if not folder.is_dir() or not server.inside(folder):
        raise ApiError(403, "forbidden", f"{cwd}: not the project folder or one inside it")
    payload = {"argv": argv, "cwd": str(folder), "tty": tty, "columns": columns}
    job = Job("command", payload, output=queue.Queue())
    server.submit(job)
    return StreamingResponse(_command_output(job), media_type="application/x-ndjson")


def _command_output(job: Job) -> Iterator[str]:
    assert job.output is not None
    while True:
        kind, value = job.output.get()
        if kind == "end":
            break
        yield json.dumps({kind: value}) + "\n"
    code = (job.result or {}).get("exit")
    if code is None:
        failure = job.failure or {}
        yield (
            json.dumps({"err": f"error: {failure.get('error', 'the command did not finish')}\n"})
            + "\n"
        )
        code = failure.get("exit_code", 1)
    yield json.dumps({"exit": code}) + "\n"
