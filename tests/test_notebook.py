"""Figures in Jupyter: executed in a real kernel, each plot shows exactly once, labelled in UTC."""

from __future__ import annotations

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("cartopy")

CELLS = [
    """
%matplotlib inline
import warnings
import xnowcast
from xnowcast.datasets import synthetic_radar
from xnowcast.plotting import plot_skill
cube = synthetic_radar(n_times=16, size=32)
fc = cube.nowcast.forecast(n_out=3, init_times="all", n_in=2)
""",
    "fc.isel(init_time=-1).nowcast.plot(leads=[1, 3])",
    "scores = xnowcast.verification.verify(fc, cube, ['mae'], mean=True)\nplot_skill(scores)",
    "fig = fc.isel(init_time=-1).nowcast.plot(leads=[1])\nfig",
    "fig = fc.isel(init_time=-1).nowcast.plot(leads=[2])  # assigned: nothing shown",
    "print(fig.get_suptitle())",
]


def _images(cell) -> int:
    return sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))


def test_each_figure_is_shown_once_in_a_notebook(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.strip()) for c in CELLS])
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [o for c in nb.cells for o in c.outputs if o.get("output_type") == "error"]
    assert not errors, errors
    assert [_images(c) for c in nb.cells] == [0, 1, 1, 1, 0, 0]
    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert "UTC" in printed
