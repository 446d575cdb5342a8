"""HTTP JSON API sources: pages of records fetched politely, then read as NDJSON.

:func:`fetch_pages` walks an API's pages (one page, ``next-link``, ``page`` or ``cursor``
pagination) at most ``rate_limit`` requests per second, retrying 429 and 5xx answers, timeouts
and dropped connections with exponential backoff and jitter (a ``Retry-After`` header wins).
:func:`read_api` writes the records, one JSON object a line, to the staging folder and reads
that copy like any NDJSON file: ``source_row`` is the record's position over all pages, and
the pages (URL, request time, status, their first ``source_row``) are kept in
``info.pages``. An ``https://`` URL whose path ends in a file extension tracer reads
(``.csv``, ``.parquet``, ``.json.gz``...) is downloaded instead (streamed, size-capped) and
read as that file.

A bearer token comes from the variable ``token_env`` names (the environment, else ``.env``)
and never appears in a message, a log or a record. It goes only to the origin (scheme, host
and port) of the URL the user gave: a redirect or a next link to another origin is followed
without it, or refused in one line when ``same_origin`` is set (``--same-origin``).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from tracer_kit.connections import dotenv_value, redact
from tracer_kit.errors import ConfigError, IngestError
from tracer_kit.ingest.files import ReadOptions, read_staged, staging_folder
from tracer_kit.ingest.registry import COMPRESSIONS, input_extensions
from tracer_kit.ingest.source import Ingested
from tracer_kit.options import ApiOptions

__all__ = [
    "CREDENTIAL_HEADERS",
    "ApiOptions",
    "Page",
    "fetch_pages",
    "is_file_url",
    "origin",
    "read_api",
]

T = TypeVar("T")

#: Where a next link or a cursor is looked for when no path is given (first found wins).
NEXT_PATHS = ("next", "links.next", "_links.next.href", "paging.next", "meta.next")
CURSOR_PATHS = ("next_cursor", "cursor", "meta.next_cursor", "pagination.next_cursor")
#: The longest wait a Retry-After header may ask for.
MAX_WAIT = 60.0


@dataclass(frozen=True)
class Page:
    """One page fetched: where, when, its HTTP status, its records and what leads on."""

    url: str
    requested_at: str  # ISO time (UTC) of the request that answered
    status: int
    records: list[Any]
    body: Any = field(repr=False, default=None)
    link_next: str | None = None  # the Link header's rel="next"
    next_url: str | None = None  # the page after this one (None: the last)


def is_file_url(url: str) -> bool:
    """Whether an http(s) URL names a file tracer reads (by its path's extension)."""
    path = urllib.parse.urlsplit(url).path.lower()
    for compression in COMPRESSIONS:
        path = path.removesuffix(compression)
    return Path(path).suffix in input_extensions()


def _api_error(url: str, message: str) -> IngestError:
    return IngestError(f"{redact(url)}: {message}", path=redact(url))


def _token(options: ApiOptions) -> str | None:
    if options.token_env is None:
        return None
    token = dotenv_value(options.token_env)
    if not token:
        msg = f"--token-env {options.token_env}: the variable is not set (in the environment or in .env)"
        raise ConfigError(msg)
    return token


class _Pacer:
    """At most ``rate`` requests per second: waits before a request that would come too soon."""

    def __init__(self, rate: float | None) -> None:
        self.gap = 1.0 / rate if rate else 0.0
        self.last = float("-inf")

    def wait(self) -> None:
        pause = self.last + self.gap - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        self.last = time.monotonic()


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    if value.strip().isdigit():
        return min(float(value), MAX_WAIT)
    when = email.utils.parsedate_to_datetime(value)
    return min(max((when - dt.datetime.now(dt.UTC)).total_seconds(), 0.0), MAX_WAIT)


def _backoff(options: ApiOptions, attempt: int, asked: float | None) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): ``Retry-After``, else exponential with jitter."""
    if asked is not None:
        return asked
    base = options.backoff * 2**attempt
    return min(base + random.uniform(0, base), MAX_WAIT)


def origin(url: str) -> tuple[str, str, int | None]:
    """A URL's origin: scheme, host (lower case) and port (the scheme's default when absent)."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port if port is not None else default


#: Request headers that carry credentials: sent to the user's own origin only.
CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization")


class _OriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects, dropping credentials on the way to another origin (or refusing it)."""

    def __init__(self, home: tuple[str, str, int | None], same_origin: bool) -> None:
        self.home, self.same_origin = home, same_origin

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is None or origin(new.full_url) == self.home:
            return new
        if self.same_origin:
            where = redact(new.full_url)
            raise _api_error(
                req.full_url, f"redirects to another origin ({where}); --same-origin refuses it"
            )
        for name in list(new.headers):
            if name.lower() in CREDENTIAL_HEADERS:
                del new.headers[name]
        return new


def _request(url: str, token: str | None) -> urllib.request.Request:
    headers = {"Accept": "application/json", "User-Agent": "tracer-kit"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return urllib.request.Request(url, headers=headers)


def _for_origin(url: str, home: tuple[str, str, int | None], token: str | None) -> str | None:
    """The token when ``url`` is on the user's own origin, else None (never sent elsewhere)."""
    return token if origin(url) == home else None


@dataclass(frozen=True)
class _Client:
    """What every request of one read shares: options, token, pace and the user's origin."""

    options: ApiOptions
    token: str | None
    pacer: _Pacer
    home: tuple[str, str, int | None]

    def opener(self) -> urllib.request.OpenerDirector:
        return urllib.request.build_opener(_OriginRedirects(self.home, self.options.same_origin))


def _client(url: str, options: ApiOptions) -> _Client:
    return _Client(options, _token(options), _Pacer(options.rate_limit), origin(url))


def _with_retries(url: str, client: _Client, use: Callable[[Any], T]) -> tuple[T, str]:
    """``use(response)`` of a GET of ``url``, retried as the module docstring says; and the
    request's time (ISO, UTC).
    """  # noqa: D205
    last, options, opener = "", client.options, client.opener()
    for attempt in range(options.retries + 1):
        client.pacer.wait()
        at = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        asked = None
        try:
            request = _request(url, _for_origin(url, client.home, client.token))
            with opener.open(request, timeout=options.timeout) as response:
                return use(response), at
        except urllib.error.HTTPError as exc:
            if exc.code != 429 and exc.code < 500:
                raise _api_error(url, f"HTTP {exc.code} {exc.reason}") from None
            last, asked = f"HTTP {exc.code} {exc.reason}", _retry_after(exc.headers)
        except TimeoutError:
            last = f"no answer within {options.timeout:g} s"
        except urllib.error.URLError as exc:
            timed_out = isinstance(exc.reason, TimeoutError)
            last = (
                f"no answer within {options.timeout:g} s"
                if timed_out
                else f"cannot connect ({exc.reason})"
            )
        except OSError as exc:  # (ConnectionError and the like, mid-answer)
            last = f"the connection failed ({exc})"
        if attempt < options.retries:
            time.sleep(_backoff(options, attempt, asked))
    tries = options.retries + 1
    raise _api_error(url, f"gave up after {tries} {'try' if tries == 1 else 'tries'} ({last})")


def _at_path(body: Any, path: str) -> Any:
    value = body
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _records(body: Any, path: str | None, url: str) -> list[Any]:
    """The page's records: at ``path``, or the body when it is a list, or its one list of objects."""
    if path is not None:
        found = _at_path(body, path)
        if not isinstance(found, list):
            keys = ", ".join(sorted(body)) if isinstance(body, dict) else type(body).__name__
            raise _api_error(
                url, f"--records-path {path} is not a list of records here (the page has: {keys})"
            )
        return found
    if isinstance(body, list):
        return body
    lists = [k for k, v in body.items() if isinstance(v, list)] if isinstance(body, dict) else []
    if len(lists) == 1:
        return body[lists[0]]
    keys = ", ".join(sorted(body)) if isinstance(body, dict) else type(body).__name__
    raise _api_error(
        url, f"which field holds the records? give --records-path (the page has: {keys})"
    )


def _link_next(headers: Any) -> str | None:
    for part in (headers.get("Link") or "").split(","):
        m = re.match(r'\s*<([^>]*)>\s*;.*rel="?next"?', part)
        if m:
            return m.group(1)
    return None


def _with_param(url: str, name: str, value: Any) -> str:
    parts = urllib.parse.urlsplit(url)
    query = [
        (k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if k != name
    ]
    query.append((name, str(value)))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _next_url(page: Page, options: ApiOptions, number: int) -> str | None:
    """The next page's URL, or None when this page was the last."""
    if options.paginate == "none":
        return None
    if options.paginate == "page":
        return _with_param(page.url, "page", number + 1) if page.records else None
    if options.paginate == "next-link":
        found = page.link_next or next(
            (v for p in NEXT_PATHS if isinstance(v := _at_path(page.body, p), str) and v), None
        )
        return urllib.parse.urljoin(page.url, found) if found else None
    cursor = next(
        (v for p in CURSOR_PATHS if (v := _at_path(page.body, p)) not in (None, "")), None
    )
    return _with_param(page.url, "cursor", cursor) if cursor is not None else None


def fetch_pages(url: str, options: ApiOptions | None = None) -> Iterator[Page]:
    """The API's pages in order, fetched as :class:`ApiOptions` says (see the module docstring)."""
    options = options or ApiOptions()
    client = _client(url, options)
    if options.paginate == "page" and "page=" not in urllib.parse.urlsplit(url).query:
        url = _with_param(url, "page", 1)
    number, seen = 1, set()
    while url is not None:
        (status, headers, raw), at = _with_retries(
            url, client, lambda r: (r.status, r.headers, r.read())
        )
        try:
            body = json.loads(raw.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _api_error(url, f"page {number} is not JSON ({exc})") from None
        except RecursionError:
            raise _api_error(url, f"page {number} is JSON nested too deep to read") from None
        page = Page(
            url, at, status, _records(body, options.records_path, url), body, _link_next(headers)
        )
        seen.add(url)
        nxt = _next_url(page, options, number)
        if nxt in seen:
            raise _api_error(
                url, f"page {number} points back to a page already read ({redact(nxt)})"
            )
        if nxt is not None and options.same_origin and origin(nxt) != client.home:
            msg = f"page {number} links to another origin ({redact(nxt)}); --same-origin refuses it"
            raise _api_error(url, msg)
        yield replace(page, next_url=nxt)
        if nxt is not None and options.max_pages is not None and number >= options.max_pages:
            return
        url, number = nxt, number + 1


def _save(response: Any, dest: Path, url: str, limit: int) -> str:
    """Stream ``response`` into ``dest`` (at most ``limit`` bytes); its SHA-256."""
    digest, size = hashlib.sha256(), 0
    with dest.open("wb") as out:
        while chunk := response.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise _api_error(url, f"is larger than the {limit:,} bytes allowed (--max-bytes)")
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _download(url: str, dest: Path, options: ApiOptions) -> str:
    """Stream a file URL to ``dest`` (at most ``max_bytes``, retried as a page is); its SHA-256."""
    saved, _ = _with_retries(
        url, _client(url, options), lambda response: _save(response, dest, url, options.max_bytes)
    )
    return saved


def read_api(
    url: str,
    options: ApiOptions | None = None,
    *,
    on_bad_lines: str = "quarantine",
    staging_dir: str | Path | None = None,
) -> Ingested:
    """Read an HTTP JSON API's records (or a file at an https URL) as text columns plus ``source_row``."""
    options = options or ApiOptions()
    staging, keep = staging_folder(staging_dir, "tracer-api-")
    if is_file_url(url):
        staged = staging / (Path(urllib.parse.urlsplit(url).path).name or "download")
        _download(url, staged, options)
        return read_staged(staged, ReadOptions(on_bad_lines=on_bad_lines), keep, path=redact(url))
    staged = staging / "api-records.ndjson"
    pages, digest, more = _write_records(url, options, staged)
    identity = {"source": redact(url), "records": digest, "paginate": options.paginate}
    warnings = (
        [f"stopped after --max-pages {options.max_pages}: the API has more pages"] if more else []
    )
    return read_staged(
        staged,
        ReadOptions(format="ndjson", on_bad_lines=on_bad_lines),
        keep,
        lines=False,
        path=redact(url),
        sha256=hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest(),
        format="api",
        encoding=None,
        pages=tuple(pages),
        warnings=warnings,
    )


def _write_records(
    url: str, options: ApiOptions, staged: Path
) -> tuple[list[dict[str, Any]], str, bool]:
    """Every page's records as NDJSON lines in ``staged``: the pages, the records' SHA-256, and
    whether the API had more pages than ``max_pages`` let through.
    """  # noqa: D205
    pages: list[dict[str, Any]] = []
    digest, rows, more = hashlib.sha256(), 0, False
    with staged.open("w", encoding="utf-8") as out:
        for page in fetch_pages(url, options):
            pages.append(
                {
                    "url": redact(page.url),
                    "requested_at": page.requested_at,
                    "status": page.status,
                    "first_row": rows + 1,
                    "rows": len(page.records),
                }
            )
            more = page.next_url is not None
            for record in page.records:
                if not isinstance(record, dict):
                    what = json.dumps(record)[:80]
                    raise _api_error(page.url, f"record {rows + 1} is not an object: {what}")
                line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
                digest.update(line.encode() + b"\n")
                out.write(line + "\n")
                rows += 1
    if rows == 0:
        raise _api_error(url, f"no records in {len(pages)} page(s)")
    return pages, digest.hexdigest(), more
