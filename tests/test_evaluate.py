"""The evaluation harness: layouts, pooled counts, floors, errors and the CLI's JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _fakes import DiffPredictor
from click.testing import CliRunner
from PIL import Image

from changedetect.cli import cli
from changedetect.errors import DatasetError
from changedetect.evaluate import evaluate, evaluate_detailed


def _levir(root: Path, label_max: int = 255) -> Path:
    """Two 8x8 pairs with hand-made changes and labels."""
    for sub in ("A", "B", "label"):
        (root / sub).mkdir(parents=True)
    a = np.zeros((8, 8, 3), np.uint8)
    # pair 1: change predicted on rows 0-1 (16 px); label rows 1-2 (16 px) -> tp 8, fp 8, fn 8
    b1 = a.copy()
    b1[0:2] = 255
    y1 = np.zeros((8, 8), np.uint8)
    y1[1:3] = label_max
    # pair 2: change predicted on 4 px, all labelled -> tp 4
    b2 = a.copy()
    b2[7, 4:8] = 255
    y2 = np.zeros((8, 8), np.uint8)
    y2[7, 4:8] = label_max
    for name, b, y in (("p1", b1, y1), ("p2", b2, y2)):
        Image.fromarray(a).save(root / "A" / f"{name}.png")
        Image.fromarray(b).save(root / "B" / f"{name}.png")
        Image.fromarray(y).save(root / "label" / f"{name}.png")
    return root


@pytest.mark.parametrize("label_max", [255, 1])
def test_levir_pooled_counts_by_hand(tmp_path: Path, label_max: int) -> None:
    root = _levir(tmp_path / "levir", label_max)
    result = evaluate_detailed(root, model=DiffPredictor())
    assert (result.tp, result.fp, result.fn, result.tn) == (12, 8, 8, 100)
    s = result.scores()
    assert s["precision"] == pytest.approx(12 / 20) and s["recall"] == pytest.approx(12 / 20)
    assert s["f1"] == pytest.approx(24 / 40) and s["iou"] == pytest.approx(12 / 28)
    assert s["n_images"] == 2
    # floor: everything changed -> precision = positives / pixels = 20/128
    assert result.floor()["precision"] == pytest.approx(20 / 128)
    assert result.floor()["recall"] == 1.0


def test_bad_layouts_name_what_is_missing(tmp_path: Path) -> None:
    root = _levir(tmp_path / "levir")
    (root / "B" / "p2.png").unlink()
    with pytest.raises(DatasetError, match=r"p2.png' has no matching image in .*B"):
        evaluate(root, model=DiffPredictor())
    empty = tmp_path / "empty"
    (empty / "A").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no 'B/' folder"):
        evaluate(empty, model=DiffPredictor())
    oscd = tmp_path / "oscd"
    (oscd / "images").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no 'labels/' folder"):
        evaluate(oscd, model="cva")


def test_the_progress_bar_knows_how_many_pairs(tmp_path: Path) -> None:
    from changedetect.evaluate import _count_pairs

    assert _count_pairs(_levir(tmp_path / "levir"), False, None) == 2
    (tmp_path / "oscd" / "labels" / "paris").mkdir(parents=True)
    (tmp_path / "oscd" / "labels" / "lasvegas").mkdir()
    assert _count_pairs(tmp_path / "oscd", True, None) == 2 and _count_pairs(tmp_path / "oscd", True, ["paris"]) == 1
    assert _count_pairs(tmp_path / "nowhere", False, None) is None


def test_a_truncated_image_is_an_error_not_a_score(tmp_path: Path) -> None:
    """GDAL reads a cut PNG's missing rows as zeros: the pair was scored as if nothing changed."""
    root = _levir(tmp_path / "levir")
    big = (np.random.default_rng(0).random((256, 256, 3)) * 255).astype(np.uint8)
    for sub in ("A", "B"):
        Image.fromarray(big).save(root / sub / "p1.png")
    Image.fromarray(np.zeros((256, 256), np.uint8)).save(root / "label" / "p1.png")
    data = (root / "B" / "p1.png").read_bytes()
    (root / "B" / "p1.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"image '.*B/p1.png' is truncated or corrupt"):
        evaluate(root, model=DiffPredictor())


def test_cli_json_has_exactly_the_keys(tmp_path: Path) -> None:
    root = _levir(tmp_path / "levir")
    res = CliRunner().invoke(cli, ["evaluate", str(root), "--model", "cva", "--json"])
    assert res.exit_code == 0, res.output
    obj = json.loads(res.output)
    assert sorted(obj) == ["f1", "iou", "n_images", "precision", "recall"]
    assert obj["n_images"] == 2
    text = CliRunner().invoke(cli, ["-q", "evaluate", str(root), "--model", "cva"])
    assert "floor" in text.output and "f1" in text.output


@pytest.mark.shared_data
def test_oscd_layout_with_cva(shared_data: Path) -> None:
    root = shared_data / "oscd"
    result = evaluate_detailed(root, model="cva", cities=["paris", "rennes"])
    assert result.n_images == 2 and set(result.per_image) == {"paris", "rennes"}
    # labels are 1 = no change, 2 = change; paris has 458 changed pixels of 408 x 390
    paris = result.per_image["paris"]
    assert paris["tp"] + paris["fn"] == 458
    assert paris["tp"] + paris["fp"] + paris["fn"] + paris["tn"] == 408 * 390
    s = result.scores()
    assert s["f1"] > result.floor()["f1"]  # CVA beats "everything changed" there
    with pytest.raises(DatasetError, match="not in"):
        evaluate(root, model="cva", cities=["atlantis"])


@pytest.mark.shared_data
def test_levir_samples_with_cva(shared_data: Path) -> None:
    s = evaluate(shared_data / "levir_samples", model="cva")
    assert s["n_images"] == 11
    assert 0.0 < s["f1"] < 1.0


def test_cities_on_a_levir_folder_is_refused(tmp_path: Path) -> None:
    from changedetect.errors import DatasetError
    from changedetect.evaluate import iter_pairs

    root = _levir(tmp_path / "levir")
    with pytest.raises(DatasetError, match="LEVIR-style folder .* --cities"):
        list(iter_pairs(root, cities=["paris"]))
    assert len(list(iter_pairs(root))) > 0
