"""``evaluate`` given a folder inside an OSCD-style root (audit D): ``evaluate ../shared/data/oscd/images``
said only "LEVIR-style folder ... has no 'A/' folder (expected A/, B/, label/)"; it now names the root to give."""

from __future__ import annotations

from pathlib import Path

import pytest

from changedetect.errors import DatasetError
from changedetect.evaluate import iter_pairs


def _oscd(root: Path) -> Path:
    (root / "images" / "pisa" / "imgs_1").mkdir(parents=True)
    (root / "images" / "pisa" / "imgs_2").mkdir()
    (root / "labels" / "pisa" / "cm").mkdir(parents=True)
    return root


@pytest.mark.parametrize(("inside", "cities"), [("images", ""), ("images/pisa", " --cities pisa"),
                                                ("labels/pisa", " --cities pisa")])
def test_a_folder_inside_an_oscd_root_names_the_root(tmp_path: Path, inside: str, cities: str) -> None:
    root = _oscd(tmp_path / "oscd")
    with pytest.raises(DatasetError) as info:
        iter_pairs(root / inside)
    assert f"lies inside the OSCD-style root '{root}' (images/, labels/): give that{cities}" in str(info.value)


def test_a_plain_folder_says_nothing_of_oscd(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        iter_pairs(tmp_path)
    assert "has no 'A/' folder" in str(info.value) and "OSCD" not in str(info.value)
