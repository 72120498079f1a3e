"""The torch path of the extrapolation: the same arithmetic as the numba kernels, on a GPU.

:func:`xnowcast.extrapolation.extrapolate` and
:func:`~xnowcast.extrapolation.cascade.extrapolate_cascade` take ``device=``;
given one, the work of every lead time runs here through torch instead of the
compiled CPU kernels:

* :func:`advect_leads`: the coarse trajectory displacement interpolated to
  every pixel, the source sampled at the trajectory start (bilinear and
  nearest with the kernels' own float32 arithmetic, cubic through
  :func:`torch.nn.functional.grid_sample`), the missing-data mask carried
  along, ``fill`` outside the domain;
* :func:`lagrangian_forecast`: the cascade's spectral filter of every lead time
  (:func:`torch.fft.irfft2`, in float64 as numpy does it) and the probability
  matching of each lead through its lookup table.

What stays on the CPU is small: the motion (OpenCV), the coarse trajectories
(one node every ``step`` pixels), the AR parameters of the cascade and the
matching tables (a few thousand numbers per lead time). Results equal the CPU
path within float32 rounding (``tests/test_accelerated.py`` checks it with torch
on the CPU; on a GPU the same test runs on CUDA).

:func:`accelerator` decides where a model runs from its ``device`` run
setting: ``"auto"`` is a CUDA GPU when torch sees one, else the CPU kernels.

Examples
--------
>>> import numpy as np
>>> from xnowcast.extrapolation import extrapolate
>>> frame = np.zeros((5, 6), "float32"); frame[2, 1] = 1.0
>>> flow = np.zeros((2, 5, 6), "float32"); flow[0] = 1.0
>>> cpu = extrapolate(frame, flow, 3)
>>> same = extrapolate(frame, flow, 3, device="cpu")   # the torch path, on the CPU
>>> bool(np.array_equal(cpu, same, equal_nan=True))
True
"""

from __future__ import annotations

import glob
import importlib.util
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from xnowcast.optional import import_optional

if TYPE_CHECKING:
    import torch

    from xnowcast.transforms import Transform

__all__ = ["accelerator", "advect_leads", "lagrangian_forecast", "quantiles"]

#: Pixels (lead times x grid) processed at once: bounds the temporaries of a continental grid.
MAX_PIXELS = 2**25


def accelerator(device: str) -> torch.device | None:
    """The torch device a classical model runs on for the run setting ``device``.

    ``None`` means the compiled CPU kernels: ``"cpu"``, ``"mps"`` (no float64
    FFT there), or ``"auto"`` without a CUDA GPU (torch is not even imported
    on a machine without an NVIDIA device). ``"cuda"``/``"cuda:N"`` need a CUDA build of
    torch that sees a GPU.

    Examples
    --------
    >>> accelerator("cpu") is None
    True
    """
    if device in ("cpu", "mps"):
        return None
    if device == "auto":
        if importlib.util.find_spec("torch") is None or not _may_have_cuda():
            return None
        import torch

        return torch.device("cuda") if torch.cuda.is_available() else None
    torch = import_optional("torch", "GPU extrapolation")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} but this PyTorch ({torch.__version__}) sees no CUDA GPU; use "
            "device='auto' or 'cpu', or install a CUDA build of PyTorch (README, 'GPU')"
        )
    return dev


def _may_have_cuda() -> bool:
    """Whether importing torch to ask for CUDA can pay: an NVIDIA device or torch already loaded."""
    return "torch" in sys.modules or sys.platform == "win32" or bool(glob.glob("/dev/nvidia[0-9]*"))


def _tensor(array: Any, device: torch.device | str) -> torch.Tensor:
    torch = import_optional("torch", "GPU extrapolation")
    return torch.as_tensor(np.ascontiguousarray(array), device=device)


def _cells(xs: torch.Tensor, ys: torch.Tensor, nx: int, ny: int):
    """Flat index of the top-left neighbour and the offsets (as the numba ``_cells``)."""
    x = xs.clamp(0.0, float(nx - 1))
    y = ys.clamp(0.0, float(ny - 1))
    x0 = x.long().clamp(max=max(nx - 2, 0))
    y0 = y.long().clamp(max=max(ny - 2, 0))
    return y0 * nx + x0, x - x0.to(x.dtype), y - y0.to(y.dtype)


def _lerp2(flat: torch.Tensor, index: torch.Tensor, tx, ty, nx: int, ny: int) -> torch.Tensor:
    """Bilinear samples of ``flat`` (rows of flattened frames) at the cells of :func:`_cells`."""
    right = 1 if nx > 1 else 0
    down = nx if ny > 1 else 0

    def at(offset: int) -> torch.Tensor:
        return flat.gather(1, index + offset)

    a = at(0)
    top = a + tx * (at(right) - a)
    c = at(down)
    bottom = c + tx * (at(down + right) - c)
    return top + ty * (bottom - top)


def _closest(xs: torch.Tensor, ys: torch.Tensor, nx: int, ny: int) -> torch.Tensor:
    """Flat index of the nearest pixel, halves to even (as OpenCV), borders replicated."""
    x = xs.clamp(0.0, float(nx - 1)).round().long()
    y = ys.clamp(0.0, float(ny - 1)).round().long()
    return y * nx + x


def _positions(disp: torch.Tensor, rows, cols, ny: int, nx: int):
    """Trajectory starts ``(xs, ys)`` of every pixel, ``(n, y * x)`` each."""
    (r0, r1, wr), (c0, c1, wc) = rows, cols
    a, b = disp[:, :, r0, :], disp[:, :, r1, :]
    line = a + wr[:, None] * (b - a)  # rows first, as the kernel does
    a, b = line[..., c0], line[..., c1]
    full = a + wc * (b - a)
    dev = disp.device
    xs = _arange(nx, dev)[None, None, :] + full[:, 0]
    ys = _arange(ny, dev)[None, :, None] + full[:, 1]
    return xs.reshape(len(disp), -1), ys.reshape(len(disp), -1)


def _arange(n: int, device: torch.device) -> torch.Tensor:
    torch = import_optional("torch", "GPU extrapolation")
    return torch.arange(n, dtype=torch.float32, device=device)


def _sample(flat, src_index, xs, ys, order: int, nx: int, ny: int):
    """Samples of the sources ``flat[src_index]`` at ``(xs, ys)`` for one group of leads."""
    torch = import_optional("torch", "GPU extrapolation")
    rows = flat[src_index]
    if order == 1:
        index, tx, ty = _cells(xs, ys, nx, ny)
        return _lerp2(rows, index, tx, ty, nx, ny)
    if order == 0:
        return rows.gather(1, _closest(xs, ys, nx, ny))
    images = rows.reshape(len(rows), 1, ny, nx)
    grid = torch.stack([2 * xs / max(nx - 1, 1) - 1, 2 * ys / max(ny - 1, 1) - 1], dim=-1).reshape(
        len(rows), ny, nx, 2
    )
    out = torch.nn.functional.grid_sample(
        images, grid, mode="bicubic", padding_mode="border", align_corners=True
    )
    return out.reshape(len(rows), -1)


def advect_leads(
    sources: Any,
    missing: Any,
    disp: np.ndarray,
    rows: tuple,
    cols: tuple,
    order: int,
    fill: float,
    device: torch.device | str,
) -> torch.Tensor:
    """Every lead time sampled along its trajectory: :func:`~xnowcast.extrapolation.kernels.advect_leads` in torch.

    Parameters
    ----------
    sources : (l, y, x) float32 array or tensor
        Finite frames; lead ``k`` reads ``sources[min(k, l - 1)]``.
    missing : (m, y, x) bool array or tensor, or None
        Missing pixels, likewise per lead; ``None`` when nothing is missing.
    disp, rows, cols
        The coarse displacement and its resize weights
        (:func:`~xnowcast.extrapolation.semilagrangian.coarse_trajectories`).
    order : int
        0 nearest, 1 linear, 3 cubic (:data:`~xnowcast.extrapolation.kernels.ORDERS`).
    fill : float
        Value where the trajectory starts outside the domain.
    device : torch device
        Where to compute.

    Returns
    -------
    (n, y, x) float32 tensor on ``device``

    Examples
    --------
    >>> import numpy as np
    >>> from xnowcast.extrapolation.kernels import resize_weights
    >>> source = np.arange(4, dtype="float32").reshape(1, 1, 4)
    >>> disp = np.zeros((1, 2, 1, 1), "float32"); disp[:, 0] = -1  # from 1 px left
    >>> out = advect_leads(source, None, disp, resize_weights(1, 1), resize_weights(4, 1), 1,
    ...                    -9.0, "cpu")
    >>> out.tolist()
    [[[-9.0, 0.0, 1.0, 2.0]]]
    """
    torch = import_optional("torch", "GPU extrapolation")
    src = _tensor(sources, device).float()
    n_src, ny, nx = src.shape
    flat = src.reshape(n_src, -1)
    mask = None if missing is None else _tensor(missing, device).bool().reshape(len(missing), -1)
    d = _tensor(disp, device)
    weights = [tuple(_tensor(v, device) for v in w) for w in (rows, cols)]
    n = len(disp)
    out = torch.empty((n, ny * nx), dtype=torch.float32, device=device)
    group = max(1, MAX_PIXELS // (ny * nx))
    for k0 in range(0, n, group):
        leads = torch.arange(k0, min(n, k0 + group), device=device)
        xs, ys = _positions(d[leads], weights[0], weights[1], ny, nx)
        values = _sample(flat, leads.clamp(max=n_src - 1), xs, ys, order, nx, ny)
        if mask is not None:
            near = _closest(xs, ys, nx, ny)
            gone = mask[leads.clamp(max=len(mask) - 1)].gather(1, near)
            values = values.masked_fill(gone, float("nan"))
        outside = (xs < -0.5) | (xs > nx - 0.5) | (ys < -0.5) | (ys > ny - 0.5)
        out[leads] = values.masked_fill(outside, float(np.float32(fill)))
    return out.reshape(n, ny, nx)


def quantiles(fields: torch.Tensor, n: int) -> np.ndarray:
    """:func:`xnowcast.probmatching.quantiles` of each of ``(k, y, x)`` fields, as ``(k, m)``.

    Examples
    --------
    >>> import torch
    >>> from xnowcast import probmatching
    >>> f = torch.arange(101.0).reshape(1, 1, 101)
    >>> bool((quantiles(f, 5)[0] == probmatching.quantiles(f[0].numpy(), 5)).all())
    True
    """
    from xnowcast.probmatching import MIN_SAMPLE, probabilities

    torch = import_optional("torch", "GPU extrapolation")
    flat = fields.reshape(len(fields), -1)
    stride = max(1, flat.shape[1] // MIN_SAMPLE)
    sample = torch.cat(
        [flat[:, ::stride], flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)], dim=1
    )
    sample = sample.sort(dim=1).values
    positions = np.rint(probabilities(n) * (sample.shape[1] - 1)).astype(np.int64)
    return sample[:, torch.as_tensor(positions, device=fields.device)].cpu().numpy()


def _apply_tables(fields: torch.Tensor, tables: list[tuple]) -> torch.Tensor:
    """Each field through its lookup table (:func:`xnowcast.lookup.lookup`'s arithmetic)."""
    from xnowcast.probmatching import TABLE_SIZE

    torch = import_optional("torch", "GPU extrapolation")
    dev = fields.device
    padded = np.stack([np.pad(t, (0, TABLE_SIZE - len(t)), mode="edge") for _, _, t in tables])
    table = _tensor(padded, dev)
    lo = torch.tensor([lo for lo, _, _ in tables], dtype=torch.float32, device=dev)
    scale = torch.tensor([s for _, s, _ in tables], dtype=torch.float32, device=dev)
    last = torch.tensor([len(t) - 1 for _, _, t in tables], device=dev)
    flat = fields.reshape(len(fields), -1)
    pos = (flat - lo[:, None]) * scale[:, None]
    j = pos.long().clamp(0, TABLE_SIZE - 2)
    w = pos - j.to(pos.dtype)
    left, right = table.gather(1, j), table.gather(1, j + 1)
    out = left + w * (right - left)
    out = torch.where(pos <= 0, table[:, :1], out)
    out = torch.where(pos >= last[:, None], table.gather(1, last[:, None]), out)
    return out.reshape(fields.shape)


def lagrangian_forecast(
    last_field: np.ndarray,
    spectra: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    transform: Transform,
    matching: str | float,
    floor: float,
    device: torch.device | str,
) -> torch.Tensor:
    """Per lead: the cascade-filtered field, matched to the last one, in physical units.

    The torch twin of the CPU loop of :func:`~xnowcast.extrapolation.cascade.extrapolate_cascade`.

    Parameters
    ----------
    last_field : (y, x) float32
        The last transformed frame (finite), whose distribution the forecast keeps.
    spectra : (2, y, x // 2 + 1) complex
        ``rfft2`` of the previous and the last field.
    a, b : (n, y, x // 2 + 1) float64
        The lead filters (:func:`xnowcast.cascade.lead_filters`).
    transform, matching, floor
        As in ``extrapolate_cascade``.
    device : torch device

    Returns
    -------
    (n, y, x) float32 tensor on ``device``

    Examples
    --------
    >>> import numpy as np
    >>> from xnowcast.transforms import get_transform
    >>> f = np.full((8, 8), -15.0, "float32"); f[2:5, 2:5] = 10.0
    >>> s = np.fft.rfft2(np.stack([f, f]))
    >>> one = np.ones((3, 8, 5)); zero = np.zeros((3, 8, 5))
    >>> out = lagrangian_forecast(f, s, one, zero, get_transform("dbr"), "cdf", -15.0, "cpu")
    >>> tuple(out.shape), round(float(out.max()), 2)
    ((3, 8, 8), 10.0)
    """
    from xnowcast.probmatching import (
        N_QUANTILES,
        lookup_table,
        match_table,
        probabilities,
    )
    from xnowcast.probmatching import quantiles as cpu_quantiles

    torch = import_optional("torch", "GPU extrapolation")
    shape = last_field.shape
    spec = _tensor(spectra, device).to(torch.complex128)
    ta, tb = _tensor(a, device), _tensor(b, device)
    reference = cpu_quantiles(last_field, N_QUANTILES)
    probs = probabilities(N_QUANTILES)
    out = torch.empty((len(a), *shape), dtype=torch.float32, device=device)
    group = max(1, MAX_PIXELS // (shape[0] * shape[1]))
    for k0 in range(0, len(a), group):
        k1 = min(len(a), k0 + group)
        mixed = ta[k0:k1] * spec[1] + tb[k0:k1] * spec[0]
        smooth = torch.fft.irfft2(mixed, s=shape).float()
        tables = []
        for q in quantiles(smooth, N_QUANTILES):
            knots, targets = match_table(q, reference, matching, floor=floor, probs=probs)
            physical = transform.inverse(targets.astype(np.float32)).astype(np.float64)
            tables.append(lookup_table(knots, physical))
        out[k0:k1] = _apply_tables(smooth, tables)
    return out
