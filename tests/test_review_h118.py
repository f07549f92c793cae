"""Review (H118) of ``changedetect evaluate``'s labelled pairs: a label it must not read silently the
wrong way (other values, colours, a 0/1 JPEG), and inputs of another size named by their files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from _fakes import DiffPredictor
from PIL import Image
from rasterio.transform import from_origin

from changedetect.cli import main
from changedetect.errors import DatasetError
from changedetect.evaluate import evaluate_detailed


def _square(size: int = 32, value: int = 255) -> np.ndarray:
    y = np.zeros((size, size), np.uint8)
    y[8:20, 8:20] = value
    return y


def _levir(root: Path, label: Image.Image, *, ext: str = "png") -> Path:
    """One 32x32 pair whose change is the bright square of :func:`_square`, with ``label``."""
    for sub in ("A", "B", "label"):
        (root / sub).mkdir(parents=True)
    a = np.full((32, 32, 3), 60, np.uint8)
    b = a.copy()
    b[_square() > 0] = 250
    Image.fromarray(a).save(root / "A" / "p.png")
    Image.fromarray(b).save(root / "B" / "p.png")
    label.save(root / "label" / f"p.{ext}")
    return root


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    got = capsys.readouterr()
    return int(info.value.code or 0), got.out, got.err


@pytest.mark.parametrize("values", [(0, 1, 2), (0, 128, 255)])
def test_a_label_of_other_values_is_refused_naming_it(tmp_path: Path, values: tuple[int, ...],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    y = _square(value=values[-1])
    y[0:4, 0:4] = values[1]  # 1 of 0/1/2 (an OSCD-like 'no change'?), 128 (an 'ignore' class?)
    root = _levir(tmp_path / "l", Image.fromarray(y))
    # the code before scored every value > 0 as change, without a word
    with pytest.raises(DatasetError, match=r"label '.*p\.png' holds the values " + ", ".join(map(str, values))):
        evaluate_detailed(root, model=DiffPredictor())
    code, out, err = _run(capsys, "evaluate", root, "--model", "cva", "--json")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "p.png" in err


def test_a_grey_label_saved_as_rgb_is_read_and_a_colour_label_refused(tmp_path: Path) -> None:
    grey = evaluate_detailed(_levir(tmp_path / "grey", Image.fromarray(_square())), model=DiffPredictor())
    rgb = evaluate_detailed(_levir(tmp_path / "rgb", Image.fromarray(_square()).convert("RGB")),
                            model=DiffPredictor())
    assert (rgb.tp, rgb.fp, rgb.fn, rgb.tn) == (grey.tp, grey.fp, grey.fn, grey.tn) == (144, 0, 0, 880)
    colour = np.zeros((32, 32, 3), np.uint8)
    colour[..., 0] = 255  # red: no change
    colour[_square() > 0] = (0, 255, 0)  # green: change; the code before read the red band, all 'change'
    root = _levir(tmp_path / "colour", Image.fromarray(colour))
    with pytest.raises(DatasetError, match=r"label '.*p\.png' has 3 bands that differ"):
        evaluate_detailed(root, model=DiffPredictor())


def test_a_0_1_jpeg_label_that_rings_to_2_is_not_read_as_no_change(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str],
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(1)
    y = np.zeros((64, 64), np.uint8)
    for _ in range(6):
        r, c = rng.integers(0, 50, 2)
        y[r:r + 9, c:c + 13] = 1
    buf = io.BytesIO()
    Image.fromarray(y).save(buf, format="JPEG", quality=75)
    ringed = np.asarray(Image.open(buf))
    assert ringed.max() == 2, "this libjpeg no longer rings this label to 2: choose another"
    root = tmp_path / "l"
    for sub in ("A", "B", "label"):
        (root / sub).mkdir(parents=True)
    a = np.full((64, 64, 3), 60, np.uint8)
    b = a.copy()
    b[y > 0] = 250
    Image.fromarray(a).save(root / "A" / "p.png")
    Image.fromarray(b).save(root / "B" / "p.png")
    (root / "label" / "p.jpg").write_bytes(buf.getvalue())
    result = evaluate_detailed(root, model=DiffPredictor())
    # the code before took a maximum above 1 for a 0/255 label and cut at 128: no change at all (tp 0)
    assert result.tp + result.fn == int((ringed > 0).sum()) > 0
    caplog.clear()
    code, out, _ = _run(capsys, "evaluate", root, "--model", "cva", "--json")
    assert code == 0 and set(json.loads(out)) == {"precision", "recall", "f1", "iou", "n_images"}  # stdout: JSON
    said = [r.getMessage() for r in caplog.records if "JPEG of 0/1 values" in r.getMessage()]
    assert len(said) == 1 and "p.jpg" in said[0] and "save labels as PNG" in said[0]


def test_a_jpeg_0_255_label_is_still_cut_halfway(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(_square()).save(buf, format="JPEG", quality=75)
    root = _levir(tmp_path / "l", Image.open(buf), ext="jpg")
    result = evaluate_detailed(root, model=DiffPredictor())
    assert result.tp + result.fn == int((np.asarray(Image.open(buf)) > 127).sum())


def _tif(path: Path, data: np.ndarray, dtype: str = "uint8") -> None:
    data = data if data.ndim == 3 else data[None]
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=dtype, crs="EPSG:32631", transform=from_origin(500000, 5000000, 10, 10)) as dst:
        dst.write(data.astype(dtype))


def test_a_levir_pair_of_different_sizes_names_its_files(tmp_path: Path) -> None:
    root = tmp_path / "l"
    _tif(root / "A" / "x.tif", np.full((3, 40, 40), 50))
    _tif(root / "B" / "x.tif", np.full((3, 44, 40), 50))
    _tif(root / "label" / "x.tif", np.zeros((40, 40)))
    with pytest.raises(DatasetError, match=r"B '.*B/x\.tif' 44x40.*crop or resample"):
        evaluate_detailed(root, model=DiffPredictor())


def _oscd(root: Path, size: tuple[int, int] = (40, 50)) -> Path:
    for d in ("imgs_1", "imgs_2"):
        for band in ("B02", "B03", "B04", "B08"):
            _tif(root / "images" / "c1" / d / f"S2X_{band}.tif", np.full(size, 900), dtype="uint16")
    cm = np.ones(size)
    cm[10:20, 10:20] = 2
    _tif(root / "labels" / "c1" / "cm" / "c1-cm.tif", cm)
    return root


def test_an_oscd_band_of_another_area_is_named_not_stretched(tmp_path: Path) -> None:
    root = _oscd(tmp_path / "o")
    assert evaluate_detailed(root, model="cva").n_images == 1
    # 30x30 pixels at 10 m under a 40x50 map: the code before stretched it over the map without a word
    _tif(root / "images" / "c1" / "imgs_2" / "S2X_B04.tif", np.full((30, 30), 900), dtype="uint16")
    with pytest.raises(DatasetError, match=r"band B04 '.*imgs_2/S2X_B04\.tif' is 30x30 pixels"):
        evaluate_detailed(root, model="cva")
    # a 20 m band of a city of odd size (OSCD: 399x393 under 799x785) is read onto the map's grid
    _tif(root / "images" / "c1" / "imgs_2" / "S2X_B04.tif", np.full((20, 25), 900), dtype="uint16")
    assert evaluate_detailed(root, model="cva").n_images == 1
    # and so is a date of the same bounds in a few pixels fewer (OSCD's abudhabi: 795x782 under 799x785)
    _tif(root / "images" / "c1" / "imgs_2" / "S2X_B04.tif", np.full((39, 49), 900), dtype="uint16")
    assert evaluate_detailed(root, model="cva").n_images == 1


# -- training's readers ---------------------------------------------------------------------
def test_training_reads_levir_labels_as_evaluate_does(tmp_path: Path) -> None:
    from changedetect.training.datasets import load_levir

    good = load_levir(_levir(tmp_path / "good", Image.fromarray(_square()).convert("RGB")))
    assert len(good) == 1 and int(good[0].label.sum()) == 144
    y = _square()
    y[0:4, 0:4] = 128
    with pytest.raises(DatasetError, match=r"label '.*p\.png' holds the values 0, 128, 255"):
        load_levir(_levir(tmp_path / "grey3", Image.fromarray(y)))  # was 'anything > 0 is change'
    root = _levir(tmp_path / "unlabelled", Image.fromarray(_square()))
    (root / "label" / "p.png").rename(root / "label" / "q.png")
    with pytest.raises(DatasetError, match="have no label"):  # was FileNotFoundError: 'Internal error'
        load_levir(root)


def test_training_on_an_oscd_root_of_other_cities_names_the_config_s_cities(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _oscd(tmp_path / "MyOSCD")
    # the shipped s2-urban config's cities: was "OSCD label '.../labels/abudhabi/cm/abudhabi-cm.tif' is missing"
    code, out, err = _run(capsys, "train", root, "--out", tmp_path / "m", "--steps", "1", "--device", "cpu")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "are not in" in err and "(it has ['c1'])" in err and "abudhabi" in err and "train_groups" in err
    assert not (tmp_path / "m").exists()


def test_a_model_evaluated_on_pixels_it_was_not_made_for_is_warned_of_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "l"  # two GeoTIFF pairs of 10 m pixels: the detect command warns, evaluate said nothing
    for name in ("x", "y"):
        _tif(root / "A" / f"{name}.tif", np.full((3, 40, 40), 50))
        _tif(root / "B" / f"{name}.tif", np.full((3, 40, 40), 90))
        _tif(root / "label" / f"{name}.tif", _square(40))
    caplog.clear()
    evaluate_detailed(root, model="vhr-building")
    said = [r.getMessage() for r in caplog.records if "is made for" in r.getMessage()]
    assert len(said) == 1 and "'vhr-building' is made for 0.3-1 m pixels" in said[0] and "A/x.tif" in said[0]
    assert "10.00 m pixels" in said[0] and "--model s2-urban" in said[0]
    caplog.clear()
    evaluate_detailed(_oscd(tmp_path / "o"), model="s2-urban")  # 10 m: its own
    assert not [r for r in caplog.records if "is made for" in r.getMessage()]


@pytest.mark.parametrize("json_out", [False, True])
def test_evaluate_q_still_says_the_model_is_made_for_other_pixels(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], json_out: bool) -> None:
    """-q drops log lines: the warning is a Warning: line on stderr after the scores (before 2026-12-03
    ``evaluate -q`` said nothing); with --json, stdout stays the one object."""
    root = tmp_path / "l"
    for name in ("x", "y"):
        _tif(root / "A" / f"{name}.tif", np.full((3, 40, 40), 50))
        _tif(root / "B" / f"{name}.tif", np.full((3, 40, 40), 90))
        _tif(root / "label" / f"{name}.tif", _square(40))
    code, out, err = _run(capsys, "-q", "evaluate", root, "--model", "vhr-building", *(["--json"] if json_out else []))
    assert code == 0, err
    lines = [x for x in err.splitlines() if x.startswith("Warning: model 'vhr-building' is made for 0.3-1 m")]
    assert len(lines) == 1 and "10.00 m pixels" in lines[0], err
    if json_out:
        assert set(json.loads(out)) == {"precision", "recall", "f1", "iou", "n_images"}


def test_a_training_cache_cut_short_is_named_not_an_internal_error(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from changedetect.training.datasets import LabelledImage, load_cache, save_cache

    mask = _square(48) > 0
    images = [LabelledImage(f"im{k}", np.full((3, 48, 48), 90, np.uint8), mask, 0.5, g, np.ones((48, 48), bool))
              for k, g in enumerate(("a", "a", "held"))]
    whole = save_cache(tmp_path / "whole.npz", images=images)
    cut = tmp_path / "cut.npz"  # a copy stopped half way
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(DatasetError, match=r"training cache '.*cut\.npz' cannot be read \(BadZipFile"):
        load_cache(cut)
    toml = tmp_path / "t.toml"
    toml.write_text(f'name = "tiny"\ncache = "{cut}"\ntrain_groups = ["a"]\nval_groups = ["held"]\nsteps = 1\n'
                    'batch_size = 2\nval_pairs = 1\nlevir = ""\n[arch_kwargs]\nwidths = [8, 16, 16]\n'
                    'depths = [0, 1, 1]\ndecoder_width = 8\n[synth]\nsize = 32\n')
    # the code before: "Internal error: BadZipFile: File is not a zip file ... This is a bug"
    code, out, err = _run(capsys, "train", toml, "--out", tmp_path / "m", "--device", "cpu")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "cut.npz' cannot be read" in err
    assert "delete it to rebuild it" in err and not (tmp_path / "m").exists()
