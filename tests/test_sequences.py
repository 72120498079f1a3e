"""Sequence splitting, rain amounts and categories, balanced train/val/test splits."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xnowcast import sequences
from xnowcast.sequences import (
    assign_sequences,
    categorize,
    category_edges,
    rain_amount,
    sequence_table,
    split,
    split_dataset,
    split_summary,
)
from xnowcast.windows import windows

T0 = pd.Timestamp("2021-06-01 00:00")


def _t(*minutes: int) -> pd.DatetimeIndex:
    return T0 + pd.to_timedelta(list(minutes), "min")


def _cube(data: np.ndarray, times: pd.DatetimeIndex, chunks: int | None = None) -> xr.DataArray:
    arr = da.from_array(data, chunks=(chunks, -1, -1)) if chunks else data
    return xr.DataArray(
        arr, dims=("time", "y", "x"), coords={"time": times}, attrs={"units": "mm/h"}
    )


def archive(n_seq: int = 200, size: int = 6, seed: int = 1) -> xr.DataArray:
    """~200 sequences of 10-min frames, varied lengths (5..300) and storm strengths."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(40), 0.7, n_seq).astype(int), 5, 300)
    wetness = rng.beta(0.8, 2.0, n_seq)
    times, frames = [], []
    start = pd.Timestamp("2019-01-01")
    for n, w in zip(lengths, wetness):
        t = start + pd.to_timedelta(np.arange(n) * 10, "min")
        frac = np.clip(w + 0.2 * rng.standard_normal(n), 0, 1)
        wet = rng.random((n, size, size)) < frac[:, None, None]
        frames.append((wet * rng.gamma(2.0, 2.0, (n, size, size))).astype("float32"))
        times.append(t.values)
        start = t[-1] + pd.Timedelta(minutes=10 * int(rng.integers(2, 40)))
    return _cube(np.concatenate(frames), pd.DatetimeIndex(np.concatenate(times)))


# ----------------------------------------------------------------------------- split
def test_split_gap_equal_to_max_gap_is_contiguous_and_larger_breaks():
    t = _t(0, 10, 20, 40, 50, 61, 71)
    assert split(t, "10min").tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert split(t, pd.Timedelta(minutes=20)).tolist() == [0, 0, 0, 0, 0, 0, 0]
    assert split(t, np.timedelta64(11, "m")).tolist() == [0, 0, 0, 1, 1, 1, 1]


def test_split_unsorted_input_keeps_callers_order():
    t = _t(0, 10, 20, 40, 50, 120)
    perm = np.array([5, 2, 0, 4, 1, 3])
    ids = split(t[perm].values, "10min")
    assert ids.tolist() == [2, 0, 0, 1, 0, 1]
    assert ids.dtype == np.int64


def test_split_accepts_strings_series_and_coordinates():
    t = _t(0, 10, 30)
    expected = [0, 0, 1]
    assert split([str(x) for x in t], "10min").tolist() == expected
    assert split(pd.Series(t), "10min").tolist() == expected
    coord = xr.DataArray(t.values, dims="time")
    assert split(coord, "10min").tolist() == expected
    assert split(t.tz_localize("UTC"), "10min").tolist() == expected
    assert split(pd.DatetimeIndex([]), "10min").tolist() == []


def test_split_rejects_duplicates_listing_them():
    t = _t(0, 10, 10, 20, 30, 30, 30)
    with pytest.raises(ValueError, match="2 duplicate") as err:
        split(t[::-1], "10min")
    assert "2021-06-01 00:10:00 (2x)" in str(err.value)
    assert "2021-06-01 00:30:00 (3x)" in str(err.value)
    assert "drop_duplicates" in str(err.value)


@pytest.mark.parametrize(
    ("times", "gap", "error", "match"),
    [
        (np.arange(5), "10min", TypeError, "datetimes"),
        (pd.DatetimeIndex(["2021-01-01", None]), "10min", ValueError, "NaT"),
        (_t(0, 10), "0min", ValueError, "positive"),
        (_t(0, 10), "soon", ValueError, "time interval"),
    ],
)
def test_split_bad_input(times, gap, error, match):
    with pytest.raises(error, match=match):
        split(times, gap)


def test_split_one_million_timestamps():
    """Correct on a million timestamps (the speed is measured in benchmarks/bench_sequences.py)."""
    rng = np.random.default_rng(0)
    t = pd.date_range("2000-01-01", periods=1_100_000, freq="10min")
    t = t.delete(rng.choice(t.size, 100_000, replace=False))
    shuffled = t.values[rng.permutation(t.size)]
    ids = split(t, "10min")
    ids_shuffled = split(shuffled, "10min")
    expected_breaks = int((np.diff(t.values) > np.timedelta64(10, "m")).sum())
    assert ids[-1] == expected_breaks
    # the same frame gets the same id whatever the input order
    lookup = pd.Series(ids, index=t)
    np.testing.assert_array_equal(ids_shuffled, lookup.loc[shuffled].to_numpy())


# ---------------------------------------------------------------------- rain amount
def _counting_cube(data: np.ndarray, calls: list) -> xr.DataArray:
    def load(block):
        if block.size:  # dask also calls it on empty arrays to learn the dtype
            calls.append(1)
        return block

    arr = da.from_array(data, chunks=(1, -1, -1)).map_blocks(load, dtype=data.dtype)
    return xr.DataArray(
        arr,
        dims=("time", "y", "x"),
        coords={"time": pd.date_range(T0, periods=len(data), freq="10min")},
    )


def test_rain_amount_is_lazy_and_nan_aware():
    data = np.array(
        [
            [[0.0, 2.0], [np.nan, 0.5]],  # 2 of 3 valid pixels rain
            [[0.0, 0.0], [0.0, 0.05]],  # dry
            [[np.nan, np.nan], [np.nan, np.nan]],  # no valid pixel
            [[1.0, 1.0], [3.0, 3.0]],
        ],
        dtype="float32",
    )
    calls: list = []
    cube = _counting_cube(data, calls)
    fraction = rain_amount(cube, threshold=0.1)
    mean = rain_amount(cube, method="mean")
    count = rain_amount(cube, threshold=0.1, method="no_rain_count")
    assert calls == [], "rain_amount computed something before being asked"
    assert isinstance(fraction.data, da.Array)
    np.testing.assert_allclose(fraction.values, [2 / 3, 0, np.nan, 1])
    np.testing.assert_allclose(mean.values, [2.5 / 3, 0.05 / 4, np.nan, 2.0], rtol=1e-6)
    assert count.values.tolist() == [1, 4, 0, 0]
    assert calls, "computing the result must read the chunks"
    assert fraction.dims == ("time",)
    assert fraction.name == "rain_amount"
    assert fraction.attrs["rain_amount_method"] == "fraction"
    assert list(fraction.coords) == ["time"]


def test_rain_amount_other_dim_names_and_units():
    data = np.ones((3, 4, 5), "float32")
    cube = xr.DataArray(
        data,
        dims=("valid_time", "lat", "lon"),
        coords={"valid_time": pd.date_range(T0, periods=3, freq="5min")},
        attrs={"units": "mm/h"},
    ).transpose("lon", "valid_time", "lat")
    out = rain_amount(cube, method="mean")
    assert out.dims == ("valid_time",)
    assert out.attrs["units"] == "mm/h"
    np.testing.assert_allclose(out.values, 1.0)


def test_rain_amount_rejects_bad_method_and_threshold():
    cube = _cube(np.zeros((2, 3, 3)), _t(0, 10))
    with pytest.raises(ValueError, match="method must be one of"):
        rain_amount(cube, method="max")
    with pytest.raises(ValueError, match="finite"):
        rain_amount(cube, threshold=float("nan"))


# ------------------------------------------------------------------------ categories
def test_categorize_with_bins_right_closed_and_nan():
    amount = [0.0, 0.1, 0.100001, 0.5, 0.7, np.nan]
    assert categorize(amount, bins=[0.0, 0.1, 0.5]).tolist() == [0, 1, 2, 2, 3, -1]


def test_categorize_with_quantiles_over_archive():
    rng = np.random.default_rng(0)
    amount = rng.random(10_000)
    cats = categorize(amount, quantiles=[0.25, 0.5, 0.75, 0.95])
    counts = np.bincount(cats) / amount.size
    np.testing.assert_allclose(counts, [0.25, 0.25, 0.25, 0.20, 0.05], atol=1e-3)
    # higher category = more rain
    means = [amount[cats == k].mean() for k in range(5)]
    assert np.all(np.diff(means) > 0)


def test_categorize_dry_frames_stay_in_category_zero_with_repeated_edges():
    amount = np.r_[np.zeros(70), np.linspace(0.01, 1, 30)]
    edges = category_edges(amount, quantiles=[0.25, 0.5, 0.75, 0.95])
    assert edges[0] == edges[1] == 0
    cats = categorize(amount, quantiles=[0.25, 0.5, 0.75, 0.95])
    assert set(cats[:70]) == {0}
    assert cats[70:].min() == 2  # categories 1 merged into 0 by the repeated edges


def test_categorize_reverse_for_no_rain_count():
    count = np.array([100, 90, 50, 0])  # no-rain pixels: fewer = wetter
    cats = categorize(count, bins=[10, 60, 95], reverse=True)
    assert cats.tolist() == [0, 1, 2, 3]
    da_count = xr.DataArray(count, dims="time", attrs={"rain_amount_method": "no_rain_count"})
    out = categorize(da_count, bins=[10, 60, 95])
    assert isinstance(out, xr.DataArray)
    assert out.values.tolist() == [0, 1, 2, 3]
    assert out.attrs["category_edges"] == [10.0, 60.0, 95.0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"quantiles": [0.5], "bins": [1.0]}, "not both"),
        ({"bins": [1.0, 1.0]}, "strictly increasing"),
        ({"quantiles": [0.5, 1.0]}, "between 0 and 1"),
    ],
)
def test_categorize_bad_edges(kwargs, match):
    with pytest.raises(ValueError, match=match):
        categorize([0.1, 0.2], **kwargs)


def test_categorize_all_nan_needs_bins():
    with pytest.raises(ValueError, match="bins="):
        categorize([np.nan, np.nan])


# ---------------------------------------------------------------------------- table
def _selection_cube() -> xr.DataArray:
    # sequences: A 12 wet frames, B 5 wet frames (too short), C 15 dry frames,
    # D 11 frames half wet; one missing scan (20 min) or a night gap between them.
    lengths, wet = [12, 5, 15, 11], [1.0, 1.0, 0.0, 0.5]
    frames, times, t = [], [], T0
    for n, w in zip(lengths, wet):
        times.append(t + pd.to_timedelta(np.arange(n) * 10, "min"))
        f = np.zeros((n, 4, 4), "float32")
        f[: round(n * w), :2] = 5.0
        frames.append(f)
        t = times[-1][-1] + pd.Timedelta("20min")
    return _cube(np.concatenate(frames), times[0].append(times[1:]), chunks=4)


def test_sequence_table_selection_and_dense_ids():
    cube = _selection_cube()
    table = sequence_table(cube, max_gap="10min", bins=[0.1], min_length=10, min_mean_category=0.4)
    assert list(table.columns) == ["time", "rain_amount", "category", "sequence_id"]
    sizes = table.groupby("sequence_id").size()
    assert sizes.index.tolist() == [0, 1]  # A and D, renumbered densely
    assert sizes.tolist() == [12, 11]
    assert table["time"].is_monotonic_increasing
    assert table.attrs["n_sequences_found"] == 4
    assert table.attrs["n_sequences_kept"] == 2
    np.testing.assert_allclose(table["rain_amount"].iloc[0], 0.5)
    keep_all = sequence_table(cube, bins=[0.1], min_length=1, min_mean_category=0)
    assert keep_all["sequence_id"].nunique() == 4
    assert len(keep_all) == cube.sizes["time"]
    assert (
        sequence_table(cube, max_gap="20min", bins=[0.1], min_length=1, min_mean_category=0)[
            "sequence_id"
        ].nunique()
        == 1
    )


def test_sequence_table_no_rain_count_agrees_with_fraction():
    cube = archive(n_seq=30)
    by_fraction = sequence_table(cube, amount="fraction", min_length=1, min_mean_category=0)
    by_count = sequence_table(cube, amount="no_rain_count", min_length=1, min_mean_category=0)
    # same pixels counted from the other side: identical categories (higher = wetter)
    np.testing.assert_array_equal(by_fraction["category"], by_count["category"])
    assert by_count["rain_amount"].iloc[0] == float((cube.isel(time=0) <= 0.1).sum())


def test_sequence_table_mostly_dry_archive_with_default_quantiles():
    data = np.zeros((60, 4, 4), "float32")
    data[40:, :2] = 3.0  # dry for 40 frames: repeated zero quantile edges
    cube = _cube(data, pd.date_range(T0, periods=60, freq="10min"))
    table = sequence_table(cube, min_length=1, min_mean_category=0)
    assert table.attrs["category_edges"] == [0.0, 0.0, 0.5, 0.5]
    assert set(table["category"][:40]) == {0}
    assert set(table["category"][40:]) == {2}  # above the two zero edges, at the others
    count_table = sequence_table(cube, amount="no_rain_count", min_length=1, min_mean_category=0)
    np.testing.assert_array_equal(count_table["category"], table["category"])


def test_sequence_table_bad_arguments():
    cube = _selection_cube()
    with pytest.raises(ValueError, match="min_length"):
        sequence_table(cube, min_length=0)
    with pytest.raises(ValueError, match="amount must be"):
        sequence_table(cube, amount="max")


# ---------------------------------------------------------------------------- splits
@pytest.fixture(scope="module")
def big():
    cube = archive()
    table = sequence_table(cube, max_gap="10min", min_length=10, min_mean_category=0.5)
    return cube, table


def test_split_dataset_whole_sequences_no_overlap_deterministic(big):
    cube, table = big
    train, val, test = split_dataset(cube, table, fractions=(0.7, 0.15, 0.15), seed=0)
    again = split_dataset(cube, table, fractions=(0.7, 0.15, 0.15), seed=0)
    other = split_dataset(cube, table, fractions=(0.7, 0.15, 0.15), seed=1)
    for a, b in zip((train, val, test), again):
        np.testing.assert_array_equal(a.time.values, b.time.values)
    assert not np.array_equal(train.time.values, other[0].time.values)

    ids = [set(np.unique(p.sequence_id.values)) for p in (train, val, test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    all_times = np.concatenate([p.time.values for p in (train, val, test)])
    assert len(all_times) == len(table) == len(np.unique(all_times))
    lengths = table.groupby("sequence_id").size()
    for part in (train, val, test):
        per_seq = pd.Series(part.sequence_id.values).value_counts()
        assert (per_seq == lengths.loc[per_seq.index]).all(), "a sequence was cut"
        assert part.time.to_index().is_monotonic_increasing
        np.testing.assert_array_equal(part.values, cube.sel(time=part.time).values)
    total = len(table)
    np.testing.assert_allclose(
        [p.sizes["time"] / total for p in (train, val, test)], [0.7, 0.15, 0.15], atol=0.01
    )


def test_split_dataset_distributions_match(big):
    cube, table = big
    assert table["sequence_id"].nunique() > 150
    for seed in range(3):
        parts = split_dataset(cube, table, seed=seed)
        summary = split_summary(table, parts)
        assert summary.index.tolist() == ["train", "val", "test", "all"]
        overall = summary.loc["all"]
        cat_cols = [c for c in summary.columns if c.startswith("category_") and c[-1].isdigit()]
        for name in ("train", "val", "test"):
            row = summary.loc[name]
            assert abs(row["length_median"] / overall["length_median"] - 1) < 0.15
            assert abs(row["length_mean"] / overall["length_mean"] - 1) < 0.1
            assert abs(row["category_mean"] - overall["category_mean"]) < 0.1
            total_variation = 0.5 * np.abs(row[cat_cols] - overall[cat_cols]).sum()
            assert total_variation < 0.05, (seed, name, total_variation)


def test_split_windows_never_cross_sequences(big):
    cube, table = big
    train, _, _ = split_dataset(cube, table, seed=0)
    wins = windows(train, n_in=4, n_out=4)
    seq = train.sequence_id.values
    for start in wins.starts:
        assert len(set(seq[start : start + 8])) == 1
    # two sequences back to back in train are never joined, even 10 min apart
    assert len(wins) == sum(max(0, n - 7) for n in pd.Series(seq).value_counts())


def test_split_dataset_stays_lazy():
    cube = archive(n_seq=20)
    cube = cube.chunk({"time": 10})
    table = sequence_table(cube, min_length=5, min_mean_category=0)
    parts = split_dataset(cube, table, fractions=(0.5, 0.5))
    assert all(isinstance(p.data, da.Array) for p in parts)


def test_split_dataset_errors(big):
    cube, table = big
    with pytest.raises(ValueError, match="sum to 1"):
        split_dataset(cube, table, fractions=(0.7, 0.2))
    with pytest.raises(ValueError, match="not frames of the cube"):
        split_dataset(cube.isel(time=slice(100, None)), table)
    few = table[table["sequence_id"] < 2]
    with pytest.raises(ValueError, match="only 2 sequence"):
        split_dataset(cube, few)
    with pytest.raises(ValueError, match="lacks column"):
        split_dataset(cube, table.drop(columns="category"))
    with pytest.raises(ValueError, match="no frame"):
        split_dataset(cube, table.iloc[:0])


def test_assign_sequences_reaches_fractions_with_zero_share(big):
    _, table = big
    sets = assign_sequences(table, fractions=(0.8, 0.2, 0.0), seed=3)
    assert set(sets.unique()) == {0, 1}
    frames = table.groupby("sequence_id").size()
    share = frames.groupby(sets.reindex(frames.index).to_numpy()).sum() / frames.sum()
    np.testing.assert_allclose(share.to_numpy(), [0.8, 0.2], atol=0.01)


# -------------------------------------------------------------- a realistic archive
def test_realistic_archive_missing_scans_night_gaps_duplicates():
    rng = np.random.default_rng(7)
    times = pd.date_range("2021-07-01", "2021-07-04 23:50", freq="10min")
    day = (times.hour >= 6) & (times.hour < 22)  # the images only come by day
    times = times[day]
    missing = rng.choice(times.size, 15, replace=False)
    kept = times.delete(missing)
    with_dups = kept.append(kept[[5, 50, 51]])  # a download fetched three scans twice
    with pytest.raises(ValueError, match="3 duplicate"):
        split(with_dups, "10min")

    data = rng.gamma(0.3, 2.0, (kept.size, 8, 8)).astype("float32")
    cube = _cube(data, kept, chunks=16)
    table = sequence_table(cube, max_gap="10min", min_length=1, min_mean_category=0)
    # 4 nights + missing scans each start a sequence (adjacent missing scans merge)
    gaps = np.diff(kept.values) > np.timedelta64(10, "m")
    assert table["sequence_id"].nunique() == 1 + gaps.sum()
    assert table["sequence_id"].nunique() >= 4 + 10
    first_morning = table["time"] == pd.Timestamp("2021-07-02 06:00")
    if first_morning.any():
        before = table["sequence_id"][table["time"] < pd.Timestamp("2021-07-02")].max()
        assert table.loc[first_morning, "sequence_id"].item() == before + 1


def test_public_names_exported():
    for name in sequences.__all__:
        assert hasattr(sequences, name)


# ------------------------------------------------------------------- accessor, CLI
def test_accessor_forwards(big):
    cube, table = big
    via_accessor = cube.nowcast.sequences(max_gap="10min", min_length=10, min_mean_category=0.5)
    pd.testing.assert_frame_equal(via_accessor, table)
    parts = cube.to_dataset(name="rain").nowcast.split_dataset(
        table, fractions=(0.7, 0.15, 0.15), seed=0
    )
    direct = split_dataset(cube, table, seed=0)
    for a, b in zip(parts, direct):
        np.testing.assert_array_equal(a.time.values, b.time.values)
        np.testing.assert_array_equal(a.sequence_id.values, b.sequence_id.values)


def test_cli_sequences_writes_the_table(tmp_path, capsys):
    from xnowcast.cli import main

    cube = archive(n_seq=30)
    path = tmp_path / "archive.nc"
    cube.to_dataset(name="rain").to_netcdf(path)
    out = tmp_path / "table.csv"
    status = main(
        [
            "sequences",
            str(path),
            "--max-gap",
            "10min",
            "--min-length",
            "10",
            "--out",
            str(out),
            "--split",
            "0.7,0.15,0.15",
        ]
    )
    assert status == 0
    written = pd.read_csv(out, parse_dates=["time"])
    expected = sequence_table(cube, max_gap="10min", min_length=10)
    assert list(written.columns) == ["time", "rain_amount", "category", "sequence_id", "set"]
    np.testing.assert_array_equal(
        written["time"].values.astype("datetime64[ns]"), expected["time"].values
    )
    np.testing.assert_array_equal(written["sequence_id"], expected["sequence_id"])
    np.testing.assert_array_equal(written["category"], expected["category"])
    assert set(written["set"]) == {"train", "val", "test"}
    assert written.groupby("sequence_id")["set"].nunique().max() == 1
    assert "sequences kept" in capsys.readouterr().out
    args = ["sequences", str(path), "--out", str(out), "--max-gap=0min", "--overwrite"]
    assert main(args) == 2
    assert "max_gap" in capsys.readouterr().err


def test_cli_sequences_on_real_scans(bom_glob, tmp_path):
    from xnowcast.cli import main

    out = tmp_path / "bom.csv"
    # the 10:xx and 12:xx scans (6 min apart): two sequences of 10 with an hour between
    scans = bom_glob.replace("*.nc", "2_20180616_1[02]*.nc")
    assert (
        main(
            [
                "sequences",
                scans,
                "--max-gap",
                "6min",
                "--min-length",
                "5",
                "--min-mean-category",
                "0",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    table = pd.read_csv(out, parse_dates=["time"])
    assert table.groupby("sequence_id").size().tolist() == [10, 10]
    assert table["time"].iloc[10] == pd.Timestamp("2018-06-16 12:00")
    assert table["rain_amount"].between(0, 1).all() and table["rain_amount"].max() > 0


# ------------------------------------------------------------- bad input (audit)
def _rainy_cube():
    t = pd.date_range("2021-06-01", periods=40, freq="10min").delete([20])
    data = np.zeros((39, 4, 4), "float32")
    data[:, :2] = 1.0
    return xr.DataArray(data, dims=("time", "y", "x"), coords={"time": t})


@pytest.mark.parametrize("gap", [10, "10"])
def test_max_gap_without_a_unit_is_refused(gap):
    """Before, 10 was 10 ns: every frame became its own sequence and nothing was kept."""
    with pytest.raises(ValueError, match="max_gap must be a time interval with a unit"):
        split(_t(0, 10, 20), gap)
    with pytest.raises(ValueError, match="max_gap must be a time interval with a unit"):
        sequence_table(_rainy_cube(), max_gap=gap, bins=[0.1], min_length=5)


def test_bad_numbers_name_the_argument():
    cube = _rainy_cube()
    with pytest.raises(TypeError, match="threshold must be a finite number, got 'x'"):
        rain_amount(cube, "x")
    with pytest.raises(ValueError, match="min_mean_category must be a finite number"):
        sequence_table(cube, bins=[0.1], min_mean_category=float("nan"))
    with pytest.raises(ValueError, match="bins must be numbers, got"):
        categorize([1.0, 2.0], bins=["a"])
    with pytest.raises(ValueError, match="fractions must be numbers"):
        split_dataset(cube, sequence_table(cube, bins=[0.1], min_length=5), "0.5,0.5")


@pytest.mark.parametrize(("seed", "error"), [("a", TypeError), (1.5, TypeError), (-1, ValueError)])
def test_bad_seed_is_a_clear_error(seed, error):
    table = sequence_table(_rainy_cube(), bins=[0.1], min_length=5)
    with pytest.raises(error, match="seed must be a non-negative integer"):
        assign_sequences(table, (0.5, 0.5), seed=seed)


def test_table_with_nan_sequence_ids_or_timezone_is_refused():
    cube = _rainy_cube()
    table = sequence_table(cube, bins=[0.1], min_length=5)
    nan_ids = table.astype({"sequence_id": "float64"})
    nan_ids.loc[0, "sequence_id"] = np.nan
    with pytest.raises(ValueError, match="'sequence_id' column must hold whole numbers"):
        split_dataset(cube, nan_ids, (0.5, 0.5))
    aware = table.copy()
    aware["time"] = aware["time"].dt.tz_localize("UTC")
    with pytest.raises(ValueError, match="timezone-aware.*tz_convert"):
        split_dataset(cube, aware, (0.5, 0.5))


def test_split_of_no_times_is_empty():
    assert split([]).tolist() == []
