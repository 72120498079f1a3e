"""Radar images (PNG/JPEG/GIF) with times in their names -> lazy cube."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from xnowcast.io.images import ColorLegend, open_image_sequence  # noqa: E402

GREY = (150, 150, 150)
BLUE = (0, 80, 255)
RED = (230, 0, 0)
LEGEND = [(BLUE, 1.0), ("#e60000", 10.0)]
T0 = pd.Timestamp("2021-06-01 12:00")


def radar_image(
    shape=(30, 40), blue=(slice(4, 10), slice(6, 16)), red=(slice(14, 20), slice(20, 30))
) -> np.ndarray:
    """A grey background with a blue and a red patch, a black border and a green label."""
    img = np.empty((*shape, 3), np.uint8)
    img[:] = GREY
    img[blue] = BLUE
    img[red] = RED
    img[0, :] = 0  # black border: grey-ish, no rain
    img[-2:, -5:] = (0, 200, 0)  # green text of the legend: unknown colour
    return img


def write(folder: Path, times, fmt="sri_%Y%m%d%H%M.png", make=radar_image, **save) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for t in times:
        path = folder / pd.Timestamp(t).strftime(fmt)
        Image.fromarray(make()).save(path, **save)
        paths.append(path)
    return paths


def test_grey_cube_is_lazy_sorted_and_timed(tmp_path):
    times = T0 + pd.to_timedelta([20, 0, 10, 40], "min")  # written out of order
    write(tmp_path, times)
    cube = open_image_sequence(str(tmp_path / "*.png"), time_format="%Y%m%d%H%M")
    assert cube.dims == ("time", "y", "x")
    assert cube.dtype == np.float32
    assert cube.sizes == {"time": 4, "y": 30, "x": 40}
    assert isinstance(cube.data, da.Array)
    assert cube.data.chunks[0] == (1, 1, 1, 1)
    assert list(cube.time.to_index()) == sorted(times)
    assert cube.name == "grey_level"
    assert cube.attrs["source"] == str(tmp_path / "*.png")
    assert "units" not in cube.attrs
    frame = cube.isel(time=0).values
    # ITU-R 601 luma, as Pillow's "L" conversion
    assert frame[5, 5] == 150
    assert frame[5, 8] == round(0 * 0.299 + 80 * 0.587 + 255 * 0.114)
    assert frame[15, 25] == round(230 * 0.299)
    np.testing.assert_array_equal(cube.y.values, np.arange(30))


def test_decoding_is_deferred_and_errors_name_the_file(tmp_path):
    paths = write(tmp_path, T0 + pd.to_timedelta([0, 10, 20], "min"))
    cube = open_image_sequence(str(tmp_path / "*.png"))
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[:60])  # truncated after the header was checked
    cube.isel(time=0).values  # other frames still read
    with pytest.raises(OSError, match=paths[1].name):
        cube.isel(time=1).values


def test_crop_then_resize_coordinates_and_interpolation(tmp_path):
    write(tmp_path, [T0, T0 + pd.Timedelta("10min")])
    crop = (2, 22, 4, 36)  # rows 2..21, columns 4..35
    cropped = open_image_sequence(str(tmp_path / "*.png"), crop=crop)
    assert cropped.sizes == {"time": 2, "y": 20, "x": 32}
    full = np.asarray(Image.open(next(tmp_path.glob("*.png"))).convert("L"), np.float32)
    np.testing.assert_array_equal(cropped.isel(time=0).values, full[2:22, 4:36])
    np.testing.assert_array_equal(cropped.y.values, np.arange(2, 22))

    small = open_image_sequence(str(tmp_path / "*.png"), crop=crop, size=(10, 8))
    assert small.sizes == {"time": 2, "y": 10, "x": 8}
    # pixel centres in source-image coordinates: 2 rows / 4 columns per output pixel
    np.testing.assert_allclose(small.y.values, 2 + np.arange(10) * 2 + 0.5)
    np.testing.assert_allclose(small.x.values, 4 + np.arange(8) * 4 + 1.5)
    values = small.isel(time=0).values
    # bilinear (grey levels): edges of the patches get in-between values
    assert len(np.unique(values)) > 4
    assert small.attrs["xnowcast_image_processing"].endswith("(bilinear)")
    nearest = open_image_sequence(
        str(tmp_path / "*.png"), crop=crop, size=(10, 8), resample="nearest"
    )
    assert set(np.unique(nearest.isel(time=0).values)) <= set(np.unique(full))


def test_colormap_to_rain_rate(tmp_path):
    write(tmp_path, [T0, T0 + pd.Timedelta("10min")])
    legend = ColorLegend.from_pairs(LEGEND, units="mm/h")
    cube = open_image_sequence(str(tmp_path / "*.png"), colormap=legend)
    assert cube.name == "rain_rate"
    assert cube.attrs["units"] == "mm/h"
    frame = cube.isel(time=1).values
    assert frame[5, 8] == 1.0 and frame[15, 25] == 10.0
    assert frame[5, 1] == 0.0 and frame[0, 0] == 0.0  # grey background, black border
    assert np.isnan(frame[-1, -1])  # green label: not in the legend
    counts = {v: int((frame == v).sum()) for v in (0.0, 1.0, 10.0)}
    assert counts[1.0] == 60 and counts[10.0] == 60
    # a plain list of pairs and a dict work too (no units then)
    as_list = open_image_sequence(str(tmp_path / "*.png"), colormap=LEGEND)
    as_dict = open_image_sequence(str(tmp_path / "*.png"), colormap=dict(LEGEND), units="mm/h")
    np.testing.assert_array_equal(as_list.values, cube.values)
    assert "units" not in as_list.attrs and as_dict.attrs["units"] == "mm/h"


def test_colormap_resize_is_nearest_by_default(tmp_path):
    write(tmp_path, [T0])
    cube = open_image_sequence(str(tmp_path / "*.png"), colormap=LEGEND, size=(15, 20))
    values = cube.isel(time=0).values
    finite = values[np.isfinite(values)]
    assert set(np.unique(finite)) <= {0.0, 1.0, 10.0}  # no invented rain rates
    assert cube.attrs["xnowcast_image_processing"].endswith("(nearest)")


def test_legend_tolerance_absorbs_jpeg_artefacts(tmp_path):
    write(
        tmp_path,
        [T0],
        fmt="sri_%Y%m%d%H%M.jpg",
        make=lambda: radar_image(
            shape=(48, 64), blue=(slice(8, 24), slice(8, 32)), red=(slice(30, 46), slice(36, 60))
        ),
        quality=90,
    )
    cube = open_image_sequence(str(tmp_path / "*.jpg"), colormap=LEGEND)
    frame = cube.isel(time=0).values
    assert (frame[10:22, 10:30] == 1.0).all()  # inner blue patch despite compression
    assert (frame[32:44, 38:58] == 10.0).all()
    assert (frame[2:6, 40:60] == 0.0).all()  # background away from the patch edges
    strict = open_image_sequence(
        str(tmp_path / "*.jpg"), colormap=ColorLegend.from_pairs(LEGEND, tolerance=0)
    )
    assert np.isnan(strict.isel(time=0).values[8:24, 8:32]).any()


def test_gif_and_palette_images(tmp_path):
    def palette():
        return radar_image()

    for _i, t in enumerate([T0, T0 + pd.Timedelta("10min")]):
        Image.fromarray(palette()).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(
            tmp_path / f"radar-{t:%Y%m%d-%H%M}.gif"
        )
    cube = open_image_sequence(str(tmp_path / "*.gif"), time_format="%Y%m%d-%H%M", colormap=LEGEND)
    frame = cube.isel(time=0).values
    assert frame[5, 8] == 1.0 and frame[15, 25] == 10.0 and frame[5, 1] == 0.0


def test_palette_images_match_their_rgb_version(tmp_path):
    rgb = Image.fromarray(radar_image())
    rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(
        tmp_path / "p_202106011200.png"
    )
    Image.open(tmp_path / "p_202106011200.png").convert("RGB").save(
        tmp_path / "rgb_202106011200.png"
    )
    assert Image.open(tmp_path / "p_202106011200.png").mode == "P"
    via_palette = open_image_sequence(str(tmp_path / "p_*.png"), colormap=LEGEND).values
    via_rgb = open_image_sequence(str(tmp_path / "rgb_*.png"), colormap=LEGEND).values
    np.testing.assert_array_equal(via_palette, via_rgb)


def test_legend_apply_rules():
    legend = ColorLegend.from_pairs(
        {(0, 0, 255): 1.0, "#ff0000": 10.0, (255, 0, 255): np.nan}, tolerance=20, grey_tolerance=5
    )
    rgb = np.array(
        [[[0, 0, 240], [250, 10, 0], [40, 40, 40], [40, 40, 50], [255, 0, 255], [0, 0, 200]]],
        np.uint8,
    )
    out = legend.apply(rgb)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[0, :3], [1.0, 10.0, 0.0])
    assert np.isnan(out[0, 3])  # not grey enough, no legend colour near
    assert np.isnan(out[0, 4])  # a legend colour meaning "no data"
    assert np.isnan(out[0, 5])  # 55 away from blue: beyond the tolerance


@pytest.mark.parametrize(
    ("legend", "match"),
    [
        ([((0, 0, 300), 1.0)], "0..255"),
        ([("#zzzzzz", 1.0)], "hex"),
        ([(0, 0, 255)], "pairs"),
        ([], "at least one colour"),
    ],
)
def test_bad_legends(legend, match):
    with pytest.raises(ValueError, match=match):
        ColorLegend.from_pairs(legend)


def test_unparseable_names_are_listed(tmp_path):
    write(tmp_path, [T0])
    Image.fromarray(radar_image()).save(tmp_path / "legend.png")
    Image.fromarray(radar_image()).save(tmp_path / "sri_latest.png")
    with pytest.raises(ValueError, match="2 of 3 file") as err:
        open_image_sequence(str(tmp_path / "*.png"))
    assert "legend.png" in str(err.value) and "sri_latest.png" in str(err.value)
    assert "%Y%m%d%H%M" in str(err.value)


def test_duplicate_times_are_listed(tmp_path):
    write(tmp_path, [T0, T0 + pd.Timedelta("10min")])
    write(tmp_path, [T0], fmt="sri_%Y%m%d%H%M_retry.png")
    with pytest.raises(ValueError, match="more than once") as err:
        open_image_sequence(str(tmp_path / "*.png"))
    assert "sri_202106011200.png" in str(err.value)
    assert "sri_202106011200_retry.png" in str(err.value)


def test_unreadable_images_are_listed(tmp_path):
    write(tmp_path, [T0])
    (tmp_path / "sri_202106011210.png").write_text("404 Not Found")
    (tmp_path / "sri_202106011220.png").write_bytes(b"")
    with pytest.raises(ValueError, match="2 of 3 file") as err:
        open_image_sequence(str(tmp_path / "*.png"))
    assert "sri_202106011210.png" in str(err.value)
    assert "sri_202106011220.png" in str(err.value)


def test_sizes_must_agree_unless_resized(tmp_path):
    write(tmp_path, [T0])
    write(tmp_path, [T0 + pd.Timedelta("10min")], make=lambda: radar_image(shape=(32, 40)))
    with pytest.raises(ValueError, match="size=") as err:
        open_image_sequence(str(tmp_path / "*.png"))
    assert "sri_202106011210.png (32 x 40)" in str(err.value)
    cube = open_image_sequence(str(tmp_path / "*.png"), size=(16, 20))
    assert cube.values.shape == (2, 16, 20)
    # the same crop fits both, so no resize is needed
    assert open_image_sequence(str(tmp_path / "*.png"), crop=(0, 30, 0, 40)).values.shape == (
        2,
        30,
        40,
    )
    with pytest.raises(ValueError, match="smaller than crop"):
        open_image_sequence(str(tmp_path / "*.png"), crop=(0, 31, 0, 40))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"crop": (10, 5, 0, 4)}, "0 <= y0 < y1"),
        ({"crop": (0, 5)}, "4 integers"),
        ({"size": (0, 4)}, "positive"),
        ({"size": (4.5, 4)}, "2 integers"),
        ({"resample": "cubic"}, "resample"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    write(tmp_path, [T0])
    with pytest.raises(ValueError, match=match):
        open_image_sequence(str(tmp_path / "*.png"), **kwargs)


def test_no_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no files match"):
        open_image_sequence(str(tmp_path / "*.png"))


def test_time_from_a_function_and_a_list_of_files(tmp_path):
    paths = write(tmp_path, [T0, T0 + pd.Timedelta("10min")], fmt="scan-%H%M.png")
    cube = open_image_sequence(
        paths,
        time_format=lambda p: (
            pd.Timestamp("2021-06-01")
            + pd.Timedelta(hours=int(Path(p).stem[5:7]), minutes=int(Path(p).stem[7:9]))
        ),
    )
    assert list(cube.time.to_index()) == [T0, T0 + pd.Timedelta("10min")]
    assert cube.attrs["source"] == "2 files, e.g. scan-1200.png"


def test_image_archive_to_training_windows(tmp_path):
    """A day of 10-min SRI images: missing scans, a night gap, a retried download."""
    from xnowcast import sequences
    from xnowcast.windows import windows

    times = pd.date_range("2021-06-01 04:00", "2021-06-01 23:50", freq="10min")
    times = times[(times.hour >= 6) & (times.hour < 22)]  # no images at night
    times = times.delete([10, 40, 41])  # missing scans
    rng = np.random.default_rng(0)

    def storm():
        img = radar_image(
            shape=(24, 24),
            blue=(slice(2, 2 + rng.integers(1, 12)), slice(2, 20)),
            red=(slice(14, 14 + rng.integers(0, 6)), slice(4, 12)),
        )
        return img

    paths = write(tmp_path, times, make=storm)
    write(tmp_path, times[[3]], fmt="sri_%Y%m%d%H%M (1).png", make=storm)
    with pytest.raises(ValueError, match="more than once"):
        open_image_sequence(str(tmp_path / "*.png"), colormap=LEGEND)
    next(tmp_path.glob("* (1).png")).unlink()

    cube = open_image_sequence(str(tmp_path / "*.png"), colormap=LEGEND, crop=(0, 22, 0, 24))
    assert cube.sizes["time"] == len(paths)
    table = sequences.sequence_table(cube, max_gap="10min", min_length=10, min_mean_category=0)
    assert table["sequence_id"].nunique() == 3  # broken by the missing scans
    train, _test = sequences.split_dataset(cube, table, fractions=(0.6, 0.4), seed=0)
    wins = windows(train, n_in=4, n_out=2)
    assert len(wins) > 0
    for start in wins.starts:
        assert len(set(train.sequence_id.values[start : start + 6])) == 1
    inputs, targets = wins[0]
    assert inputs.values.shape == (4, 22, 24) and targets.values.shape == (2, 22, 24)


def test_legend_file(tmp_path):
    path = tmp_path / "legend.csv"
    path.write_text(
        "colour,value\n# the legend of the SRI product\n\n#0050ff,1.0\n230, 0, 0, 10\n#808080,nan\n"
    )
    legend = ColorLegend.read(path, units="mm/h")
    assert legend.colors.tolist() == [[0, 80, 255], [230, 0, 0], [128, 128, 128]]
    np.testing.assert_array_equal(legend.values, [1.0, 10.0, np.nan])
    assert legend.units == "mm/h"
    path.write_text("#0050ff,1.0\n#0050ff\n")
    with pytest.raises(ValueError, match=r"legend.csv, line 2 \('#0050ff'\)"):
        ColorLegend.read(path)
    path.write_text("300,0,0,1.0\n")
    with pytest.raises(ValueError, match="line 1.*0..255"):
        ColorLegend.read(path)
    path.write_text("# nothing\n")
    with pytest.raises(ValueError, match="no 'colour,value' line"):
        ColorLegend.read(path)


def test_cli_sequences_on_a_folder_of_images(tmp_path, capsys):
    """`xnowcast sequences 'sri/*.png'` reads the images as open_image_sequence does."""
    from xnowcast import sequences
    from xnowcast.cli import main

    times = pd.date_range("2021-06-01 06:00", periods=40, freq="10min").delete([12, 25])
    rng = np.random.default_rng(3)
    write(
        tmp_path / "sri",
        times,
        make=lambda: radar_image(blue=(slice(2, 2 + rng.integers(1, 14)), slice(6, 16))),
    )
    (tmp_path / "legend.csv").write_text("colour,value\n0,80,255,1.0\n#e60000,10.0\n")
    out = tmp_path / "table.csv"
    args = [
        "sequences",
        str(tmp_path / "sri" / "*.png"),
        "--max-gap",
        "10min",
        "--min-length",
        "5",
        "--min-mean-category",
        "0",
        "--crop",
        "0,28,0,40",
        "--size",
        "14,20",
        "--colormap",
        str(tmp_path / "legend.csv"),
        "--units",
        "mm/h",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    written = pd.read_csv(out, parse_dates=["time"])
    cube = open_image_sequence(
        str(tmp_path / "sri" / "*.png"), crop=(0, 28, 0, 40), size=(14, 20), colormap=LEGEND
    )
    expected = sequences.sequence_table(cube, max_gap="10min", min_length=5, min_mean_category=0)
    assert written["sequence_id"].nunique() == 3  # broken by the two missing scans
    np.testing.assert_array_equal(
        written["time"].values.astype("datetime64[ns]"), expected["time"].values
    )
    np.testing.assert_allclose(written["rain_amount"], expected["rain_amount"])
    np.testing.assert_array_equal(written["category"], expected["category"])
    # an unquoted glob, expanded by the shell into the file names, gives the same table
    files = sorted(str(f) for f in (tmp_path / "sri").glob("*.png"))
    assert main(["sequences", *files, *args[2:-1], str(tmp_path / "unquoted.csv")]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "unquoted.csv"), pd.read_csv(out))
    capsys.readouterr()
    assert (
        main(
            [
                "sequences",
                str(tmp_path / "sri" / "*.png"),
                "--time",
                "%Y-%m-%d",
                "--out",
                str(out),
                "--overwrite",
            ]
        )
        == 2
    )
    assert "sri_202106010600.png" in capsys.readouterr().err  # the files are named
    nc = tmp_path / "radar.nc"
    cube.isel(time=slice(0, 3)).compute().to_dataset(name="rain").to_netcdf(nc)
    assert main(["sequences", str(nc), "--crop", "0,2,0,2", "--out", str(out), "--overwrite"]) == 2
    assert "only for image inputs" in capsys.readouterr().err
