"""`changedetect train` from an installed copy (a wheel in site-packages, no checkout around it).

There the package's grandparent is ``lib/python3.X``: the shipped ``train.toml`` must come from the
package's own models (``weights.shipped_dir``), and the training cache (licensed data) must go to
the user's cache folder, never into ``site-packages``' parent.  In a checkout nothing changes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import changedetect.training.config as config
from changedetect.cli.train_cmd import _config


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The package seen as installed: its grandparent holds no pyproject.toml, its models elsewhere."""
    site_parent = tmp_path / "lib"
    site_parent.mkdir()
    models = tmp_path / "site-packages" / "changedetect" / "models"
    (models / "vhr-building").mkdir(parents=True)
    (models / "vhr-building" / "train.toml").write_text(
        'name = "vhr-building"\ntask = "vhr"\nbands = ["red", "green", "blue"]\nsteps = 7\n', encoding="utf-8")
    monkeypatch.setattr(config, "REPO", site_parent)
    monkeypatch.setattr("changedetect.weights.shipped_dir", lambda: models)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path


def test_an_installed_copy_trains_with_its_shipped_config_and_caches_in_the_user_cache(installed: Path) -> None:
    data = installed / "data"
    (data / "buildings").mkdir(parents=True)
    cfg = _config(data, installed / "out")
    assert cfg.steps == 7  # the installed package's train.toml, not defaults
    assert Path(cfg.cache).parent == installed / "xdg" / "changedetect" / "train"
    assert not (installed / "lib" / ".cache_train").exists()


def test_an_installed_copy_reads_a_config_without_cache_into_the_user_cache(installed: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(installed)
    toml = installed / "my.toml"
    toml.write_text('name = "mine"\ntask = "vhr"\nbands = ["red", "green", "blue"]\n', encoding="utf-8")
    cfg = config.TrainConfig.from_toml(toml)
    assert Path(cfg.cache) == installed / "xdg" / "changedetect" / "train" / "mine.npz"
    assert Path(cfg.data_root).parent.parent == installed.parent  # ../shared/data from the working directory


def test_a_checkout_keeps_its_git_ignored_cache() -> None:
    assert config.cache_dir() == config.REPO / ".cache_train"
    assert config.work_root() == config.REPO


def test_the_installed_packages_own_train_toml_keeps_its_cache_out_of_site_packages(
        installed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`changedetect train .../site-packages/changedetect/models/vhr-building/train.toml`: the shipped
    file's ``cache = "../../.cache_train/vhr.npz"`` would lead into site-packages."""
    shipped = installed / "site-packages" / "changedetect" / "models" / "vhr-building" / "train.toml"
    shipped.write_text('name = "vhr-building"\ntask = "vhr"\nbands = ["red", "green", "blue"]\n'
                       'data_root = "../../../shared/data"\ncache = "../../.cache_train/vhr.npz"\n', encoding="utf-8")
    monkeypatch.setattr("changedetect.weights._installed_dir", lambda: shipped.parents[1])
    monkeypatch.chdir(installed)
    cfg = config.TrainConfig.from_toml(shipped)
    assert Path(cfg.cache) == installed / "xdg" / "changedetect" / "train" / "vhr-building.npz"
    assert not Path(cfg.data_root).resolve().is_relative_to((installed / "site-packages").resolve())
