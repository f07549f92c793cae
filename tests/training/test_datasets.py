"""Readers of the real data (skipped when ../shared/data is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from changedetect.errors import DatasetError
from changedetect.training.datasets import load_fair_oam_area, load_levir, load_oscd_city


@pytest.mark.shared_data
def test_levir_samples(shared_data: Path) -> None:
    pairs = load_levir(shared_data / "levir_samples")
    assert len(pairs) == 11
    changed = sum(int(p.label.sum()) for p in pairs) / sum(p.label.size for p in pairs)
    assert 0.15 < changed < 0.16  # the 15.4 % of the lessons


@pytest.mark.shared_data
def test_fair_oam_area_mosaics_have_buildings(shared_data: Path) -> None:
    mosaics = load_fair_oam_area(shared_data / "buildings" / "fair_oam", 2)
    assert mosaics and all(m.group == "fair_oam_2" for m in mosaics)
    for m in mosaics:
        assert m.image.shape[1:] == m.mask.shape and m.image.dtype == np.uint8
        assert 0.05 < m.mask.mean() < 0.7
        assert 0.25 < m.gsd_m < 0.31


@pytest.mark.shared_data
def test_oscd_city_on_the_label_grid(shared_data: Path) -> None:
    p = load_oscd_city(shared_data / "oscd", "paris")
    assert p.before.shape == p.after.shape == (4, *p.label.shape)
    assert 0.001 < p.label.mean() < 0.01
    assert np.isfinite(p.before).all() and p.before.mean() > 100


def test_missing_folders_raise_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="A/"):
        load_levir(tmp_path)
    with pytest.raises(DatasetError, match="label"):
        load_oscd_city(tmp_path, "nowhere")
    with pytest.raises(DatasetError, match="fair_oam area folder"):
        load_fair_oam_area(tmp_path, 9)


def test_the_first_and_last_dates_make_a_pair_of_their_own(repo_root: Path) -> None:
    from changedetect.training.datasets import load_sample_city

    plain = load_sample_city(repo_root / "sample_tiles")
    both = load_sample_city(repo_root / "sample_tiles", first_last=True)
    assert [p.group for p in plain] == ["sample_city_1", "sample_city_2"]
    assert [p.group for p in both] == ["sample_city_1", "sample_city_2", "sample_city_13"]
    january = both[2]
    assert january.name == "sample_20240115_20250120"
    # the generator's first -> last truth holds every change of either consecutive pair
    np.testing.assert_array_equal(january.label, plain[0].label | plain[1].label)
    np.testing.assert_array_equal(january.before, plain[0].before)
    np.testing.assert_array_equal(january.after, plain[1].after)
