"""scripts/gpu_finetune.py: the cities a config names, rendered once, then configs trained side by side."""

from __future__ import annotations

import importlib.util
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

import changedetect.training.train as tr
from changedetect.training import generated
from changedetect.training.config import TrainConfig
from changedetect.training.datasets import ChangePair, LabelledImage, load_cache, save_cache


@pytest.fixture
def gpu(repo_root: Path, monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_finetune", repo_root / "scripts" / "gpu_finetune.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_finetune", mod)  # the pool's workers find its functions by name
    spec.loader.exec_module(mod)
    return mod


def _chip(seed: int, group: str, k: int) -> ChangePair:
    rng = np.random.default_rng([seed, k])
    a = rng.integers(0, 255, (3, 64, 64)).astype(np.uint8)
    b, lab = a.copy(), np.zeros((64, 64), bool)
    lab[10:30, 12:40] = True
    b[:, lab] = 240
    return ChangePair(f"gen{seed}_{group}_{k}", a, b, lab, ("red", "green", "blue"), 0.5, group)


def _fake_city_chips(seed: int, *, first_last: bool = False, **_: object) -> list[ChangePair]:
    out = [_chip(seed, f"gen_city_{seed}_{k}", k) for k in (1, 2)]
    return out + ([_chip(seed, f"gen_city_{seed}_13", 3)] if first_last else [])


def _config(tmp_path: Path, name: str, groups: list[str]) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'''name = "{name}"
task = "vhr"
bands = ["red", "green", "blue"]
train_groups = {groups!r}
val_groups = []
levir = ""
steps = 4
batch_size = 2
checkpoint_every = 2
val_pairs = 2
p_real = 0.5
workers = 0
arch_kwargs = {{ widths = [8, 16, 16], depths = [0, 1, 1], decoder_width = 8 }}

[synth]
size = 48
gsd_range_m = [0.5, 1.0]
'''.replace("'", '"'))
    return path


def test_the_cities_of_every_config_are_rendered_once_in_seed_order(gpu, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(generated, "city_chips", _fake_city_chips)
    a = TrainConfig.from_toml(_config(tmp_path, "a", ["real", "gen_city_105_1", "gen_city_103_13"]))
    b = TrainConfig.from_toml(_config(tmp_path, "b", ["gen_city_103_2", "gen_city_101_1"]))
    tasks = gpu.city_seeds([a, b])
    assert tasks == [(101, False), (103, True), (105, False)]
    groups = [p.group for p in gpu.render(tasks, procs=2)]
    assert groups == ["gen_city_101_1", "gen_city_101_2", "gen_city_103_1", "gen_city_103_2",
                      "gen_city_105_1", "gen_city_105_2", "gen_city_103_13"]


def test_two_configs_train_side_by_side_and_come_back_as_tars(gpu, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(generated, "city_chips", _fake_city_chips)
    rng = np.random.default_rng(0)
    images = [LabelledImage(f"im{k}", rng.integers(60, 200, (3, 96, 96)).astype(np.uint8),
                            rng.random((96, 96)) > 0.7, 0.5, "real") for k in range(2)]
    save_cache(tmp_path / "base.npz", images=images, pairs=[])
    one = _config(tmp_path, "one", ["real", "gen_city_101_1"])
    two = _config(tmp_path, "two", ["real", "gen_city_101_2", "gen_city_102_13"])
    out = tmp_path / "out"
    assert gpu.main([str(one), str(two), "--base", str(tmp_path / "base.npz"), "--out", str(out),
                     "--device", "cpu", "--procs", "1", "--deadline", "600"]) == 0
    for name in ("one", "two"):
        with tarfile.open(out / f"{name}.tar") as tar:
            assert {"weights.pt", "metadata.json", "train_log.jsonl"} <= set(tar.getnames())


def test_a_run_past_the_deadline_comes_back_with_its_checkpoint(gpu, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(generated, "city_chips", _fake_city_chips)
    save_cache(tmp_path / "base.npz", images=[LabelledImage("im", np.full((3, 96, 96), 90, np.uint8),
                                                            np.zeros((96, 96), bool), 0.5, "real")], pairs=[])
    cfg = _config(tmp_path, "late", ["real", "gen_city_101_1"])
    assert gpu.main([str(cfg), "--base", str(tmp_path / "base.npz"), "--out", str(tmp_path / "o"),
                     "--device", "cpu", "--procs", "1", "--deadline", "0"]) == 0
    assert (tmp_path / "o" / "late_partial.tar").is_file() and not (tmp_path / "o" / "late.tar").exists()


def test_it_asks_for_configs_and_a_base(gpu, capsys) -> None:
    with pytest.raises(SystemExit):
        gpu.main([])
    assert "--base CACHE" in capsys.readouterr().err


def test_a_stopped_run_goes_on_from_its_checkpoint_in_work(gpu, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(generated, "city_chips", _fake_city_chips)
    rng = np.random.default_rng(1)
    save_cache(tmp_path / "base.npz", images=[LabelledImage("im", rng.integers(60, 200, (3, 96, 96)).astype(np.uint8),
                                                            rng.random((96, 96)) > 0.7, 0.5, "real")], pairs=[])
    cfg = _config(tmp_path, "go", ["real", "gen_city_101_1"])
    folder = tmp_path / "w" / "go"
    images, pairs = load_cache(tmp_path / "base.npz")
    pairs = pairs + gpu.render(gpu.city_seeds([TrainConfig.from_toml(cfg)]), 1)
    monkeypatch.setattr(tr, "load_data", lambda c: (images, pairs))
    # stopped after its first checkpoint, in this process: torch has run here before the script forks
    assert tr.train(TrainConfig.from_toml(cfg), out=folder, progress=False, device="cpu", stop_after=2) is None
    assert (folder / "checkpoints" / "last.pt").is_file() and not (folder / "weights.pt").exists()
    assert gpu.main([str(cfg), "--base", str(tmp_path / "base.npz"), "--out", str(tmp_path / "o"), "--work",
                     str(tmp_path / "w"), "--device", "cpu", "--procs", "1"]) == 0
    steps = [json.loads(line)["step"] for line in (folder / "train_log.jsonl").read_text().splitlines()]
    assert steps == [2, 4]  # the first checkpoint's line kept, the run went on to the end
    assert (tmp_path / "o" / "go.tar").is_file()


def test_a_run_that_fails_fails_the_call_and_a_missing_base_is_named(gpu, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(generated, "city_chips", _fake_city_chips)
    save_cache(tmp_path / "base.npz", images=[], pairs=[])
    cfg = _config(tmp_path, "empty", ["gen_city_101_1"])  # no image to synthesise from: train refuses
    assert gpu.main([str(cfg), "--base", str(tmp_path / "base.npz"), "--out", str(tmp_path / "o"),
                     "--device", "cpu", "--procs", "1"]) == 1
    with pytest.raises(SystemExit):
        gpu.main([str(cfg), "--base", str(tmp_path / "nope.npz")])
    assert "nope.npz' not found" in capsys.readouterr().err
