"""One declaration per option: the read options, the input formats and where each is derived.

``tracer_kit.options`` declares the read options once; ``read_table``'s keywords, the CLI's
flags of ``run``/``validate``/``profile``, ``Config.read`` and the docs' list come from it
or are held equal to it here. A reader declares its extensions, its magic bytes and whether
it is text; detection, the format check, the Spark engine's list and the help come from
the registry.
"""

from __future__ import annotations

import inspect
import re

import polars as pl
import pytest
import typer.main

import tracer_kit as tk
from tracer_kit.cli import app
from tracer_kit.ingest import READERS, Reader, ReadOutcome, ReadRequest, register_reader
from tracer_kit.options import FORMAT_HELP, ApiOptions, ReadOptions, cli_fields
from tracer_kit.spark.source import SPARK_NATIVE, spark_formats

from .conftest import REPO

#: What a caller adds to the options (not options: where copies go, which sheet fits).
CONTEXT = {"staging_dir", "sheet_fits"}


def test_read_table_takes_exactly_the_read_options():
    params = inspect.signature(tk.read_table).parameters
    keywords = {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY}
    assert keywords == set(ReadOptions.model_fields) | CONTEXT
    for name, field in ReadOptions.model_fields.items():
        default = params[name].default
        if name == "api":
            assert default is None  # (None: ApiOptions() defaults)
        else:
            assert default == field.default, name


def _command_options(name: str) -> dict[str, str]:
    command = typer.main.get_command(app).commands[name]
    return {opt: p.help or "" for p in command.params for opt in p.opts if opt.startswith("--")}


@pytest.mark.parametrize("command", ["run", "validate", "profile"])
def test_the_cli_read_flags_are_built_from_the_options(command):
    offered = _command_options(command)
    for field in cli_fields():
        assert offered[field.flag] == field.help, field.flag
    # and nothing else spells a read option: every flag named like a field is that field
    names = {
        f"--{n.replace('_', '-')}" for n in (*ReadOptions.model_fields, *ApiOptions.model_fields)
    }
    flags = {f.flag for f in cli_fields()}
    assert {o for o in offered if o in names} == flags


def test_the_cli_passes_read_flags_to_the_config(workdir):
    from tracer_kit.cli import build_config

    cfg = build_config(
        None,
        read_flags={"format": "csv", "delimiter": "tab", "sheet": "2", "paginate": "page"},
    )
    assert (cfg.read.format, cfg.read.delimiter, cfg.read.sheet) == ("csv", "\t", 2)
    assert cfg.read.api.paginate == "page" and cfg.read.on_bad_lines == "quarantine"


def test_a_config_takes_read_options_nested_or_at_its_top_level():
    flat = tk.Config(format="csv", delimiter=";", api={"paginate": "cursor"})
    nested = tk.Config(read={"format": "csv", "delimiter": ";", "api": {"paginate": "cursor"}})
    assert flat == nested
    assert flat.read.on_bad_lines == "quarantine"  # a run quarantines unless told otherwise
    assert tk.Config().read.on_bad_lines == "quarantine"
    assert tk.Config(on_bad_lines="error").read.on_bad_lines == "error"
    with pytest.raises(tk.ConfigError, match="single character"):
        tk.Config(delimiter=";;")
    with pytest.raises(tk.ConfigError, match="--paginate sideways: use next-link, page or cursor"):
        tk.ApiOptions(paginate="sideways")


def test_the_format_help_and_the_docs_name_every_built_in_format():
    built_in = re.findall(r"\w+", FORMAT_HELP.replace(" or ", ", "))
    assert built_in == list(READERS)
    guide = (REPO / "docs" / "guide" / "command-line.md").read_text(encoding="utf-8")
    listed = re.search(r"`--format` \(([^)]*)\)", guide).group(1)
    assert re.findall(r"\w+", listed) == list(READERS)


def test_the_spark_engine_reads_the_registered_extensions_of_its_formats():
    expected = {ext for name in SPARK_NATIVE for ext in READERS[name].extensions}
    assert set(spark_formats()) == expected and spark_formats()[".jsonl"] == "json"


def _read_tkb(req: ReadRequest) -> ReadOutcome:
    """A toy binary format: magic ``TKB1``, then ``name=value`` records separated by NUL."""
    body = req.work.read_bytes()[4:].split(b"\x00")
    records = [dict(p.split("=", 1) for p in r.decode().split(";")) for r in body if r]
    frame = pl.DataFrame(records).with_row_index("source_row", offset=1)
    frame = frame.with_columns(
        pl.col("source_row").cast(pl.Int64), pl.lit(None, dtype=pl.Int64).alias("source_line")
    )
    return ReadOutcome(frame=frame.lazy(), columns=list(records[0]), rows=frame.height)


@pytest.fixture
def tkb_format():
    register_reader(Reader("tkb", False, _read_tkb, (".tkb",), magic=(b"TKB1",)))
    yield
    READERS.pop("tkb")


def test_a_binary_format_is_one_registration(workdir, tkb_format):
    """Magic bytes decide whatever the file is called; the format check and Spark follow."""
    data = b"TKB1" + b"\x00".join(
        [b"customer_id=C1;total_value=10", b"customer_id=C2;total_value=7"]
    )
    (workdir / "export.dat").write_bytes(data)  # (no extension names it: the content does)
    ing = tk.read_table("export.dat")
    assert ing.info.format == "tkb"
    assert ing.frame.collect()["total_value"].to_list() == ["10", "7"]
    assert tk.read_table("export.dat", format="tkb").info.format == "tkb"
    assert ".tkb" not in spark_formats()  # (not a format Spark reads natively)
