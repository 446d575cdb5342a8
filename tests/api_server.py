"""A local HTTP JSON API for the tests, on 127.0.0.1: paginated, rate-limited, flaky, slow, broken.

Every request is logged (path, query, time, Authorization header) so tests can check what
the client did: how many tries, how far apart, which token.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "tok-Secret-123"  # what /auth/ wants as a bearer token


@dataclass
class Api:
    """The server's address, its records and the requests it saw."""

    port: int
    records: list[dict[str, Any]]
    files: dict[str, bytes]
    log: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    host: str = "127.0.0.1"

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def hits(self, prefix: str) -> list[dict[str, Any]]:
        return [r for r in self.log if r["path"].startswith(prefix)]


PER_PAGE = 4


def _page(records: list[Any], n: int) -> list[Any]:
    return records[(n - 1) * PER_PAGE : n * PER_PAGE]


def _handler(api: Api) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(raw)

        def _count(self, key: str) -> int:
            api.counts[key] = api.counts.get(key, 0) + 1
            return api.counts[key]

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(parts.query).items()}
            api.log.append(
                {
                    "path": parts.path,
                    "query": q,
                    "at": time.monotonic(),
                    "auth": self.headers.get("Authorization"),
                }
            )
            path, records = parts.path, api.records
            if path == "/cursor":  # {"data": [...], "meta": {"next_cursor": ...}}
                n = int(q.get("cursor", "1"))
                more = n * PER_PAGE < len(records)
                return self._send(
                    200,
                    {
                        "data": _page(records, n),
                        "meta": {"next_cursor": str(n + 1) if more else None},
                    },
                )
            if path == "/pages":  # ?page=N, an empty page after the last
                return self._send(200, {"items": _page(records, int(q.get("page", "1")))})
            if path == "/links":  # a relative next link in the body, then a Link header
                n = int(q.get("n", "1"))
                more = n * PER_PAGE < len(records)
                nxt = f"/links?n={n + 1}" if more else None
                if n == 2 and more:
                    return self._send(
                        200,
                        {"results": _page(records, n)},
                        {"Link": f'<{api.url(nxt)}>; rel="next"'},
                    )
                return self._send(200, {"results": _page(records, n), "links": {"next": nxt}})
            if path == "/limited":  # 429 on the first request of each page
                if self._count(f"limited{q.get('page', '1')}") == 1:
                    return self._send(429, {"error": "slow down"}, {"Retry-After": "1"})
                return self._send(200, _page(records, int(q.get("page", "1"))))
            if path == "/flaky":  # two 500s, then the records
                if self._count("flaky") <= 2:
                    return self._send(500, {"error": "boom"})
                return self._send(200, records)
            if path == "/down":  # always 503
                return self._send(503, {"error": "maintenance"})
            if path == "/slow":
                time.sleep(1.5)
                return self._send(200, records)
            if path == "/broken":
                return self._send(200, b'{"data": [{"customer_id": "C1"}, ')
            if path == "/away-redirect":  # 302 to wherever ?to= says (another origin, say)
                self.send_response(302)
                self.send_header("Location", q["to"])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if path == "/away-link":  # one page whose next link is ?to=
                return self._send(200, {"data": _page(records, 1), "next": q["to"]})
            if path == "/missing":
                return self._send(404, {"error": "no such thing"})
            if path == "/auth/customers":
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._send(401, {"error": "unauthorized"})
                return self._send(200, {"data": records})
            if path.startswith("/files/") and path[7:] in api.files:
                raw = api.files[path[7:]]
                self.send_response(200)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                return self.wfile.write(raw)
            return self._send(404, {"error": "not found"})

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (the timeout tests) breaks the pipe: expected, not printed."""


@contextmanager
def running_api(
    records: list[dict[str, Any]], files: dict[str, Path] | None = None, host: str = "127.0.0.1"
) -> Iterator[Api]:
    """Serve ``records`` (and ``files`` under /files/NAME) on ``host`` (loopback) for the block."""
    api = Api(0, records, {name: p.read_bytes() for name, p in (files or {}).items()}, host=host)
    server = _QuietServer((host, 0), _handler(api))
    api.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
