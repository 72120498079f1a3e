"""``xnowcast demo`` draws the forecast beside the observation and says where; never overwrites."""

from __future__ import annotations

import pytest

pytest.importorskip("cartopy")
PIL_Image = pytest.importorskip("PIL.Image")

from xnowcast.cli import main  # noqa: E402

ARGS = ["demo", "--size", "32", "--frames", "14", "--model", "persistence"]


def test_demo_writes_a_map_beside_the_forecast_and_says_where(tmp_path, capsys):
    out = tmp_path / "demo.zarr"
    assert main([*ARGS, "--out", str(out)]) == 0
    png = tmp_path / "demo.png"
    text = capsys.readouterr().out
    assert f"-> {png}" in text.splitlines()[-1] and "observation" in text.splitlines()[-1]
    with PIL_Image.open(png) as img:
        assert img.format == "PNG" and img.width > img.height > 200
        assert len(img.convert("RGB").getcolors(1 << 16) or []) > 8
    chosen = tmp_path / "maps" / "m.png"
    assert main([*ARGS, "--out", str(tmp_path / "b.nc"), "--map", str(chosen)]) == 0
    assert chosen.exists()
    assert main([*ARGS, "--out", str(tmp_path / "c.nc"), "--no-map"]) == 0
    assert not (tmp_path / "c.png").exists()


def test_demo_refuses_an_existing_map_before_computing(tmp_path, capsys):
    png = tmp_path / "demo.png"
    png.write_bytes(b"my figure")
    assert main([*ARGS, "--out", str(tmp_path / "demo.nc")]) == 2
    assert "exists" in capsys.readouterr().err
    assert png.read_bytes() == b"my figure" and not (tmp_path / "demo.nc").exists()
    assert main([*ARGS, "--out", str(tmp_path / "demo.nc"), "--overwrite"]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
