"""Review of vectorize / report / evaluate: edge cases a demanding user meets (each test failed before its fix,
or pins a behaviour not tested elsewhere)."""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from shapely.geometry import Polygon

from changedetect.config import ReportConfig
from changedetect.errors import DatasetError
from changedetect.evaluate import evaluate, evaluate_detailed
from changedetect.report import render_report
from changedetect.testing import make_violations
from changedetect.vectorize import VectorizeConfig, vectorize

sys.path.insert(0, str(Path(__file__).parent))
from test_evaluate import DiffPredictor, _levir  # noqa: E402
from test_vectorize import raster  # noqa: E402


# ----------------------------------------------------------------------------- vectorize
@pytest.mark.parametrize("kwargs", [{"strip_rows": 0}, {"strip_rows": 8}, {"strip_overlap": -1},
                                    {"carry_min_iou": 5.0}, {"carry_min_cover": 0.0}])
def test_strip_and_carry_settings_are_checked(kwargs: dict) -> None:
    # the checks sat after a `return` (dead code): strip_rows=0 died in range() at vectorize time
    with pytest.raises(ValueError, match="strip_rows|carry_min"):
        VectorizeConfig(**kwargs)


def test_a_building_on_the_raster_edge_across_a_seam_with_nan_keeps_its_area() -> None:
    p = np.zeros((64, 40), np.float32)
    p[0:40, 0:10] = 0.9  # touches the top and left edges, crosses the seam at row 32
    p[:, 30:] = np.nan  # nodata beside it
    out = vectorize(raster(p), config=VectorizeConfig(regularize=False, strip_rows=32, strip_overlap=8))
    assert len(out) == 1
    assert out["area_m2"].iloc[0] == pytest.approx(40 * 10 * 0.25)
    assert out["prob_mean"].iloc[0] == pytest.approx(0.9)


# ----------------------------------------------------------------------------- report
class _RecordingImagery:
    """An Imagery in ``crs`` that records the chip bounds asked of it."""

    def __init__(self, crs: str, bounds: tuple[float, float, float, float]) -> None:
        self.crs, self.bounds, self.asked = crs, bounds, []

    def chip(self, bounds: tuple[float, float, float, float], size: int) -> np.ndarray:
        self.asked.append(bounds)
        return np.zeros((size, size, 3), np.uint8)

    def overview(self, max_px: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        return np.zeros((max_px // 4, max_px // 4, 3), np.uint8), self.bounds


def test_chip_margin_is_metres_on_a_geographic_grid() -> None:
    v = make_violations(n=1).to_crs("EPSG:4326")
    x0, y0, x1, y1 = v.total_bounds
    imagery = _RecordingImagery("EPSG:4326", (x0 - 0.01, y0 - 0.01, x1 + 0.01, y1 + 0.01))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        render_report(v, after=imagery, config=ReportConfig(chip_margin_m=15.0))
    assert not [w for w in caught if "geographic CRS" in str(w.message)]  # area_m2 given: no area in degrees
    left, bottom, right, top = imagery.asked[0]
    # a 15 m margin is ~1.3e-4 degrees, not 15 degrees (a chip of a continent, the building invisible)
    assert (right - left) == pytest.approx(max(x1 - x0, y1 - y0) + 2 * 15 / 111_320, rel=1e-6)
    assert (top - bottom) < 0.01


@pytest.mark.parametrize("geom", [None, Polygon()])
def test_a_violation_without_geometry_gets_a_card_not_a_traceback(geom: object) -> None:
    v = make_violations(n=2)
    b = v.total_bounds
    imagery = _RecordingImagery(str(v.crs), (b[0] - 50, b[1] - 50, b[2] + 50, b[3] + 50))
    v.loc[1, "geometry"] = geom
    text = render_report(v, after=imagery)
    assert len(re.findall(r'<section class="card ', text)) == 2
    assert len(imagery.asked) == 1  # no chip for the shapeless one


def test_every_field_is_escaped_and_nothing_is_fetched() -> None:
    v = make_violations(n=2)
    v.loc[0, "permit_ids"] = "<script>alert(1)</script>"
    v.loc[0, "address"] = 'Số 5 "Lê Lợi" <b>&amp;'
    v.loc[1, "violation_id"] = "<img src=x onerror=alert(1)>"
    v.loc[1, "status"] = 'x" onmouseover="alert(1)'
    text = render_report(v, run_info={"model": "<i>m</i>", "generated": "<now>"},
                         config=ReportConfig(title="<T> & $x ${y}"))
    for raw in ("<script>", "<img src=x", "<i>m", "<b>&amp;", 'x" onmouseover', "<now>", "<T>"):
        assert raw not in text
    assert "Số 5 &quot;Lê Lợi&quot; &lt;b&gt;&amp;amp;" in text
    assert "<title>&lt;T&gt; &amp; $x ${y}</title>" in text
    assert not re.findall(r'(?:src|href)="(?!data:|#)', text) and "http" not in text


# ----------------------------------------------------------------------------- evaluate
def test_a_jpeg_label_is_read_at_half_its_range(tmp_path: Path) -> None:
    root = _levir(tmp_path / "levir")
    for name in ("p1", "p2"):
        y = np.array(Image.open(root / "label" / f"{name}.png"))
        (root / "label" / f"{name}.png").unlink()
        Image.fromarray(y).save(root / "label" / f"{name}.jpg", quality=75)
    ringing = np.array(Image.open(root / "label" / "p2.jpg"))
    assert ((ringing > 0) & (ringing < 128)).any()  # JPEG noise that "> 0" counted as change
    result = evaluate_detailed(root, model=DiffPredictor())
    assert (result.tp, result.fp, result.fn, result.tn) == (12, 8, 8, 100)


def test_two_labels_of_one_pair_are_refused(tmp_path: Path) -> None:
    root = _levir(tmp_path / "levir")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "label" / "p1.tif")
    # p1's pair was scored twice (pooled) while n_images said 2
    with pytest.raises(DatasetError, match=r"several labels named \['p1'\]"):
        evaluate(root, model=DiffPredictor())


def test_a_probability_of_the_wrong_shape_is_a_dataset_error(tmp_path: Path) -> None:
    class Cropped(DiffPredictor):
        def __call__(self, before, after):  # noqa: ANN001, ANN204
            return super().__call__(before, after)[:4, :4]

    with pytest.raises(DatasetError, match=r"pair 'p1'.*\(4, 4\).*\(8, 8\)"):
        evaluate(_levir(tmp_path / "levir"), model=Cropped())


def test_an_unreadable_oscd_band_is_a_dataset_error(tmp_path: Path) -> None:
    for d in ("imgs_1", "imgs_2"):
        (tmp_path / "images" / "c1" / d).mkdir(parents=True)
        for b in ("B02", "B03", "B04", "B08"):
            with rasterio.open(tmp_path / "images" / "c1" / d / f"c1_{b}.tif", "w", driver="GTiff", width=8,
                               height=8, count=1, dtype="uint16") as dst:
                dst.write(np.full((1, 8, 8), 100, np.uint16))
    (tmp_path / "labels" / "c1" / "cm").mkdir(parents=True)
    with rasterio.open(tmp_path / "labels" / "c1" / "cm" / "c1-cm.tif", "w", driver="GTiff", width=8, height=8,
                       count=1, dtype="uint8") as dst:
        dst.write(np.full((1, 8, 8), 1, np.uint8))
    assert evaluate(tmp_path, model="cva")["n_images"] == 1
    (tmp_path / "images" / "c1" / "imgs_2" / "c1_B08.tif").write_bytes(b"not a tiff")
    with pytest.raises(DatasetError, match=r"cannot read band B08 '.*c1_B08.tif'"):
        evaluate(tmp_path, model="cva")


def test_max_cards_keeps_the_header_counts_of_every_violation() -> None:
    v = make_violations(n=12)  # two of each status, two permitted
    shown = render_report(v, config=ReportConfig(max_cards=3))
    everything = render_report(v)
    header = re.compile(r"<li><b>(\d+)</b> to inspect</li>")
    assert header.findall(shown) == header.findall(everything) == ["10"]  # was "3": 7 hidden without a word
    assert len(re.findall(r'<section class="card ', shown)) == 3
    assert "7 more violations not shown" in shown


def _prob_tif(path: Path, values: np.ndarray, crs: str | None) -> Path:
    from rasterio.transform import from_origin

    with rasterio.open(path, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
                       dtype="float32", crs=crs, transform=from_origin(0, 40, 0.5, 0.5), nodata=np.nan) as dst:
        dst.write(values.astype(np.float32)[None])
    return path


def test_cli_vectorize_a_probability_without_a_crs_is_one_clear_error(tmp_path: Path) -> None:
    from changedetect.cli import main

    p = np.zeros((40, 40), np.float32)
    p[5:25, 5:25] = 0.9
    prob = _prob_tif(tmp_path / "nocrs.tif", p, None)
    with pytest.raises(SystemExit) as exit_info:  # was "Internal error: ValueError ... a bug", after all the work
        main(["vectorize", str(prob), "-o", str(tmp_path / "f.gpkg")])
    assert exit_info.value.code == 2
    assert not (tmp_path / "f.gpkg").exists()


def test_a_probability_in_percent_is_refused() -> None:
    p = np.zeros((40, 40), np.float32)
    p[5:25, 5:25] = 90.0  # percent: every non-zero pixel passed 0.5, prob_mean 90 written without a word
    with pytest.raises(ValueError, match=r"not a probability in \[0, 1\]"):
        vectorize(raster(p))


def test_regularising_keeps_a_courtyard_larger_than_max_hole() -> None:
    p = np.zeros((80, 80), np.float32)
    p[10:50, 10:50] = 0.9
    p[20:27, 20:27] = 0  # a 12.25 m² courtyard (max_hole_m2 10): kept by the clean-up ...
    traced = vectorize(raster(p), config=VectorizeConfig(regularize=False)).geometry.iloc[0]
    squared = vectorize(raster(p)).geometry.iloc[0]
    assert len(traced.interiors) == 1
    # ... and was lost by the rectangle fit (a solid 387.75 m² square, every wall moved inward)
    assert len(squared.interiors) == 1
    assert squared.area == pytest.approx(traced.area, rel=0.01)
    assert squared.symmetric_difference(traced).area < 0.02 * traced.area


def test_a_district_s_report_draws_the_500_most_urgent_cards_by_default() -> None:
    v = make_violations(n=612)  # 510 to inspect
    shown = render_report(v)
    assert len(re.findall(r'<section class="card ', shown)) == 500
    assert "10 more violations not shown" in shown
    assert len(re.findall(r'<section class="card ', render_report(v, config=ReportConfig(max_cards=0)))) == 510
