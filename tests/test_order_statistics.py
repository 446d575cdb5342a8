"""Exact order statistics by sample-guided bands (tracer_kit.engine.order_statistics).

The search never sorts every row; whatever its sample, the pairs must be those of a full
sort, including when every band misses and the engine's full sort takes over.
"""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from tracer_kit import engine
from tracer_kit.settings import override


def _sorted_pairs(df: pl.DataFrame, column: str, tiebreak: str | None) -> list[tuple]:
    by = [column, tiebreak] if tiebreak else [column]
    rows = df.drop_nulls(column).sort(by)
    tie = rows.get_column(tiebreak).to_list() if tiebreak else [None] * rows.height
    return list(zip(rows.get_column(column).to_list(), tie, strict=True))


values = st.lists(st.one_of(st.none(), st.integers(-5, 5).map(float)), min_size=1, max_size=300)


@settings(max_examples=60, deadline=None)
@given(
    a=values,
    b=values,
    sample_rows=st.sampled_from([1, 3, 50, 200_000]),
    band_rows=st.sampled_from([5, 40, 5_000_000]),
    tiebreak=st.sampled_from([None, "source_row"]),
    ranks=st.lists(st.integers(0, 320), min_size=1, max_size=6),
)
def test_bands_find_the_pairs_of_a_full_sort(a, b, sample_rows, band_rows, tiebreak, ranks):
    n = min(len(a), len(b))
    df = pl.DataFrame({"source_row": range(1, n + 1), "a": a[:n], "b": b[:n]})
    wanted = {"a": ranks, "b": sorted(ranks, reverse=True)}
    # tiny samples: bands miss, widen, fall back; few band rows a pass: several passes, and
    # a band alone over the limit goes straight to the sort
    with override(order_sample_rows=sample_rows, band_rows=band_rows):
        found = engine.order_statistics(df.lazy(), wanted, tiebreak)
    for column, asked in wanted.items():
        pairs = _sorted_pairs(df, column, tiebreak)
        expected = [pairs[k - 1] for k in asked if 1 <= k <= len(pairs)]
        if tiebreak is None:  # (only the value is defined)
            expected = [(v, None) for v, _ in expected]
        assert found[column] == expected


def test_counts_given_or_counted_give_the_same_pairs():
    df = pl.DataFrame({"source_row": range(1, 1001), "v": [float(i % 37) for i in range(1000)]})
    counted = engine.order_statistics(df.lazy(), {"v": [1, 500, 1000]}, "source_row")
    given_n = engine.order_statistics(
        df.lazy(), {"v": [1, 500, 1000]}, "source_row", counts={"v": 1000}
    )
    # 0 is on 28 rows (ranks 1-28), each of 1..36 on 27: value 18 holds ranks 488-514, and
    # rank 500 is its 13th row (i = 18 + 37 * 12); the last 36 is on row i = 36 + 37 * 26
    assert counted == given_n == {"v": [(0.0, 1), (18.0, 463), (36.0, 999)]}
