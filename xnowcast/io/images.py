"""Radar images (PNG, JPEG, GIF) with the time in the file name as a lazy cube.

Many radar archives are pictures: the SRI (surface rainfall intensity)
composites of a national weather service, downloaded every few minutes as
coloured PNGs, one file per scan, with the time in the file name.
:func:`open_image_sequence` turns a folder of them into a cube
``(time, y, x)`` that the rest of xnowcast accepts: lazy (one dask chunk per
image, nothing decoded until used), cropped, resized, and either grey levels
or rain rates read off the colour legend (:class:`ColorLegend`).

Pillow is imported only when images are read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xnowcast.checks import choice
from xnowcast.io.archive import check_unique_times, expand_paths, parse_time_from_name
from xnowcast.optional import import_optional

__all__ = ["IMAGE_SUFFIXES", "ColorLegend", "is_image_path", "open_image_sequence"]

_RESAMPLE = ("nearest", "bilinear", "area")

#: File name endings read as images (by :func:`is_image_path`, hence the CLI).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")


def is_image_path(pattern: str | os.PathLike | Sequence[str | os.PathLike]) -> bool:
    """Whether ``pattern`` (a path, a glob or a list of them) names image files.

    Examples
    --------
    >>> is_image_path("sri/*.png"), is_image_path("radar/*.nc"), is_image_path(["a.JPG"])
    (True, False, True)
    """
    items = [pattern] if isinstance(pattern, (str, os.PathLike)) else list(pattern)
    return bool(items) and all(os.fspath(p).lower().endswith(IMAGE_SUFFIXES) for p in items)


def _parse_colour(colour: Any) -> tuple[int, int, int]:
    if isinstance(colour, str):
        text = colour.strip().lstrip("#")
        if len(text) == 6:
            try:
                return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))
            except ValueError:
                pass
        raise ValueError(f"colour {colour!r} is not '#rrggbb' hex; give (r, g, b) or '#rrggbb'")
    rgb = tuple(np.asarray(colour).ravel().tolist())
    if len(rgb) not in (3, 4) or not all(
        isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in rgb[:3]
    ):
        raise ValueError(
            f"colour {colour!r} is not an (r, g, b) triple of integers 0..255 or '#rrggbb'"
        )
    return (int(rgb[0]), int(rgb[1]), int(rgb[2]))


@dataclass(frozen=True, eq=False)
class ColorLegend:
    """The colour legend of a radar image: colour -> rain rate.

    Every pixel's colour is compared with the legend colours by Euclidean
    distance in RGB (0..255 per channel):

    1. the nearest legend colour within ``tolerance`` gives its value;
    2. otherwise a *grey* pixel (``max(r, g, b) - min(r, g, b) <=
       grey_tolerance``: the grey background, white, black borders and
       labels) means no rain and gets ``no_rain_value`` (0);
    3. any other colour (coastlines, text in colour, unknown shades) is
       unknown and gets NaN.

    Parameters
    ----------
    colors : array-like, shape (n, 3)
        Legend colours as integers 0..255.
    values : array-like, shape (n,)
        Value of each colour (e.g. the rain rate at the middle of its legend
        class); NaN marks a colour that means "no data".
    units : str, optional
        Units of the values (``"mm/h"``), written into the cube's attributes.
    tolerance : float
        Largest RGB distance between a pixel and its legend colour (30
        absorbs JPEG artefacts and anti-aliasing without merging adjacent
        legend classes; lower it for legends with near-identical colours).
    grey_tolerance : int
        Largest channel spread of a pixel counted as grey (no rain).
    no_rain_value : float
        Value of grey pixels.

    Examples
    --------
    >>> import numpy as np
    >>> legend = ColorLegend.from_pairs([((0, 0, 255), 1.0), ("#ff0000", 10.0)], units="mm/h")
    >>> rgb = np.array([[[0, 0, 250], [255, 5, 0], [128, 128, 128], [0, 255, 0]]], np.uint8)
    >>> legend.apply(rgb)
    array([[ 1., 10.,  0., nan]], dtype=float32)
    """

    colors: np.ndarray
    values: np.ndarray
    units: str | None = None
    tolerance: float = 30.0
    grey_tolerance: int = 12
    no_rain_value: float = 0.0
    _colors_f: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        colors = np.asarray([_parse_colour(c) for c in self.colors], dtype=np.float64)
        values = np.asarray(self.values, dtype=np.float32).ravel()
        if colors.shape[0] == 0 or colors.shape[0] != values.shape[0]:
            raise ValueError(
                f"a legend needs one value per colour and at least one colour; got "
                f"{colors.shape[0]} colour(s) and {values.shape[0]} value(s)"
            )
        if not (np.isfinite(self.tolerance) and self.tolerance >= 0):
            raise ValueError(f"tolerance must be a non-negative number, got {self.tolerance!r}")
        object.__setattr__(self, "colors", colors.astype(np.uint8))
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "_colors_f", colors)

    @classmethod
    def from_pairs(
        cls,
        pairs: Iterable[tuple[Any, float]] | Mapping[Any, float],
        units: str | None = None,
        **kwargs: Any,
    ) -> ColorLegend:
        """A legend from ``(colour, value)`` pairs or a ``{colour: value}`` mapping.

        Colours are ``(r, g, b)`` tuples of integers 0..255 or ``"#rrggbb"``;
        other keyword arguments are those of :class:`ColorLegend`.
        """
        items = list(pairs.items()) if isinstance(pairs, Mapping) else list(pairs)
        try:
            colors = [c for c, _ in items]
            values = [float(v) for _, v in items]
        except (TypeError, ValueError):
            raise ValueError(
                "a colour legend is a list of (colour, value) pairs, e.g. "
                "[((0, 0, 255), 1.0), ('#ff0000', 10.0)], or a {colour: value} mapping"
            ) from None
        return cls(
            np.array([_parse_colour(c) for c in colors]), np.asarray(values), units=units, **kwargs
        )

    @classmethod
    def read(cls, path: str | os.PathLike, units: str | None = None, **kwargs: Any) -> ColorLegend:
        """A legend from a text file: one ``colour,value`` pair per line.

        A colour is ``#rrggbb`` or three integers ``r,g,b`` (so a line is
        ``#0050ff,2.0`` or ``0,80,255,2.0``); a value may be ``nan`` (a
        colour meaning "no data"). Blank lines, lines starting with ``#``
        followed by a space, and a header line (``colour,value``) are skipped. This
        is the ``--colormap`` file of ``xnowcast sequences``.

        Examples
        --------
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "legend.csv"
        >>> _ = path.write_text("colour,value\\n# light rain\\n#0050ff,2.0\\n230,0,0,20\\n")
        >>> legend = ColorLegend.read(path, units="mm/h")
        >>> legend.colors.tolist(), legend.values.tolist()
        ([[0, 80, 255], [230, 0, 0]], [2.0, 20.0])
        """
        pairs: list[tuple[Any, float]] = []
        text = Path(path).read_text()
        header_allowed = True
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("# ") or line == "#":
                continue
            fields = [f.strip() for f in line.replace(";", ",").split(",")]
            if header_allowed and fields[0].isalpha():
                header_allowed = False
                continue  # a header such as "colour,value"
            header_allowed = False
            try:
                if len(fields) == 2:
                    colour: Any = fields[0]
                elif len(fields) == 4:
                    colour = tuple(int(f) for f in fields[:3])
                else:
                    raise ValueError("expected 2 or 4 comma-separated fields")
                pairs.append((_parse_colour(colour), float(fields[-1])))
            except ValueError as err:
                raise ValueError(
                    f"{path}, line {number} ({raw.strip()!r}): {err}. Each line is "
                    "'#rrggbb,value' or 'r,g,b,value'"
                ) from None
        if not pairs:
            raise ValueError(f"{path} holds no 'colour,value' line")
        return cls.from_pairs(pairs, units=units, **kwargs)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """Values of an ``(..., 3)`` (or ``(..., 4)``, alpha ignored) RGB array.

        Returns
        -------
        numpy.ndarray
            ``float32`` array of shape ``rgb.shape[:-1]``.
        """
        rgb = np.asarray(rgb)
        if rgb.ndim < 1 or rgb.shape[-1] not in (3, 4):
            raise ValueError(f"expected an RGB array of shape (..., 3), got {rgb.shape}")
        px = rgb[..., :3].astype(np.uint32)
        codes = (px[..., 0] << 16) | (px[..., 1] << 8) | px[..., 2]
        # Images hold few distinct colours: match each distinct colour once
        # (hash-based factorize: linear in the number of pixels).
        inverse, uniq = pd.factorize(codes.ravel())
        return self._lookup(np.asarray(uniq, dtype=np.uint32))[inverse].reshape(codes.shape)

    def _lookup(self, codes: np.ndarray) -> np.ndarray:
        """Values of distinct ``0xRRGGBB`` colour codes (the legend rules)."""
        ucol = np.stack([(codes >> 16) & 255, (codes >> 8) & 255, codes & 255], axis=1)
        ucol = ucol.astype(np.int64)
        d2 = ((ucol[:, None, :] - self._colors_f[None]) ** 2).sum(-1)
        nearest = np.argmin(d2, axis=1)
        matched = np.sqrt(d2[np.arange(codes.size), nearest]) <= self.tolerance
        grey = (ucol.max(axis=1) - ucol.min(axis=1)) <= self.grey_tolerance
        return np.where(
            matched,
            self.values[nearest],
            np.where(grey, np.float32(self.no_rain_value), np.float32(np.nan)),
        ).astype(np.float32)

    def apply_palette(self, indices: np.ndarray, palette: np.ndarray) -> np.ndarray:
        """Values of a palette image: ``indices`` into ``palette`` (``(n, 3)`` RGB).

        Matches the (at most 256) palette colours instead of every pixel.
        """
        pal = np.zeros((256, 3), np.uint32)
        given = np.asarray(palette, dtype=np.uint32).reshape(-1, 3)[:256]
        pal[: len(given)] = given
        codes = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
        return self._lookup(codes)[np.asarray(indices)]


def _as_legend(colormap: Any) -> ColorLegend | None:
    if colormap is None or isinstance(colormap, ColorLegend):
        return colormap
    return ColorLegend.from_pairs(colormap)


def _check_pair(value: Any, name: str, n: int, example: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        out = tuple(int(v) for v in value)
        ok = len(out) == n and all(float(v) == int(v) for v in value)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be {n} integers {example}, got {value!r}")
    return out


def _pillow() -> Any:
    """``PIL.Image``, or the install hint of the extra that brings Pillow."""
    return import_optional("PIL.Image", "reading image folders", extra="formats")


def _read_frame(
    path: str,
    crop: tuple[int, int, int, int] | None,
    size: tuple[int, int] | None,
    legend: ColorLegend | None,
    resample: str,
    shape: tuple[int, int],
) -> np.ndarray:
    """Decode one image into a float32 ``(ny, nx)`` frame (the per-chunk kernel)."""
    Image = _pillow()

    filters = {
        "nearest": Image.Resampling.NEAREST,
        "bilinear": Image.Resampling.BILINEAR,
        "area": Image.Resampling.BOX,
    }
    try:
        with Image.open(path) as im:
            if crop is not None:
                y0, y1, x0, x1 = crop
                im = im.crop((x0, y0, x1, y1))
            if legend is None:
                frame = im.convert("L").convert("F")
            elif im.mode == "P" and im.getpalette("RGB") is not None:
                palette = np.asarray(im.getpalette("RGB"), dtype=np.uint8).reshape(-1, 3)
                frame = Image.fromarray(legend.apply_palette(np.asarray(im), palette))
            else:
                frame = Image.fromarray(legend.apply(np.asarray(im.convert("RGB"))))
            if size is not None and frame.size != (size[1], size[0]):
                frame = frame.resize((size[1], size[0]), filters[resample])
            out = np.asarray(frame, dtype=np.float32)
    except OSError as err:
        raise OSError(f"cannot read image {path}: {err}") from err
    if out.shape != shape:
        raise ValueError(
            f"image {path} gives a {out.shape[0]} x {out.shape[1]} frame, the others "
            f"{shape[0]} x {shape[1]}; pass size=(ny, nx) to resize all images to one size"
        )
    return out


def _read_block(paths: np.ndarray, **kwargs: Any) -> np.ndarray:
    return _read_frame(str(paths.item()), **kwargs)[None]


def _list_problems(problems: list[str], what: str, total: int, fix: str) -> ValueError:
    shown = "; ".join(problems[:10]) + (
        f"; ... ({len(problems) - 10} more)" if len(problems) > 10 else ""
    )
    return ValueError(f"{len(problems)} of {total} file(s) {what}: {shown}. {fix}")


def _times(files: list[str], time_format: str | Callable[[str], Any]) -> pd.DatetimeIndex:
    stamps, failures = [], []
    for path in files:
        try:
            if callable(time_format):
                stamps.append(pd.Timestamp(time_format(path)))
            else:
                stamps.append(parse_time_from_name(path, time_format))
        except (TypeError, ValueError) as err:
            failures.append(f"{os.path.basename(path)} ({err})")
    if failures:
        fmt = getattr(time_format, "__name__", time_format)
        raise _list_problems(
            failures,
            f"have no time in their name matching {fmt!r}",
            len(files),
            "Fix time_format= (a strptime format such as '%Y%m%d%H%M'; the first part of "
            "the file name matching it is used), or select only the radar images with the "
            "pattern",
        )
    return pd.DatetimeIndex(stamps).as_unit("ns")


def _header_shapes(files: list[str]) -> list[tuple[int, int]]:
    """(height, width) of every image, reading headers only."""
    Image = _pillow()

    shapes, failures = [], []
    for path in files:
        try:
            with Image.open(path) as im:
                shapes.append((im.size[1], im.size[0]))
        except (OSError, Image.UnidentifiedImageError, ValueError) as err:
            failures.append(f"{path} ({type(err).__name__}: {err})")
    if failures:
        raise _list_problems(
            failures,
            "could not be read as images",
            len(files),
            "Remove or re-download them, or narrow the pattern",
        )
    return shapes


def open_image_sequence(
    pattern: str | os.PathLike | Sequence[str | os.PathLike],
    time_format: str | Callable[[str], Any] = "%Y%m%d%H%M",
    crop: Sequence[int] | None = None,
    size: Sequence[int] | None = None,
    colormap: ColorLegend | Sequence[tuple[Any, float]] | Mapping[Any, float] | None = None,
    *,
    resample: str | None = None,
    units: str | None = None,
    name: str | None = None,
    check: bool = True,
) -> xr.DataArray:
    """Open radar images with the time in their names as a lazy cube.

    Each file is one frame. Per frame, lazily: read (Pillow; PNG, JPEG, GIF
    and anything else Pillow reads; the first frame of an animated GIF),
    ``crop``, convert (grey levels, or rain rate through ``colormap``), then
    resize to ``size``.

    Parameters
    ----------
    pattern : str, path or list of paths
        A glob pattern (``"sri/*.png"``) or a list of files.
    time_format : str or callable
        ``strptime`` format of the time in the file names. The **first**
        substring of the file's base name (not its folders) that matches the
        format's shape is parsed: each ``%Y`` stands for 4 digits, ``%m``,
        ``%d``, ``%H``, ``%M``, ``%S``, ``%y`` for 2, ``%j`` for 3, other
        characters for themselves; so ``"%Y%m%d%H%M"`` reads ``202106011230``
        in ``sri_202106011230.png``. Or a function ``path -> datetime``.
        Times are taken as written (usually UTC); no time zone is attached.
    crop : (y0, y1, x0, x1), optional
        Pixel rows ``y0:y1`` and columns ``x0:x1`` of the original image
        (Python slice convention, row 0 at the top), cut before anything else
        (use it to drop the legend, title and borders).
    size : (ny, nx), optional
        Resize the (cropped) frame to ``ny`` rows and ``nx`` columns. Without
        it, every image (after the crop) must have the same size.
    colormap : ColorLegend, list of (colour, value) pairs or mapping, optional
        Read rain rates off the colours (see :class:`ColorLegend`: nearest
        legend colour within a tolerance, grey -> 0, unknown -> NaN). Without
        it the frame is the grey level (ITU-R 601 luma ``0.299 R + 0.587 G +
        0.114 B``, 0..255), not a rain rate.
    resample : {"nearest", "bilinear", "area"}, optional
        Resize interpolation. Default ``"bilinear"`` for grey levels
        (intensities; Pillow widens the filter when shrinking, so it also
        averages) and ``"nearest"`` with a colormap (legend values are
        classes: no invented in-between rates, and NaN does not spread).
        ``"area"`` averages the source pixels under each output pixel.
    units : str, optional
        Units of the values; default those of the ``ColorLegend``.
    name : str, optional
        Name of the DataArray (default ``"rain_rate"`` with a colormap,
        ``"grey_level"`` without).
    check : bool
        Read every image header first, to report unreadable files and
        mismatched sizes before anything is computed (fast: pixels are not
        decoded). With ``False`` only the first image is read and problems
        surface when frames are computed (the error names the file).

    Returns
    -------
    DataArray
        ``float32`` cube ``(time, y, x)`` sorted by time, backed by dask with
        one chunk per image. ``y``/``x`` are the centres of the output pixels
        in pixel coordinates of the original image. ``attrs`` hold
        ``source``, ``units`` (when known) and the processing steps.

    Raises
    ------
    FileNotFoundError
        Nothing matches ``pattern``.
    ValueError
        File names without a time, duplicate times, unreadable images, a crop
        outside an image, images of different sizes without ``size``; every
        message lists the files.

    Examples
    --------
    Two scans, grey background with a blue (2 mm/h) patch:

    >>> import tempfile, numpy as np
    >>> from PIL import Image
    >>> folder = tempfile.mkdtemp()
    >>> for minute in (0, 10):
    ...     rgb = np.full((20, 30, 3), 128, np.uint8)
    ...     rgb[4:12, 6:12] = (0, 0, 255)
    ...     Image.fromarray(rgb).save(f"{folder}/sri_2021060112{minute:02d}.png")
    >>> cube = open_image_sequence(f"{folder}/*.png", time_format="%Y%m%d%H%M",
    ...                            size=(10, 15), colormap=[((0, 0, 255), 2.0)], units="mm/h")
    >>> dict(cube.sizes), float(cube.max()), cube.attrs["units"]
    ({'time': 2, 'y': 10, 'x': 15}, 2.0, 'mm/h')
    >>> str(cube.time.values[-1])[:16]
    '2021-06-01T12:10'

    A real SRI archive: cut off the legend and title, read the legend:

    >>> cube = open_image_sequence("sri/*.png", time_format="%Y%m%d%H%M",
    ...                            crop=(40, 552, 20, 532), size=(128, 128),
    ...                            colormap=ColorLegend.from_pairs(
    ...                                [("#00c8ff", 0.5), ("#0050ff", 2.0), ("#ff0000", 20.0)],
    ...                                units="mm/h"))  # doctest: +SKIP
    """
    crop = _check_pair(crop, "crop", 4, "(y0, y1, x0, x1)")
    size = _check_pair(size, "size", 2, "(ny, nx)")
    if crop is not None and not (0 <= crop[0] < crop[1] and 0 <= crop[2] < crop[3]):
        raise ValueError(f"crop=(y0, y1, x0, x1) needs 0 <= y0 < y1 and 0 <= x0 < x1, got {crop}")
    if size is not None and min(size) < 1:
        raise ValueError(f"size=(ny, nx) must be positive, got {size}")
    legend = _as_legend(colormap)
    if resample is None:
        resample = "bilinear" if legend is None else "nearest"
    resample = choice(resample, "resample", _RESAMPLE)

    files = expand_paths(pattern)
    times = _times(files, time_format)
    check_unique_times(
        xr.DataArray(np.zeros(len(times)), dims="time", coords={"time": times}), np.array(files)
    )
    order = np.argsort(times.values, kind="stable")
    files = [files[i] for i in order]
    times = times[order]

    shapes = _header_shapes(files if check else files[:1])
    if crop is not None:
        outside = [
            f"{p} ({h} x {w})" for p, (h, w) in zip(files, shapes) if crop[1] > h or crop[3] > w
        ]
        if outside:
            raise _list_problems(
                outside,
                f"are smaller than crop={crop}",
                len(shapes),
                "crop=(y0, y1, x0, x1) must lie inside every image",
            )
        shapes = [(crop[1] - crop[0], crop[3] - crop[2])] * len(shapes)
    src_h, src_w = shapes[0]
    if size is None:
        different = [f"{p} ({h} x {w})" for p, (h, w) in zip(files, shapes) if (h, w) != shapes[0]]
        if different:
            raise _list_problems(
                different,
                f"differ in size from {os.path.basename(files[0])} ({src_h} x {src_w})",
                len(shapes),
                "Pass size=(ny, nx) to resize all images to one size",
            )
        ny, nx = src_h, src_w
    else:
        ny, nx = size

    import dask.array as da

    paths = da.from_array(np.array(files, dtype=object).reshape(-1, 1, 1), chunks=1)
    data = da.map_blocks(
        _read_block,
        paths,
        chunks=((1,) * len(files), (ny,), (nx,)),
        dtype=np.float32,
        meta=np.empty((0, 0, 0), np.float32),
        crop=crop,
        size=size,
        legend=legend,
        resample=resample,
        shape=(ny, nx),
    )
    y0, x0 = (crop[0], crop[2]) if crop is not None else (0, 0)
    y = y0 + (np.arange(ny) + 0.5) * (src_h / ny) - 0.5
    x = x0 + (np.arange(nx) + 0.5) * (src_w / nx) - 0.5
    units = units if units is not None else (legend.units if legend is not None else None)
    steps = [
        f"crop={crop}" if crop else None,
        "colour legend -> value" if legend is not None else "grey level (ITU-R 601 luma)",
        f"resize to {size} ({resample})" if size else None,
    ]
    attrs = {
        "source": (
            os.fspath(pattern)
            if isinstance(pattern, (str, os.PathLike))
            else f"{len(files)} files, e.g. {os.path.basename(files[0])}"
        ),
        "long_name": "rain rate from the colour legend"
        if legend is not None
        else "grey level (0-255)",
        "xnowcast_image_processing": "; ".join(s for s in steps if s),
    }
    if units:
        attrs["units"] = units
    return xr.DataArray(
        data,
        dims=("time", "y", "x"),
        coords={
            "time": (
                "time",
                times.values,
                {"standard_name": "time", "long_name": "time parsed from the file name"},
            ),
            "y": ("y", y, {"long_name": "image row (pixel centre, source image rows)"}),
            "x": ("x", x, {"long_name": "image column (pixel centre, source image columns)"}),
        },
        name=name or ("rain_rate" if legend is not None else "grey_level"),
        attrs=attrs,
    )
