"""Raw radar readers against pysteps' importers, engines, detection, bad files, and units.

The comparisons read ``../shared/data/formats`` (pysteps-data layout) and skip
when it is absent; the synthetic ODIM/PGM files written here need nothing.
pysteps is a test-only reference. Its GeoTIFF importer needs GDAL, which has
no wheel: a tiny shim over rasterio stands in for GDAL's file access (the
importer's own scaling, masking and georeferencing code runs unchanged).
"""

from __future__ import annotations

import gzip
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyproj
import pytest
import xarray as xr

import xnowcast
from xnowcast.io import open_archive
from xnowcast.io.formats import FORMATS, detect_format, open_odim, open_radar_file
from xnowcast.io.formats import odim as odim_module
from xnowcast.optional import MissingOptionalDependency
from xnowcast.units import (
    accumulation_period,
    check_same_units,
    quantity_of,
    rain_rate_for,
    to_rain_rate,
)

h5py = pytest.importorskip("h5py")

FORMATS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "formats"
RADAR_DIR = FORMATS_DIR.parent / "radar"


@pytest.fixture(scope="module")
def formats_dir() -> Path:
    if not FORMATS_DIR.is_dir():
        pytest.skip(f"shared raw-format data not found at {FORMATS_DIR}")
    return FORMATS_DIR


@pytest.fixture(scope="module")
def importers():
    pytest.importorskip("pysteps")
    from pysteps.io import importers

    return importers


def first(formats_dir: Path, pattern: str) -> str:
    return str(sorted(formats_dir.glob(pattern))[0])


# --- reference comparisons -----------------------------------------------------------------


def corners_within(cube: xr.DataArray, meta: dict, metres: float = 100.0) -> None:
    """lat/lon of the corner pixel centres within ``metres`` of pysteps' metadata."""
    proj = pyproj.Proj(meta["projection"])
    dx, dy = meta["xpixelsize"], meta["ypixelsize"]
    centres = {
        (0, 0): (meta["x1"] + dx / 2, meta["y2"] - dy / 2),
        (0, -1): (meta["x2"] - dx / 2, meta["y2"] - dy / 2),
        (-1, 0): (meta["x1"] + dx / 2, meta["y1"] + dy / 2),
        (-1, -1): (meta["x2"] - dx / 2, meta["y1"] + dy / 2),
    }
    geod = pyproj.Geod(ellps="WGS84")
    for (i, j), (x, y) in centres.items():
        lon, lat = proj(x, y, inverse=True) if not proj.crs.is_geographic else (x, y)
        ours_lon = float(cube.lon[i, j])
        ours_lat = float(cube.lat[i, j])
        _, _, dist = geod.inv(lon, lat, ours_lon, ours_lat)
        assert dist < metres, f"corner {(i, j)}: {dist:.0f} m from pysteps"


def same_values(ours: np.ndarray, ref: np.ndarray) -> None:
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5, equal_nan=True)


CASES = {
    # name: (glob, reader output variable, units, pysteps importer call)
    "opera": ("OPERA/20180824/*.hdf", "RATE", "mm h-1", ("import_odim_hdf5", {"qty": "RATE"})),
    "cirrus": (
        "OPERA/20241126/CIRRUS/*.hdf",
        "DBZH",
        "dBZ",
        ("import_odim_hdf5", {"qty": "DBZH"}),
    ),
    "knmi": ("KNMI/2010/08/*.h5", "precipitation", "mm", ("import_knmi_hdf5", {"qty": "ACRR"})),
    "mch": (
        "mch/20150515/*.gif",
        "precipitation",
        "mm",
        ("import_mch_gif", {"product": "AQC", "unit": "mm", "accutime": 5}),
    ),
    "fmi_pgm": (
        "fmi/pgm/20160928/*.pgm.gz",
        "reflectivity",
        "dBZ",
        ("import_fmi_pgm", {"gzipped": True}),
    ),
}


#: Files compared per case: every file of the small formats, a few of the large ones.
N_FILES = {"opera": 2, "cirrus": 1, "knmi": None, "mch": None, "fmi_pgm": None}


@pytest.mark.parametrize("case", sorted(CASES))
def test_reader_equals_pysteps(formats_dir, importers, case):
    pattern, name, units, (importer, kwargs) = CASES[case]
    files = sorted(str(p) for p in formats_dir.glob(pattern))[: N_FILES[case]]
    cube = open_archive(files)
    assert cube.name == name and cube.attrs["units"] == units
    assert cube.attrs["grid_mapping"] == "crs" and "crs_wkt" in cube["crs"].attrs
    for k, path in enumerate(files):
        ref, _, meta = getattr(importers, importer)(path, **kwargs)
        same_values(cube.values[k], ref)
    corners_within(cube, meta)


def gdal_shim(monkeypatch, importers):
    """GDAL's file access, as pysteps' GeoTIFF importer calls it, over rasterio."""
    rasterio = pytest.importorskip("rasterio")

    class Dataset:
        def __init__(self, path, mode):
            with rasterio.open(path) as src:
                self.array = src.read(1)
                self.wkt = src.crs.to_wkt()
                self.geotransform = src.transform.to_gdal()
                self.RasterXSize, self.RasterYSize = src.width, src.height

        def GetRasterBand(self, i):
            return SimpleNamespace(ReadAsArray=lambda: self.array)

        def GetProjection(self):
            return self.wkt

        def GetGeoTransform(self):
            return self.geotransform

    class SpatialReference:
        def ImportFromWkt(self, wkt):
            self.crs = pyproj.CRS.from_wkt(wkt)

        def ExportToProj4(self):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return self.crs.to_proj4()

    monkeypatch.setattr(importers, "GDAL_IMPORTED", True)
    monkeypatch.setattr(importers, "gdal", SimpleNamespace(Open=Dataset), raising=False)
    monkeypatch.setattr(importers, "gdalconst", SimpleNamespace(GA_ReadOnly=0), raising=False)
    monkeypatch.setattr(
        importers, "osr", SimpleNamespace(SpatialReference=SpatialReference), raising=False
    )


def test_geotiff_equals_pysteps(formats_dir, importers, monkeypatch):
    gdal_shim(monkeypatch, importers)
    path = first(formats_dir, "fmi/geotiff/20160928/*.tif")
    cube = open_archive(path)
    assert cube.name == "reflectivity" and cube.attrs["units"] == "dBZ"
    assert "TM35FIN" in pyproj.CRS.from_wkt(cube["crs"].attrs["crs_wkt"]).name
    ref, _, meta = importers.import_fmi_geotiff(path)
    same_values(cube.values[0], ref)
    corners_within(cube, meta)
    assert cube.time.values[0] == np.datetime64("2016-09-28T14:45")


def test_mrms_window_equals_pysteps_and_stays_lazy(formats_dir, importers):
    pytest.importorskip("pygrib")
    pytest.importorskip("eccodes")
    files = sorted(formats_dir.glob("mrms/2019/06/10/*.grib2"))
    cube = open_archive([str(f) for f in files])
    assert cube.sizes == {"time": len(files), "y": 3500, "x": 7000}
    assert cube.chunks[0] == (1,) * len(files) and cube.chunks[1:] == ((3500,), (7000,))
    assert cube.attrs["units"] == "mm h-1" and cube.time.values[1] == np.datetime64(
        "2019-06-10T00:02"
    )
    window = cube.isel(time=1, y=slice(1500, 1600), x=slice(4000, 4200)).values
    ref, _, meta = importers.import_mrms_grib(str(files[1]), window_size=1)
    same_values(window, ref[1500:1600, 4000:4200])
    corners_within(cube, meta)


def test_odim_rates_match_pysteps_after_conversion(formats_dir, importers):
    from pysteps.utils import conversion

    path = first(formats_dir, "KNMI/2010/08/*.h5")
    ref, _, meta = importers.import_knmi_hdf5(path, qty="ACRR")
    ref_rate, _ = conversion.to_rainrate(ref, meta)
    rate = to_rain_rate(open_archive(path))
    assert rate.attrs["units"] == "mm h-1"
    same_values(rate.values[0], ref_rate)

    path = first(formats_dir, "fmi/pgm/20160928/*.pgm.gz")
    ref, _, meta = importers.import_fmi_pgm(path, gzipped=True)
    ref_rate, _ = conversion.to_rainrate(ref, meta, zr_a=223.0, zr_b=1.53)
    rate = to_rain_rate(open_archive(path), zr=(223.0, 1.53))
    same_values(rate.values[0], ref_rate)


def test_mch_gif_rain_rate_equals_the_shared_cube(formats_dir):
    if not RADAR_DIR.is_dir():
        pytest.skip("shared radar cubes absent")
    cube = open_archive(str(formats_dir / "mch/20150515/*.gif"))
    assert cube.attrs["standard_name"] == "precipitation_amount"
    np.testing.assert_array_equal(
        (cube.time - cube.start_time).values, np.timedelta64(5, "m").astype("m8[ns]")
    )
    reference = xr.open_dataset(RADAR_DIR / "mch-20150515.nc")["precip_intensity"]
    rate = cube.nowcast.to_rain_rate()
    expected = reference.sel(time=rate.time.values)
    np.testing.assert_allclose(rate.values, expected.values, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rate.lat.values, expected.lat.values, atol=1e-4)


# --- archives, engines, laziness ------------------------------------------------------------


def test_open_archive_reads_no_values_until_computed(formats_dir, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("values read")

    monkeypatch.setattr(odim_module, "read_odim_field", refuse)
    cube = open_archive(str(formats_dir / "OPERA/20180824/*.hdf"))
    assert cube.sizes["time"] == 24 and cube.chunks[0] == (1,) * 24
    assert pd.DatetimeIndex(cube.time.values).is_monotonic_increasing
    with pytest.raises(AssertionError, match="values read"):
        cube.isel(time=0).values


def test_xarray_engines_open_an_archive(formats_dir):
    files = sorted(str(f) for f in formats_dir.glob("KNMI/2010/08/*.h5"))
    by_content = xr.open_mfdataset(files, engine="xnowcast")
    named = xr.open_mfdataset(files, engine="xnowcast_knmi")
    cube = open_archive(files)
    np.testing.assert_array_equal(by_content["precipitation"].values, cube.values)
    np.testing.assert_array_equal(named["time"].values, cube["time"].values)
    one = xr.open_dataset(files[0], engine="xnowcast", chunks={})
    assert one["precipitation"].chunks == ((1,), (765,), (700,))


def test_backend_kwargs_choose_the_odim_quantity(formats_dir):
    path = first(formats_dir, "OPERA/20241126/CIRRUS/*.hdf")
    cube = open_archive(path, backend_kwargs={"quantity": "DBZH"})
    assert cube.name == "DBZH"
    with pytest.raises(ValueError, match="no TH in the file; it holds DBZH"):
        open_archive(path, backend_kwargs={"quantity": "TH"})
    with pytest.raises(ValueError, match="unknown ODIM quantity 'VRADH'"):
        open_archive(path, engine="odim", backend_kwargs={"quantity": "VRADH"})


def write_grib(path, values, parameter=(209, 6, 1)):
    """A 3 x 4 GRIB2 message on a 1-degree latitude-longitude grid (from ecCodes' samples)."""
    eccodes = pytest.importorskip("eccodes")
    handle = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib2")
    for key, value in {
        "Ni": 4,
        "Nj": 3,
        "latitudeOfFirstGridPointInDegrees": 50.0,
        "longitudeOfFirstGridPointInDegrees": 255.0,
        "latitudeOfLastGridPointInDegrees": 48.0,
        "longitudeOfLastGridPointInDegrees": 258.0,
        "iDirectionIncrementInDegrees": 1.0,
        "jDirectionIncrementInDegrees": 1.0,
        "discipline": parameter[0],
        "parameterCategory": parameter[1],
        "parameterNumber": parameter[2],
        "dataDate": 20190610,
        "dataTime": 102,
    }.items():
        eccodes.codes_set(handle, key, value)
    eccodes.codes_set_values(handle, np.asarray(values, "float64").ravel())
    with open(path, "wb") as f:
        eccodes.codes_write(handle, f)
    eccodes.codes_release(handle)
    return path


def test_mrms_grib_values_grid_and_time(tmp_path):
    values = np.arange(12.0).reshape(3, 4)
    values[0, 0] = -3.0  # MRMS "no coverage"
    path = write_grib(tmp_path / "PrecipRate.grib2", values)
    cube = open_archive(str(path))
    assert cube.name == "PrecipRate" and cube.attrs["units"] == "mm h-1"
    np.testing.assert_array_equal(cube.values[0, 0], [np.nan, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(cube.x.values, [-105.0, -104.0, -103.0, -102.0])
    np.testing.assert_allclose(cube.lat.values[:, 0], [50.0, 49.0, 48.0], atol=1e-4)
    assert cube.time.values[0] == np.datetime64("2019-06-10T01:02")
    assert cube.nowcast.validate(min_frames=1).spatial_dims == ("y", "x")
    zipped = tmp_path / "PrecipRate.grib2.gz"
    zipped.write_bytes(gzip.compress(path.read_bytes()))  # as NOAA distributes them
    assert detect_format(zipped) == "mrms"
    np.testing.assert_array_equal(open_archive(str(zipped)).values, cube.values)
    other = write_grib(tmp_path / "t.grib2", values, parameter=(0, 0, 0))
    with pytest.raises(ValueError, match="not an MRMS product.*engine='cfgrib'"):
        open_archive(str(other))


def test_engine_passes_other_files_to_xarray(tmp_path):
    pytest.importorskip("cfgrib")
    values = np.arange(12.0).reshape(3, 4)
    path = write_grib(tmp_path / "t.grib2", values, parameter=(0, 0, 0))
    cube = open_archive(str(path), engine="cfgrib")
    assert cube.dims == ("time", "latitude", "longitude")
    np.testing.assert_allclose(cube.values[0], values)
    assert not list(tmp_path.glob("*.idx"))  # no index files written next to the data


# --- synthetic files: no shared data needed ---------------------------------------------------

LAEA = "+proj=laea +lat_0=55.0 +lon_0=10.0 +x_0=1950000.0 +y_0=-2100000.0 +units=m +ellps=WGS84"


def write_odim(path, raw, quantity="DBZH", time="120000", gain=0.5, offset=-32.0, where="where"):
    """A small ODIM composite (4 x 5 pixels of 2 km) with raw values ``raw``.

    ``where="dataset1/where"`` puts the georeferencing below the dataset, as
    some national products do.
    """
    to_geo = pyproj.Transformer.from_crs(LAEA, "EPSG:4326", always_xy=True)
    ny = raw.shape[0]
    ul = to_geo.transform(1000000.0, -1000000.0)
    ll = to_geo.transform(1000000.0, -1000000.0 - 2000.0 * ny)
    with h5py.File(path, "w") as h5:
        h5.attrs["Conventions"] = np.bytes_("ODIM_H5/V2_2")
        what = h5.create_group("what")
        what.attrs.update(date=np.bytes_("20200101"), time=np.bytes_(time), object=b"COMP")
        h5.create_group(where).attrs.update(
            projdef=np.bytes_(LAEA),
            xscale=2000.0,
            yscale=2000.0,
            UL_lon=ul[0],
            UL_lat=ul[1],
            LL_lon=ll[0],
            LL_lat=ll[1],
        )
        data = h5.create_group("dataset1/data1")
        data.create_dataset("data", data=raw)
        data.create_group("what").attrs.update(
            quantity=np.bytes_(quantity), gain=gain, offset=offset, nodata=255.0, undetect=0.0
        )
    return path


def test_odim_gain_offset_nodata_undetect(tmp_path):
    raw = np.array([[0, 64, 100, 255, 10]] * 4, dtype="uint8")
    ds = open_odim(write_odim(tmp_path / "a.h5", raw))
    values = ds["DBZH"].values[0]
    np.testing.assert_allclose(values[0], [odim_module.UNDETECT_DBZ, 0.0, 18.0, np.nan, -27.0])
    assert ds["DBZH"].attrs["units"] == "dBZ"
    assert ds["x"].values[0] == pytest.approx(1001000.0, abs=0.01)
    assert ds["y"].values[0] == pytest.approx(-1001000.0, abs=0.01)
    assert ds.time.values[0] == np.datetime64("2020-01-01T12:00")
    rate = open_odim(write_odim(tmp_path / "r.h5", raw, quantity="RATE", gain=0.1, offset=0.0))
    np.testing.assert_allclose(rate["RATE"].values[0, 0, :2], [0.0, 6.4])


def test_unknown_odim_quantity_is_refused(tmp_path):
    path = write_odim(tmp_path / "v.h5", np.zeros((4, 5), "uint8"), quantity="VRADH")
    with pytest.raises(ValueError, match="no ODIM quantity that xnowcast reads.*holds VRADH"):
        open_archive(str(path))


def test_products_or_grids_mixed_in_one_folder_are_refused(tmp_path):
    raw = np.zeros((4, 5), "uint8")
    write_odim(tmp_path / "a.h5", raw, time="120000")
    write_odim(tmp_path / "b.h5", raw, time="120500", quantity="RATE")
    with pytest.raises(ValueError, match=r"different quantities.*DBZH \(dBZ\).*RATE"):
        open_archive(str(tmp_path / "*.h5"))
    (tmp_path / "b.h5").unlink()
    write_odim(tmp_path / "c.h5", np.zeros((5, 5), "uint8"), time="121000")
    with pytest.raises(ValueError, match="different grids.*c.h5"):
        open_archive(str(tmp_path / "*.h5"))


def test_truncated_and_corrupt_files_are_named(tmp_path):
    good = write_odim(tmp_path / "a.h5", np.zeros((4, 5), "uint8"))
    data = good.read_bytes()
    (tmp_path / "b.h5").write_bytes(data[: len(data) // 3])
    (tmp_path / "c.tif").write_bytes(b"not a tiff at all")
    (tmp_path / "d.grib2").write_bytes(b"GRIB" + b"\x00" * 20)
    with pytest.raises(ValueError) as info:
        open_archive(str(tmp_path / "*"))
    message = str(info.value)
    assert "3 of 4 file(s) could not be read" in message
    for name in ("b.h5", "c.tif", "d.grib2"):
        assert name in message
    assert "a.h5 (" not in message


def write_pgm(path, raw, obstime="201609281445"):
    header = (
        f"P5\n# obstime {obstime}\n# metersperpixel_x 1000\n# metersperpixel_y 1000\n"
        "# projection radar {\n# type stereographic\n# centrallongitude 25\n"
        "# centrallatitude 90\n# truelatitude 60\n# bottomleft 18.6 57.93\n"
        f"# topright 18.7 57.96\n# }}\n{raw.shape[1]} {raw.shape[0]}\n255\n"
    )
    path.write_bytes(header.encode() + raw.astype("uint8").tobytes())
    return path


def test_format_detection_by_content(tmp_path):
    pgm = write_pgm(tmp_path / "frame.dat", np.array([[64, 255]], "uint8"))
    assert detect_format(pgm) == "fmi_pgm"
    ds = open_radar_file(pgm)
    np.testing.assert_array_equal(ds["reflectivity"].values[0, 0], [0.0, np.nan])
    nc = tmp_path / "cube.nc"
    xr.Dataset({"a": (("y", "x"), np.zeros((2, 2)))}).to_netcdf(nc, engine="netcdf4")
    assert detect_format(nc) is None  # netCDF-4 is HDF5 too, but goes to xarray
    odim = write_odim(tmp_path / "noext", np.zeros((4, 5), "uint8"))
    assert detect_format(odim) == "odim"
    with pytest.raises(ValueError, match="not a raw radar format"):
        open_radar_file(nc)
    one_line = tmp_path / "one_line.pgm.gz"  # header on one line, gzipped
    one_line.write_bytes(gzip.compress(pgm.read_bytes().replace(b"\n2 1\n255\n", b"\n2 1 255\n")))
    np.testing.assert_array_equal(
        open_radar_file(one_line)["reflectivity"].values, ds["reflectivity"].values
    )
    assert sorted(FORMATS) == ["fmi_pgm", "geotiff", "knmi", "mch_gif", "mrms", "odim"]


def test_missing_library_names_the_extra(tmp_path, monkeypatch):
    path = write_odim(tmp_path / "a.h5", np.zeros((4, 5), "uint8"))
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(MissingOptionalDependency, match=r"xnowcast\[formats\]"):
        open_odim(path)


# --- units ------------------------------------------------------------------------------------


def accumulation(values=0.5, minutes=6):
    time = pd.to_datetime(["2018-06-16 10:06", "2018-06-16 10:12"])
    return xr.DataArray(
        np.full((2, 2, 2), values),
        dims=("time", "y", "x"),
        coords={"time": time, "start_time": ("time", time - pd.Timedelta(minutes=minutes))},
        attrs={"units": "kg m-2", "standard_name": "precipitation_amount"},
        name="precipitation",
    )


def test_to_rain_rate_of_accumulations_uses_the_period():
    acc = accumulation(0.5, minutes=6)
    rate = xnowcast.to_rain_rate(acc)
    np.testing.assert_allclose(rate.values, 5.0)
    assert rate.attrs["units"] == "mm h-1" and rate.attrs["standard_name"] == "rainfall_rate"
    assert "kg m-2" in rate.attrs["xnowcast_converted_from"] and rate.name == "precipitation"
    assert acc.attrs["units"] == "kg m-2"  # the input is left as it was
    np.testing.assert_allclose(acc.nowcast.to_rain_rate().values, 5.0)
    no_period = acc.drop_vars("start_time")
    with pytest.raises(ValueError, match="period is not known.*period='6min'"):
        to_rain_rate(no_period)
    np.testing.assert_allclose(to_rain_rate(no_period, period="30min").values, 1.0)
    no_period.attrs["cell_methods"] = "time: sum (interval: 15 minutes)"
    assert accumulation_period(no_period) == pd.Timedelta("15min")


def test_to_rain_rate_of_reflectivity_and_other_units():
    dbz = xr.DataArray([23.0, np.nan], dims="x", attrs={"units": "dBZ"})
    np.testing.assert_allclose(to_rain_rate(dbz).values, [1.0, np.nan], atol=0.01)
    a, b = 300.0, 1.4
    expected = (10 ** (2.3) / a) ** (1 / b)
    np.testing.assert_allclose(to_rain_rate(dbz, zr=(a, b)).values[0], expected, rtol=1e-6)
    flux = xr.DataArray([1e-3], dims="x", attrs={"units": "kg m-2 s-1"})
    np.testing.assert_allclose(to_rain_rate(flux).values, [3.6])
    rate = xr.DataArray([1.0], dims="x", attrs={"units": "mm/h"})
    assert to_rain_rate(rate) is rate
    floor = dbz.assign_attrs(undetect=23.0)
    np.testing.assert_array_equal(to_rain_rate(floor).values, [0.0, np.nan])
    assert "undetect" not in to_rain_rate(floor).attrs
    np.testing.assert_allclose(to_rain_rate(floor, undetect=0.0).values[0], 1.0, atol=0.01)
    with pytest.raises(ValueError, match="cannot convert reflectance"):
        to_rain_rate(xr.DataArray([1.0], dims="x", name="reflectance", attrs={"units": "1"}))
    with pytest.raises(TypeError, match="zr must be a pair"):
        to_rain_rate(dbz, zr=200)
    assert quantity_of(xr.DataArray(0.0, attrs={"units": "mm"})).kind == "accumulation"


def test_rain_rate_for_converts_with_a_warning_or_refuses():
    acc = accumulation(0.5)
    with pytest.warns(
        UserWarning, match="default thresholds: rain rates in mm h-1 are expected.*kg m-2"
    ):
        rate = rain_rate_for(acc, "verify's default thresholds")
    np.testing.assert_allclose(rate.values, 5.0)
    plain = xr.DataArray([1.0], dims="x")
    assert rain_rate_for(plain, "colour levels") is plain  # no units: passed as it is
    with pytest.raises(ValueError, match="colour levels: rain rates.*period"):
        rain_rate_for(acc.drop_vars("start_time"), "colour levels")


def test_check_same_units():
    rate = xr.DataArray(0.0, attrs={"units": "mm h-1"})
    check_same_units(rate, xr.DataArray(0.0, attrs={"units": "mm/h"}))
    check_same_units(rate, xr.DataArray(0.0))
    with pytest.raises(ValueError, match="forecast is in 'mm h-1' but the observations in 'dBZ'"):
        check_same_units(rate, xr.DataArray(0.0, attrs={"units": "dBZ"}))


def test_bom_accumulations_convert_to_rain_rate(bom_cube):
    q = quantity_of(bom_cube)
    assert q.kind == "accumulation"
    rate = to_rain_rate(bom_cube.isel(time=slice(0, 2)))
    np.testing.assert_allclose(
        rate.values, bom_cube.isel(time=slice(0, 2)).values * 10.0, rtol=1e-6, equal_nan=True
    )


def test_verify_converts_accumulations_for_its_default_thresholds():
    from xnowcast.datasets import synthetic_radar

    rate = synthetic_radar(n_times=8, size=16, seed=2)
    amount = (rate / 10.0).assign_attrs(units="kg m-2", standard_name="precipitation_amount")
    amount = amount.assign_coords(start_time=("time", rate.time.values - np.timedelta64(6, "m")))
    fc = xnowcast.forecast(amount, "persistence", init_times="all", n_in=2, n_out=2)
    with pytest.warns(UserWarning, match="verify's default thresholds.*kg m-2"):
        scores = xnowcast.verify(fc, amount, ["csi"])
    fc_rate = xnowcast.forecast(
        rate.assign_attrs(units="mm h-1"), "persistence", init_times="all", n_in=2, n_out=2
    )
    expected = xnowcast.verify(fc_rate, rate, ["csi"])
    np.testing.assert_allclose(scores["csi"].values, expected["csi"].values, equal_nan=True)
    # Explicit thresholds are in the data's units: nothing is converted, no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        xnowcast.verify(fc, amount, ["csi"], thresholds=[0.1])


def test_verify_refuses_different_units_and_unconvertible_defaults():
    from xnowcast.datasets import synthetic_radar

    rate = synthetic_radar(n_times=8, size=16, seed=2).assign_attrs(units="mm h-1")
    fc = xnowcast.forecast(rate, "persistence", init_times="all", n_in=2, n_out=2)
    with pytest.raises(ValueError, match="forecast is in 'mm h-1' but the observations in 'dBZ'"):
        xnowcast.verify(fc, rate.assign_attrs(units="dBZ"), ["mse"])
    counts = rate.assign_attrs(units="1")
    fc_counts = xnowcast.forecast(counts, "persistence", init_times="all", n_in=2, n_out=2)
    with pytest.raises(
        ValueError,
        match="default thresholds: rain rates.*not a precipitation quantity.*thresholds=",
    ):
        xnowcast.verify(fc_counts, counts, ["csi"])
    assert "mse" in xnowcast.verify(fc_counts, counts, ["mse"])  # no thresholds: no conversion


def test_plot_converts_accumulations_for_its_default_levels(tmp_path):
    pytest.importorskip("matplotlib")
    from xnowcast.datasets import synthetic_radar
    from xnowcast.plotting import plot_forecast

    rate = synthetic_radar(n_times=8, size=16, seed=2)
    amount = (rate / 10.0).assign_attrs(units="kg m-2", standard_name="precipitation_amount")
    amount = amount.assign_coords(start_time=("time", rate.time.values - np.timedelta64(6, "m")))
    fc = xnowcast.forecast(amount, "persistence", n_in=2, n_out=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.warns(UserWarning, match="default colour levels.*kg m-2"):
            fig = plot_forecast(fc, obs=amount, leads=[1], features=[])
        assert "mm h-1" in fig.axes[-1].get_ylabel()
        with pytest.raises(ValueError, match="default colour levels.*period"):
            plot_forecast(fc, leads=[1], features=[])  # no observations: no period known
        plot_forecast(fc, leads=[1], features=[], levels=[0.01, 0.1, 1])  # explicit: as is


def test_rain_amount_default_threshold_is_a_rain_rate():
    from xnowcast.sequences import rain_amount

    acc = accumulation(0.05, minutes=6)  # 0.5 mm h-1: rains at the 0.1 mm h-1 default
    with pytest.warns(UserWarning, match="rain_amount's default threshold.*kg m-2"):
        fraction = rain_amount(acc)
    np.testing.assert_array_equal(fraction.values, [1.0, 1.0])
    np.testing.assert_array_equal(rain_amount(acc, threshold=0.1).values, [0.0, 0.0])
    with pytest.raises(ValueError, match="default threshold.*cube holds x in 1"):
        rain_amount(acc.rename("reflectance").assign_attrs(units="1", standard_name="x"))


def test_odim_national_layout_and_th(tmp_path):
    raw = np.array([[0, 64, 100, 255, 10]] * 4, dtype="uint8")
    path = write_odim(tmp_path / "th.h5", raw, quantity="TH", where="dataset1/where")
    cube = open_archive(str(path))
    assert cube.name == "TH" and cube.attrs["units"] == "dBZ"
    np.testing.assert_allclose(cube.values[0, 0, 1:3], [0.0, 18.0])
    np.testing.assert_allclose(cube.x.values[:2], [1001000.0, 1003000.0], atol=0.01)


def write_geotiff(path, raw, metadata=True):
    """A small EPSG:3067 GeoTIFF (250 m pixels) with FMI's GDAL metadata items (or none)."""
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    profile = dict(
        driver="GTiff",
        dtype="uint8",
        width=raw.shape[1],
        height=raw.shape[0],
        count=1,
        crs="EPSG:3067",
        transform=from_origin(300000.0, 7000000.0, 250.0, 250.0),
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(raw, 1)
        if metadata:
            dst.update_tags(
                GDAL_METADATA='<GDALMetadata><Item name="Observation time" format="YYYYMMDDhhmm">'
                '201609281445</Item><Item name="Quantity" unit="dBZ">Corrected reflectivity'
                '</Item><Item name="Gain">0.5</Item><Item name="Offset">-32</Item>'
                '<Item name="Nodata">255</Item><Item name="Undetect">0</Item></GDALMetadata>'
            )
    return path


def test_geotiff_reader_and_the_rasterio_engine(tmp_path):
    raw = np.array([[0, 64, 255], [100, 10, 64]], dtype="uint8")
    path = write_geotiff(tmp_path / "201609281445_FINUTM.tif", raw)
    cube = open_archive(str(path))
    np.testing.assert_allclose(cube.values[0], [[-32.0, 0.0, np.nan], [18.0, -27.0, 0.0]])
    assert cube.attrs["undetect"] == -32.0 and cube.time.values[0] == np.datetime64(
        "2016-09-28T14:45"
    )
    np.testing.assert_allclose(cube.x.values, [300125.0, 300375.0, 300625.0])
    assert to_rain_rate(cube).values[0, 0, 0] == 0.0  # no echo: no rain
    bare = write_geotiff(tmp_path / "201609281450_bare.tif", raw, metadata=False)
    with pytest.raises(ValueError, match="not a radar GeoTIFF.*engine='rasterio'"):
        open_archive(str(bare))
    raster = open_archive(str(bare), engine="rasterio", time="%Y%m%d%H%M")
    assert raster.dims == ("time", "y", "x") and raster["x"].attrs["units"] == "m"
    np.testing.assert_allclose(raster.lat.values, cube.lat.values, atol=1e-5)
