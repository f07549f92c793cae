"""``changedetect export``: one ONNX graph with the normalisation, equal to torch's predictions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from test_weights import tiny_model  # noqa: F401  (fixture)

import changedetect.cli as cdcli
from changedetect.errors import ModelError, OutputExistsError
from changedetect.export import INPUTS, export_onnx
from changedetect.weights import compute_stats, load_model

ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install '.[onnx]')")


def _pair(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    before = (rng.random((3, h, w)) * 200 + 20).astype(np.float32)
    after = before.copy()
    after[:, 10:40, 20:50] = 255 - after[:, 10:40, 20:50]
    after[1, :4, :] = np.nan  # no data in one band
    return before, after


def test_the_graph_normalises_and_predicts_as_torch_does(tiny_model: Path, tmp_path: Path) -> None:  # noqa: F811
    summary = export_onnx(tiny_model, tmp_path / "deploy")
    folder = tmp_path / "deploy"
    assert sorted(p.name for p in folder.iterdir()) == ["MODEL_CARD.md", "export.json", "model.onnx"]
    meta = json.loads((folder / "export.json").read_text())
    assert meta["bands"] == ["red", "green", "blue"] and meta["size_multiple"] == 32
    assert meta["onnx_sha256"] == summary.onnx_sha256 and list(meta["inputs"]) == list(INPUTS)
    assert summary.max_abs_diff is not None and summary.max_abs_diff < 1e-5
    # a window of another size and batch than the export's example, with each date's own statistics
    before, after = _pair(64, 96)
    sb, sa = compute_stats(before), compute_stats(after)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    feed = dict(zip(INPUTS, [before[None], after[None], sb.mean[None], sb.std[None], sa.mean[None], sa.std[None]],
                        strict=True))
    got = session.run(None, feed)[0]
    want = load_model(tiny_model).predict(before, after, stats_before=sb, stats_after=sa)
    assert got.shape == (1, 1, 64, 96) and np.isfinite(got).all()
    np.testing.assert_allclose(got[0, 0], want, atol=1e-5)
    # the statistics are inputs, not constants: other statistics, other probabilities
    feed["mean_after"] = feed["mean_after"] + 50
    assert np.abs(session.run(None, feed)[0] - got).max() > 1e-3
    # two pairs at once
    two = {k: np.concatenate([v, v]) for k, v in feed.items()}
    assert session.run(None, two)[0].shape == (2, 1, 64, 96)


def test_a_card_with_a_transform_exports_it_inside_the_graph(tiny_model: Path, tmp_path: Path) -> None:  # noqa: F811
    import shutil

    shutil.copytree(tiny_model, tmp_path / "tiny_sqrt")  # the same weights, a card naming the sqrt transform
    meta_path = tmp_path / "tiny_sqrt" / "metadata.json"
    card = json.loads(meta_path.read_text())
    card["normalization"]["transform"] = "sqrt"
    meta_path.write_text(json.dumps(card))
    export_onnx(tmp_path / "tiny_sqrt", tmp_path / "deploy")
    meta = json.loads((tmp_path / "deploy" / "export.json").read_text())
    assert meta["normalization"]["transform"] == "sqrt" and "sqrt" in meta["statistics"]
    before, after = _pair(64, 64)
    model = load_model(tmp_path / "tiny_sqrt")
    sb, sa = model.card.compute_stats(before), model.card.compute_stats(after)
    session = ort.InferenceSession(str(tmp_path / "deploy" / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, dict(zip(INPUTS, [before[None], after[None], sb.mean[None], sb.std[None],
                                              sa.mean[None], sa.std[None]], strict=True)))[0][0, 0]
    np.testing.assert_allclose(got, model.predict(before, after, stats_before=sb, stats_after=sa), atol=1e-5)
    # without the transform in the graph the same inputs would give other probabilities
    plain = load_model(tiny_model).predict(before, after, stats_before=sb, stats_after=sa)
    assert np.abs(got - plain).max() > 1e-3


def test_an_existing_output_is_kept_unless_overwrite_and_a_failure_leaves_nothing(
        tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    out = tmp_path / "deploy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        export_onnx(tiny_model, out, check=False)
    assert (out / "keep.txt").read_text() == "mine"
    import torch

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("exporter failed")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(RuntimeError, match="exporter failed"):
        export_onnx(tiny_model, out, overwrite=True, check=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy", "tiny"]  # no temporary folder left
    assert (out / "keep.txt").read_text() == "mine"  # the old output untouched
    monkeypatch.undo()
    export_onnx(tiny_model, out, overwrite=True, check=False)  # replaces an export's files, keeps the user's
    assert sorted(p.name for p in out.iterdir()) == ["MODEL_CARD.md", "export.json", "keep.txt", "model.onnx"]
    assert json.loads((out / "export.json").read_text())["checked"] is None


def test_without_the_onnx_extra_the_message_says_what_to_install(
        tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    with pytest.raises(ModelError, match=r"pip install -e '\.\[onnx\]' in the changedetect checkout, or pip install onnx onnxruntime"):
        export_onnx(tiny_model, tmp_path / "deploy")
    assert not (tmp_path / "deploy").exists()


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit code and output of ``changedetect ARGS`` (through main: errors are exit codes)."""
    code: int | str | None = 0
    try:
        cdcli.main(args)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return int(code or 0), captured.out + captured.err


def test_cli_export(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    out = tmp_path / "deploy"
    code, text = _cli(["export", str(tiny_model), "--out", str(out), "--json"], capsys)
    assert code == 0, text
    data = json.loads(text)
    assert data["model"] == "tiny" and data["bands"] == ["red", "green", "blue"] and data["max_abs_diff"] < 1e-5
    code, text = _cli(["export", str(tiny_model), "--out", str(out)], capsys)
    assert code == 2 and "--overwrite" in text and "Traceback" not in text
    code, text = _cli(["export", str(tiny_model), "--out", str(out), "--overwrite", "--no-check"], capsys)
    assert code == 0 and "model.onnx" in text
    code, text = _cli(["export", "no-such-model", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "unknown model" in text and not (tmp_path / "x").exists()
    code, text = _cli(["export", "--help"], capsys)
    assert code == 0 and "Examples:" in text
