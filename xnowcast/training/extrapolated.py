"""Training samples of advection-informed networks: extrapolation, last frames, targets.

:class:`ExtrapolatedDataset` feeds ``advection-unet``
(:mod:`xnowcast.models.neural.advection`). For each window it makes the
optical-flow extrapolation of the model on the *whole grid* (as a forecast
does: motion and the cascade see the whole domain, not a crop), once, and
keeps it with the last input frames and the targets in the network's space
(float16, on disk: a memory map per window, so an archive of windows does not
fill the memory). Samples are then random crops (and flips) of these stored
windows: ``(inputs, targets, mask)`` with ``inputs`` the transformed
extrapolation of every lead time followed by the last ``frames`` frames.

With ``cache_dir`` the stored windows are kept between runs and shared by
datasets over the same data (e.g. the folds of a leave-one-event-out
evaluation); they are keyed by a digest of the window's frames, the
extrapolation's parameters and its forecast of a fixed probe
(:func:`behaviour_digest`), so that a new xnowcast whose extrapolation gives
other values with the same parameters does not reuse stale windows.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from xnowcast.checks import positive_int, real
from xnowcast.models.neural.advection import AdvectionModel
from xnowcast.training.dataset import as_cube_list
from xnowcast.windows import Windows, windows

__all__ = ["ExtrapolatedDataset", "behaviour_digest"]


class ExtrapolatedDataset(Dataset):
    """``(extrapolation + last frames, targets, mask)`` crops of the windows of cubes.

    Parameters
    ----------
    cubes : DataArray, Dataset or list of them
        Rain cubes ``(time, y, x)`` in physical units.
    model : AdvectionModel
        The model whose extrapolation and transform the samples use (its
        network's weights do not matter).
    crop : int, optional
        Side of the square crops; ``None``: whole grids (same grid for all cubes).
    stride : int
        Frames between the starts of consecutive windows.
    random_crop : bool
        Random crop position (training), or (validation) the crop with the
        most rain of at least ``wet_threshold`` in the last input frame: a
        fixed centre crop of a radar composite often falls outside coverage.
    flips : bool
        Random vertical and horizontal flips.
    min_wet_fraction, wet_threshold : float
        Redraw a crop (up to 10 times) while fewer than ``min_wet_fraction``
        of the pixels of its last input frame have ``wet_threshold`` rain.
    seed : int
        Seed of crops and flips (a sample depends on ``(seed, epoch, index)``).
    var : str, optional
        Variable of Dataset cubes.
    cache_dir : str or path, optional
        Folder that keeps the stored windows between runs (default: a
        temporary folder removed with the dataset).
    starts : list of sequence of int, optional
        Per cube, the window starts to use (e.g. a training or validation
        part); default: all.

    Examples
    --------
    >>> from xnowcast import get_model
    >>> from xnowcast.datasets import synthetic_radar
    >>> model = get_model("advection-unet", weights=None, n_in=4, n_out=2, frames=2,
    ...                   depth=1, filters=4)
    >>> ds = ExtrapolatedDataset(synthetic_radar(n_times=8, size=32), model, crop=16)
    >>> x, y, mask = ds[0]
    >>> len(ds), tuple(x.shape), tuple(y.shape)
    (3, (4, 16, 16), (2, 16, 16))
    """

    def __init__(
        self,
        cubes: Any,
        model: AdvectionModel,
        *,
        crop: int | None = None,
        stride: int = 1,
        random_crop: bool = True,
        flips: bool = False,
        min_wet_fraction: float = 0.0,
        wet_threshold: float = 0.1,
        seed: int = 0,
        var: str | None = None,
        cache_dir: str | Path | None = None,
        starts: list | None = None,
    ) -> None:
        if not isinstance(model, AdvectionModel):
            raise TypeError(f"model must be an AdvectionModel, got {type(model).__name__}")
        self.model = model
        self.n_in, self.n_out, self.frames = model.n_in, model.n_out, model.frames
        cube_list = as_cube_list(cubes)
        stride = positive_int(stride, "stride")
        self.windows: list[Windows] = [
            windows(c, self.n_in, self.n_out, stride, var=var) for c in cube_list
        ]
        chosen = starts if starts is not None else [w.starts for w in self.windows]
        if len(chosen) != len(self.windows):
            raise ValueError(
                f"starts needs one list per cube ({len(self.windows)}), got {len(chosen)}"
            )
        self.index = np.array(
            [
                (k, int(np.flatnonzero(w.starts == s)[0]))
                for k, (w, mine) in enumerate(zip(self.windows, chosen))
                for s in mine
                if s in set(w.starts.tolist())
            ],
            dtype=np.int64,
        ).reshape(-1, 2)
        if len(self.index) == 0:
            raise ValueError(
                f"no gap-free window of {self.n_in}+{self.n_out} frames in the cube(s); give "
                "longer cubes or smaller n_in/n_out"
            )
        shapes = {tuple(w.cube.shape[1:]) for w in self.windows}
        smallest = min(min(s) for s in shapes)
        if crop is None and len(shapes) > 1:
            raise ValueError(f"the cubes have different grids {sorted(shapes)}; set crop=")
        if crop is not None and positive_int(crop, "crop (pixels)") > smallest:
            raise ValueError(f"crop={crop} is larger than the smallest grid ({smallest} pixels)")
        self.crop = None if crop is None else int(crop)
        self.random_crop, self.flips = bool(random_crop), bool(flips)
        self.min_wet_fraction = real(min_wet_fraction, "min_wet_fraction", low=0, high=1)
        self.wet_threshold = float(wet_threshold)
        self.seed = int(seed)
        self.fill = float(np.asarray(model.transform.forward(np.zeros(1, np.float32)))[0])
        self._wet = float(
            np.asarray(model.transform.forward(np.array([self.wet_threshold], np.float32)))[0]
        )
        if cache_dir is None:
            folder = Path(tempfile.mkdtemp(prefix="xnowcast-extrapolated-"))
            weakref.finalize(self, shutil.rmtree, folder, True)
        else:
            folder = Path(cache_dir)
            folder.mkdir(parents=True, exist_ok=True)
        self.cache_dir = folder
        self._params = json.dumps(
            {
                "extrapolation": model.extrapolator.get_params(),
                "transform": model.transform.to_dict(),
                "frames": self.frames,
                "behaviour": behaviour_digest(model.extrapolator, self.n_in),
            },
            sort_keys=True,
            default=str,
        )
        self._stored: dict[tuple[int, int], np.ndarray] = {}
        self._wettest = (0, 0)

    def __len__(self) -> int:
        return len(self.index)

    def stored(self, k: int, j: int) -> np.ndarray:
        """Window ``j`` of cube ``k`` as ``(n_out + frames + n_out, y, x)`` float16 (a memory map).

        The transformed extrapolation, last frames and targets, NaN where
        missing; computed on first use.
        """
        key = (int(k), int(j))
        if key in self._stored:
            return self._stored[key]
        window = self.windows[k][j]
        inputs = np.asarray(window.inputs.values, dtype=np.float32)
        targets = np.asarray(window.targets.values, dtype=np.float32)
        digest = hashlib.sha256(self._params.encode())
        digest.update(np.ascontiguousarray(inputs).tobytes())
        digest.update(np.ascontiguousarray(targets).tobytes())
        path = self.cache_dir / f"{digest.hexdigest()[:32]}.npy"
        if not path.is_file():
            extrapolated = self.model.extrapolator.predict(inputs[None])[0]
            stack = np.concatenate([extrapolated, inputs[-self.frames :], targets])
            with np.errstate(invalid="ignore"):
                values = np.asarray(self.model.transform.forward(stack), dtype=np.float16)
            tmp = path.with_suffix(f".{np.random.default_rng().integers(1 << 30)}.tmp.npy")
            np.save(tmp, values)
            tmp.replace(path)
        array = np.load(path, mmap_mode="r")
        self._stored[key] = array
        return array

    def prepare(self) -> None:
        """Compute (or find in ``cache_dir``) the extrapolation of every window now.

        :class:`~xnowcast.Trainer` calls it before its time budget starts.
        """
        for k, j in self.index:
            self.stored(int(k), int(j))

    def _origin(self, rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[int, int]:
        hgt, wid = shape[-2:]
        if self.crop is None:
            return 0, 0
        if not self.random_crop:
            return self._wettest
        return int(rng.integers(0, hgt - self.crop + 1)), int(rng.integers(0, wid - self.crop + 1))

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, ...]:
        epoch, i = key if isinstance(key, tuple) else (0, key)
        k, j = (int(v) for v in self.index[i])
        rng = np.random.default_rng([self.seed, int(epoch), int(i), 17])
        array = self.stored(k, j)
        c = self.crop
        last = self.n_out + self.frames - 1
        if c is not None and not self.random_crop:
            self._wettest = _wettest_crop(np.asarray(array[last], np.float32) >= self._wet, c)
        for _ in range(10):
            y0, x0 = self._origin(rng, array.shape)
            sample = array if c is None else array[:, y0 : y0 + c, x0 : x0 + c]
            if self.min_wet_fraction <= 0 or not self.random_crop:
                break
            with np.errstate(invalid="ignore"):
                wet = float(np.mean(np.asarray(sample[last], np.float32) >= self._wet))
            if wet >= self.min_wet_fraction:
                break
        sample = np.array(sample, dtype=np.float32)
        if self.flips:
            if rng.random() < 0.5:
                sample = sample[:, ::-1]
            if rng.random() < 0.5:
                sample = sample[:, :, ::-1]
        valid = np.isfinite(sample)
        sample = np.where(valid, sample, np.float32(self.fill))
        n_x = self.n_out + self.frames
        mask = (valid[n_x:] & valid[: self.n_out]).astype(np.float32)
        return (
            torch.from_numpy(np.ascontiguousarray(sample[:n_x])),
            torch.from_numpy(np.ascontiguousarray(sample[n_x:])),
            torch.from_numpy(np.ascontiguousarray(mask)),
        )

    def summary(self) -> dict[str, Any]:
        """JSON-able description of the samples (recorded in checkpoints)."""
        cubes = []
        for k, w in enumerate(self.windows):
            times = pd.DatetimeIndex(w.cube[w.info.time_dim].values)
            used = self.index[self.index[:, 0] == k, 1]
            cubes.append(
                {
                    "name": None if w.cube.name is None else str(w.cube.name),
                    "units": str(w.cube.attrs.get("units", "")),
                    "shape": [int(s) for s in w.cube.shape],
                    "time_start": str(times[0]),
                    "time_end": str(times[-1]),
                    "time_step": pd.Timedelta(w.info.step).isoformat(),
                    "n_windows": len(used),
                    "init_times": [str(t) for t in w.init_times[used]],
                }
            )
        return {
            "n_windows": len(self),
            "crop": self.crop,
            "flips": self.flips,
            "inputs": f"optical-flow extrapolation ({self.n_out} leads) + last {self.frames} frames",
            "cubes": cubes,
        }

    @property
    def time_step(self) -> str | None:
        """The common time step of the cubes (ISO 8601), ``None`` when they differ."""
        steps = {pd.Timedelta(w.info.step) for w in self.windows}
        return steps.pop().isoformat() if len(steps) == 1 else None


def _wettest_crop(wet: np.ndarray, crop: int) -> tuple[int, int]:
    """Origin of the ``crop x crop`` square holding the most ``True`` pixels of ``wet``.

    Examples
    --------
    >>> wet = np.zeros((6, 6), bool); wet[4:, 3:5] = True
    >>> _wettest_crop(wet, 2)
    (4, 3)
    """
    table = np.pad(wet.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = table[crop:, crop:] - table[:-crop, crop:] - table[crop:, :-crop] + table[:-crop, :-crop]
    y0, x0 = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(y0), int(x0)


def behaviour_digest(extrapolator: Any, n_in: int) -> str:
    """Digest of ``extrapolator``'s forecast of a fixed synthetic probe.

    Two extrapolators with the same ``get_params()`` whose code gives other
    values (a new motion or cascade default) have different digests; the
    forecast is rounded to 1e-3 so that float rounding does not.

    Parameters
    ----------
    extrapolator : Model
        Anything with ``predict((batch, n_in, y, x)) -> (batch, n_out, y, x)``.
    n_in : int
        Input frames it takes.

    Returns
    -------
    str
        16 hexadecimal digits.

    Examples
    --------
    >>> from xnowcast import get_model
    >>> a, b = (get_model("optical-flow", n_in=3, n_out=2) for _ in range(2))
    >>> behaviour_digest(a, 3) == behaviour_digest(b, 3)
    True
    >>> c = get_model("optical-flow", n_in=3, n_out=2, extrapolation="advection")
    >>> behaviour_digest(a, 3) == behaviour_digest(c, 3)
    False
    """
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    frames = np.stack(
        [
            20.0 * np.exp(-((xx - 20 - 1.5 * t) ** 2 + (yy - 28 - 0.75 * t) ** 2) / 60.0)
            + 6.0 * np.exp(-((xx - 40 - 1.5 * t) ** 2 + (yy - 36 - 0.75 * t) ** 2) / 25.0)
            for t in range(int(n_in))
        ]
    ).astype(np.float32)
    forecast = np.asarray(extrapolator.predict(frames[None]), dtype=np.float64)
    rounded = np.round(np.nan_to_num(forecast, nan=-1.0), 3)
    return hashlib.sha256(rounded.tobytes()).hexdigest()[:16]
