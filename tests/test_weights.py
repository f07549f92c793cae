"""Model cards, normalisation, and the sha256 check on load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from changedetect.errors import ModelError
from changedetect.nn import get_model
from changedetect.weights import (
    ModelCard,
    apply_transform,
    compute_stats,
    list_shipped,
    load_model,
    read_card,
    save_model,
)

CARD = ModelCard(name="tiny", version="0.0.1", arch="siamese_unet", bands=("red", "green", "blue"),
                 band_aliases={"red": ["B04"], "green": ["B03"], "blue": ["B02"]},
                 arch_kwargs={"widths": [8, 16, 16], "depths": [0, 1, 1], "decoder_width": 8})


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    module = get_model(CARD.arch, in_channels=3, **CARD.arch_kwargs)
    folder = tmp_path / "tiny"
    save_model(module, CARD, folder)
    return folder


def test_save_then_load_round_trip(tiny_model: Path) -> None:
    card = read_card(tiny_model)
    assert len(card.sha256) == 64
    assert card.bands == ("red", "green", "blue")
    assert (tiny_model / "MODEL_CARD.md").read_text().startswith("# tiny")
    loaded = load_model(tiny_model)
    rng = np.random.default_rng(0)
    prob = loaded.predict(rng.random((3, 48, 48)), rng.random((3, 48, 48)))
    assert prob.shape == (48, 48)
    assert np.all((prob >= 0) & (prob <= 1))


def test_tampered_weights_are_refused(tiny_model: Path) -> None:
    w = tiny_model / "weights.pt"
    data = bytearray(w.read_bytes())
    data[-10] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256.*restore them"):
        load_model(tiny_model)


def test_unknown_name_lists_available(monkeypatch: pytest.MonkeyPatch, tiny_model: Path) -> None:
    monkeypatch.setenv("CHANGEDETECT_MODELS", str(tiny_model.parent))
    assert "tiny" in [c.name for c in list_shipped()]
    with pytest.raises(ModelError, match=r"unknown model 'nope'.*tiny"):
        load_model("nope")
    assert load_model("tiny").card.name == "tiny"


def test_card_json_round_trip(tiny_model: Path) -> None:
    data = json.loads((tiny_model / "metadata.json").read_text())
    assert ModelCard.from_dict(data) == read_card(tiny_model)
    with pytest.raises(ModelError, match="lacks arch"):
        ModelCard.from_dict({"name": "x", "version": "1", "bands": ["a"]})


def test_band_indices_use_aliases_and_name_what_is_missing() -> None:
    assert CARD.band_indices(["B02", "B03", "B04", "B08"]) == [2, 1, 0]
    assert CARD.band_indices(["Blue", "Green", "Red"]) == [2, 1, 0]
    with pytest.raises(ModelError, match=r"blue \(or B02\)"):
        CARD.band_indices(["red", "green", "nir"])


def test_scene_statistics_make_windows_agree() -> None:
    rng = np.random.default_rng(1)
    scene = rng.normal(100, 20, (3, 256, 256)).astype(np.float32)
    scene[:, :10, :10] = np.nan
    stats = compute_stats(scene)
    np.testing.assert_allclose(stats.mean, 100, atol=1.5)
    whole = CARD.preprocess(scene, stats)
    window = CARD.preprocess(scene[:, 100:164, 100:164], stats)
    np.testing.assert_array_equal(whole[:, 100:164, 100:164], window)
    assert np.isfinite(whole).all() and whole[0, 0, 0] == 0.0


def test_constant_band_does_not_divide_by_zero() -> None:
    stats = compute_stats(np.full((2, 8, 8), 5.0))
    np.testing.assert_array_equal(stats.std, [1.0, 1.0])


def test_sqrt_transform_is_free_of_the_data_scale_and_keeps_contrast_in_shadow() -> None:
    from dataclasses import replace

    card = replace(CARD, normalization={**CARD.normalization, "transform": "sqrt"})
    rng = np.random.default_rng(3)
    scene = rng.uniform(20, 220, (3, 128, 128)).astype(np.float32)
    scene[:, 40:80, 40:80] *= 0.3  # a shadow keeps 30 % of the light
    scene[0, :3, :3] = np.nan
    x = card.preprocess(scene, card.compute_stats(scene))
    # DN, 0-1 floats and reflectance x 10,000 give the same network input
    for scale in (1 / 255, 10_000 / 255):
        y = card.preprocess(scene * scale, card.compute_stats(scene * scale))
        np.testing.assert_allclose(y, x, atol=2e-4)
    # the statistics are those of the transformed scene, computed windows agree with the whole
    stats = card.compute_stats(scene)
    np.testing.assert_allclose(stats.mean, np.nanmean(np.sqrt(np.clip(scene, 0, None)), axis=(1, 2)), rtol=0.02)
    np.testing.assert_array_equal(card.preprocess(scene[:, 30:90, 30:90], stats), x[:, 30:90, 30:90])
    # inside the shadow the spread (relative to the whole scene's) is sqrt(0.3), not 0.3
    plain = CARD.preprocess(scene, CARD.compute_stats(scene))
    ratio_sqrt = x[:, 40:80, 40:80].std() / x[:, 90:, 90:].std()
    ratio_plain = plain[:, 40:80, 40:80].std() / plain[:, 90:, 90:].std()
    assert ratio_plain < 0.4 < 0.45 < ratio_sqrt
    assert x[0, 0, 0] == 0.0 and np.isfinite(x).all()
    np.testing.assert_array_equal(apply_transform(np.array([-4.0, 0.0, 9.0]), "sqrt"), [0.0, 0.0, 3.0])


def test_an_unknown_transform_is_refused_with_the_choices() -> None:
    from dataclasses import replace

    card = replace(CARD, normalization={**CARD.normalization, "transform": "log"})
    with pytest.raises(ModelError, match=r"unknown normalization transform 'log' \(expected one of \['none', 'sqrt'\]\)"):
        card.preprocess(np.ones((3, 8, 8)))
    with pytest.raises(ModelError, match="unknown normalization transform"):
        apply_transform(np.ones(3), "gamma")


def test_preprocess_checks_band_count() -> None:
    with pytest.raises(ModelError, match=r"expects \(3, h, w\)"):
        CARD.preprocess(np.zeros((4, 8, 8)))


@pytest.mark.parametrize("name", ["vhr-building", "s2-urban"])
def test_shipped_models_load_and_predict(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHANGEDETECT_MODELS", raising=False)
    loaded = load_model(name)
    card = loaded.card
    assert card.name == name and len(card.sha256) == 64
    assert (loaded.path / "weights.pt").stat().st_size < 10_000_000
    assert (loaded.path / "MODEL_CARD.md").is_file()
    assert "floor_f1" in next(m for m in card.metrics.values() if isinstance(m, dict) and "f1" in m)
    a = torch.rand(1, len(card.bands), 72, 88)
    with torch.no_grad():
        out = loaded.module(a, a.flip(-1))
    assert out.shape == (1, 1, 72, 88)
    rng = np.random.default_rng(0)
    x = rng.random((len(card.bands), 64, 64)).astype(np.float32)
    assert loaded.predict(x, x).max() < 0.5  # identical dates: no change


def test_models_cli_lists_both_models_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from changedetect.cli import cli

    monkeypatch.delenv("CHANGEDETECT_MODELS", raising=False)
    res = CliRunner().invoke(cli, ["models", "--json"])
    assert res.exit_code == 0, res.output
    names = [c["name"] for c in json.loads(res.output)]
    assert {"vhr-building", "s2-urban"} <= set(names)
    res = CliRunner().invoke(cli, ["models", "s2-urban"])
    assert res.exit_code == 0 and "NON-COMMERCIAL" in res.output
    res = CliRunner().invoke(cli, ["models", "nope"])
    assert isinstance(res.exception, ModelError)



def test_models_cli_without_any_model_says_where_it_looked_and_fails(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken install (no models anywhere) is not a quiet empty listing with status 0."""
    from click.testing import CliRunner

    from changedetect.cli import cli

    empty = tmp_path / "none"
    empty.mkdir()
    monkeypatch.delenv("CHANGEDETECT_MODELS", raising=False)
    monkeypatch.setattr("changedetect.weights.shipped_dir", lambda: empty)
    res = CliRunner().invoke(cli, ["models"])
    assert res.exit_code == 1
    assert "no models found in" in res.output and str(empty) in res.output
    assert "CHANGEDETECT_MODELS" in res.output
    res = CliRunner().invoke(cli, ["models", "--json"])
    assert res.exit_code == 1 and res.output.startswith("[]")

def test_saved_model_files_get_the_usual_permissions(tmp_path: Path) -> None:
    import os
    import stat

    old = os.umask(0o022)
    try:
        module = get_model(CARD.arch, in_channels=3, **CARD.arch_kwargs)
        save_model(module, CARD, tmp_path / "m")
    finally:
        os.umask(old)
    for name in ("weights.pt", "metadata.json", "MODEL_CARD.md"):
        assert stat.S_IMODE((tmp_path / "m" / name).stat().st_mode) == 0o644, name
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["MODEL_CARD.md", "metadata.json", "weights.pt"]


def test_a_broken_card_in_a_folder_of_ones_own_is_not_said_to_come_from_git(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's model folder (in CHANGEDETECT_MODELS) with a broken card was told to 'restore it from git'."""
    from changedetect.weights import _restore, find_model, read_card, shipped_dir

    (tmp_path / "vhr-building").mkdir()
    (tmp_path / "vhr-building" / "metadata.json").write_text("{bad", encoding="utf-8")
    monkeypatch.setenv("CHANGEDETECT_MODELS", str(tmp_path))
    with pytest.raises(ModelError, match="not a shipped model: its folder is yours") as err:
        read_card(find_model("vhr-building"))
    assert "from git" not in str(err.value)
    assert _restore(shipped_dir() / "vhr-building" / "metadata.json") == "from git"  # a checkout's own model
