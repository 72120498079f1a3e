"""Optional dependencies: a missing extra gives the install hint, never a bare ModuleNotFoundError.

Each case runs in a fresh interpreter in which the package is hidden
(``sys.modules[name] = None`` makes every import of it fail).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from xnowcast.optional import MissingOptionalDependency, import_optional


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
    result = run_hidden(
        ["cv2", "torch", "matplotlib", "cartopy", "distributed"],
        "import xnowcast; print(len(xnowcast.list_models()))",
    )
    assert result.returncode == 0, result.stderr
