"""Optional dependencies: a missing extra gives the install hint, never a bare ModuleNotFoundError.

Each case runs in a fresh interpreter in which the package is hidden
(``sys.modules[name] = None`` makes every import of it fail).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xnowcast.optional import EXTRAS, MissingOptionalDependency, import_optional


def run_hidden(hidden: list[str], code: str) -> subprocess.CompletedProcess:
    prelude = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in hidden)
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_import_optional_names_the_extra():
    with pytest.raises(MissingOptionalDependency, match=r"pip install 'xnowcast\[torch\]'"):
        import_optional("torch_not_installed_here", "a test", extra="torch")
    assert issubclass(MissingOptionalDependency, ImportError)
    assert import_optional("numpy", "arrays").__name__ == "numpy"


def test_missing_dependency_of_an_installed_package_is_not_masked(monkeypatch):
    """A package that is there but lacks one of its own dependencies shows the real error."""

    def broken(name):
        err = ModuleNotFoundError("No module named 'libfoo'")
        err.name = "libfoo"
        raise err

    monkeypatch.setattr("importlib.import_module", broken)
    with pytest.raises(ModuleNotFoundError, match="libfoo") as info:
        import_optional("cv2", "motion")
    assert not isinstance(info.value, MissingOptionalDependency)


CASES = {
    "flow: optical-flow model": (
        ["cv2"],
        """
        import xnowcast
        cube = xnowcast.datasets.synthetic_radar(n_times=14, size=32)
        cube.nowcast.forecast(model="persistence")   # the core works
        cube.nowcast.forecast(model="optical-flow")
        """,
        "xnowcast[flow]",
    ),
    "flow: motion": (
        ["cv2"],
        """
        import xnowcast
        cube = xnowcast.datasets.synthetic_radar(n_times=4, size=32)
        cube.nowcast.motion()
        """,
        "xnowcast[flow]",
    ),
    "torch: registry network": (
        ["torch"],
        """
        import xnowcast
        xnowcast.get_model("convlstm")
        """,
        "xnowcast[torch]",
    ),
    "torch: Trainer": (
        ["torch"],
        """
        import xnowcast
        xnowcast.Trainer
        """,
        "xnowcast[torch]",
    ),
    "plot: maps": (
        ["matplotlib", "matplotlib.pyplot"],
        """
        import xnowcast
        cube = xnowcast.datasets.synthetic_radar(n_times=14, size=32)
        cube.nowcast.forecast(model="persistence").nowcast.plot()
        """,
        "xnowcast[plot]",
    ),
    "plot: skill": (
        ["matplotlib"],
        """
        import xnowcast
        cube = xnowcast.datasets.synthetic_radar(n_times=8, size=16)
        fc = xnowcast.forecast(cube, "persistence", init_times="all", n_in=2, n_out=2)
        xnowcast.plotting.plot_skill(xnowcast.verify(fc, cube, ["mae"]))
        """,
        "xnowcast[plot]",
    ),
    "plot: animation": (
        ["matplotlib"],
        """
        import xnowcast
        cube = xnowcast.datasets.synthetic_radar(n_times=8, size=16)
        fc = xnowcast.forecast(cube, "persistence", n_in=2, n_out=2)
        fc.nowcast.animate("never_written.gif")
        """,
        "xnowcast[plot]",
    ),
    "torch: checkpoint": (
        ["torch"],
        """
        import xnowcast
        xnowcast.load_model("model.pt")
        """,
        "xnowcast[torch]",
    ),
    "distributed: cluster": (
        ["distributed"],
        """
        import tempfile, xnowcast
        cube = xnowcast.datasets.synthetic_radar(n_times=6, size=16)
        out = tempfile.mkdtemp() + "/fc.zarr"
        job = xnowcast.batch.forecast_archive(cube, "persistence", out, n_in=2, n_out=2,
                                        client="tcp://127.0.0.1:8786")
        job.run(progress=False)
        """,
        "xnowcast[distributed]",
    ),
    "formats: image folders": (
        ["PIL"],
        """
        import pathlib, tempfile, xnowcast
        folder = pathlib.Path(tempfile.mkdtemp())
        (folder / "radar_202106011200.png").write_bytes(b"not read")
        xnowcast.io.open_image_sequence(str(folder / "*.png"))
        """,
        "xnowcast[formats]",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_feature_without_its_extra_says_what_to_install(case):
    hidden, code, hint = CASES[case]
    result = run_hidden(hidden, code)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("xnowcast.optional.MissingOptionalDependency"), result.stderr
    assert f"pip install '{hint}'" in last, last


def test_import_xnowcast_needs_no_extra():
    """``import xnowcast`` and a persistence forecast need none of the optional packages."""
    result = run_hidden(
        sorted(EXTRAS),
        """
        import xnowcast
        cube = xnowcast.datasets.synthetic_radar(n_times=4, size=16)
        print(len(xnowcast.list_models()), xnowcast.forecast(cube, "persistence", n_in=2, n_out=2).shape)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1:] == ["(2,", "16,", "16)"], result.stdout


def test_every_optional_package_names_an_extra_of_the_project():
    """The hint must name an extra that exists: ``pip install 'xnowcast[<extra>]'``."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    assert set(EXTRAS.values()) <= set(extras), sorted(set(EXTRAS.values()) - set(extras))


def test_maps_without_cartopy_are_drawn_on_plain_axes():
    """cartopy is optional within the plot extra: without it maps fall back to x/y axes."""
    result = run_hidden(
        ["cartopy"],
        """
        import matplotlib
        matplotlib.use("Agg")
        import xnowcast
        cube = xnowcast.datasets.synthetic_radar(n_times=4, size=16)
        fc = xnowcast.forecast(cube, "persistence", n_in=2, n_out=2)
        print(xnowcast.plotting.map_grid(fc).kind, len(fc.nowcast.plot(leads=[1, 2]).axes))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["plain", "3"]


def test_command_line_names_the_extra(tmp_path):
    """The CLI reports a missing extra in its one-line error, with the install hint."""
    result = run_hidden(
        ["matplotlib"],
        f"""
        import xnowcast
        from xnowcast.cli import main
        cube = xnowcast.datasets.synthetic_radar(n_times=4, size=16)
        fc = xnowcast.forecast(cube, "persistence", n_in=2, n_out=2)
        xnowcast.io.save_forecast(fc, {str(tmp_path / "fc.nc")!r})
        sys.exit(main(["plot", {str(tmp_path / "fc.nc")!r}, "--out", {str(tmp_path / "m.png")!r}]))
        """,
    )
    assert result.returncode == 2, result.stderr
    assert "pip install 'xnowcast[plot]'" in result.stderr.strip().splitlines()[-1], result.stderr
    assert not (tmp_path / "m.png").exists()
