"""The deep-shadow augmentation of training pairs (changedetect.training.shade)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from test_train import vhr_config  # noqa: F401  (fixture)

from changedetect.training.config import TrainConfig
from changedetect.training.shade import KEEP, shade_pair


def _flat(value: float = 0.6, size: int = 128) -> np.ndarray:
    return np.full((3, size, size), value, np.float32)


def test_a_shadow_keeps_a_shadows_share_of_the_light_bluer_and_leaves_the_rest() -> None:
    a, b = _flat(size=256), _flat(size=256)  # the training chips' size
    label = np.zeros((256, 256), bool)
    label[120:130, 120:135] = True
    darkest, shaded_any = 1.0, 0
    for seed in range(40):
        sa, sb = shade_pair(a, b, label, np.random.default_rng(seed))
        for x in (sa, sb):
            ratio = x / 0.6
            assert ratio.min() >= KEEP[0] - 1e-6 and ratio.max() <= 1 + 1e-6
            core = ratio[0] < 0.5  # well inside the shadow
            if core.any():
                shaded_any += 1
                darkest = min(darkest, float(ratio[0][core].min()))
                assert (ratio[2][core] >= ratio[0][core] - 1e-6).all()  # the sky's light is blue
                assert (ratio[0] > 0.999).mean() > 0.5  # a shadow, not the whole chip
    assert darkest <= 0.3 and shaded_any >= 40  # every pair gets a shadow on at least one date


def test_half_the_shadows_fall_on_a_change_and_dates_are_shaded_alike_or_not() -> None:
    a, b = _flat(), _flat()
    label = np.zeros((128, 128), bool)
    label[90:100, 20:32] = True  # one small changed structure away from the centre
    on_change, both, one = 0, 0, 0
    n = 200
    for seed in range(n):
        sa, sb = shade_pair(a, b, label, np.random.default_rng(seed))
        da, db = (x[0][label].mean() < 0.55 for x in (sa, sb))
        on_change += bool(da or db)
        darkened = [bool((x[0] < 0.59).any()) for x in (sa, sb)]
        both += all(darkened)
        one += darkened[0] != darkened[1]
    assert 0.35 * n < on_change < 0.8 * n  # about half aimed at the change (and some by chance)
    assert both > 0.4 * n and one > 0.25 * n


def test_p_shade_reaches_the_training_samples_and_keeps_their_labels(vhr_config: TrainConfig) -> None:  # noqa: F811
    from changedetect.training.loaders import VhrPairs, load_data, split

    parts = split(vhr_config, *load_data(vhr_config))
    plain = VhrPairs(parts["train_images"], parts["train_pairs"], vhr_config, length=8, seed=0)
    cfg = replace(vhr_config, synth=replace(vhr_config.synth, p_shade=1.0))
    shaded = VhrPairs(parts["train_images"], parts["train_pairs"], cfg, length=8, seed=0)
    differs = 0
    for i in range(8):
        (a0, b0, l0), (a1, b1, l1) = plain[i], shaded[i]
        assert l0.sum() == l1.sum()  # the same crop and label (flips and turns are drawn after the shadow)
        differs += int(not (np.allclose(a0.numpy(), a1.numpy()) and np.allclose(b0.numpy(), b1.numpy())))
    assert differs == 8
    # 0 (the default) draws nothing from the generator: the same samples as a config without it
    again = VhrPairs(parts["train_images"], parts["train_pairs"], replace(cfg, synth=replace(cfg.synth, p_shade=0.0)),
                     length=8, seed=0)
    for i in range(8):
        np.testing.assert_array_equal(plain[i][0].numpy(), again[i][0].numpy())


def test_the_shade_knob_reads_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[synth]\np_shade = 0.3\n")
    assert TrainConfig.from_toml(path).synth.p_shade == 0.3


def test_one_date_is_shaded_alike_in_any_unit_and_half_the_time_over_a_building() -> None:
    from changedetect.training.shade import shade_image

    x = _flat(0.5, size=256)
    buildings = np.zeros((256, 256), bool)
    buildings[30:44, 200:220] = True
    on_building = 0
    for seed in range(100):
        y = shade_image(x, buildings, np.random.default_rng(seed))
        # multiplicative: DN in 0-255 get the same shadow
        np.testing.assert_allclose(shade_image(x * 255, buildings, np.random.default_rng(seed)), y * 255, rtol=1e-5)
        assert y.min() >= 0.5 * KEEP[0] - 1e-6 and (y < 0.5 * KEEP[1] + 1e-3).any()
        on_building += bool(y[0][buildings].mean() < 0.3)
    assert 35 < on_building < 80
