"""Maps, skill plots and animations render headless (Agg) and offline."""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pytest
import xarray as xr

matplotlib.use("Agg")

import matplotlib.pyplot as plt

import xnowcast
from xnowcast.datasets import synthetic_radar

cartopy = pytest.importorskip("cartopy")
PIL_Image = pytest.importorskip("PIL.Image")
shapefile = pytest.importorskip("shapefile")  # pyshp, a cartopy dependency

from cartopy.mpl.feature_artist import FeatureArtist  # noqa: E402
from cartopy.mpl.geoaxes import GeoAxes  # noqa: E402

from xnowcast.plotting import (  # noqa: E402
    MapStyle,
    animate,
    map_grid,
    natural_earth,
    plot_forecast,
    plot_skill,
    rain_colormap,
    set_natural_earth_dir,
)
from xnowcast.plotting.frames import lead_positions  # noqa: E402
from xnowcast.verification import verify  # noqa: E402


@pytest.fixture(autouse=True)
def offline_natural_earth(monkeypatch, tmp_path_factory):
    """No Natural Earth files anywhere, a fresh warn-once state, and no downloads."""
    empty = tmp_path_factory.mktemp("no_natural_earth")
    monkeypatch.setitem(cartopy.config, "pre_existing_data_dir", empty)
    monkeypatch.setitem(cartopy.config, "data_dir", empty)
    monkeypatch.delenv(natural_earth.ENV_VAR, raising=False)
    monkeypatch.setitem(natural_earth._state, "dir", None)
    monkeypatch.setitem(natural_earth._state, "warned", False)

    def no_download(*args, **kwargs):
        raise AssertionError("cartopy tried to download Natural Earth data")

    from cartopy.io import Downloader

    monkeypatch.setattr(Downloader, "acquire_resource", no_download)
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def obs():
    return synthetic_radar(n_times=14, size=40, seed=4)


@pytest.fixture(scope="module")
def fc(obs):
    return obs.isel(time=slice(0, 8)).nowcast.forecast(
        model="persistence", model_params={"n_in": 2, "n_out": 6}
    )


def assert_image(path, min_colours=8, frames=1):
    assert path.exists() and path.stat().st_size > 2000, path
    with PIL_Image.open(path) as img:
        assert img.size[0] > 200 and img.size[1] > 150
        assert getattr(img, "n_frames", 1) == frames
        colours = img.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) >= min_colours


def quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return func(*args, **kwargs)


# ------------------------------------------------------------------------- maps


def test_plot_forecast_map_panels_in_the_grid_projection(fc, tmp_path):
    path = tmp_path / "maps.png"
    fig = quiet(plot_forecast, fc, leads=[1, 3, 6], path=path)
    assert_image(path)
    maps = [ax for ax in fig.axes if isinstance(ax, GeoAxes)]
    assert len(maps) == 3
    crs = xnowcast.conventions.grid_crs(fc)
    assert maps[0].projection.to_wkt() == crs.to_wkt()  # the cube's own projection
    titles = [ax.get_title() for ax in maps]
    assert titles[0] == "+5 min, valid 12:40 UTC" and titles[2].startswith("+30 min")
    assert "init 2024-06-01 12:35 UTC" in fig._suptitle.get_text()
    colorbar = [ax for ax in fig.axes if ax not in maps]
    assert len(colorbar) == 1 and "mm h-1" in colorbar[0].get_ylabel()


def test_plot_forecast_default_leads_fit_short_forecasts(fc):
    fig = quiet(plot_forecast, fc)  # default (1, 6, 12, 24): 12 and 24 do not exist
    assert len([ax for ax in fig.axes if isinstance(ax, GeoAxes)]) == 2


def test_plot_forecast_with_observed_row_and_motion(fc, obs, tmp_path):
    motion = xr.Dataset(
        {
            "u": (("y", "x"), np.full((40, 40), 2.0, np.float32)),
            "v": (("y", "x"), np.full((40, 40), 1.0, np.float32)),
        }
    )
    path = tmp_path / "maps_obs.png"
    fig = quiet(plot_forecast, fc, leads=[1, 2], obs=obs, motion=motion, path=path)
    assert_image(path)
    maps = sorted(
        (ax for ax in fig.axes if isinstance(ax, GeoAxes)),
        key=lambda ax: (ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start),
    )
    assert [ax.get_title().split()[0] for ax in maps] == [
        "observed",
        "observed",
        "forecast",
        "forecast",
    ]
    quivers = [c for ax in maps for c in ax.collections if isinstance(c, matplotlib.quiver.Quiver)]
    assert len(quivers) == 2  # on the forecast panels only
    # u > 0: towards increasing x; v > 0 (down the rows) is southward on this north-up grid
    assert (quivers[0].U > 0).all() and (quivers[0].V < 0).all()


def test_plot_forecast_multi_init_needs_a_choice(obs):
    fcs = obs.nowcast.forecast(
        model="persistence", init_times="all", model_params={"n_in": 2, "n_out": 3}
    )
    with pytest.raises(ValueError, match="init_time="):
        quiet(plot_forecast, fcs, leads=[1])
    fig = quiet(plot_forecast, fcs, leads=[1], init_time=-1)
    assert "init 2024-06-01 13:05 UTC" in fig._suptitle.get_text()


def test_plain_axes_without_grid_mapping_and_latlon_fallback(fc, tmp_path):
    plain = fc.drop_vars(["crs", "lat", "lon"])
    plain.attrs.pop("grid_mapping")
    assert map_grid(plain).kind == "plain"
    path = tmp_path / "plain.png"
    fig = plot_forecast(plain, leads=[1, 2], path=path)
    assert_image(path)
    assert not any(isinstance(ax, GeoAxes) for ax in fig.axes)
    assert fig.axes[0].get_xlabel() == "x (m)"
    latlon = fc.drop_vars("crs")
    assert map_grid(latlon).kind == "latlon"
    path = tmp_path / "latlon.png"
    quiet(plot_forecast, latlon, leads=[1], path=path)
    assert_image(path)


def _kilometre_grid_mapping(fc):
    """``fc`` on a KNMI-style grid: x/y in km and a grid mapping with its ellipsoid in km."""
    from pyproj import CRS, Transformer

    params = "+proj=stere +lat_0=90 +lon_0=0 +lat_ts=60 +x_0=0 +y_0=0"
    km = CRS.from_proj4(f"{params} +a=6378.137 +b=6356.752")
    metres = CRS.from_proj4(f"{params} +a=6378137 +b=6356752 +units=m")
    x = 300.5 + np.arange(fc.sizes["x"])
    y = -3900.5 - np.arange(fc.sizes["y"])
    xx, yy = np.meshgrid(x * 1000, y * 1000)
    lon, lat = Transformer.from_crs(metres, "EPSG:4326", always_xy=True).transform(xx, yy)
    return fc.assign_coords(
        x=("x", x, {"standard_name": "projection_x_coordinate", "units": "km"}),
        y=("y", y, {"standard_name": "projection_y_coordinate", "units": "km"}),
        lat=(("y", "x"), lat, fc.lat.attrs),
        lon=(("y", "x"), lon, fc.lon.attrs),
        crs=xr.DataArray(
            0, attrs={"grid_mapping_name": "polar_stereographic", "crs_wkt": km.to_wkt()}
        ),
    ), metres


def test_grid_mapping_in_kilometres_is_drawn_in_its_own_projection(fc, tmp_path):
    from pyproj import Transformer

    knmi_like, _metres = _kilometre_grid_mapping(fc)
    grid = map_grid(knmi_like)
    assert grid.kind == "projected"  # not the lat/lon fallback
    # the map's coordinates are the grid's, in metres of the real Earth
    np.testing.assert_allclose(grid.x, knmi_like.x.values * 1000)
    to_geo = Transformer.from_crs(grid.projection, "EPSG:4326", always_xy=True)
    lon, lat = to_geo.transform(grid.x[5], grid.y[7])
    assert lon == pytest.approx(float(knmi_like.lon[7, 5]), abs=1e-6)
    assert lat == pytest.approx(float(knmi_like.lat[7, 5]), abs=1e-6)
    assert grid.projection.ellipsoid.semi_major_metre == pytest.approx(6378137.0)
    path = tmp_path / "km.png"
    quiet(plot_forecast, knmi_like, leads=[1], path=path)
    assert_image(path)


def test_shared_knmi_cube_is_mapped_in_its_polar_stereographic_grid(radar_dir):
    knmi = xnowcast.open_archive(radar_dir / "knmi-201008.nc").isel(time=0)
    grid = map_grid(knmi)
    assert grid.kind == "projected"
    assert "Polar Stereographic" in grid.projection.coordinate_operation.method_name
    assert grid.extent == pytest.approx((0.0, 700e3, -4415e3, -3650e3))


def test_irregular_grid_is_drawn_as_a_mesh(fc):
    irregular = fc.assign_coords(x=fc.x + np.linspace(0, 50, fc.sizes["x"]) ** 1.5)
    grid = map_grid(irregular)
    assert not grid.is_regular and map_grid(fc).is_regular
    fig = quiet(plot_forecast, irregular, leads=[1])
    assert any(isinstance(c, matplotlib.collections.QuadMesh) for c in fig.axes[0].collections)


def test_rain_colour_scale():
    cmap, norm = rain_colormap()
    assert list(norm.boundaries) == [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]
    assert cmap(norm(0.05))[3] == 0.0  # dry: transparent
    assert cmap(norm(300.0)) == cmap(norm(99.0))  # above the top level: the last colour
    cmap, norm = rain_colormap(levels=[1, 2, 4])
    assert cmap.N == 2
    with pytest.raises(ValueError, match="increasing"):
        rain_colormap(levels=[1, 1, 2])


def test_lead_selection(fc):
    assert lead_positions(fc, [1, "30min", np.timedelta64(10, "m")]) == [0, 5, 1]
    with pytest.raises(ValueError, match="1 to 6"):
        lead_positions(fc, [7])
    with pytest.raises(ValueError, match="not in the forecast"):
        lead_positions(fc, ["7min"])


def test_map_style_groups_the_look_of_maps_and_animations(fc, tmp_path):
    style = MapStyle(levels=[1, 2, 4], features="coastline", panel_size=2)
    assert style.features == ("coastline",) and style.panel_size == 2.0

    def ticks(fig):
        (bar,) = [ax for ax in fig.axes if not isinstance(ax, GeoAxes)]
        return [float(t) for t in bar.get_yticks()]

    fig = quiet(plot_forecast, fc, [1], style=style)
    assert ticks(fig) == [1.0, 2.0, 4.0]
    assert fig.get_size_inches()[0] == pytest.approx(2.0 + 1.0)  # one 2-inch panel + colour bar
    # a dict of the fields, and keywords that override it
    fig = quiet(plot_forecast, fc, [1], style={"levels": [1, 2, 4]}, levels=[0.5, 1, 2])
    assert ticks(fig) == [0.5, 1.0, 2.0]
    assert quiet(fc.nowcast.plot, leads=[1], style=style).get_size_inches()[0] == 3.0
    with pytest.raises(TypeError, match=r"unexpected keyword\(s\) \['colour'\]: the map style"):
        plot_forecast(fc, [1], colour="red")
    with pytest.raises(TypeError, match="style must be a MapStyle or a dict"):
        plot_forecast(fc, [1], style="dark")
    with pytest.raises(ValueError, match="unknown map feature 'coast'"):
        MapStyle(features=["coast"])
    with pytest.raises(ValueError, match="resolution must be one of"):
        animate(fc, tmp_path / "a.gif", resolution="1m")
    with pytest.raises(ValueError, match="increasing"):
        plot_forecast(fc, [1], style=style, levels=[2, 1])
    gif = quiet(animate, fc, tmp_path / "styled.gif", leads=[1, 2], dpi=80, style=style)
    assert_image(gif, min_colours=2, frames=2)
    with PIL_Image.open(gif) as img:
        assert img.size[0] == (2 + 1) * 80  # the style's panel size


def test_figures_are_not_held_by_pyplot_so_a_notebook_shows_them_once(fc, obs, tmp_path):
    """The inline backend shows every figure pyplot manages, and the cell shows the returned one.

    A figure made through pyplot showed twice in a notebook; the plots make
    theirs without pyplot, and a script can still hand one to pyplot to show.
    """
    plt.close("all")
    scores = verify(fc, obs, ["mae"])
    figures = [
        quiet(plot_forecast, fc, leads=[1]),
        quiet(fc.nowcast.plot, leads=[1]),
        plot_skill(scores),
    ]
    quiet(animate, fc, tmp_path / "fc.gif", leads=[1, 2], dpi=40)
    assert plt.get_fignums() == []
    for fig in figures:
        assert isinstance(fig, matplotlib.figure.Figure)
        fig.savefig(tmp_path / "saved.png")
        assert_image(tmp_path / "saved.png", min_colours=2)
    assert plt.figure(figures[0]) is figures[0] and plt.get_fignums() == [1]


NOTEBOOK = """
import warnings
from IPython.core.interactiveshell import InteractiveShell

class NotebookLikeShell(InteractiveShell):
    def enable_gui(self, gui=None):  # the inline backend needs no GUI loop (as in ipykernel)
        pass

shell = NotebookLikeShell.instance()
shell.run_cell("%matplotlib inline").raise_error()
shown, results = [], []  # what the inline backend displays; what the cells return
shell.display_pub.publish = lambda data, metadata=None, **kw: shown.append(sorted(data))
shell.displayhook.write_format_data = lambda data, md=None: results.append(sorted(data))
for cell in [
    "import warnings; warnings.simplefilter('ignore'); import xnowcast",
    "cube = xnowcast.datasets.synthetic_radar(n_times=8, size=16)",
    "fc = xnowcast.forecast(cube, 'persistence', init_times='all', n_in=2, n_out=2)",
    "fc.isel(init_time=-1).nowcast.plot(leads=[1])",
    "xnowcast.plotting.plot_skill(xnowcast.verify(fc, cube, ['mae']))",
]:
    shell.run_cell(cell).raise_error()
print("FIGURES=" + repr((shown, results)))
"""


def test_a_notebook_shows_each_figure_once():
    """Cells run as in Jupyter (IPython with the inline backend): each plot is displayed once,
    as the cell's result, and not a second time by the inline backend."""
    pytest.importorskip("IPython")
    pytest.importorskip("matplotlib_inline")
    import ast
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", NOTEBOOK], capture_output=True, text=True, timeout=300, check=True
    )
    shown, results = ast.literal_eval(result.stdout.split("FIGURES=")[-1])
    assert shown == []
    assert results == [["image/png", "text/plain"]] * 2


# ------------------------------------------------------------------------ skill


def test_plot_skill_panels_and_reference(obs, tmp_path):
    fcs = obs.nowcast.forecast(
        model="persistence", init_times="all", model_params={"n_in": 2, "n_out": 4}
    )
    scores = verify(
        fcs, obs, ["mae", "csi", "fss"], thresholds=[0.5, 2], scales=[1, 5], reference="persistence"
    )
    path = tmp_path / "skill.png"
    fig = plot_skill(scores, path=path)
    assert_image(path)
    assert [ax.get_title() for ax in fig.axes] == [
        "MAE",
        "CSI",
        "FSS >= 0.5 mm h-1",
        "FSS >= 2 mm h-1",
    ]
    csi_lines = fig.axes[1].get_lines()
    assert sum(line.get_linestyle() == "--" for line in csi_lines) == 3  # 2 + legend entry
    fig = plot_skill(scores, ["csi_skill"], threshold=2)
    assert len(fig.axes) == 1 and len(fig.axes[0].get_lines()) == 2  # line + perfect score
    with pytest.raises(ValueError, match="no score variable"):
        plot_skill(scores, ["rmse"])


def test_plot_skill_computes_lazy_scores_once(obs, counting_scheduler):
    import dask

    fcs = obs.nowcast.forecast(
        model="persistence", init_times="all", model_params={"n_in": 2, "n_out": 3}
    )
    with dask.config.set(scheduler=counting_scheduler):
        scores = verify(
            fcs,
            obs,
            ["mae", "csi", "fss"],
            thresholds=[0.5, 2],
            scales=[1, 5],
            reference="persistence",
        )
        assert counting_scheduler.calls == 0
        fig = plot_skill(scores)
    assert counting_scheduler.calls == 1  # not once per line drawn
    assert len(fig.axes) == 4
    plt.close(fig)


# -------------------------------------------------------------------- animation


def test_animate_gif_one_frame_per_lead(fc, obs, tmp_path):
    path = quiet(animate, fc, tmp_path / "fc.gif", obs=obs, fps=4, dpi=60, panel_size=2.5)
    assert path == tmp_path / "fc.gif"
    assert_image(path, frames=6)
    path = quiet(animate, fc, tmp_path / "fc_only.gif", leads=[1, 2, 3], dpi=60)
    assert_image(path, frames=3)


def test_animate_video_needs_ffmpeg(fc, tmp_path):
    if matplotlib.animation.writers.is_available("ffmpeg"):
        path = quiet(animate, fc, tmp_path / "fc.mp4", leads=[1, 2])
        assert path.stat().st_size > 1000
    else:
        with pytest.raises(ValueError, match="needs ffmpeg"):
            animate(fc, tmp_path / "fc.mp4")
    with pytest.raises(ValueError, match=r"\.gif"):
        animate(fc, tmp_path / "fc.avi")


# ------------------------------------------------------------ Natural Earth offline


def test_offline_natural_earth_warns_once_and_still_renders(fc, tmp_path):
    # coastlines and borders come from the bundled set (tests/test_coastlines.py); lakes do not
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot_forecast(fc, leads=[1, 2], path=tmp_path / "a.png", features=["coastline", "lakes"])
        plot_forecast(fc, leads=[3], path=tmp_path / "b.png", features=["lakes"])
    natural = [w for w in caught if "Natural Earth" in str(w.message)]
    assert len(natural) == 1
    assert "set_natural_earth_dir" in str(natural[0].message)
    assert_image(tmp_path / "a.png")
    assert_image(tmp_path / "b.png")


def write_shapefile(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    with shapefile.Writer(str(path), shapeType=shapefile.POLYLINE) as w:
        w.field("name", "C")
        for line in lines:
            w.line([line])
            w.record("x")


def test_local_natural_earth_copy_is_used(fc, tmp_path, monkeypatch):
    lat = float(fc.lat.mean())
    coast = [[(4.0, lat), (6.0, lat)]]
    # cartopy's layout, set with set_natural_earth_dir
    write_shapefile(
        tmp_path / "ne" / "shapefiles" / "natural_earth" / "physical" / "ne_50m_coastline.shp",
        coast,
    )
    previous = set_natural_earth_dir(tmp_path / "ne")
    try:
        assert cartopy.config["pre_existing_data_dir"] == tmp_path / "ne"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fig = plot_forecast(fc, leads=[1], features=["coastline"])
        assert not [w for w in caught if "Natural Earth" in str(w.message)]
        assert any(isinstance(a, FeatureArtist) for a in fig.axes[0].get_children())
    finally:
        set_natural_earth_dir(previous)
    # a flat folder of unzipped files, named by the environment variable; another resolution
    write_shapefile(tmp_path / "flat" / "ne_10m_admin_0_boundary_lines_land.shp", coast)
    monkeypatch.setenv(natural_earth.ENV_VAR, str(tmp_path / "flat"))
    assert natural_earth.natural_earth_path("borders", "10m") is not None
    fig = quiet(plot_forecast, fc, leads=[1], features=["borders"], resolution="50m")
    assert any(isinstance(a, FeatureArtist) for a in fig.axes[0].get_children())
    with pytest.raises(ValueError, match="does not exist"):
        set_natural_earth_dir(tmp_path / "missing")


# ------------------------------------------------------------- accessor and CLI


def test_accessor_and_cli_render(fc, obs, tmp_path):
    from xnowcast.cli import main

    fig = quiet(fc.nowcast.plot, leads=[1, 2])
    assert len([ax for ax in fig.axes if isinstance(ax, GeoAxes)]) == 2
    gif = quiet(fc.nowcast.animate, tmp_path / "acc.gif", obs=obs, leads=[1, 2], dpi=60)
    assert_image(gif, frames=2)
    fc_path, obs_path = tmp_path / "fc.nc", tmp_path / "obs.nc"
    xnowcast.io.save_forecast(fc, fc_path)
    obs.to_dataset().to_netcdf(obs_path)
    png = tmp_path / "maps.png"
    assert (
        quiet(
            main,
            ["plot", str(fc_path), "--out", str(png), "--leads", "1,30min", "--obs", str(obs_path)],
        )
        == 0
    )
    assert_image(png)
    gif = tmp_path / "cli.gif"
    assert quiet(main, ["plot", str(fc_path), "--out", str(gif), "--leads", "1,2,3"]) == 0
    assert_image(gif, frames=3)


def test_cli_plot_of_many_init_times_names_the_option(obs, tmp_path, capsys):
    from xnowcast.cli import main

    fcs = obs.nowcast.forecast(
        model="persistence", init_times="all", model_params={"n_in": 2, "n_out": 3}
    )
    fc_path, png = tmp_path / "fcs.nc", tmp_path / "maps.png"
    xnowcast.io.save_forecast(fcs, fc_path)
    assert quiet(main, ["plot", str(fc_path), "--out", str(png)]) == 2
    assert "--init-time" in capsys.readouterr().err and not png.exists()
    assert quiet(main, ["plot", str(fc_path), "--out", str(png), "--init-time", "-1"]) == 0
    assert_image(png)


# ------------------------------------------------------------- bad input (audit)
def test_observations_on_another_grid_are_refused(fc, obs, tmp_path):
    """Before, frames of another grid were drawn beside the forecast as if they matched."""
    shifted = obs.assign_coords(x=obs.x + 3 * float(obs.x[1] - obs.x[0]))
    with pytest.raises(ValueError, match="not on the observations' grid"):
        plot_forecast(fc, [1], obs=shifted)
    with pytest.raises(ValueError, match="not on the observations' grid"):
        animate(fc, tmp_path / "a.gif", obs.isel(x=slice(0, 10)))
    quiet(plot_forecast, fc, [1], obs=obs.isel(x=slice(None, None)))  # the same grid is fine


def test_bad_lead_and_init_time_choices_are_clear(fc, obs):
    with pytest.raises(ValueError, match="leads is empty"):
        lead_positions(fc, [])
    with pytest.raises(ValueError, match="lead 'soon' must be a time interval.*steps counted"):
        lead_positions(fc, ["soon"])
    assert lead_positions(fc, 2) == [1]
    quiet(plot_forecast, fc, 2)  # one lead, not "'int' object is not iterable"
    fcs = xnowcast.forecast(
        obs, "persistence", init_times="all", model_params={"n_in": 2, "n_out": 2}
    )
    with pytest.raises(ValueError, match="init_time position 99 is out of range"):
        plot_forecast(fcs, [1], init_time=99)
    with pytest.raises(ValueError, match="init_time: expected times.*'yesterday'"):
        plot_forecast(fcs, [1], init_time="yesterday")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ncols": 0}, "ncols must be a whole number >= 1"),
        ({"ncols": -1}, "ncols must be a whole number >= 1"),
        ({"panel_size": "big"}, "panel_size must be a positive number"),
        ({"dpi": 0}, "dpi must be a whole number >= 1"),
    ],
)
def test_bad_layout_arguments_are_clear(fc, kwargs, match):
    error = TypeError if any(isinstance(v, str) for v in kwargs.values()) else ValueError
    with pytest.raises(error, match=match):
        plot_forecast(fc, [1], **kwargs)


@pytest.mark.parametrize(("fps", "error"), [(0, ValueError), (-1, ValueError), ("3", TypeError)])
def test_bad_fps_is_clear(fc, tmp_path, fps, error):
    with pytest.raises(error, match="fps must be a positive number"):
        animate(fc, tmp_path / "a.gif", fps=fps)


def test_one_feature_name_is_one_feature(fc):
    """features="coastline" used to be read letter by letter ("unknown map feature 'c'")."""
    quiet(plot_forecast, fc, [1], features="coastline")


def test_bad_plot_skill_arguments_are_clear(obs):
    fcs = xnowcast.forecast(
        obs, "persistence", init_times="all", model_params={"n_in": 2, "n_out": 2}
    )
    scores = verify(fcs, obs, ["csi"], mean=True)
    with pytest.raises(ValueError, match="threshold='x' is not in the scores"):
        plot_skill(scores, threshold="x")
    with pytest.raises(ValueError, match="ncols must be a whole number >= 1"):
        plot_skill(scores, ncols=0)
    with pytest.raises(TypeError, match="metrics must be a score name"):
        plot_skill(scores, 3)
    with pytest.raises(ValueError, match=r"panel_size must be \(width, height\)"):
        plot_skill(scores, panel_size=4)


def test_plotting_is_an_attribute_of_the_package_without_importing_it_eagerly():
    """`import xnowcast; xnowcast.plotting.plot_skill(...)` as the docs write it."""
    import subprocess
    import sys

    code = (
        "import sys, xnowcast; assert 'matplotlib' not in sys.modules; "
        "xnowcast.plotting.plot_skill; xnowcast.training.read_metadata; "
        "xnowcast.motion.motion; xnowcast.transforms.get_transform"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_plot_writers_never_replace_a_file_unasked(fc, obs, tmp_path):
    """plot_forecast, plot_skill and animate: an existing file is kept unless overwrite=True."""
    scores = verify(fc, obs, metrics=["mae"])
    writers = {
        "map.png": lambda path, **kw: quiet(plot_forecast, fc, [1, 2], path=path, **kw),
        "skill.png": lambda path, **kw: plot_skill(scores, path=path, **kw),
        "fc.gif": lambda path, **kw: quiet(animate, fc, path, leads=[1, 2], **kw),
    }
    for name, write in writers.items():
        path = tmp_path / name
        path.write_bytes(b"my thesis")
        with pytest.raises(FileExistsError, match="overwrite"):
            write(path)
        assert path.read_bytes() == b"my thesis"
        write(path, overwrite=True)
        assert path.read_bytes() != b"my thesis" and path.stat().st_size > 500
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(writers)  # no fragments


def test_a_failed_figure_save_leaves_the_old_file(fc, tmp_path):
    path = tmp_path / "map.notaformat"
    path.write_bytes(b"keep me")
    with pytest.raises(ValueError):
        quiet(plot_forecast, fc, [1], path=path, overwrite=True)
    assert path.read_bytes() == b"keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["map.notaformat"]
