"""The stage-by-stage chain says what it could not decide, instead of typing every footprint `new` in silence.

``vectorize change.tif --out footprints.gpkg`` (its help's first example, before) gave every footprint
``change_type = new`` and no ``first_seen``; ``match`` then took permitted demolitions for type_mismatch
(9 rows instead of 2 on the sample city) and both before_permit rows came out ``permitted``, with nothing said.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

from changedetect.cli import cli

T = Affine(0.5, 0, 680000.0, 0, -0.5, 1190000.0)
REPO = Path(__file__).resolve().parents[1]


def _tif(path: Path, data: np.ndarray) -> Path:
    data = data[None] if data.ndim == 2 else data
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs="EPSG:32648", transform=T) as dst:
        dst.write(data)
    return path


@pytest.fixture()
def rasters(tmp_path: Path) -> dict[str, Path]:
    prob = np.zeros((96, 96), np.float32)
    prob[20:60, 20:60] = 0.9
    before = np.full((3, 96, 96), 90, np.uint8)
    after = before.copy()
    after[:, 20:60, 20:60] = 200  # a bright new roof
    days = np.where(prob > 0, 19_900.0, np.nan).astype(np.float32)
    return {"prob": _tif(tmp_path / "change.tif", prob), "before": _tif(tmp_path / "before.tif", before),
            "after": _tif(tmp_path / "after.tif", after), "first_seen": _tif(tmp_path / "first_seen.tif", days)}


def test_vectorize_without_images_or_dates_says_what_match_will_lack(rasters: dict[str, Path], tmp_path: Path) -> None:
    bare = CliRunner().invoke(cli, ["-q", "vectorize", str(rasters["prob"]), "--out", str(tmp_path / "bare.gpkg")])
    assert bare.exit_code == 0, bare.output
    assert "change_type not determined" in bare.stderr and "--before and --after" in bare.stderr
    assert "no --first-seen" in bare.stderr
    full = CliRunner().invoke(cli, ["-q", "vectorize", str(rasters["prob"]), "--out", str(tmp_path / "full.gpkg"),
                                    "--first-seen", str(rasters["first_seen"]), "--before", str(rasters["before"]),
                                    "--after", str(rasters["after"])])
    assert full.exit_code == 0, full.output
    assert full.stderr == "", full.stderr

    register = str(REPO / "permits" / "sample_register.gpkg")
    undated = CliRunner().invoke(cli, ["-q", "match", str(tmp_path / "bare.gpkg"), "--permits", register,
                                       "--out", str(tmp_path / "v_bare.gpkg")])
    assert undated.exit_code == 0, undated.output
    assert "have no first_seen date: before_permit and permit_expired could not be decided" in undated.stderr
    dated = CliRunner().invoke(cli, ["-q", "match", str(tmp_path / "full.gpkg"), "--permits", register,
                                     "--out", str(tmp_path / "v_full.gpkg")])
    assert dated.exit_code == 0, dated.output
    assert "first_seen" not in dated.stderr, dated.stderr


def test_match_says_footprints_without_a_change_type_column_even_with_q(rasters: dict[str, Path],
                                                                        tmp_path: Path) -> None:
    import geopandas as gpd

    done = CliRunner().invoke(cli, ["-q", "vectorize", str(rasters["prob"]), "--out", str(tmp_path / "fp.gpkg")])
    assert done.exit_code == 0, done.output
    gpd.read_file(tmp_path / "fp.gpkg").drop(columns="change_type").to_file(tmp_path / "untyped.gpkg")
    matched = CliRunner().invoke(cli, ["-q", "match", str(tmp_path / "untyped.gpkg"), "--permits",
                                       str(REPO / "permits" / "sample_register.gpkg"), "--out", str(tmp_path / "v.gpkg")])
    assert matched.exit_code == 0, matched.output
    assert "have no change_type column: every footprint is taken as new" in matched.stderr


def test_empty_footprint_and_violation_lists_are_polygon_layers(tmp_path: Path) -> None:
    """A quiet scene's lists were generic-geometry ('Unknown') GeoPackage layers; with rows they are Polygon."""
    import pyogrio

    zero = _tif(tmp_path / "zero.tif", np.zeros((64, 64), np.float32))
    assert CliRunner().invoke(cli, ["-q", "vectorize", str(zero), "--out", str(tmp_path / "fp.gpkg")]).exit_code == 0
    done = CliRunner().invoke(cli, ["-q", "match", str(tmp_path / "fp.gpkg"), "--permits",
                                    str(REPO / "permits" / "sample_register.gpkg"), "--out", str(tmp_path / "v.gpkg")])
    assert done.exit_code == 0, done.output
    for name in ("fp.gpkg", "v.gpkg"):
        info = pyogrio.read_info(tmp_path / name)
        assert info["features"] == 0 and info["geometry_type"] == "Polygon", (name, info)
