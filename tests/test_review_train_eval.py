"""Review of training, evaluation and model folders: the user mistakes they must name, and what they
must not get wrong silently (a pair left out, an OSCD map read the wrong way, a card that crashes)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from changedetect.cli import main
from changedetect.errors import ConfigError, DatasetError, ModelError
from changedetect.evaluate import evaluate, evaluate_detailed
from changedetect.training.config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
TINY_TOML = ('name = "tiny"\ncache = "{cache}"\ntrain_groups = ["a"]\nval_groups = ["held"]\n'
             'steps = {steps}\nbatch_size = 2\ncheckpoint_every = 2\nval_pairs = 1\nlevir = ""\n{extra}'
             '[arch_kwargs]\nwidths = [8, 16, 16]\ndepths = [0, 1, 1]\ndecoder_width = 8\n[synth]\nsize = 48\n')


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``changedetect ARGS``."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    got = capsys.readouterr()
    return int(info.value.code or 0), got.out, got.err


def _levir(root: Path, *, bands: int = 3) -> Path:
    """Two 32x32 pairs whose change (a bright square) is labelled."""
    for sub in ("A", "B", "label"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("p1", "p2"):
        a = rng.integers(40, 120, (32, 32, 3)).astype(np.uint8)
        b = a.copy()
        b[8:20, 8:20] = 250
        y = np.zeros((32, 32), np.uint8)
        y[8:20, 8:20] = 255
        Image.fromarray(a if bands == 3 else a[..., 0]).save(root / "A" / f"{name}.png")
        Image.fromarray(b if bands == 3 else b[..., 0]).save(root / "B" / f"{name}.png")
        Image.fromarray(y).save(root / "label" / f"{name}.png")
    return root


# -- evaluation ---------------------------------------------------------------------------
def test_a_levir_pair_without_its_label_is_named_not_left_out(tmp_path: Path) -> None:
    root = _levir(tmp_path / "levir")
    assert evaluate(root, model="cva")["n_images"] == 2
    for sub in ("A", "B"):
        shutil.copy(root / sub / "p1.png", root / sub / "p3.png")
    # p3 was silently left out: n_images 2, scores of a set the user did not ask for
    with pytest.raises(DatasetError, match=r"'p3.png'.* no label in '.*label'"):
        evaluate(root, model="cva")


def test_hidden_files_beside_the_images_are_not_pairs(tmp_path: Path) -> None:
    root = _levir(tmp_path / "levir")
    for sub in ("A", "B", "label"):  # macOS's AppleDouble files on a USB drive: '._p1.png', 4 kB, not a PNG
        (root / sub / "._p1.png").write_bytes(b"\x00\x05\x16\x07" + bytes(60))
    # was "cannot read image '.../A/._p1.png'"
    assert evaluate(root, model="cva")["n_images"] == 2


def test_a_model_that_cannot_read_a_pair_names_the_pair(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    root = _levir(tmp_path / "gray", bands=1)  # one-band images: no red, green, blue for the model
    code, out, err = _run(capsys, "evaluate", root, "--model", "vhr-building", "--json")
    assert code == 2 and out == "", out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Internal error" not in err, err
    assert "p1" in lines[0] and str(root / "A" / "p1.png") in lines[0], err  # which pair, which file


GRID = rasterio.Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 5_000_000.0)


def test_rgba_and_rgb_dates_of_one_pair_are_compared_on_their_colours(tmp_path: Path) -> None:
    root = _levir(tmp_path / "levir")
    rgb = evaluate_detailed(root, model="cva")
    for name in ("p1", "p2"):  # the after date saved with an alpha channel (an export from another tool)
        Image.open(root / "B" / f"{name}.png").convert("RGBA").save(root / "B" / f"{name}.png")
    # was 'Internal error: ValueError: the two dates differ in shape: (3, 32, 32) vs (4, 32, 32)'
    rgba = evaluate_detailed(root, model="cva")
    assert (rgba.tp, rgba.fp, rgba.fn) == (rgb.tp, rgb.fp, rgb.fn)
    Image.open(root / "A" / "p2.png").convert("L").save(root / "A" / "p2.png")
    with pytest.raises(DatasetError, match=r"pair 'p2'.*A/p2.png.*1 band.*3"):
        evaluate(root, model="cva")


def _oscd(root: Path, label_values: tuple[int, int]) -> Path:
    """One OSCD-style city 'c1' of 24x24 with the four 10 m bands and a change map."""
    rng = np.random.default_rng(1)
    for d in ("imgs_1", "imgs_2"):
        folder = root / "images" / "c1" / d
        folder.mkdir(parents=True)
        for band in ("B02", "B03", "B04", "B08"):
            data = rng.integers(500, 1500, (1, 24, 24)).astype(np.uint16)
            if d == "imgs_2":
                data[:, 4:12, 4:12] = 4000
            with rasterio.open(folder / f"S2_T1_{band}.tif", "w", driver="GTiff", width=24, height=24,
                               count=1, dtype="uint16", crs="EPSG:32631", transform=GRID) as dst:
                dst.write(data)
    (root / "labels" / "c1" / "cm").mkdir(parents=True)
    cm = np.full((1, 24, 24), label_values[0], np.uint8)
    cm[:, 4:12, 4:12] = label_values[1]
    with rasterio.open(root / "labels" / "c1" / "cm" / "c1-cm.tif", "w", driver="GTiff", width=24, height=24,
                       count=1, dtype="uint8", crs="EPSG:32631", transform=GRID) as dst:
        dst.write(cm)
    return root


def test_an_oscd_change_map_of_other_values_is_refused_not_scored_as_no_change(tmp_path: Path) -> None:
    good = evaluate_detailed(_oscd(tmp_path / "good", (1, 2)), model="cva")
    assert good.tp + good.fn == 64  # 1 = no change, 2 = change
    # a 0/1 map (what OSCD's own README describes) had no pixel equal to 2: every change was a miss, silently
    with pytest.raises(DatasetError, match=r"c1-cm.tif.*values \[0, 1\].*1 = no change, 2 = change"):
        evaluate(_oscd(tmp_path / "zero_one", (0, 1)), model="cva")
    with pytest.raises(DatasetError, match=r"values \[0, 255\]"):
        evaluate(_oscd(tmp_path / "png_like", (0, 255)), model="cva")


# -- model folders ------------------------------------------------------------------------
def _copy_model(tmp_path: Path, name: str, **card: object) -> Path:
    folder = tmp_path / "models" / name
    folder.mkdir(parents=True)
    src = REPO / "models" / "s2-urban"
    for f in ("weights.pt", "metadata.json", "MODEL_CARD.md"):
        shutil.copy(src / f, folder / f)
    meta = json.loads((folder / "metadata.json").read_text())
    meta.update(name=name, **card)
    (folder / "metadata.json").write_text(json.dumps(meta))
    return folder


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("gsd_range_m", 0.5, "'gsd_range_m' must be an array of 2 numbers"),
    ("bands", "red", "'bands' must be an array of strings"),
    ("threshold", "high", "'threshold' must be a number"),
    ("arch_kwargs", [1], "'arch_kwargs' must be an object"),
])
def test_a_malformed_card_is_a_model_error_and_the_listing_skips_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        field: str, value: object, expected: str) -> None:
    from changedetect.weights import list_shipped, read_card

    folder = _copy_model(tmp_path, "broken", **{field: value})
    with pytest.raises(ModelError, match=f"metadata.json.*{expected}"):
        read_card(folder)
    monkeypatch.setenv("CHANGEDETECT_MODELS", str(folder.parent))
    assert "broken" not in [c.name for c in list_shipped()]  # one bad folder does not hide the others
    code, out, err = _run(capsys, "models")
    assert code == 0 and "s2-urban" in out and "vhr-building" in out, out + err
    code, out, err = _run(capsys, "models", folder)
    assert code == 2 and expected in err and "Internal error" not in err, err


def test_a_model_folder_without_its_card_is_named_as_such(tmp_path: Path) -> None:
    from changedetect.weights import load_model

    folder = _copy_model(tmp_path, "nocard")
    (folder / "metadata.json").unlink()
    with pytest.raises(ModelError, match=r"model folder '.*nocard' has no metadata.json"):
        load_model(folder)


# -- training configuration ---------------------------------------------------------------
@pytest.mark.parametrize(("line", "expected"), [
    ("lr = -1.0", "'lr' must be a number > 0, got -1.0"),
    ("lr = 0.0", "'lr' must be a number > 0, got 0.0"),
    ("weight_decay = -0.1", "'weight_decay' must be a number >= 0"),
    ("threshold = 1.5", "'threshold' must be between 0 and 1"),
    ("p_real = 2.0", "'p_real' must be between 0 and 1"),
    ("gsd_range_m = [0.0, 1.0]", "'gsd_range_m' must be two ground sample distances 0 < low <= high"),
    ("gsd_range_m = [2.0, 1.0]", "'gsd_range_m' must be two ground sample distances 0 < low <= high"),
    ("steps = 0", "steps must be >= 1, got 0"),
    # found only once the data were read (a first run builds the cache from data_root first)
    ('train_groups = ["a", "b"]\nval_groups = ["b"]', "groups ['b'] are both in train_groups and val_groups"),
])
def test_config_values_out_of_range_name_the_file_and_the_key(tmp_path: Path, line: str, expected: str) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text(f'name = "x"\n{line}\n')
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_toml(toml)
    assert str(toml) in str(info.value) and expected in str(info.value), info.value


def test_a_negative_learning_rate_is_exit_2_not_a_bug_report(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    toml = tmp_path / "t.toml"
    toml.write_text(TINY_TOML.format(cache=tmp_path / "absent.npz", steps=2, extra="lr = -1.0\n"))
    code, out, err = _run(capsys, "-q", "train", toml, "--out", tmp_path / "m", "--device", "cpu")
    assert code == 2 and "'lr' must be a number > 0" in err and "Internal error" not in err, err
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_a_vhr_run_of_two_bands_is_exit_2_before_any_data(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    toml = tmp_path / "t.toml"
    toml.write_text(TINY_TOML.format(cache=tmp_path / "absent.npz", steps=2, extra='bands = ["red", "green"]\n'))
    code, out, err = _run(capsys, "-q", "train", toml, "--out", tmp_path / "m", "--device", "cpu")
    # it was 'Internal error: ValueError: expected 2 bands, got 3' at the first batch, once the data were read
    assert code == 2 and "task 'vhr' trains on RGB images: 'bands' must name 3 bands" in err, err


@pytest.mark.parametrize(("line", "expected"), [
    ('arch = "nosuch"', "unknown model architecture 'nosuch'"),
    ('init_from = "nosuch"', "unknown model 'nosuch'"),
])
def test_an_unknown_network_or_starting_model_is_named_before_any_data(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, expected: str) -> None:
    toml = tmp_path / "t.toml"
    toml.write_text(TINY_TOML.format(cache=tmp_path / "absent.npz", steps=2, extra=line + "\n"))
    code, out, err = _run(capsys, "-q", "train", toml, "--out", tmp_path / "m", "--device", "cpu")
    # it was found after the data were read: here 'data root ... is absent'; on a first run, after the cache was built
    assert code == 2 and expected in err and "data root" not in err, err


def test_init_from_may_name_a_shipped_model(tmp_path: Path) -> None:
    toml = tmp_path / "ft.toml"
    toml.write_text('name = "x"\ninit_from = "s2-urban"\n')
    # it was read as '<the file's folder>/s2-urban', a folder that does not exist, so that the error
    # listed 's2-urban' among the available models while refusing it
    assert TrainConfig.from_toml(toml).init_from == "s2-urban"
    (tmp_path / "stage").mkdir()
    toml.write_text('name = "x"\ninit_from = "stage"\n')  # a folder beside the file stays relative to it
    assert TrainConfig.from_toml(toml).init_from == str((tmp_path / "stage").resolve())


def test_training_on_an_oscd_root_of_another_name(tmp_path: Path) -> None:
    from changedetect.cli.train_cmd import _config
    from changedetect.training.loaders import build_data

    root = _oscd(tmp_path / "MyOSCD", (1, 2))
    cfg = _config(root, tmp_path / "out")
    assert cfg.task == "s2"
    # it read '<parent>/oscd/labels/...', a folder the user never named
    images, pairs = build_data(replace(cfg, train_groups=("c1",), val_groups=()))
    assert images == [] and len(pairs) == 1 and int(pairs[0].label.sum()) == 64


# -- resuming -----------------------------------------------------------------------------
def test_a_resumed_run_logs_the_same_losses_as_an_uninterrupted_one(tmp_path: Path) -> None:
    from changedetect.training.datasets import LabelledImage, save_cache
    from changedetect.training.train import train

    def image(seed: int, group: str) -> LabelledImage:
        rng = np.random.default_rng(seed)
        img = rng.integers(60, 120, (3, 96, 96)).astype(np.uint8)
        mask = np.zeros((96, 96), bool)
        mask[20:30, 40:50] = True
        img[:, mask] = 210
        return LabelledImage(f"im{seed}", img, mask, 0.5, group, np.ones((96, 96), bool))

    cache = tmp_path / "cache.npz"
    save_cache(cache, images=[image(1, "a"), image(2, "a"), image(3, "held")])
    toml = tmp_path / "t.toml"
    toml.write_text(TINY_TOML.format(cache=cache, steps=4, extra=""))
    cfg = TrainConfig.from_toml(toml)
    whole = train(cfg, out=tmp_path / "whole", progress=False, device="cpu")
    assert train(cfg, out=tmp_path / "split", progress=False, device="cpu", stop_after=3) is None
    resumed = train(cfg, out=tmp_path / "split", progress=False, device="cpu")
    assert whole is not None and resumed is not None and whole.sha256 == resumed.sha256

    def losses(out: Path) -> list[float]:
        return [json.loads(line)["loss"] for line in (out / "train_log.jsonl").read_text().splitlines()]

    # the running loss restarted from 0 after a resume: 0.0306 logged at step 4 for 1.474
    assert losses(tmp_path / "split") == pytest.approx(losses(tmp_path / "whole"), rel=1e-3)


def test_a_card_sha256_in_capitals_is_the_same_checksum(tmp_path: Path) -> None:
    from changedetect.weights import load_model

    folder = _copy_model(tmp_path, "upper")
    meta = json.loads((folder / "metadata.json").read_text())
    # Windows' Get-FileHash and CertUtil print the digest in capitals: the same weights were refused as corrupt
    meta["sha256"] = meta["sha256"].upper()
    (folder / "metadata.json").write_text(json.dumps(meta))
    assert load_model(folder).card.name == "upper"
    meta["sha256"] = "0" * 64
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="sha256"):
        load_model(folder)


def test_a_run_killed_between_its_log_line_and_its_checkpoint_logs_each_step_once(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch
                                                                                 ) -> None:
    from changedetect.training import train as train_mod
    from changedetect.training.datasets import LabelledImage, save_cache

    rng = np.random.default_rng(1)
    img = rng.integers(60, 120, (3, 96, 96)).astype(np.uint8)
    mask = np.zeros((96, 96), bool)
    mask[20:30, 40:50] = True
    images = [LabelledImage(f"im{k}", img, mask, 0.5, g, np.ones((96, 96), bool))
              for k, g in enumerate(("a", "a", "held"))]
    save_cache(tmp_path / "cache.npz", images=images)
    toml = tmp_path / "t.toml"
    toml.write_text(TINY_TOML.format(cache=tmp_path / "cache.npz", steps=4, extra=""))
    cfg = TrainConfig.from_toml(toml)
    out = tmp_path / "m"
    real_save = train_mod._save_checkpoint

    def killed_at_step_4(path: Path, *args: object, **kw: object) -> None:
        if args[3] == 4:  # step: Ctrl-C while the checkpoint is written, after the log line
            raise KeyboardInterrupt
        real_save(path, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(train_mod, "_save_checkpoint", killed_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        train_mod.train(cfg, out=out, progress=False, device="cpu")
    monkeypatch.setattr(train_mod, "_save_checkpoint", real_save)
    assert train_mod.train(cfg, out=out, progress=False, device="cpu") is not None
    steps = [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert steps == [2, 4]  # was [2, 4, 4]


def test_a_folder_that_is_neither_data_nor_a_config_is_named(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "vhr"  # a model folder given for CONFIG_OR_DATA: its train.toml was meant
    model.mkdir()
    (model / "train.toml").write_text('name = "x"\n')
    code, out, err = _run(capsys, "-q", "train", model, "--out", tmp_path / "m", "--device", "cpu")
    # it was read as a VHR data root: "fair_oam area folder '.../vhr/buildings/fair_oam/data/1' is missing"
    assert code == 2 and "fair_oam" not in err, err
    assert "neither a training config" in err and str(model / "train.toml") in err, err


def test_the_card_records_a_command_that_repeats_the_run(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from changedetect.training.datasets import LabelledImage, save_cache

    rng = np.random.default_rng(2)
    img = rng.integers(60, 120, (3, 96, 96)).astype(np.uint8)
    mask = np.zeros((96, 96), bool)
    mask[20:30, 40:50] = True
    save_cache(tmp_path / "cache.npz", images=[LabelledImage(f"im{k}", img, mask, 0.5, g, np.ones((96, 96), bool))
                                               for k, g in enumerate(("a", "a", "held"))])
    toml = tmp_path / "t.toml"
    toml.write_text(TINY_TOML.format(cache=tmp_path / "cache.npz", steps=2, extra=""))
    code, out, err = _run(capsys, "-q", "train", toml, "--out", tmp_path / "m", "--device", "cpu",
                          "--batch-size", "1")
    assert code == 0, err
    card = json.loads((tmp_path / "m" / "metadata.json").read_text())["training"]
    assert card["batch_size"] == 1
    # the command left --batch-size out: run again as recorded, it trained with the file's 2
    assert "--batch-size 1" in card["command"], card["command"]


def test_a_config_without_data_root_and_cache_uses_the_repository_defaults(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "mine"
    folder.mkdir(parents=True)
    toml = folder / "train.toml"
    toml.write_text('name = "mine"\n')
    cfg = TrainConfig.from_toml(toml)
    # they were taken from the file's folder: data_root '<tmp>/models/shared/data' (nowhere), and the
    # cache of licensed data written to 'models/mine/.cache_train/vhr.npz', beside the model and not git-ignored
    assert Path(cfg.data_root) == (REPO / ".." / "shared" / "data").resolve()
    assert Path(cfg.cache) == REPO / ".cache_train" / "mine.npz"
    toml.write_text('name = "mine"\ndata_root = "data"\ncache = "c.npz"\n')  # given ones stay relative to the file
    cfg = TrainConfig.from_toml(toml)
    assert Path(cfg.data_root) == folder / "data" and Path(cfg.cache) == folder / "c.npz"


def test_a_training_config_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    toml = tmp_path / "bom.toml"
    toml.write_bytes(b"\xef\xbb\xbf" + b'name = "x"\nsteps = 7\n')  # Notepad's "UTF-8 with BOM"
    # was "not valid TOML: Invalid statement (at line 1, column 1)"
    assert TrainConfig.from_toml(toml).steps == 7
