"""Database locations: parsing a URL, finding its credentials, hiding them, connecting.

A database is named by a URL: ``postgresql://user:password@host:5432/db``,
``sqlite:///relative/file.db`` or ``duckdb:////absolute/file.duckdb`` (SQLAlchemy's
convention: three slashes, then the path). Credentials come from
the URL itself, from the standard ``PG*`` variables and ``~/.pgpass`` (libpq reads them for
PostgreSQL), or from ``TRACER_DB_URL`` (the environment, else a ``.env`` file in the current
folder): when the URL given has no password and ``TRACER_DB_URL`` names the same database,
its user and password are used. ``env:NAME`` in place of a URL reads the whole URL from
the variable ``NAME`` (the environment, else ``.env``).

Whatever a URL carries, only :meth:`DatabaseUrl.display` (password replaced by ``***``)
is ever written to a log, a run record, a report or an error message; :func:`scrub` hides a
password that a driver's own message might repeat. A recorded URL can be given again
(``tracer rerun``): its ``***`` counts as no password, so the real one is looked up as above.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

from tracer_kit.errors import ConfigError, TracerError

__all__ = [
    "CONNECT_TIMEOUT",
    "DATABASE_KINDS",
    "URL_VARIABLE",
    "SECRET_PARAMS_VARIABLE",
    "SECRET_PARAM_NAMES",
    "SECRET_PARAM_WORDS",
    "DatabaseUrl",
    "add_secret_params",
    "check_url",
    "connect_database",
    "driver_errors",
    "driver_message",
    "dotenv_value",
    "is_database_url",
    "is_one_select",
    "is_secret_param",
    "is_url",
    "looks_random",
    "parse_database_url",
    "quote_name",
    "redact",
    "scrub",
    "url_for_kernel",
]

#: URL schemes of the databases tracer reads (``postgres`` is libpq's alias).
DATABASE_KINDS = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "sqlite": "sqlite",
    "duckdb": "duckdb",
}

#: The variable (or ``.env`` key) holding a default database URL with its credentials.
URL_VARIABLE = "TRACER_DB_URL"

#: Seconds to wait for a database server before giving up.
CONNECT_TIMEOUT = 10

_MASK = "***"


def dotenv_value(name: str, folder: str | Path | None = None) -> str | None:
    """``name`` from the environment, else from ``.env`` in ``folder`` (default: the current one).

    ``.env`` lines are ``NAME=value`` (``export NAME=value`` and quotes around the value are
    allowed; ``#`` starts a comment line).
    """
    if os.environ.get(name):
        return os.environ[name]
    path = Path(folder or Path.cwd()) / ".env"
    if not path.is_file():
        return None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and key.strip() == name and not key.lstrip().startswith("#"):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            return value
    return None


@dataclass(frozen=True)
class DatabaseUrl:
    """A parsed database URL; :meth:`display` is the only form that leaves the process."""

    kind: str  # postgresql, sqlite or duckdb
    url: str  # the full URL, credentials included: pass it to a driver, never print it
    password: str | None = None

    @property
    def path(self) -> Path | None:
        """The database file of a SQLite or DuckDB URL (None for a server).

        As in SQLAlchemy: ``sqlite:///crm.db`` is ``crm.db`` in the current folder,
        ``sqlite:////data/crm.db`` the absolute ``/data/crm.db``.
        """
        if self.kind == "postgresql":
            return None
        rest = self.url.split("://", 1)[1].split("?", 1)[0]
        return Path(unquote(rest.removeprefix("/")))

    def display(self) -> str:
        """The URL without its password (``***`` in its place): safe to log and record."""
        return redact(self.url)

    def secrets(self) -> list[str]:
        """Strings that must never be printed (the password, raw and URL-quoted)."""
        if not self.password:
            return []
        return sorted({self.password, quote(self.password, safe="")}, key=len, reverse=True)


def check_url(text: str) -> str:
    """``text`` once it parses as a URL; one line naming it (without secrets) when it does not."""
    try:
        parts = urlsplit(text)
        _ = parts.port  # (a port that is not a number fails only when asked for)
    except ValueError as exc:
        why = str(exc)
        if "IPv6" in why:
            why = "an IPv6 address needs both brackets, as in [::1]:5432"
        msg = f"{redact(text)} is not a valid URL ({why})"
        raise ConfigError(msg) from None
    return text


def is_url(source: Any) -> bool:
    """Whether ``source`` is a database or http(s) URL (kept as text: a path would fold its ``//``)."""
    text = str(source)
    return is_database_url(text) or text.lower().startswith(("http://", "https://"))


def is_database_url(source: Any) -> bool:
    """Whether ``source`` names a database (``postgresql://``, ``sqlite:///``, ``env:NAME``...)."""
    text = str(source)
    if text.startswith("env:"):
        return True
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.lower() in DATABASE_KINDS


def parse_database_url(source: str | Path) -> DatabaseUrl:
    """Parse a database URL (or ``env:NAME``), filling a missing password from ``TRACER_DB_URL``.

    Raises :class:`~tracer_kit.errors.ConfigError` for an unknown scheme or an ``env:``
    variable that is not set; the message never holds a password.
    """
    text = str(source)
    if text.startswith("env:"):
        name = text[4:]
        value = dotenv_value(name)
        if not value:
            msg = f"{text}: the variable {name} is not set (in the environment or in .env)"
            raise ConfigError(msg)
        text = value
    check_url(text)
    scheme = text.partition("://")[0].lower()
    kind = DATABASE_KINDS.get(scheme)
    if kind is None:
        msg = (
            f"{redact(text)}: not a database URL; use postgresql://user@host:5432/db, "
            "sqlite:///path.db or duckdb:///path.duckdb"
        )
        raise ConfigError(msg)
    if kind == "postgresql":
        text = _with_default_credentials(_without_mask(text))
    return DatabaseUrl(kind, text, _password(text))


def _password(url: str) -> str | None:
    """The URL's password; ``***`` (a recorded URL, :meth:`DatabaseUrl.display`) is none."""
    parts = urlsplit(url)
    found = (
        unquote(parts.password) if parts.password else dict(parse_qsl(parts.query)).get("password")
    )
    return None if found in (None, "", _MASK) else found


def _without_mask(url: str) -> str:
    """A recorded URL (password ``***``) without its password, so the real one is looked up."""
    parts = urlsplit(url)
    if parts.password != _MASK:
        return url
    user, host = parts.netloc.rsplit("@", 1)
    netloc = f"{user.rsplit(':', 1)[0]}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _with_default_credentials(url: str) -> str:
    """``url`` with the user and password of ``TRACER_DB_URL`` when it names the same database."""
    if _password(url):
        return url
    default = dotenv_value(URL_VARIABLE)
    if not default or not _password(default):
        return url
    given, known = urlsplit(url), urlsplit(default)
    same = (given.hostname or "", given.port or 5432, given.path.strip("/")) == (
        known.hostname or "",
        known.port or 5432,
        known.path.strip("/"),
    ) and given.username in (None, known.username)
    if not same:
        return url
    netloc = known.netloc.rsplit("@", 1)[0] + "@" + given.netloc.rsplit("@", 1)[-1]
    return urlunsplit((given.scheme, netloc, given.path, given.query, given.fragment))


#: Words that make a URL query parameter's value a secret, matched against each word of its
#: name (``api_key``, ``apiKey``, ``X-Amz-Signature``, ``access_token``...). Add names with
#: ``--secret-param`` or ``TRACER_SECRET_PARAMS`` (comma-separated).
SECRET_PARAM_WORDS = frozenset(
    "password passwd pwd pass passphrase secret token key apikey auth authorization "
    "credential credentials jwt sig signature session sessionid sid cookie otp".split()
)
#: Names that are secrets only as the whole name (OAuth's ``code``; ``zip_code`` is not).
SECRET_PARAM_NAMES = frozenset({"code", "state", "nonce"})
SECRET_PARAMS_VARIABLE = "TRACER_SECRET_PARAMS"
_URL_START = re.compile(r"\b[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_\-.~+/=%]+")


def add_secret_params(names: list[str] | tuple[str, ...]) -> None:
    """Treat query parameters with these names as secrets too (for this process and its kernels)."""
    known = [n for n in os.environ.get(SECRET_PARAMS_VARIABLE, "").split(",") if n]
    added = [n.strip() for n in names if n.strip() and n.strip() not in known]
    if added:
        os.environ[SECRET_PARAMS_VARIABLE] = ",".join([*known, *added])


def _name_words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[\s_\-.\[\]]+", spaced.lower()) if w]


def is_secret_param(name: str) -> bool:
    """Whether a URL query parameter named ``name`` carries a secret (see ``SECRET_PARAM_WORDS``)."""
    lowered = name.strip().lower()
    extra = {n.strip().lower() for n in os.environ.get(SECRET_PARAMS_VARIABLE, "").split(",")}
    if lowered in SECRET_PARAM_NAMES or lowered in extra - {""}:
        return True
    return any(w in SECRET_PARAM_WORDS for w in _name_words(name))


def looks_random(value: str) -> bool:
    """Whether ``value`` looks like a generated secret: over 20 characters of token alphabet,
    letters mixed with digits, high entropy, and not words joined by ``_``, ``-`` or ``.``.
    """  # noqa: D205
    if len(value) <= 20 or not _TOKEN_CHARS.fullmatch(value):
        return False
    if not (re.search(r"\d", value) and re.search(r"[A-Za-z]", value)):
        return False
    parts = [p for p in re.split(r"[_\-.]+", value) if p]
    if all(p.isalpha() or (p.isdigit() and len(p) <= 8) for p in parts):
        return False  # customers_2024_export, report-2024-06-30
    counts = [value.count(c) for c in set(value)]
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts)
    return entropy >= 3.5


def _mask_query(query: str) -> str:
    out = []
    for pair in query.split("&"):
        name, sep, value = pair.partition("=")
        secret = is_secret_param(unquote(name)) or looks_random(unquote(value))
        out.append(f"{name}{sep}{_MASK}" if sep and value and secret else pair)
    return "&".join(out)


def _mask_url(url: str) -> str:
    """One URL (from its scheme to its end) with its password and secret values masked.

    The password is found by parsing: the user information is everything before the last
    ``@`` of the authority (so a password holding an unencoded ``@`` is hidden whole).
    """
    scheme, _, rest = url.partition("://")
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    userinfo, at, host = authority.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        if colon and password:
            userinfo = f"{user}:{_MASK}"
        elif looks_random(unquote(user)):
            userinfo = _MASK  # a token given as the user (https://TOKEN@host)
        authority = f"{userinfo}@{host}"
    path, qmark, query = tail.partition("?")
    query, hash_, fragment = query.partition("#")
    segments = "/".join(_MASK if looks_random(unquote(s)) else s for s in path.split("/"))
    query = _mask_query(query) if qmark else query
    return f"{scheme}://{authority}{segments}{qmark}{query}{hash_}{fragment}"


def redact(text: str) -> str:
    """``text`` with every URL secret replaced by ``***``: the password of ``user:password@``
    (found by parsing the URL), query values whose name says secret (``?api_key=``,
    ``&auth=``, see ``SECRET_PARAM_WORDS``), and values or path parts that look random.
    """  # noqa: D205
    text = str(text)
    out, pos = [], 0
    for m in _URL_START.finditer(text):
        if m.start() < pos:
            continue
        end = m.end()
        while end < len(text) and not text[end].isspace() and text[end] not in "'\"<>`":
            end += 1
        out += [text[pos : m.start()], _mask_url(text[m.start() : end])]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def scrub(text: str, url: DatabaseUrl) -> str:
    """``text`` (a driver's message, say) with ``url``'s password hidden wherever it appears."""
    text = redact(text)
    for secret in url.secrets():
        text = text.replace(secret, _MASK)
    return text


def quote_name(name: str) -> str:
    """A table name for SQL: each dotted part double-quoted (``crm.customers`` -> ``"crm"."customers"``).

    A part already in double quotes is kept as written.
    """
    parts = re.findall(r'"(?:[^"]|"")*"|[^.]+', name)
    if not parts or "".join(parts).strip() == "":
        msg = f"--table {name!r} is not a table name"
        raise ConfigError(msg)
    quoted = [p if p.startswith('"') else '"' + p.strip().replace('"', '""') + '"' for p in parts]
    return ".".join(quoted)


@contextmanager
def url_for_kernel(source: Any) -> Iterator[str]:
    """While inside, a database URL's credentials are in ``TRACER_DB_URL`` (for a notebook kernel).

    Yields what the notebook may be given instead of ``source``: the URL without its
    password (the kernel inherits the environment and finds it there), or ``source`` itself
    when it is no database URL or carries no password.
    """
    if not is_database_url(source):
        yield str(source)
        return
    db = parse_database_url(source)
    if not db.password:
        yield db.display()
        return
    before = os.environ.get(URL_VARIABLE)
    os.environ[URL_VARIABLE] = db.url
    try:
        yield db.display()
    finally:
        if before is None:
            os.environ.pop(URL_VARIABLE, None)
        else:
            os.environ[URL_VARIABLE] = before


def driver_message(exc: BaseException) -> str:
    """A driver's message on one line (psycopg's span several)."""
    text = re.sub(r"\s+", " ", str(exc)).strip()
    return text or type(exc).__name__


@contextmanager
def connect_database(
    db: DatabaseUrl,
    *,
    read_only: bool = True,
    error: type[TracerError] = TracerError,
    doing: str | None = None,
) -> Iterator[Any]:
    """A connection to ``db`` (psycopg, sqlite3 or duckdb), closed when the block ends.

    With ``read_only`` SQLite and DuckDB files are opened read-only and a PostgreSQL session
    is read-only (a user's DuckDB file is never tracer's warehouse, which only
    :mod:`tracer_kit.warehouse` opens). A failure to connect raises ``error`` with one line
    naming ``db`` without its password (after ``doing``, what failed, when given).
    """
    path = db.path
    if path is not None and read_only and not path.is_file():
        raise error(f"{db.display()}: no such database file ({path})", path=db.display())
    try:
        con = _open(db, read_only=read_only)
    except Exception as exc:
        cause = f"cannot connect: {driver_message(exc)}"
        msg = f"{db.display()}: {doing} ({cause})" if doing else f"{db.display()}: {cause}"
        raise error(scrub(msg, db), path=db.display()) from None
    try:
        yield con
    finally:
        con.close()


def _open(db: DatabaseUrl, *, read_only: bool) -> Any:
    if db.kind == "postgresql":
        import psycopg

        con = psycopg.connect(
            db.url, connect_timeout=CONNECT_TIMEOUT, application_name="tracer-kit"
        )
        con.read_only = read_only
        return con
    path = db.path
    if db.kind == "sqlite":
        import sqlite3

        mode = "ro" if read_only else "rwc"
        return sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode={mode}", uri=True)
    import duckdb

    return duckdb.connect(str(path), read_only=read_only)


def is_one_select(sql: str) -> bool:
    """Whether ``sql`` is exactly one SELECT statement (DuckDB's parser decides)."""
    import duckdb

    statements = duckdb.extract_statements(sql)
    return len(statements) == 1 and statements[0].type.name == "SELECT"


def driver_errors(kind: str) -> tuple[type[BaseException], ...]:
    """A database kind's driver error classes (and ``LookupError``: a table that is not there)."""
    if kind == "postgresql":
        import psycopg

        return (psycopg.Error, LookupError)
    if kind == "sqlite":
        import sqlite3

        return (sqlite3.Error, LookupError)
    import duckdb

    return (duckdb.Error, LookupError)
