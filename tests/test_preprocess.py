"""Each preprocessing strategy's exact effect on a crafted frame, and the saved round-trip."""

from __future__ import annotations

import polars as pl
import pytest

import tracer_kit as tk
from tracer_kit.config import PreprocessConfig
from tracer_kit.preprocess import OutlierCapper, Preprocessor, read_preprocessor, save_preprocessor

FRAME = pl.DataFrame(
    {
        "source_row": [1, 2, 3, 4, 5],
        "x": [1.0, 2.0, None, 4.0, 100.0],
        "flag": [True, False, True, None, False],
        "plan": ["a", "b", None, "a", "a"],
    }
)


def fit(**cfg) -> tuple[Preprocessor, pl.DataFrame]:
    prep = Preprocessor("t", PreprocessConfig(**cfg).model_dump()).fit(FRAME)
    return prep, prep.transform(FRAME)


def test_mean_imputation_no_capping_no_scaling():
    _, out = fit(missing="mean", outliers="none", scaling="none")
    # mean of 1, 2, 4, 100 = 26.75 fills row 3
    assert out["x"].to_list() == pytest.approx([1.0, 2.0, 26.75, 4.0, 100.0])
    assert out["source_row"].to_list() == [1, 2, 3, 4, 5]


def test_median_and_mode():
    _, out = fit(missing="median", outliers="none", scaling="none")
    assert out["x"].to_list() == pytest.approx(
        [1.0, 2.0, 3.0, 4.0, 100.0]
    )  # median of 1, 2, 4, 100
    _, out = fit(missing="mode", outliers="none", scaling="none")
    assert out["x"][2] == 1.0  # all values tie: the smallest
    # text nulls take the most frequent level ('a')
    assert out.select("plan_a", "plan_b").rows() == [(1, 0), (0, 1), (1, 0), (1, 0), (1, 0)]


def test_auto_uses_median_for_skewed_numbers():
    prep, out = fit(missing="auto", outliers="none", scaling="none")
    assert prep.strategies_["x"] == "median"
    assert out["x"][2] == 3.0


def test_drop_removes_incomplete_rows():
    _, out = fit(missing="drop", outliers="none", scaling="none")
    assert out["source_row"].to_list() == [1, 2, 5]


def test_iqr_caps_never_removes():
    _, out = fit(missing="median", outliers="iqr", scaling="none")
    # after imputation x = 1, 2, 3, 4, 100: Q1 2, Q3 4 -> cap at 4 + 3 = 7
    assert out["x"].to_list() == pytest.approx([1.0, 2.0, 3.0, 4.0, 7.0])
    assert out.height == 5


def test_zscore_capper_bounds():
    capper = OutlierCapper("zscore").fit([[1.0], [2.0], [3.0]])
    # mean 2, sample std 1 -> bounds [-1, 5]
    assert capper.lower_.tolist() == [-1.0] and capper.upper_.tolist() == [5.0]
    assert capper.transform([[9.0], [-4.0]]).tolist() == [[5.0], [-1.0]]


def test_scalers():
    _, out = fit(missing="median", outliers="none", scaling="minmax")
    assert out["x"].to_list() == pytest.approx([0.0, 1 / 99, 2 / 99, 3 / 99, 1.0])
    _, out = fit(missing="median", outliers="none", scaling="robust")
    # (x - median 3) / IQR 2
    assert out["x"].to_list() == pytest.approx([-1.0, -0.5, 0.0, 0.5, 48.5])
    _, out = fit(missing="median", outliers="none", scaling="standard")
    assert out["x"].mean() == pytest.approx(0.0, abs=1e-6)


def test_encodings_and_dtypes():
    _, out = fit(encoding="label", outliers="none", scaling="none", missing="mode")
    assert out["plan"].to_list() == [0.0, 1.0, 0.0, 0.0, 0.0]
    _, out = fit(encoding="onehot", outliers="none", scaling="none", missing="mode")
    assert out.schema["plan_a"] == pl.UInt8 and out.schema["x"] == pl.Float32
    # booleans become 0/1, a null flag takes the mode (0: False appears twice... tie -> smallest)
    assert out["flag"].to_list() == [1.0, 0.0, 1.0, 0.0, 0.0]
    with pytest.raises(tk.ConfigError, match="target"):
        fit(encoding="target")


def test_save_and_load_round_trip(tmp_path):
    prep, out = fit()
    path = save_preprocessor(prep, tmp_path / "p.skops")
    again = read_preprocessor(path)
    assert again.transform(FRAME).equals(out)
    new = pl.DataFrame({"source_row": [9], "x": [50.0], "flag": [True], "plan": ["zzz"]})
    assert again.transform(new).equals(prep.transform(new))


def test_run_saves_preprocessor_and_matrix(workdir, sample_csv):
    r = tk.run_pipeline(sample_csv, "customer_churn", report=False)
    matrix = pl.read_parquet(r.outputs["model"])
    assert matrix.height == r.rows_out
    assert "customer_id" not in matrix.columns and "last_activity_date" not in matrix.columns
    prep = tk.load_preprocessor(r.run_id)
    assert prep.transform(r.frame).equals(matrix)
    # the processed table itself is untouched by preprocessing
    assert pl.read_parquet(r.outputs["parquet"])["total_value"].equals(r.frame["total_value"])


WIDE = pl.DataFrame(
    {
        "source_row": list(range(1, 41)),
        "x": [float(i % 7) * 1.37 - 2.1 if i % 5 else None for i in range(40)],
        "n": [i * i if i % 6 else None for i in range(40)],
        "ok": [bool(i % 3) if i % 4 else None for i in range(40)],
        "plan": [["basic", "pro", "max", None][i % 4] for i in range(40)],
        "city": [f"c{i % 13}" if i % 9 else None for i in range(40)],
    }
)
UNSEEN = WIDE.with_columns(
    pl.Series("plan", ["gold"] * 40), pl.Series("x", [1e9] * 20 + [float("nan")] * 20)
)


@pytest.mark.parametrize("scaling", ["standard", "robust", "minmax", "none"])
@pytest.mark.parametrize("outliers", ["iqr", "zscore", "none"])
@pytest.mark.parametrize("encoding", ["onehot", "label", "auto"])
@pytest.mark.parametrize("missing", ["auto", "mean", "drop"])
def test_streamed_matrix_equals_scikit_learn(tmp_path, scaling, outliers, encoding, missing):
    """The polars form of the fitted transform gives scikit-learn's values bit for bit."""
    from tracer_kit.preprocess import write_matrix

    cfg = PreprocessConfig(scaling=scaling, outliers=outliers, encoding=encoding, missing=missing)
    prep = Preprocessor("t", cfg.model_dump()).fit(WIDE)
    assert prep.expressions() is not None
    for frame in (WIDE, UNSEEN):
        path = tmp_path / "m.parquet"
        write_matrix(prep, frame.lazy(), path)
        streamed, expected = pl.read_parquet(path), prep.transform(frame)
        assert streamed.schema == expected.schema
        assert streamed.equals(expected)
