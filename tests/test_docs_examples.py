"""The docs build and the examples run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_strict(tmp_path):
    if shutil.which("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    subprocess.run(
        ["mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    assert (tmp_path / "site" / "index.html").exists()


def test_docs_have_no_placeholders():
    for page in (ROOT / "docs").glob("*.md"):
        assert "(written with the corresponding capability)" not in page.read_text(), page.name


def test_quickstart_example_runs():
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert "lazy forecasts" in result.stdout and "wrote and reopened" in result.stdout


def test_neural_page_shows_the_example_config():
    """docs/neural.md says `xnowcast train --example` prints its YAML block: keep them equal."""
    from xnowcast.training.config import example_config

    page = (ROOT / "docs" / "neural.md").read_text()
    blocks = [b.split("```")[0] for b in page.split("```yaml\n")[1:]]
    assert example_config().rstrip("\n") + "\n" in blocks
