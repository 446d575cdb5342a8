"""The HTTP application: FastAPI, its middleware, errors as one JSON line, health and metrics.

Routes under ``/api/v1`` are in :mod:`tracer_kit.server.routes`; this module builds the
app around them: the upload size limit (checked before a byte is stored), CORS only when
asked for, request metrics, the error handlers that turn every failure into
``{"error": "<one line>", "kind": "<kind>"}``, and ``/healthz``, ``/readyz``, ``/metrics``.
"""

from __future__ import annotations

import html
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tracer_kit import __version__
from tracer_kit.errors import ConfigError, TracerError
from tracer_kit.history_page import history_page
from tracer_kit.server.automation_routes import automation_router
from tracer_kit.server.pool import QueueFull
from tracer_kit.server.routes import router
from tracer_kit.server.settings import ServerSettings
from tracer_kit.server.state import ApiError, Server
from tracer_kit.server.work import error_kind
from tracer_kit.warehouse import run_row

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"


class _BodyLimit:
    """Refuse a request body over ``limit`` bytes: at once by its Content-Length, else as it
    arrives (a chunked upload is cut off at the limit; nothing beyond it is stored).
    """  # noqa: D205

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _too_large(self.limit)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge(self.limit)
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _too_large(self.limit)(scope, receive, send)


class _TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"over {limit} bytes")
        self.limit = limit


def _too_large(limit: int) -> Response:
    return _error(
        413, "too_large", f"the upload is larger than the server's limit ({limit:,} bytes)"
    )


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """An error's answer; the connection closes after it, so an unread body is never drained."""
    headers = {**(headers or {}), "Connection": "close"}
    return JSONResponse({"error": message, "kind": kind}, status_code=status, headers=headers)


def _one_line(exc: RequestValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
    return f"{where or 'request'}: {first.get('msg', 'invalid request')}"


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return _error(exc.status, exc.kind, str(exc), exc.headers)

    @app.exception_handler(TracerError)
    async def tracer_error(request: Request, exc: TracerError) -> Response:
        kind = error_kind(exc)
        status = 503 if kind == "busy" else 404 if str(exc).startswith("no run ") else 422
        return _error(status, "not_found" if status == 404 else kind, str(exc))

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, exc: QueueFull) -> Response:
        return _error(429, "busy", f"the queue is full ({exc}); retry later", {"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return _error(422, "request", _one_line(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        kind = {404: "not_found", 405: "method", 401: "auth"}.get(exc.status_code, "request")
        return _error(exc.status_code, kind, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(_TooLarge)
    async def too_large(request: Request, exc: _TooLarge) -> Response:
        return _too_large(exc.limit)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Response:
        return _error(500, "internal", f"internal error ({type(exc).__name__})")


def _page_errors(missing: str) -> dict[int | str, dict[str, Any]]:
    """A page's error answers: an HTML page when it is missing, JSON without a valid token."""
    error = {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
    return {
        404: {"description": missing, "content": {"text/html": {}}},
        401: {
            "description": "No token, or not a valid one",
            "content": {"application/json": error},
        },
    }


def _not_found(message: str) -> HTMLResponse:
    text = html.escape(message)
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Not found</title>"
        f"</head><body><h1>Not found</h1><p>{text}</p><p><a href='/'>All datasets</a></p>"
        "</body></html>"
    )
    return HTMLResponse(page, status_code=404)


def _pages(app: FastAPI, server: Server) -> None:
    """The history page and the reports it links to (no token needed on loopback)."""

    def allowed(authorization: str | None) -> None:
        if not server.settings.loopback:
            server.principal(authorization)

    @app.get(
        "/",
        tags=["pages"],
        summary="The history page: datasets, trends, runs, schedules, alerts",
        response_class=HTMLResponse,
        responses=_page_errors("No such dataset"),
    )
    def history(
        dataset: Annotated[str | None, Query(max_length=200)] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> HTMLResponse:
        allowed(authorization)
        try:
            with server.replica.reads():
                page = history_page(
                    warehouse=server.settings.warehouse,
                    dataset=dataset,
                    zone=server.zone,
                    now=server.clock(),
                    report_link=lambda run: f"reports/{run['run_id']}",
                    queued=server.scheduler.queued(),
                )
        except ConfigError as exc:
            return _not_found(str(exc))
        return HTMLResponse(page)

    @app.get(
        "/reports/{run_id}",
        tags=["pages"],
        summary="A run's HTML report (as the history page links it)",
        response_class=HTMLResponse,
        responses=_page_errors("No such run, or it has no report"),
    )
    def report(
        run_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")],
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        allowed(authorization)
        try:
            with server.replica.reads():
                row = run_row(run_id, warehouse=server.settings.warehouse)
        except TracerError:
            return _not_found(f"no run {run_id!r}")
        path = row["outputs"].get("report")
        if not path or not FilePath(path).is_file():
            return _not_found(f"run {run_id} ({row['state']}) has no report")
        return FileResponse(path, media_type="text/html")


def _outside_routes(app: FastAPI, server: Server) -> None:
    @app.get("/healthz", tags=["health"], summary="The process answers")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["health"], summary="Warehouse, disk, workers and queue, each checked")
    def readyz() -> Response:
        checks = server.health()
        ready = all(c["ok"] for c in checks.values())
        body = {"status": "ready" if ready else "not ready", "checks": checks}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics (text format)",
        response_class=PlainTextResponse,
        responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
    )
    def metrics() -> Response:
        return Response(server.metrics.text(), media_type=CONTENT_TYPE_LATEST)


def create_app(settings: ServerSettings, server: Server | None = None) -> FastAPI:
    """The server's ASGI application (its workers start with the app, stop with it)."""
    server = server or Server(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server.start()
        yield
        server.stop()

    app = FastAPI(
        title="tracer-kit",
        version=__version__,
        summary="Runs, their data and reports, datasets and their history, over HTTP.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.server = server
    _handlers(app)
    _outside_routes(app, server)
    _pages(app, server)
    app.include_router(router, prefix=API_PREFIX)
    app.include_router(automation_router, prefix=API_PREFIX)

    @app.middleware("http")
    async def count(request: Request, call_next: Any) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        if request.url.path.startswith(API_PREFIX) and not name.startswith(API_PREFIX):
            name = API_PREFIX + name  # (a route included from the API's router)
        server.metrics.request(name, response.status_code, time.perf_counter() - start)
        return response

    if settings.cors:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors),
            allow_methods=["GET", "POST", "DELETE", "PATCH"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(_BodyLimit, limit=settings.max_upload)
    return app
