"""Quickstart: open a radar archive, forecast it, write and read the forecast.

Run from the repository root::

    python examples/quickstart.py [ARCHIVE_GLOB_OR_FILE]

Without an argument it uses the shared BOM archive when present
(``../shared/data/radar/bom-2-20180616/*.nc``), else a generated cube.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

import xnowcast
from xnowcast.io import open_forecast, save_forecast

BOM = Path(__file__).resolve().parents[1].parent / "shared/data/radar/bom-2-20180616"


def main(source: str | None = None) -> None:
    if source is None and BOM.is_dir():
        source = str(BOM / "*.nc")
    t0 = time.perf_counter()
    if source is not None:
        cube = xnowcast.open_archive(source)
    else:
        cube = xnowcast.datasets.synthetic_radar(n_times=48, size=256)
    print(
        f"cube {dict(cube.sizes)} step {pd.Timedelta(cube.nowcast.validate().step)} "
        f"opened in {time.perf_counter() - t0:.2f} s"
    )

    fc = cube.nowcast.forecast(model="persistence")
    leads = pd.to_timedelta(fc.lead_time.values)
    print(
        f"latest forecast: init {pd.Timestamp(fc.init_time.values)}, leads "
        f"{leads[0]} .. {leads[-1]}"
    )

    fcs = cube.nowcast.forecast(model="persistence", init_times="all", every="30min")
    print(f"lazy forecasts: {dict(fcs.sizes)}, {len(fcs.chunks[0])} chunk(s) along init_time")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "forecasts.zarr"
        t0 = time.perf_counter()
        save_forecast(fcs, path)
        back = open_forecast(path)
        print(
            f"wrote and reopened {path.name} in {time.perf_counter() - t0:.2f} s: "
            f"model={back.attrs['xnowcast_model']}, units={back.attrs.get('units')}"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
