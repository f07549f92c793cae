"""Extension synthesis: the label is exactly the grown part; re-roofing is not labelled."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from changedetect.errors import DatasetError
from changedetect.training.datasets import LabelledImage
from changedetect.training.generated import generated_city_pairs
from changedetect.training.synth import SynthConfig, extend_instance, make_pair, reroof

ONLY_EXTEND = SynthConfig(size=96, gsd_range_m=(0.5, 0.5), p_pairing=0.0, nuisance=0.0, misreg_px=0.0,
                          p_jpeg=0.0, p_ground_swap=0.0, max_paste=0, max_remove=0, max_extend=3)


def _town(seed: int, size: int = 96) -> LabelledImage:
    """Grey textured ground with a few well separated, roughly square roofs."""
    rng = np.random.default_rng(seed)
    img = (90 + rng.normal(0, 4, (3, size, size))).clip(0, 255)
    mask = np.zeros((size, size), bool)
    for r, c in ((10, 10), (10, 60), (60, 12), (58, 62)):
        h, w = rng.integers(8, 13, 2)
        mask[r:r + h, c:c + w] = True
    img[:, mask] = np.array([200, 110, 80])[:, None] + rng.normal(0, 6, (3, int(mask.sum())))
    return LabelledImage(f"town{seed}", img.clip(0, 255).astype(np.uint8), mask, 0.5, "test")


def test_extension_label_is_exactly_the_grown_part() -> None:
    town = _town(0)
    img = town.image.astype(np.float32) / 255
    for k in range(6):
        out, part = extend_instance(img, town.mask, np.random.default_rng(k), gsd_m=0.5)
        assert part.sum() >= 8
        assert not (part & town.mask).any()  # never the existing building
        lab, n = ndi.label(part)
        assert n == 1  # one extension, one blob
        touching = ndi.binary_dilation(part, iterations=2) & town.mask
        assert touching.any()  # it grows from a building
        # inside the existing roofs nothing changed; the grown part did
        np.testing.assert_array_equal(out[:, town.mask], img[:, town.mask])
        assert np.abs(out - img)[:, part].mean() > 0.1
        # outside the part and its shadow/feather ring, the image is untouched
        far = ~ndi.binary_dilation(part, iterations=12)  # shadow <= 6 px + blur
        np.testing.assert_allclose(out[:, far], img[:, far], atol=1e-6)


def test_make_pair_with_extensions_labels_only_grown_parts() -> None:
    images = [_town(1), _town(2)]
    seen = 0
    for k in range(8):
        p = make_pair(images, np.random.default_rng(k), ONLY_EXTEND)
        union = np.zeros_like(p.label)
        for part in p.changed:
            union |= part
        np.testing.assert_array_equal(p.label, union)
        crop_mask = images[p.sources[0]].mask  # gsd = source gsd: the crop is the whole image
        assert not (p.label & crop_mask).any()
        seen += int(p.label.any())
    assert seen >= 4


def test_reroof_changes_a_roof_but_nothing_else() -> None:
    town = _town(3)
    img = town.image.astype(np.float32) / 255
    out = reroof(img, town.mask, np.random.default_rng(0), keep=np.zeros_like(town.mask), n=1)
    assert np.abs(out - img)[:, town.mask].max() > 0.02
    ground = ~ndi.binary_dilation(town.mask, iterations=3)
    np.testing.assert_allclose(out[:, ground], img[:, ground], atol=1e-6)


def test_default_config_draws_no_extension() -> None:
    """Old recipes (no max_extend) give the same pairs as before the option existed."""
    images = [_town(4), _town(5)]
    p = make_pair(images, np.random.default_rng(3), SynthConfig(size=96, max_extend=0))
    q = make_pair(images, np.random.default_rng(3), SynthConfig(size=96))
    np.testing.assert_array_equal(p.a, q.a)
    np.testing.assert_array_equal(p.label, q.label)


def test_generated_cities_refuse_the_held_out_seed(tmp_path) -> None:
    with pytest.raises(DatasetError, match="seed 12"):
        generated_city_pairs(tmp_path, [101, 12])


def test_generated_city_groups_are_made_beside_the_cache(tmp_path, monkeypatch) -> None:
    # `changedetect train models/vhr-building/finetune.toml` alone builds its generated cities
    import dataclasses

    from changedetect.training import generated
    from changedetect.training.config import TrainConfig
    from changedetect.training.loaders import build_data

    calls = []

    def fake(folder, seeds, *, size, bands):
        calls.append((folder, list(seeds), size, tuple(bands)))
        return []

    monkeypatch.setattr(generated, "generated_city_pairs", fake)
    cfg = TrainConfig.from_dict({"name": "t", "data_root": str(tmp_path), "cache": str(tmp_path / "c" / "x.npz"),
                                 "train_groups": ["gen_city_103_1", "gen_city_101_2", "gen_city_101_1"],
                                 "val_groups": [], "levir": ""})
    assert build_data(cfg) == ([], [])
    assert calls == [(tmp_path / "c" / "gencity", [101, 103], 512, ("red", "green", "blue"))]
    with pytest.raises(DatasetError, match=r"gen_city_<seed>_<pair>"):
        build_data(dataclasses.replace(cfg, train_groups=["gen_city_x"]))
