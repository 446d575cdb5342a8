"""Generated bad input: random bytes, random CSV, JSON and XML structure and random option values
through ``read_table`` and ``validate``. Only a :class:`TracerError` may come out: never a
polars, DuckDB or Python exception (which the CLI would print as "internal error").
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracer_kit as tk
from tracer_kit.quality.casting import NULL_SPELLINGS, NULL_TOKENS

FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
NAMES = ["x.csv", "x.tsv", "x.json", "x.ndjson", "x.xml", "x.parquet", "x.xlsx", "x.csv.gz", "x"]
FIELDS = [
    "customer_id", "last_activity_date", "account_created_date", "total_value",
    "support_tickets", "feature_usage_count", "plan_type", "churned", "", "a,b", 'q"',
]  # fmt: skip
CELLS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["2024-05-01", "01/02/2024", "31/12/2024", "-1", "1e309", "nan", "NULL", "=1+1"]
    ),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True).map(str),
)


def _outcome(path: Path, **options: object) -> None:
    """Read and validate ``path``; anything but a TracerError fails the test."""
    try:
        ing = tk.read_table(path, **options)
        ing.frame.collect()
    except tk.TracerError:
        return
    try:
        tk.validate(
            path, "customer_churn", config={k: v for k, v in options.items() if v is not None}
        )
    except tk.TracerError:
        pass


def _write(data: bytes, name: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    path = folder / name
    path.write_bytes(data)
    return path


@FUZZ
@given(data=st.binary(max_size=3000), name=st.sampled_from(NAMES))
def test_random_bytes_are_a_clear_error_or_a_table(data, name):
    _outcome(_write(data, name))


@st.composite
def delimited(draw):
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    header = draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=9, unique=True))
    rows = draw(st.lists(st.lists(CELLS, max_size=10), max_size=30))
    quote = draw(st.booleans())

    def cell(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if quote or delimiter in v or "\n" in v else v

    text = "\n".join(delimiter.join(map(cell, r)) for r in [header, *rows])
    ending = draw(st.sampled_from(["\n", "\r\n", "\r", ""]))
    return (text + ending).encode(draw(st.sampled_from(["utf-8", "utf-16", "cp1252"])), "replace")


@FUZZ
@given(data=delimited())
def test_random_delimited_text_is_a_clear_error_or_a_table(data):
    _outcome(_write(data, "x.csv"))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=5)
    ),
    max_leaves=20,
)


@FUZZ
@given(value=JSON_VALUES, lines=st.booleans())
def test_random_json_is_a_clear_error_or_a_table(value, lines):
    if lines and isinstance(value, list):
        text = "\n".join(json.dumps(v) for v in value)
        _outcome(_write(text.encode(), "x.ndjson"))
    else:
        _outcome(_write(json.dumps(value).encode(), "x.json"))


@st.composite
def xml_documents(draw):
    tags = st.sampled_from(["rows", "row", "record", "customer_id", "plan_type", "x", "a-b"])
    records = draw(
        st.lists(st.dictionaries(tags, st.text(max_size=6).map(_escape), max_size=4), max_size=8)
    )
    body = "".join(
        "<row>" + "".join(f"<{k}>{v}</{k}>" for k, v in r.items()) + "</row>" for r in records
    )
    cut = draw(st.integers(0, 5))
    doc = f"<?xml version='1.0'?><rows>{body}</rows>"
    return doc[: len(doc) - cut].encode()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@FUZZ
@given(data=xml_documents())
def test_random_xml_is_a_clear_error_or_a_table(data):
    _outcome(_write(data, "x.xml"))


GOOD = (
    b"customer_id,last_activity_date,account_created_date,total_value,support_tickets,"
    b"feature_usage_count,plan_type\nC1,2024-05-01,2023-01-01,10.5,1,3,basic\n"
)


def _mostly(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """Usually a sensible value (so the read goes on to validation), sometimes a wild one."""
    return st.one_of(st.none(), st.none(), st.none(), good, bad)


@FUZZ
@given(
    format=_mostly(
        st.sampled_from(["csv", "json", "parquet", "excel", "xml"]), st.text(max_size=8)
    ),
    encoding=_mostly(
        st.sampled_from(["utf-8", "latin-1", "utf-16", "cp1252"]), st.text(max_size=10)
    ),
    delimiter=_mostly(st.sampled_from([",", ";"]), st.text(max_size=3)),
    sheet=_mostly(st.integers(-3, 5), st.text(max_size=5)),
    max_bytes=_mostly(st.integers(1, 10_000), st.integers(-5, 0)),
    on_bad_lines=st.sampled_from(["error", "quarantine", "quarantine"]) | st.text(max_size=6),
)
def test_random_options_are_a_clear_error_or_a_table(
    format,
    encoding,
    delimiter,
    sheet,
    max_bytes,
    on_bad_lines,
):
    _outcome(
        _write(GOOD, "x.csv"),
        format=format,
        encoding=encoding,
        delimiter=delimiter,
        sheet=sheet,
        max_bytes=max_bytes,
        on_bad_lines=on_bad_lines,
    )


@pytest.mark.parametrize("name", ["x.csv", "x.json", "x.xml"])
def test_the_fuzz_helpers_accept_a_good_file(name):
    """The harness itself: a good file reads, so a test above can only pass on real behaviour."""
    data = {
        "x.csv": GOOD,
        "x.json": b'[{"customer_id": "C1", "plan_type": "basic"}]',
        "x.xml": b"<rows><row><customer_id>C1</customer_id></row></rows>",
    }[name]
    assert tk.read_table(_write(data, name)).frame.collect().height == 1


@FUZZ
@given(
    st.one_of(
        st.text(max_size=5),
        st.sampled_from(["na", "n/a", "null", "none", "nan", "-"])
        .flatmap(
            lambda t: st.tuples(*[st.sampled_from([c, c.upper(), "\u212a", "\u0130"]) for c in t])
        )
        .map("".join),
    )
)
def test_a_null_token_in_any_case_is_found_by_its_spellings_as_by_lowercasing(value):
    """``NULL_SPELLINGS`` (every case of every token, matched as written) finds exactly the
    values polars' own lower-casing finds among the tokens, non-ASCII letters included.
    """
    frame = pl.DataFrame({"v": [value]})
    lowered = frame.select(pl.col("v").str.to_lowercase().is_in(NULL_TOKENS)).item()
    assert frame.select(pl.col("v").is_in(NULL_SPELLINGS)).item() == lowered
