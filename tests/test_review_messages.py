"""Review: messages said once per command or call, a closed pipe, PostGIS timestamptz permit dates."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest

from changedetect.cli import main

UNNAMED = "has unnamed bands"


def _exit(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return int(info.value.code or 0), capsys.readouterr().err


def _anonymous_stack(repo_root: Path):  # type: ignore[no-untyped-def]
    from changedetect.io import open_stack

    stack = open_stack(repo_root / "sample_tiles").isel(band=[0, 1, 2], y=slice(0, 256), x=slice(0, 256))
    return stack.assign_coords(band=["1", "2", "3"]).compute()


def test_detect_series_says_unnamed_bands_once_per_call(repo_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    from changedetect.detect import detect_series
    from changedetect.weights import building_segmenter, load_model

    stack = _anonymous_stack(repo_root)
    loaded = load_model("vhr-building")
    segmenter = building_segmenter(loaded)
    for _ in range(2):  # once per call, not once per process
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="changedetect"):
            detect_series(stack, model=loaded, segmenter=segmenter)
        said = [r.getMessage() for r in caplog.records if UNNAMED in r.getMessage()]
        assert sorted(m.split(" ")[0] for m in said) == ["AFTER", "BEFORE"], said


def test_evaluate_pairs_says_unnamed_bands_once_per_call(repo_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    from changedetect.evaluate import Pair, evaluate_pairs, make_predictor

    stack = _anonymous_stack(repo_root).isel(y=slice(0, 128), x=slice(0, 128))
    label = np.zeros((128, 128), dtype=bool)
    pairs = [Pair(f"p{k}", stack.isel(time=0), stack.isel(time=1 + k % 2), label) for k in range(3)]
    with caplog.at_level(logging.WARNING, logger="changedetect"):
        evaluate_pairs(pairs, model=make_predictor("vhr-building"))
    said = [r.getMessage() for r in caplog.records if UNNAMED in r.getMessage()]
    assert sorted(m.split(" ")[0] for m in said) == ["AFTER", "BEFORE"], said


def _log_thrice_and_stop(*args: object, **kwargs: object) -> None:
    from changedetect.errors import TimeSeriesError

    log = logging.getLogger("changedetect.detect")
    for source in ("BEFORE", "AFTER", "BEFORE", "AFTER", "BEFORE"):
        log.warning("%s has unnamed bands: using the first 3", source)
    raise TimeSeriesError("stop here")


@pytest.mark.parametrize("verbose", [False, True])
def test_cli_says_a_repeated_log_warning_once(
    verbose: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    import changedetect.io.summary as summary

    monkeypatch.setattr(summary, "describe", _log_thrice_and_stop)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        for _ in range(2):  # once per command: a second command in the same process says it again
            stream.seek(0)
            stream.truncate()
            code, _ = _exit([*(["-v"] if verbose else []), "info", str(tmp_path)], capsys)
            assert code == 2
            lines = [line for line in stream.getvalue().splitlines() if UNNAMED in line]
            assert lines == ["WARNING changedetect.detect: BEFORE has unnamed bands: using the first 3",
                             "WARNING changedetect.detect: AFTER has unnamed bands: using the first 3"]
    finally:
        root.removeHandler(handler)
