"""Render the plotting gallery of the docs from the shared MeteoSwiss radar cube.

    python examples/gallery.py [path/to/mch-20150515.nc]

Writes into docs/images/:

* ``maps.png``: persistence forecast, lead times 1, 6, 12 and 24 (5 to 120 min);
* ``maps_observed_motion.png``: optical-flow forecast under the observations, with the
  motion field as arrows;
* ``skill.png``: scores against lead time of optical flow (solid) and persistence
  (dashed), pooled over five init times;
* ``animation.gif``: observed and optical-flow forecast side by side, one frame per
  10 minutes.

Coastlines and borders come from the bundled Natural Earth 110 m set, or from finer local
shapefiles (``XNOWCAST_NATURAL_EARTH=/path/to/natural_earth python examples/gallery.py``).
The images are replaced.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import xnowcast
from xnowcast.plotting import plot_skill

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CUBE = ROOT.parent / "shared" / "data" / "radar" / "mch-20150515.nc"
OUT = ROOT / "docs" / "images"


def main(path: Path = DEFAULT_CUBE) -> None:
    if not path.exists():
        sys.exit(f"radar cube not found at {path}; pass its path: python examples/gallery.py FILE")
    OUT.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("once", message="Natural Earth")
    t0 = time.perf_counter()
    cube = xnowcast.open_archive(str(path))  # 40 frames of 640 x 710, 5 min, mm/h
    init = cube.time.values[15]  # 17:00; 24 lead times reach the last frame (19:00)

    persistence = cube.sel(time=slice(None, init)).nowcast.forecast(model="persistence")
    persistence.nowcast.plot(leads=[1, 6, 12, 24], path=OUT / "maps.png", overwrite=True)

    flow = cube.sel(time=slice(None, init)).nowcast.forecast(model="optical-flow")
    uv = cube.sel(time=slice(None, init)).nowcast.motion("dis", n_flows=3)
    flow.nowcast.plot(
        leads=[6, 24], obs=cube, motion=uv, path=OUT / "maps_observed_motion.png", overwrite=True
    )

    inits = slice(cube.time.values[11], init)
    flows = cube.nowcast.forecast(model="optical-flow", init_times=inits)
    scores = flows.nowcast.verify(
        cube,
        ["mae", "csi", "fss", "ssim", "ms-ssim"],
        thresholds=[1.0],
        scales=[1, 16],
        mean=True,
        reference="persistence",
        win_size=3,
    )
    plot_skill(
        scores.compute(),
        title="optical flow (solid) and persistence (dashed), MeteoSwiss 2015-05-15, 5 init times",
        path=OUT / "skill.png",
        overwrite=True,
    )

    flow.nowcast.animate(
        OUT / "animation.gif",
        obs=cube,
        leads=list(range(2, 25, 2)),
        fps=2,
        dpi=45,
        panel_size=4.0,
        overwrite=True,
    )
    for name in ("maps.png", "maps_observed_motion.png", "skill.png", "animation.gif"):
        print(f"wrote {OUT / name} ({(OUT / name).stat().st_size / 1024:.0f} KiB)")
    print(f"gallery rendered in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CUBE)
