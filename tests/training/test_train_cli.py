"""`changedetect train` on the command line: bad configs, the output folder, workers, the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from changedetect.cli import main
from changedetect.errors import ConfigError
from changedetect.training.config import TrainConfig
from changedetect.training.datasets import LabelledImage, save_cache

TINY_TOML = ('name = "tiny"\ncache = "{cache}"\ntrain_groups = ["a"]\nval_groups = ["held"]\n'
             'steps = {steps}\nbatch_size = 2\ncheckpoint_every = 2\nval_pairs = 1\nlevir = ""\n'
             'seed = {seed}\n{extra}'
             '[arch_kwargs]\nwidths = [8, 16, 16]\ndepths = [0, 1, 1]\ndecoder_width = 8\n[synth]\nsize = 48\n')


def _image(seed: int, group: str, size: int = 96) -> LabelledImage:
    rng = np.random.default_rng(seed)
    img = rng.integers(60, 120, (3, size, size)).astype(np.uint8)
    mask = np.zeros((size, size), bool)
    mask[20:30, 40:50] = True
    img[:, mask] = 210
    return LabelledImage(f"im{seed}", img, mask, 0.5, group, np.ones((size, size), bool))


def _toml(tmp_path: Path, *, steps: int = 2, seed: int = 0, extra: str = "", name: str = "tiny.toml") -> Path:
    cache = tmp_path / "cache.npz"
    if not cache.is_file():
        save_cache(cache, images=[_image(1, "a"), _image(2, "a"), _image(3, "held")])
    toml = tmp_path / name
    toml.write_text(TINY_TOML.format(cache=cache, steps=steps, seed=seed, extra=extra))
    return toml


def _train(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    """Exit status and output (stdout + stderr) of ``changedetect -q train ARGS`` on the CPU."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["-q", "train", *map(str, args), "--device", "cpu"])
    got = capsys.readouterr()
    return int(info.value.code or 0), got.out + got.err


@pytest.mark.parametrize(("line", "expected"), [
    ('lr = "fast"', "'lr' must be a number, got string 'fast'"),
    ("steps = 2.5", "'steps' must be an integer, got float 2.5"),
    ("batch_size = true", "'batch_size' must be an integer, got boolean true"),
    ('bands = "red"', "'bands' must be an array of strings, got string 'red'"),
    ("gsd_range_m = [0.3]", "'gsd_range_m' must be an array of 2 numbers, got array [0.3]"),
    ("[synth]\nsize = \"big\"", "[synth]: 'size' must be an integer, got string 'big'"),
    ("synth = 3", "'synth' must be a table ([synth]), got integer 3"),
])
def test_wrong_type_names_key_type_and_value(tmp_path: Path, line: str, expected: str) -> None:
    p = tmp_path / "t.toml"
    p.write_text(line + "\n")
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_toml(p)
    assert expected in str(info.value)


def test_numbers_and_arrays_still_convert(tmp_path: Path) -> None:
    p = tmp_path / "t.toml"
    p.write_text('lr = 1\ngsd_range_m = [1, 2]\nbands = ["r"]\n[synth]\ngsd_range_m = [0.5, 1]\n')
    cfg = TrainConfig.from_toml(p)
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.gsd_range_m == (1.0, 2.0) and cfg.bands == ("r",) and cfg.synth.gsd_range_m == (0.5, 1.0)


def test_cli_wrong_type_is_exit_2_before_any_output(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    toml = _toml(tmp_path, extra='lr = "fast"\n')
    out = tmp_path / "m"
    code, text = _train(capsys, toml, "--out", out, "--steps", "1")
    assert code == 2, text
    assert text.strip().splitlines() == [f"Error: {toml}: 'lr' must be a number, got string 'fast'"]
    assert not out.exists()


def test_workers_are_capped_at_the_cpu_cores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
    import os

    from torch.utils.data import DataLoader

    from changedetect.training import train as train_mod

    asked: list[int] = []

    def spy(data: Any, **kw: Any) -> DataLoader[Any]:
        asked.append(kw["num_workers"])
        return DataLoader(data, **{**kw, "num_workers": 0, "persistent_workers": False, "prefetch_factor": None})

    monkeypatch.setattr(train_mod, "DataLoader", spy)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    cfg = TrainConfig.from_toml(_toml(tmp_path, extra="workers = 14\n"))
    caplog.set_level("INFO", logger="changedetect.training.train")
    assert train_mod.train(cfg, out=tmp_path / "m", progress=False, device="cpu") is not None
    assert asked == [1]
    capped = [r.getMessage() for r in caplog.records if "data-loader workers" in r.getMessage()]
    assert capped == ["using 1 data-loader workers, not 14: this machine has 1 CPU cores"]
    assert train_mod.data_workers(0) == 0 and train_mod.data_workers(1) == 1


def _card(out: Path) -> dict[str, Any]:
    import json

    return dict(json.loads((out / "metadata.json").read_text()))


def test_cli_refuses_a_folder_that_is_not_a_run_of_this_config(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    toml = _toml(tmp_path)
    out = tmp_path / "run1"
    out.mkdir()
    (out / "run.json").write_text("{}")
    code, text = _train(capsys, toml, "--out", out)
    assert code == 2 and "is not empty" in text and "pass --overwrite to replace it" in text, text
    assert sorted(p.name for p in out.iterdir()) == ["run.json"]
    code, text = _train(capsys, toml, "--out", out, "--overwrite")
    assert code == 0, text
    assert (out / "weights.pt").is_file() and (out / "run.json").read_text() == "{}"
    empty = tmp_path / "empty"
    (empty / "checkpoints").mkdir(parents=True)  # empty folders are no one's output
    assert _train(capsys, toml, "--out", empty)[0] == 0


def test_cli_never_rewrites_a_finished_model_with_another_seed(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from changedetect.weights import sha256_file

    toml = _toml(tmp_path)
    out = tmp_path / "m"
    assert _train(capsys, toml, "--out", out)[0] == 0
    before = {n: (out / n).read_bytes() for n in ("weights.pt", "metadata.json", "MODEL_CARD.md")}
    code, text = _train(capsys, toml, "--out", out, "--seed", "5")
    assert code == 2 and "another config" in text and "seed: 0 there, 5 here" in text, text
    code, text = _train(capsys, toml, "--out", out)  # the very same run again: nothing to resume
    assert code == 2 and "already holds the finished model" in text, text
    assert {n: (out / n).read_bytes() for n in before} == before
    code, text = _train(capsys, toml, "--out", out, "--seed", "5", "--overwrite")
    assert code == 0, text
    card = _card(out)
    assert card["training"]["seed"] == 5 and "--seed 5" in card["training"]["command"]
    assert card["sha256"] == sha256_file(out / "weights.pt") != _card_sha(before["metadata.json"])
    log_steps = [line for line in (out / "train_log.jsonl").read_text().splitlines() if line]
    assert len(log_steps) == 1  # the seed-0 run's log line went with its checkpoint


def _card_sha(meta: bytes) -> str:
    import json

    return str(json.loads(meta)["sha256"])


def test_cli_resumes_an_interrupted_run_of_this_config(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from changedetect.training.train import train

    toml = _toml(tmp_path, steps=4)
    out = tmp_path / "m"
    cfg = TrainConfig.from_toml(toml)
    assert train(cfg, out=out, progress=False, device="cpu", stop_after=2, command="first") is None
    code, text = _train(capsys, toml, "--out", out, "--seed", "3")
    assert code == 2 and "seed: 0 there, 3 here" in text and not (out / "weights.pt").exists(), text
    code, text = _train(capsys, toml, "--out", out, "--no-resume")
    assert code == 2 and "interrupted run of this config (step 2 of 4)" in text, text
    code, text = _train(capsys, toml, "--out", out, "--workers", "1")  # workers do not change the weights
    assert code == 0, text
    training = _card(out)["training"]
    assert training["command"] == "first" and training["seed"] == 0
    assert len(training["resumed_with"]) == 1 and "changedetect train" in training["resumed_with"][0]


def test_resuming_a_checkpoint_of_another_config_is_refused(tmp_path: Path) -> None:
    from dataclasses import replace

    from changedetect.training.train import train

    cfg = TrainConfig.from_toml(_toml(tmp_path, steps=4))
    out = tmp_path / "m"
    assert train(cfg, out=out, progress=False, device="cpu", stop_after=2) is None
    with pytest.raises(ConfigError, match="another config .*lr: 0.002 there, 0.01 here"):
        train(replace(cfg, lr=0.01), out=out, progress=False, device="cpu")
    assert not (out / "weights.pt").exists()


def test_cache_from_another_data_root_is_refused_or_named(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    from dataclasses import replace

    from changedetect.errors import DatasetError
    from changedetect.training.datasets import cache_source
    from changedetect.training.generated import add_pairs_to_cache
    from changedetect.training.loaders import cache_key, load_data

    (tmp_path / "rootA").mkdir()
    (tmp_path / "rootB").mkdir()
    cache = tmp_path / "c.npz"
    built = TrainConfig(cache=str(cache), data_root=str(tmp_path / "rootA"), train_groups=("a",),
                        val_groups=("held",), levir="")
    save_cache(cache, images=[_image(1, "a"), _image(3, "held")], source=cache_key(built))
    assert len(load_data(built)[0]) == 2  # its own data root: used
    other = replace(built, data_root=str(tmp_path / "rootB"))
    with pytest.raises(DatasetError, match=r"built from data_root '.*rootA', not '.*rootB'.*delete it"):
        load_data(other)
    caplog.set_level("WARNING", logger="changedetect.training.loaders")
    absent = replace(built, data_root=str(tmp_path / "nonexistent"))
    assert len(load_data(absent)[0]) == 2  # a carried cache: used, with a word
    assert any("nonexistent is absent: training from the cache" in r.getMessage() and "rootA" in r.getMessage()
               for r in caplog.records)
    with pytest.raises(DatasetError, match="no group.*extra"):
        load_data(replace(built, train_groups=("a", "extra")))
    with pytest.raises(DatasetError, match="task 'vhr', not 's2'"):
        load_data(replace(built, task="s2"))
    add_pairs_to_cache(cache, tmp_path / "more.npz", [])
    assert cache_source(tmp_path / "more.npz") == cache_source(cache) == cache_key(built)
    caplog.clear()
    save_cache(cache, images=[_image(1, "a"), _image(3, "held")])  # an older cache: says so
    assert len(load_data(other)[0]) == 2
    assert any("does not record the data it was built from" in r.getMessage() for r in caplog.records)


def test_a_built_cache_records_its_data_root(tmp_path: Path) -> None:
    from changedetect.errors import DatasetError
    from changedetect.training.datasets import cache_source
    from changedetect.training.loaders import load_data

    for name in ("rootA", "rootB"):
        (tmp_path / name).mkdir()
    toml = tmp_path / "t.toml"
    body = ('data_root = "{root}"\ncache = "c.npz"\ntrain_groups = ["sample_city_1"]\n'
            'val_groups = ["sample_city_2"]\nlevir = ""\n')
    toml.write_text(body.format(root="rootA"))
    built = load_data(TrainConfig.from_toml(toml))  # read from the committed sample city, then cached
    assert [p.group for p in built[1]] == ["sample_city_1", "sample_city_2"]
    source = cache_source(tmp_path / "c.npz")
    assert source is not None and source["data_root"] == str((tmp_path / "rootA").resolve())
    toml.write_text(body.format(root="rootB"))
    with pytest.raises(DatasetError, match="rootA"):
        load_data(TrainConfig.from_toml(toml))


def test_a_failed_data_load_leaves_no_folder(tmp_path: Path) -> None:
    from changedetect.errors import DatasetError
    from changedetect.training.train import train

    cfg = TrainConfig(cache=str(tmp_path / "missing.npz"), data_root=str(tmp_path / "nodata"))
    with pytest.raises(DatasetError, match="nodata"):
        train(cfg, out=tmp_path / "m", progress=False, device="cpu")
    assert not (tmp_path / "m").exists()


def test_budget_run_resumes_with_its_own_step_count(tmp_path: Path) -> None:
    from dataclasses import replace

    from changedetect.errors import OutputExistsError
    from changedetect.training.outdir import prepare_out
    from changedetect.training.train import train

    cfg = TrainConfig.from_toml(_toml(tmp_path, steps=4))
    out = tmp_path / "m"
    assert train(cfg, out=out, progress=False, device="cpu", stop_after=2) is None
    assert prepare_out(replace(cfg, steps=9), out, any_steps=True) == (2, 4)
    with pytest.raises(OutputExistsError, match="resume it with --steps 4"):
        prepare_out(replace(cfg, steps=9), out)
    assert prepare_out(replace(cfg, steps=9), out, overwrite=True) is None
    # a fresh start's data load that fails keeps the interrupted run (it is cleared only once the
    # new run's data are loaded)
    with pytest.raises(Exception, match="cache"):
        train(replace(cfg, steps=9, cache=str(tmp_path / "no-cache.npz"), data_root=str(tmp_path / "nowhere")),
              out=out, resume=False, progress=False, device="cpu")
    assert (out / "checkpoints" / "last.pt").exists() and (out / "train_log.jsonl").exists()
    train(replace(cfg, steps=3), out=out, resume=False, progress=False, device="cpu", stop_after=1)
    import torch

    assert torch.load(out / "checkpoints" / "last.pt", weights_only=False)["config"]["steps"] == 3  # the new run's


def test_an_unwritable_out_or_an_absent_device_is_refused_before_any_data(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    toml = _toml(tmp_path)
    code, text = _train(capsys, toml, "--out", "/proc/changedetect-model")
    assert code == 2 and "cannot write to '/proc'" in text, text
    if not torch.cuda.is_available():
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            main(["-q", "train", str(toml), "--out", str(tmp_path / "m"), "--device", "cuda"])
        got = capsys.readouterr()
        assert info.value.code == 2 and "CUDA is not available" in got.out + got.err
        assert not (tmp_path / "m").exists()
