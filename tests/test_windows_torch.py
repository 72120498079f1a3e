"""Windows to PyTorch: ``cube.nowcast.windows(...).torch(...)`` batches in a DataLoader."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

from xnowcast.datasets import synthetic_radar  # noqa: E402
from xnowcast.training import WindowDataset  # noqa: E402


@pytest.fixture(scope="module")
def cube():
    cube = synthetic_radar(n_times=16, size=24, seed=6)
    return cube.drop_sel(time=cube.time.values[9])  # a gap: windows never span it


def test_a_dataloader_batches_the_windows(cube):
    wins = cube.nowcast.windows(3, 2)
    loader = DataLoader(wins.torch(transform=None), batch_size=4, shuffle=False)
    batches = list(loader)
    assert sum(len(b[0]) for b in batches) == len(wins) > 4
    inputs, targets, mask = batches[0]
    assert inputs.shape == (4, 3, 24, 24) and targets.shape == (4, 2, 24, 24)
    assert inputs.dtype == torch.float32 and mask.shape == targets.shape
    # sample k of the first batch holds window k's frames, physical values (no transform)
    for k in range(4):
        window = wins[k]
        np.testing.assert_allclose(inputs[k].numpy(), np.nan_to_num(window.inputs.values))
        np.testing.assert_allclose(targets[k].numpy(), np.nan_to_num(window.targets.values))
        np.testing.assert_array_equal(mask[k].numpy(), np.isfinite(window.targets.values))


def test_torch_keeps_the_windows_layout_and_takes_dataset_options(cube):
    wins = cube.nowcast.windows(3, 2, stride=2)
    ds = wins.torch(crop=16, transform="log")
    assert isinstance(ds, WindowDataset) and len(ds) == len(wins)
    np.testing.assert_array_equal(ds.index[:, 1], wins.starts)
    x, y, _ = ds[0]
    assert tuple(x.shape) == (3, 16, 16) and tuple(y.shape) == (2, 16, 16)
    with pytest.raises(TypeError, match="n_in come from the windows"):
        wins.torch(n_in=4)
    with pytest.raises(TypeError, match="takes the Windows"):
        WindowDataset.from_windows(cube)
