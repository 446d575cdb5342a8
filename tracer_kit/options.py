"""How to read a source, declared once: :class:`ReadOptions` and the :class:`ApiOptions` inside it.

Everything else is derived from these two models: ``Config.read`` nests them (a config
file's flat keys such as ``format:`` still load), :func:`tracer_kit.read_table`'s keywords
are their fields (a test holds them equal), ``validate`` and ``profile`` take them through
a config, and the CLI's read flags of ``tracer run``, ``validate`` and ``profile`` are built
from the fields marked with a flag (:func:`cli_fields`), with their descriptions as help.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tracer_kit.errors import ConfigError, option

__all__ = [
    "FORMAT_HELP",
    "PAGINATE_CHOICES",
    "ApiOptions",
    "CliField",
    "ReadOptions",
    "cli_fields",
]

#: Pagination schemes of an HTTP API source (``none``: one page).
PAGINATE_CHOICES = ("none", "next-link", "page", "cursor")
#: The built-in input formats, as the CLI's help names them (a test holds them equal to the
#: reader registry's, so a format added there is named here too).
FORMAT_HELP = "csv, json, ndjson, parquet, excel or xml."


def _flag(flag: str, panel: str) -> dict[str, Any]:
    """A field's CLI flag and the help panel it is listed in."""
    return {"cli_flag": flag, "cli_panel": panel}


_SOURCE = "Reading the source"
_API = "HTTP API sources"
_DATABASE = "Database sources"


class ApiOptions(BaseModel):
    """How to page through an HTTP JSON API (``tracer run https://... --paginate cursor``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    records_path: str | None = Field(
        None,
        description="API: dotted path to the records in each page (data).",
        json_schema_extra=_flag("--records-path", _API),
    )
    paginate: str = Field(
        "none",
        description="API: next-link, page or cursor (default: one page).",
        json_schema_extra=_flag("--paginate", _API),
    )
    rate_limit: float | None = Field(
        None,
        description="API: at most this many requests per second.",
        json_schema_extra=_flag("--rate-limit", _API),
    )
    max_pages: int | None = Field(
        None, description="API: stop after N pages.", json_schema_extra=_flag("--max-pages", _API)
    )
    token_env: str | None = Field(
        None,
        description="API: send the bearer token held in this variable (or .env).",
        json_schema_extra=_flag("--token-env", _API),
    )
    timeout: float = Field(30.0, gt=0, description="Seconds to wait for each answer.")
    retries: int = Field(
        5, ge=0, le=20, description="Extra tries of a request after a 429, a 5xx or a timeout."
    )
    backoff: float = Field(
        0.5, ge=0, description="Seconds before the first retry, doubled each time (plus jitter)."
    )
    max_bytes: int = Field(10 * 10**9, gt=0, description="A downloaded file's cap (10 GB).")
    same_origin: bool = Field(
        False,
        description=(
            "API: refuse a redirect or next link to another host "
            "(default: follow it without the token)."
        ),
        json_schema_extra=_flag("--same-origin", _API),
    )

    @field_validator("paginate")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value not in PAGINATE_CHOICES:
            raise ConfigError(f"--paginate {value}: use next-link, page or cursor")
        return value

    @field_validator("rate_limit")
    @classmethod
    def _positive_rate(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ConfigError(f"--rate-limit {value}: give requests per second, > 0")
        return value

    @field_validator("max_pages")
    @classmethod
    def _some_pages(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ConfigError(f"--max-pages {value}: give 1 or more")
        return value


class ReadOptions(BaseModel):
    """How to read a source; every option is detected or defaulted when not given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str | None = Field(
        None, description=FORMAT_HELP, json_schema_extra=_flag("--format", _SOURCE)
    )
    encoding: str | None = Field(
        None,
        description="Text encoding (default: detected).",
        json_schema_extra=_flag("--encoding", _SOURCE),
    )
    delimiter: str | None = Field(
        None,
        description="Field delimiter (default: sniffed).",
        json_schema_extra=_flag("--delimiter", _SOURCE),
    )
    sheet: str | int | None = Field(
        None,
        description="Excel sheet name or 0-based index.",
        json_schema_extra=_flag("--sheet", _SOURCE),
    )
    on_bad_lines: Literal["error", "quarantine"] = Field(
        "error",
        description="quarantine (default for runs) or error.",
        json_schema_extra=_flag("--on-bad-lines", _SOURCE),
    )
    max_bytes: int | None = Field(
        None,
        gt=0,
        description="Refuse inputs larger than this (after decompression).",
        json_schema_extra=_flag("--max-bytes", _SOURCE),
    )
    table: str | None = Field(
        None,
        description="With a database URL: the table to read (in primary-key order).",
        json_schema_extra=_flag("--table", _DATABASE),
    )
    query: str | None = Field(
        None,
        description="With a database URL: the SQL to run (give it an ORDER BY).",
        json_schema_extra=_flag("--query", _DATABASE),
    )
    api: ApiOptions = Field(
        default_factory=ApiOptions,
        description="With an http(s) URL of a JSON API: how to page through it.",
    )

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            msg = f"{option('delimiter', value=value)} should be a single character"
            raise ConfigError(msg)
        return value


class CliField(BaseModel):
    """A read option as the CLI offers it: its flag, type, help and panel, and where it goes."""

    model_config = ConfigDict(frozen=True)

    name: str
    flag: str
    annotation: Any
    help: str
    panel: str
    api: bool  # an :class:`ApiOptions` field (else a :class:`ReadOptions` one)


def cli_fields() -> list[CliField]:
    """Every read option that has a CLI flag, in declaration order (read options, then API)."""
    out = []
    for model, api in ((ReadOptions, False), (ApiOptions, True)):
        for name, info in model.model_fields.items():
            extra = info.json_schema_extra
            if not isinstance(extra, dict) or "cli_flag" not in extra:
                continue
            out.append(
                CliField(
                    name=name,
                    flag=str(extra["cli_flag"]),
                    annotation=info.annotation,
                    help=info.description or "",
                    panel=str(extra["cli_panel"]),
                    api=api,
                )
            )
    return out
