"""Training samples from xarray cubes, read window by window.

:class:`WindowDataset` is a :class:`torch.utils.data.Dataset` over the lazy
windows of one or more cubes (:func:`xnowcast.windows.windows`): it never
loads a whole archive. Each sample reads the ``n_in + n_out`` frames of its
window (through a small per-process cache of frames, since neighbouring
windows share most of their frames), cuts a random crop, transforms it to the
network's space, replaces missing data by the transformed zero-rain value and
returns a loss mask that is 0 where the target was missing.

Samples are addressed as ``(epoch, index)`` by :class:`EpochSampler`, so crops
and flips depend only on ``(seed, epoch, index)``: the same whatever the number
of DataLoader workers or processes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch.utils.data import DataLoader, Dataset, Sampler

from xnowcast.checks import integer, positive_int
from xnowcast.transforms import Transform, get_transform
from xnowcast.windows import Windows, windows

__all__ = ["EpochSampler", "WindowDataset", "as_cube_list", "make_loader"]


def as_cube_list(cubes: Any, what: str = "train") -> list:
    """A list of cubes from one cube or a list/tuple of them."""
    if isinstance(cubes, (xr.DataArray, xr.Dataset)):
        return [cubes]
    if isinstance(cubes, Sequence) and not isinstance(cubes, str) and cubes:
        bad = [type(c).__name__ for c in cubes if not isinstance(c, (xr.DataArray, xr.Dataset))]
        if bad:
            raise TypeError(f"{what} must hold xarray cubes, got {', '.join(sorted(set(bad)))}")
        return list(cubes)
    raise TypeError(
        f"{what} must be a cube (xarray DataArray/Dataset with dims time, y, x) or a non-empty "
        f"list of cubes, got {type(cubes).__name__}"
    )


class WindowDataset(Dataset):
    """Input/target samples cut from the windows of one or more cubes.

    Parameters
    ----------
    cubes : DataArray, Dataset or list of them
        Rain cubes ``(time, y, x)`` in physical units, in memory, dask-backed
        or lazily opened from files. Windows never span time gaps or
        ``sequence_id`` changes.
    n_in, n_out : int
        Input and target frames per sample.
    transform : str, dict or Transform
        Intensity transform to the network's space (``"log"``, ``"dbr"``, ...).
    crop : int, optional
        Side of the square crop cut from each window; ``None`` for the whole
        grid (then all cubes need the same grid).
    target_crop : int, optional
        Keep only the central ``target_crop`` pixels of the targets (the
        satellite contest predicted the centre 64 of 128-pixel inputs); the
        trainer compares them with the centre of the forecast.
    stride : int
        Frames between the starts of consecutive windows.
    random_crop : bool
        Random crop position (training) or the centre (validation).
    flips : bool
        Random vertical and horizontal flips (augmentation).
    min_wet_fraction : float
        Redraw a crop (up to 10 times) while fewer than this fraction of the
        pixels of its last input frame have at least ``wet_threshold`` rain;
        keeps dry crops of mostly dry archives from dominating training.
    wet_threshold : float
        Rain rate (cube units) counted as wet.
    cache_mb : float
        Size of the per-process cache of frames.
    seed : int
        Seed of crops and flips.
    var : str, optional
        Variable of Dataset cubes.

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> ds = WindowDataset(synthetic_radar(n_times=12, size=48), n_in=4, n_out=2, crop=32)
    >>> len(ds)
    7
    >>> x, y, mask = ds[0]
    >>> tuple(x.shape), tuple(y.shape), tuple(mask.shape)
    ((4, 32, 32), (2, 32, 32), (2, 32, 32))
    """

    def __init__(
        self,
        cubes: Any,
        n_in: int = 12,
        n_out: int = 24,
        *,
        transform: str | dict | Transform | None = "log",
        crop: int | None = None,
        target_crop: int | None = None,
        stride: int = 1,
        random_crop: bool = True,
        flips: bool = False,
        min_wet_fraction: float = 0.0,
        wet_threshold: float = 0.1,
        cache_mb: float = 256.0,
        seed: int = 0,
        var: str | None = None,
    ) -> None:
        cube_list = as_cube_list(cubes)
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.windows: list[Windows] = [
            windows(c, self.n_in, self.n_out, stride, var=var) for c in cube_list
        ]
        self.index = np.array(
            [(k, s) for k, w in enumerate(self.windows) for s in w.starts], dtype=np.int64
        ).reshape(-1, 2)
        if len(self.index) == 0:
            lengths = ", ".join(str(w.cube.shape[0]) for w in self.windows)
            raise ValueError(
                f"no gap-free window of {self.n_in}+{self.n_out} frames in the cube(s) "
                f"(frames: {lengths}); give longer cubes or smaller n_in/n_out"
            )
        self.transform = get_transform(transform)
        self.fill = float(np.asarray(self.transform.forward(np.zeros(1, np.float32)))[0])
        shapes = {tuple(w.cube.shape[1:]) for w in self.windows}
        smallest = min(min(s) for s in shapes)
        if crop is None:
            if len(shapes) > 1:
                raise ValueError(
                    f"the cubes have different grids {sorted(shapes)}; set crop= (pixels) to "
                    "train on square crops of them"
                )
        elif positive_int(crop, "crop (pixels)") > smallest:
            raise ValueError(
                f"crop={crop} is larger than the smallest grid ({smallest} pixels); use a crop of "
                f"at most {smallest}"
            )
        self.crop = None if crop is None else int(crop)
        side = self.crop if self.crop is not None else smallest
        if target_crop is not None:
            integer(target_crop, "target_crop", low=1)
            if not 1 <= target_crop <= side:
                raise ValueError(
                    f"target_crop must be between 1 and the crop ({side}), got {target_crop}"
                )
        self.target_crop = None if target_crop is None else int(target_crop)
        self.random_crop = bool(random_crop)
        self.flips = bool(flips)
        if not 0 <= min_wet_fraction <= 1:
            raise ValueError(f"min_wet_fraction must be in [0, 1], got {min_wet_fraction!r}")
        self.min_wet_fraction = float(min_wet_fraction)
        self.wet_threshold = float(wet_threshold)
        largest = max(h * w for h, w in shapes)
        self._cache_frames = max(self.n_in + self.n_out, int(cache_mb * 2**20 // (4 * largest)))
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self.seed = int(seed)

    @classmethod
    def from_windows(cls, wins: Windows, **kwargs: Any) -> WindowDataset:
        """The samples of the windows ``wins`` (:func:`xnowcast.windows.windows`).

        Same windows (cube, ``n_in``, ``n_out``, ``stride``); ``kwargs`` are
        the other options of :class:`WindowDataset` (``transform``, ``crop``,
        ...). ``cube.nowcast.windows(...).torch(...)`` calls it.

        Examples
        --------
        >>> from xnowcast.datasets import synthetic_radar
        >>> from xnowcast.windows import windows
        >>> wins = windows(synthetic_radar(n_times=12, size=16), n_in=4, n_out=2, stride=2)
        >>> ds = WindowDataset.from_windows(wins, transform=None)
        >>> len(ds) == len(wins), ds.transform.name
        (True, 'identity')
        """
        if not isinstance(wins, Windows):
            raise TypeError(
                f"from_windows takes the Windows of xnowcast.windows.windows (or "
                f"cube.nowcast.windows), got {type(wins).__name__}; pass a cube to WindowDataset"
            )
        taken = {"cubes", "n_in", "n_out", "stride", "var"} & set(kwargs)
        if taken:
            raise TypeError(
                f"{', '.join(sorted(taken))} come from the windows; cut other windows "
                "(cube.nowcast.windows(n_in, n_out, stride)) to change them"
            )
        return cls(wins.cube, wins.n_in, wins.n_out, stride=wins.stride, **kwargs)

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self.index)

    def _load(self, k: int, start: int, n: int) -> np.ndarray:
        """Frames ``start .. start + n`` of cube ``k`` as ``(n, H, W)`` float32, via the cache."""
        missing = [t for t in range(start, start + n) if (k, t) not in self._cache]
        if missing:
            w = self.windows[k]
            lo, hi = missing[0], missing[-1] + 1
            block = w.cube.isel({w.info.time_dim: slice(lo, hi)}).values
            block = np.asarray(block, dtype=np.float32)
            for t in missing:
                self._cache[(k, t)] = block[t - lo]
        frames = []
        for t in range(start, start + n):
            self._cache.move_to_end((k, t))
            frames.append(self._cache[(k, t)])
        while len(self._cache) > self._cache_frames:
            self._cache.popitem(last=False)
        return np.stack(frames)

    def _crop_origin(self, rng: np.random.Generator, shape: tuple[int, int]) -> tuple[int, int]:
        hgt, wid = shape
        if self.crop is None:
            return 0, 0
        if not self.random_crop:
            return (hgt - self.crop) // 2, (wid - self.crop) // 2
        return int(rng.integers(0, hgt - self.crop + 1)), int(rng.integers(0, wid - self.crop + 1))

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, ...]:
        epoch, i = key if isinstance(key, tuple) else (0, key)
        k, start = (int(v) for v in self.index[i])
        rng = np.random.default_rng([self.seed, int(epoch), int(i)])
        frames = self._load(k, start, self.n_in + self.n_out)
        c = self.crop
        for _ in range(10):
            y0, x0 = self._crop_origin(rng, frames.shape[-2:])
            if c is not None:
                sample = frames[:, y0 : y0 + c, x0 : x0 + c]
            else:
                sample = frames
            if self.min_wet_fraction <= 0 or not self.random_crop:
                break
            last = sample[self.n_in - 1]
            with np.errstate(invalid="ignore"):
                wet = float(np.mean(last >= self.wet_threshold))
            if wet >= self.min_wet_fraction:
                break
        if self.flips:
            if rng.random() < 0.5:
                sample = sample[:, ::-1]
            if rng.random() < 0.5:
                sample = sample[:, :, ::-1]
        sample = np.asarray(self.transform.forward(np.ascontiguousarray(sample)), dtype=np.float32)
        valid = np.isfinite(sample)
        sample[~valid] = self.fill
        inputs = sample[: self.n_in]
        targets = sample[self.n_in :]
        mask = valid[self.n_in :].astype(np.float32)
        if self.target_crop is not None:
            targets, mask = (centre_crop(a, self.target_crop) for a in (targets, mask))
        return (
            torch.from_numpy(np.ascontiguousarray(inputs)),
            torch.from_numpy(np.ascontiguousarray(targets)),
            torch.from_numpy(np.ascontiguousarray(mask)),
        )

    # ------------------------------------------------------------------ description
    def summary(self) -> dict[str, Any]:
        """JSON-able description of the training data (recorded in checkpoints)."""
        cubes = []
        for w in self.windows:
            times = pd.DatetimeIndex(w.cube[w.info.time_dim].values)
            cubes.append(
                {
                    "name": None if w.cube.name is None else str(w.cube.name),
                    "units": str(w.cube.attrs.get("units", "")),
                    "source": str(w.cube.attrs.get("title", w.cube.attrs.get("source", ""))),
                    "shape": [int(s) for s in w.cube.shape],
                    "time_start": str(times[0]),
                    "time_end": str(times[-1]),
                    "time_step": pd.Timedelta(w.info.step).isoformat(),
                    "n_windows": len(w),
                }
            )
        return {
            "n_windows": len(self),
            "crop": self.crop,
            "target_crop": self.target_crop,
            "flips": self.flips,
            "cubes": cubes,
        }

    @property
    def time_step(self) -> str | None:
        """The common time step of the cubes (ISO 8601), ``None`` when they differ."""
        steps = {pd.Timedelta(w.info.step) for w in self.windows}
        return steps.pop().isoformat() if len(steps) == 1 else None


def centre_crop(a: np.ndarray | torch.Tensor, size: int):
    """The central ``size x size`` pixels of the last two axes."""
    hgt, wid = a.shape[-2:]
    y0, x0 = (hgt - size) // 2, (wid - size) // 2
    return a[..., y0 : y0 + size, x0 : x0 + size]


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` keys: a seeded shuffle per epoch, split over processes.

    Parameters
    ----------
    n : int
        Number of samples.
    shuffle : bool
        Shuffle (seeded by ``seed + epoch``) or keep order.
    seed : int
        Seed of the shuffle.
    rank, world_size : int
        This process and the number of processes (distributed training):
        each gets every ``world_size``-th sample of the shuffled order (padded
        by repetition so that all get the same number).
    limit : int, optional
        Samples per epoch and process (short epochs on large archives).
    """

    def __init__(
        self,
        n: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        limit: int | None = None,
    ) -> None:
        self.n, self.shuffle, self.seed = int(n), bool(shuffle), int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.limit = limit
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _order(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        total = -(-self.n // self.world_size) * self.world_size
        order = (order * (total // max(self.n, 1) + 1))[:total]
        mine = order[self.rank :: self.world_size]
        return mine[: self.limit] if self.limit else mine

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for i in self._order():
            yield (self.epoch, i)

    def __len__(self) -> int:
        per = -(-self.n // self.world_size)
        return min(per, self.limit) if self.limit else per


def _worker_init(_: int) -> None:
    """Set up a DataLoader worker process.

    A forked worker inherits dask's thread pool without its threads (a read of a
    dask-backed cube would wait forever): read synchronously instead, the
    workers themselves being the parallelism.
    """
    import dask

    dask.config.set(scheduler="synchronous")
    torch.set_num_threads(1)


def make_loader(
    dataset: WindowDataset,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
    pin_memory: bool = False,
    rank: int = 0,
    world_size: int = 1,
    limit: int | None = None,
) -> DataLoader:
    """A DataLoader over ``dataset`` driven by an :class:`EpochSampler`.

    Workers (``num_workers > 0``) read and crop in parallel and stay alive
    across epochs; ``pin_memory`` speeds up copies to a GPU. Call
    ``loader.sampler.set_epoch(epoch)`` before each epoch.
    """
    sampler = EpochSampler(
        len(dataset), shuffle=shuffle, seed=seed, rank=rank, world_size=world_size, limit=limit
    )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        worker_init_fn=_worker_init if num_workers > 0 else None,
        prefetch_factor=4 if num_workers > 0 else None,
        drop_last=False,
    )
