"""A tiny training run end to end (CPU, seconds), resuming, the config file, the CLI."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from changedetect.errors import ConfigError, OutputExistsError
from changedetect.training.config import TrainConfig
from changedetect.training.datasets import ChangePair, LabelledImage, load_cache, save_cache
from changedetect.training.synth import SynthConfig
from changedetect.training.train import train
from changedetect.weights import load_model, sha256_file

TINY = {"widths": [8, 16, 16], "depths": [0, 1, 1], "decoder_width": 8}


def _image(seed: int, group: str, size: int = 96) -> LabelledImage:
    rng = np.random.default_rng(seed)
    img = rng.integers(60, 120, (3, size, size)).astype(np.uint8)
    mask = np.zeros((size, size), bool)
    for _ in range(5):
        r, c = rng.integers(0, size - 12, 2)
        mask[r:r + 10, c:c + 8] = True
    img[:, mask] = 210
    return LabelledImage(f"im{seed}", img, mask, 0.5, group)


def _pair(seed: int, group: str, bands: int = 3, size: int = 64) -> ChangePair:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 255, (bands, size, size)).astype(np.uint8)
    b = a.copy()
    lab = np.zeros((size, size), bool)
    lab[20:30, 20:34] = True
    b[:, lab] = 250
    names = ("red", "green", "blue") if bands == 3 else ("B02", "B03", "B04", "B08")
    return ChangePair(f"p{seed}", a, b, lab, names, 0.5 if bands == 3 else 10.0, group)


@pytest.fixture
def vhr_config(tmp_path: Path) -> TrainConfig:
    cache = tmp_path / "cache.npz"
    save_cache(cache, images=[_image(1, "a"), _image(2, "a"), _image(3, "held")],
               pairs=[_pair(4, "levir"), _pair(5, "real")])
    return TrainConfig(name="tiny", arch_kwargs=TINY, cache=str(cache), train_groups=("a", "real"),
                       val_groups=("held",), steps=4, batch_size=2, checkpoint_every=2, val_pairs=2,
                       p_real=0.5, synth=SynthConfig(size=48, gsd_range_m=(0.5, 1.0)))


def test_cache_round_trip(tmp_path: Path) -> None:
    save_cache(tmp_path / "c.npz", images=[_image(1, "g")], pairs=[_pair(2, "levir")])
    images, pairs = load_cache(tmp_path / "c.npz")
    assert images[0].group == "g" and images[0].image.dtype == np.uint8
    assert pairs[0].bands == ("red", "green", "blue") and pairs[0].label.sum() == 140


def test_vhr_training_end_to_end(tmp_path: Path, vhr_config: TrainConfig) -> None:
    out = tmp_path / "model"
    card = train(vhr_config, out=out, progress=False, device="cpu", command="pytest")
    assert card is not None
    assert card.sha256 == sha256_file(out / "weights.pt")
    assert {"heldout_synth_held", "levir_samples"} <= set(card.metrics)
    assert 0 <= card.metrics["levir_samples"]["f1"] <= 1
    assert card.metrics["levir_samples"]["floor_f1"] > 0
    loaded = load_model(out)
    assert loaded.predict(np.zeros((3, 40, 40)), np.ones((3, 40, 40))).shape == (40, 40)


def test_a_pixel_transform_reaches_the_samples_and_the_card(tmp_path: Path, vhr_config: TrainConfig) -> None:
    from changedetect.training.loaders import VhrPairs, load_data, split
    from changedetect.weights import compute_stats

    cfg = replace(vhr_config, transform="sqrt", steps=2)
    parts = split(cfg, *load_data(cfg))
    plain = VhrPairs(parts["train_images"], parts["train_pairs"], vhr_config, length=4, seed=0)
    rooted = VhrPairs(parts["train_images"], parts["train_pairs"], cfg, length=4, seed=0)
    before = parts["train_pairs"][0].before.astype(np.float32) / 255
    np.testing.assert_allclose(rooted.real_stats[0][0].mean, compute_stats(np.sqrt(before)).mean, rtol=1e-6)
    np.testing.assert_allclose(plain.real_stats[0][0].mean, compute_stats(before).mean, rtol=1e-6)
    a_plain, a_rooted = plain[1][0].numpy(), rooted[1][0].numpy()  # the same sample, seen through each
    assert a_plain.shape == a_rooted.shape and not np.allclose(a_plain, a_rooted, atol=1e-3)
    card = train(cfg, out=tmp_path / "model", progress=False, device="cpu", command="pytest")
    assert card is not None and card.normalization["transform"] == "sqrt"
    assert load_model(tmp_path / "model").card.transform == "sqrt"
    with pytest.raises(ConfigError, match=r"transform must be one of \['none', 'sqrt'\], got 'log'"):
        replace(vhr_config, transform="log")


def test_interrupted_run_resumes_to_the_same_weights(tmp_path: Path, vhr_config: TrainConfig) -> None:
    cfg = replace(vhr_config, val_pairs=1)
    whole = train(cfg, out=tmp_path / "whole", progress=False, device="cpu")
    out = tmp_path / "split"
    assert train(cfg, out=out, progress=False, device="cpu", stop_after=2) is None
    assert not (out / "weights.pt").exists() and (out / "checkpoints" / "last.pt").is_file()
    resumed = train(cfg, out=out, progress=False, device="cpu")
    steps = [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert steps == [2, 4]
    assert whole is not None and resumed is not None and resumed.sha256 == whole.sha256
    with pytest.raises(ConfigError, match="resume with --steps 4"):
        train(replace(cfg, steps=6), out=out, progress=False, device="cpu")


def test_same_seed_same_weights(tmp_path: Path, vhr_config: TrainConfig) -> None:
    cfg = replace(vhr_config, steps=2, val_pairs=1)
    a = train(cfg, out=tmp_path / "a", progress=False, device="cpu")
    b = train(cfg, out=tmp_path / "b", progress=False, device="cpu")
    assert a is not None and b is not None and a.sha256 == b.sha256


def test_s2_training_runs(tmp_path: Path) -> None:
    cache = tmp_path / "s2.npz"
    save_cache(cache, pairs=[_pair(1, "x", bands=4), _pair(2, "y", bands=4)])
    cfg = TrainConfig(name="s2tiny", task="s2", arch="siamese_unet_s2", bands=("B02", "B03", "B04", "B08"),
                      arch_kwargs={"widths": [8, 16], "depths": [0, 1], "decoder_width": 8},
                      cache=str(cache), train_groups=("x",), val_groups=("y",), steps=2,
                      batch_size=2, crop=32, checkpoint_every=2)
    card = train(cfg, out=tmp_path / "s2", progress=False, device="cpu")
    assert card is not None and card.metrics["heldout_cities"]["n_images"] == 1


def test_toml_round_trip_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "t.toml"
    p.write_text('name = "x"\nsteps = 7\ncache = "sub/c.npz"\nbands = ["red", "green", "blue"]\n'
                 '[synth]\nsize = 64\n[band_aliases]\nred = ["B04"]\n')
    cfg = TrainConfig.from_toml(p)
    assert cfg.steps == 7 and cfg.synth.size == 64 and cfg.bands == ("red", "green", "blue")
    assert Path(cfg.cache) == (tmp_path / "sub" / "c.npz").resolve()
    p.write_text("stepz = 3\n")
    with pytest.raises(ConfigError, match="stepz"):
        TrainConfig.from_toml(p)
    p.write_text("[synth]\nsise = 3\n")
    with pytest.raises(ConfigError, match="sise"):
        TrainConfig.from_toml(p)


def test_shipped_configs_parse(repo_root: Path) -> None:
    for name in ("vhr-building", "s2-urban"):
        cfg = TrainConfig.from_toml(repo_root / "models" / name / "train.toml")
        assert cfg.name == name
        assert not set(cfg.train_groups) & set(cfg.val_groups)
        assert "levir" not in cfg.train_groups
    for extra in ("finetune.toml",):  # the shipped fine-tune (0.4.0: with first -> last pairs)
        cfg = TrainConfig.from_toml(repo_root / "models" / "vhr-building" / extra)
        assert not set(cfg.train_groups) & set(cfg.val_groups) and "levir" not in cfg.train_groups
        assert cfg.version == "0.4.0" and any(g.endswith("_13") for g in cfg.train_groups)
        # the sample city's held-out pair never trains, neither alone nor inside its first -> last pair
        assert not {"sample_city_2", "sample_city_13"} & set(cfg.train_groups)
        assert not any(g.startswith("gen_city_12_") for g in cfg.train_groups)


def test_cli_trains_and_refuses_to_overwrite(tmp_path: Path, vhr_config: TrainConfig) -> None:
    from click.testing import CliRunner

    from changedetect.cli import cli

    toml = tmp_path / "tiny.toml"
    toml.write_text(f'name = "tiny"\ncache = "{vhr_config.cache}"\ntrain_groups = ["a"]\n'
                    'val_groups = ["held"]\nsteps = 2\nbatch_size = 2\ncheckpoint_every = 2\n'
                    'val_pairs = 1\nlevir = ""\n[arch_kwargs]\nwidths = [8, 16, 16]\n'
                    'depths = [0, 1, 1]\ndecoder_width = 8\n[synth]\nsize = 48\n')
    out = tmp_path / "m"
    res = CliRunner().invoke(cli, ["-q", "train", str(toml), "--out", str(out), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "floor" in res.output and (out / "weights.pt").is_file()
    res = CliRunner().invoke(cli, ["-q", "train", str(toml), "--out", str(out), "--no-resume"])
    assert isinstance(res.exception, OutputExistsError)


def test_init_from_starts_from_given_weights(tmp_path: Path, vhr_config: TrainConfig) -> None:
    import torch

    cfg = replace(vhr_config, steps=2, val_pairs=1)
    assert train(cfg, out=tmp_path / "base", progress=False, device="cpu") is not None
    frozen = replace(cfg, init_from=str(tmp_path / "base"), lr=1e-12, weight_decay=0.0, seed=5)
    assert train(frozen, out=tmp_path / "ft", progress=False, device="cpu") is not None
    a = torch.load(tmp_path / "base" / "weights.pt", weights_only=True)
    b = torch.load(tmp_path / "ft" / "weights.pt", weights_only=True)
    convs = [k for k, v in a.items() if k.endswith("weight") and v.ndim == 4]
    assert convs and all(torch.allclose(a[k], b[k], atol=1e-6) for k in convs)


def test_hard_pos_boost_weights_missed_changes_more() -> None:
    import torch

    from changedetect.training.train import loss_fn

    target = torch.zeros(1, 1, 4, 4)
    target[..., :2, :] = 1.0
    logits = torch.zeros(1, 1, 4, 4)
    logits[..., 0, :] = 6.0   # found positives
    logits[..., 1, :] = -6.0  # missed positives
    logits[..., 2:, :] = -6.0  # right negatives
    plain = TrainConfig(task="vhr", dice_weight=0.0)
    boosted = replace(plain, hard_pos_boost=4.0)
    base, more = float(loss_fn(logits, target, plain)), float(loss_fn(logits, target, boosted))
    # the missed row's BCE (about 6 per pixel, a quarter of the pixels) counts about 1 + 4 times
    miss_bce, miss_p = math.log1p(math.exp(6.0)), 1 / (1 + math.exp(6.0))
    assert more == pytest.approx(base + 4 * (1 - miss_p) ** 2 * miss_bce / 4, rel=1e-3)
    found_only = logits.clone()
    found_only[..., 1, :] = 6.0
    assert float(loss_fn(found_only, target, boosted)) == pytest.approx(float(loss_fn(found_only, target, plain)),
                                                                         rel=1e-3)
    # the weight is not differentiated: the gradient is BCE's, scaled per pixel by the weight
    x = logits.clone().requires_grad_(True)
    loss_fn(x, target, boosted).backward()
    p = torch.sigmoid(logits)
    weight = 1 + 4.0 * target * (1 - p) ** 2
    assert torch.allclose(x.grad, weight * (p - target) / target.numel(), atol=1e-7)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ConfigError, match="hard_pos_boost"):
            TrainConfig(task="vhr", hard_pos_boost=bad)


def test_building_segmenter_stage_trains_and_loads(tmp_path: Path, repo_root: Path) -> None:
    import torch

    from changedetect.training.buildings import BuildingConfig, train_buildings

    save_cache(tmp_path / "cache.npz", images=[_image(7, "fair_oam_1", size=160), _image(8, "fair_oam_2", size=160)])
    init = repo_root / "models" / "vhr-building" / "stage1"
    cfg = BuildingConfig(init_from=str(init), cities=str(tmp_path / "cities"), seeds=(5, 5), size=128,
                         cache=str(tmp_path / "cache.npz"), steps=2, batch_size=2, chip=96, threads=1)
    info = train_buildings(cfg, tmp_path / "seg", progress=False)
    assert info["generated_dates"] == 3 and info["real_mosaics"] == 1  # the held-out area is not used
    seg = load_model(tmp_path / "seg", fold_bn=False, channels_last=False)
    assert seg.card.sha256 == sha256_file(tmp_path / "seg" / "weights.pt")
    assert seg.card.name == "vhr-building-buildings" and seg.card.bands == ("red", "green", "blue")
    start = load_model(init, fold_bn=False, channels_last=False).module.state_dict()
    moved = [k for k, v in seg.module.state_dict().items() if v.dtype.is_floating_point
             and not torch.equal(v, start[k])]
    assert moved  # two optimiser steps changed the weights
    again = train_buildings(cfg, tmp_path / "seg2", progress=False)
    assert again["generated_dates"] == 3  # the generated city is reused, not regenerated
    assert sha256_file(tmp_path / "seg2" / "weights.pt") == seg.card.sha256  # seeded: the same weights


def test_building_segmenter_stage_needs_the_cache(tmp_path: Path, repo_root: Path) -> None:
    from changedetect.errors import DatasetError
    from changedetect.training.buildings import BuildingConfig, train_buildings

    cfg = BuildingConfig(init_from=str(repo_root / "models" / "vhr-building" / "stage1"),
                         cities=str(tmp_path / "cities"), cache=str(tmp_path / "missing.npz"))
    with pytest.raises(DatasetError, match="missing.npz"):
        train_buildings(cfg, tmp_path / "seg", progress=False)
    assert not (tmp_path / "cities").exists()  # failed before generating any city


def test_building_segmenter_evaluation_scores_against_the_floor(tmp_path: Path, repo_root: Path) -> None:
    import torch

    from changedetect.testing import make_model
    from changedetect.training.buildings import evaluate_buildings
    from changedetect.weights import load_model, save_model

    save_cache(tmp_path / "cache.npz", images=[_image(7, "fair_oam_2", size=96), _image(8, "fair_oam_1", size=96)])
    make_model(tmp_path / "everywhere")
    seg = load_model(tmp_path / "everywhere", fold_bn=False, channels_last=False)
    with torch.no_grad():  # a segmenter that says "building" everywhere scores exactly the floor
        seg.module.head[-1].weight.zero_()
        seg.module.head[-1].bias.fill_(8.0)
    save_model(seg.module, seg.card, tmp_path / "everywhere")
    res = evaluate_buildings(tmp_path / "everywhere", cache=tmp_path / "cache.npz",
                             sample_tiles=repo_root / "sample_tiles")
    held = res["heldout_fair_oam_2+fair_oam_3"]
    assert held["n_images"] == 1  # fair_oam_1 is a training area
    assert held["iou"] == held["floor_iou"] == pytest.approx(_image(7, "x", size=96).mask.mean(), abs=1e-4)
    assert {"sample_city_20240115", "sample_city_20240712", "sample_city_20250120"} <= set(res)
    assert res["sample_city_20250120"]["iou"] == res["sample_city_20250120"]["floor_iou"]
