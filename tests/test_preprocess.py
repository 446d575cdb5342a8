"""Each preprocessing strategy's exact effect on a crafted frame, and the saved round-trip."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import tracer_kit as tk
from tracer_kit.config import PreprocessConfig
from tracer_kit.preprocess import OutlierCapper, Preprocessor, read_preprocessor, save_preprocessor

FIXTURES = Path(__file__).parent / "fixtures"

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
    cfg = PreprocessConfig(scaling=scaling, outliers=outliers, encoding=encoding, missing=missing)
    prep = Preprocessor("t", cfg.model_dump()).fit(WIDE)
    assert prep.expressions() is not None
    for frame in (WIDE, UNSEEN):
        path = tmp_path / "m.parquet"
        prep.write_matrix(frame.lazy(), path)
        streamed, expected = pl.read_parquet(path), prep.transform(frame)
        assert streamed.schema == expected.schema
        assert streamed.equals(expected)


@pytest.mark.parametrize(
    "cfg",
    [
        PreprocessConfig(),
        PreprocessConfig(scaling="standard", outliers="zscore", missing="mean"),
        PreprocessConfig(scaling="minmax", outliers="none", missing="mode", encoding="label"),
        PreprocessConfig(scaling="robust", outliers="iqr", missing="median", encoding="onehot"),
    ],
    ids=["defaults", "standard-zscore-mean", "minmax-mode-label", "robust-iqr-median"],
)
def test_statistics_fitted_with_polars_are_scikit_learns(cfg):
    """The same transformers fitted by scikit-learn on the same rows learn the same numbers."""
    from sklearn.base import clone

    frame = pl.concat([WIDE] * 3).with_columns(pl.int_range(1, 121).alias("source_row"))
    ours = Preprocessor("t", cfg.model_dump()).fit(frame)
    theirs = Preprocessor("t", cfg.model_dump()).fit(frame)
    inputs = frame.select(ours.numeric_ + ours.categorical_).with_columns(
        pl.col("ok").cast(pl.Int8)
    )
    theirs.transformer_ = clone(ours.transformer_).fit(inputs)
    mine, fitted = ours.recipe(), theirs.recipe()
    assert [s.column for s in mine.texts] == [s.column for s in fitted.texts]
    assert mine.texts == fitted.texts  # fills and levels: exactly
    for a, b in zip(mine.numbers, fitted.numbers, strict=True):
        assert (a.column, a.strategy, a.scaling) == (b.column, b.strategy, b.scaling)
        for name in ("fill", "lower", "upper", "offset", "factor"):
            mine_value, sklearn_value = getattr(a, name), getattr(b, name)
            if sklearn_value is None:  # (no bound: outliers="none")
                assert mine_value is None, (a.column, name)
                continue
            expected = pytest.approx(sklearn_value, rel=1e-12, abs=1e-12)
            assert mine_value == expected, (a.column, name)


def test_a_preprocessor_saved_by_release_0_1_0_still_loads_and_gives_its_matrix():
    """``tests/fixtures/preprocessor-0.1.0.skops``: written by 0.1.0, which fitted with scikit-learn."""
    from tracer_kit.recipe import read_recipe

    old = read_preprocessor(FIXTURES / "preprocessor-0.1.0.skops")
    expected = pl.read_parquet(FIXTURES / "preprocessor-0.1.0.matrix.parquet")
    assert old.transform(WIDE).equals(expected)
    assert old.recipe().transform(WIDE).equals(expected)  # its statistics, applied by polars
    assert read_recipe(FIXTURES / "preprocessor-0.1.0.json") is None  # then a description only
    assert Preprocessor.from_recipe(old.recipe()).transform(UNSEEN).equals(old.transform(UNSEEN))


def test_the_recipe_round_trips_through_json_bit_for_bit(tmp_path):
    from tracer_kit.recipe import read_recipe

    cfg = PreprocessConfig(scaling="standard", outliers="zscore")
    recipe = Preprocessor("t", cfg.model_dump()).fit(WIDE).recipe()
    again = read_recipe(recipe.save(tmp_path / "r.json"))
    assert again == recipe
    assert again.transform(UNSEEN).equals(recipe.transform(UNSEEN))


def test_target_encoding_is_scikit_learns_for_every_kind_of_target(tmp_path):
    """Binary, multiclass and continuous targets: the recipe, the transformer and a reload agree."""
    rows = 300
    base = pl.DataFrame(
        {
            "source_row": range(1, rows + 1),
            "x": [float(i % 17) for i in range(rows)],
            "city": [f"c{(i * 7) % 23}" if i % 11 else None for i in range(rows)],
        }
    )
    targets = {
        "binary": [i % 3 == 0 for i in range(rows)],
        "multiclass": [i % 4 for i in range(rows)],
        "continuous": [(i % 23) * 1.5 + (i % 5) / 7 for i in range(rows)],
    }
    for kind, y in targets.items():
        frame = base.with_columns(
            pl.Series("y", y).cast(pl.Float64 if kind == "continuous" else pl.Int64)
        )
        prep = Preprocessor("t", PreprocessConfig(encoding="target").model_dump(), "y").fit(frame)
        step = prep.recipe().texts[0]
        assert (step.encoding, step.target_type) == ("target", kind)
        unseen = frame.with_columns(pl.lit("nowhere").alias("city"))
        again = read_preprocessor(save_preprocessor(prep, tmp_path / f"{kind}.skops"))
        for rows_ in (frame, unseen):
            assert prep.transform(rows_).equals(prep.recipe().transform(rows_)), kind
            assert again.transform(rows_).equals(prep.transform(rows_)), kind


def test_a_run_without_the_model_stage_saves_the_recipe_and_no_skops_file(
    workdir, sample_csv, tmp_path
):
    import skops.io as sio

    r = tk.run_pipeline(
        sample_csv, "customer_churn", report=False, config={"model": {"enabled": False}}
    )
    assert "preprocessor" not in r.outputs and r.outputs["preprocessor_json"]
    prep = tk.load_preprocessor(r.run_id)
    assert prep.transform(r.frame).equals(pl.read_parquet(r.outputs["model"]))
    path = prep.save(tmp_path / "prep.skops")  # for a scikit-learn user: plain skops loads it
    trusted = sio.get_untrusted_types(file=path)
    loaded = sio.load(path, trusted=trusted)
    assert loaded.transform(r.frame).equals(prep.transform(r.frame))
