"""Each warning about a command's result is said once on the terminal, with or without ``-q``, with ``--json``.

Without ``-q``, ``changedetect run`` said a model made for other pixels twice (detection's log line, "the stack
has 10.00 m pixels", then the summary's ``Warning:`` line), a date co-registration could not register twice
(the log line, then ``NOT CO-REGISTERED``), and ``run --json`` said them in the JSON and as log lines;
``changedetect match`` said a register far from the footprints as a log line and again as its ``Warning:``
line, ``changedetect coregister`` an unregistered date as a log line and again as its ``Warning:`` line.
The result says them now (``said_by_result``); a library user still hears each once, as a log line.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner, Result
from test_cli_errors import root_log

from changedetect.cli import cli
from changedetect.testing import make_footprints, make_model, make_permits, make_stack, write_stack

#: the warnings of the world below, each by what every wording of it says (the log's and the summary's)
RESOLUTION = "is made for 0.3-1 m pixels"
FAR = "no permit of the register lies within 1000 m"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """10 m tiles (a 0.3-1 m model: a resolution warning), the last date 30 px east of where it lies (not
    co-registered), and a register 20 km away (no permit near), with footprints for ``match``."""
    root = tmp_path_factory.mktemp("once")
    stack = make_stack(n_dates=2, size=256, seed=3, resolution=10.0)
    tiles = write_stack(stack, root / "tiles", prefix="s2")
    with rasterio.open(tiles[-1], "r+") as dst:
        t = dst.transform
        dst.transform = Affine(t.a, t.b, t.c + 30 * t.a, t.d, t.e, t.f)
    footprints = make_footprints(stack)
    footprints.to_file(root / "footprints.gpkg")
    permits = make_permits(footprints.iloc[:1])
    permits["geometry"] = permits.geometry.translate(20_000, 0)
    permits.to_file(root / "far.gpkg")
    model = make_model(root / "tiny-model")
    (root / "run.toml").write_text(f'[detect]\nmodel = "{model}"\nwindow = 128\noverlap = 16\n', encoding="utf-8")
    return {"root": root, "last": str(stack["time"].values[-1])[:10]}


def _said(args: list[str]) -> tuple[Result, str]:
    """The command's result and all it put on the terminal: stdout, stderr and its log lines (``-q``: those
    of level ERROR, as the CLI sets the root logger's level in a process of its own)."""
    root = logging.getLogger()
    level = root.level
    with root_log() as log:
        if "-q" in args[:1]:
            root.setLevel(logging.ERROR)
        try:
            done = CliRunner().invoke(cli, args)
        finally:
            root.setLevel(level)
    assert done.exit_code == 0, done.output
    return done, done.stdout + done.stderr + log.getvalue()


@pytest.mark.parametrize(("group", "json_out"), [([], False), (["-q"], False), ([], True)],
                         ids=["plain", "q", "json"])
def test_run_says_each_warning_once(world: dict, group: list[str], json_out: bool) -> None:
    root, out = world["root"], world["root"] / f"out_{len(group)}_{json_out}"
    done, said = _said([*group, "run", str(root / "tiles"), "--permits", str(root / "far.gpkg"), "--config",
                        str(root / "run.toml"), "--out", str(out), *(["--json"] if json_out else [])])
    assert said.count(RESOLUTION) == 1, said  # the summary's line, or the JSON's warning
    doc = json.loads(done.stdout) if json_out else json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert [u["date"] for u in doc["unregistered"]] == [world["last"]]
    assert [w["kind"] for w in doc["warnings"]][:1] == ["resolution"]
    # the date not co-registered: the summary's NOT CO-REGISTERED line (the JSON's "unregistered"), no log line
    assert "could not be registered reliably" not in said, said
    assert said.count(f"NOT CO-REGISTERED:  {world['last']}") == (0 if json_out else 1), said
    assert said.count(FAR) <= 1, said  # when the random model finds a footprint


@pytest.mark.parametrize("quiet", [False, True])
def test_match_says_a_register_far_away_once(world: dict, quiet: bool, tmp_path: Path) -> None:
    root = world["root"]
    _, said = _said([*(["-q"] if quiet else []), "match", str(root / "footprints.gpkg"), "--permits",
                     str(root / "far.gpkg"), "--out", str(tmp_path / "v.gpkg")])
    assert said.count(FAR) == 1 and f"Warning: {FAR}" in said, said


def test_coregister_says_a_date_it_could_not_register_once(world: dict, tmp_path: Path) -> None:
    root = world["root"]
    _, said = _said(["coregister", str(root / "tiles"), "--out", str(tmp_path / "aligned")])
    assert said.count("could not be registered reliably") == 1, said
    assert f"Warning: {world['last']}: date {world['last']} could not be registered reliably" in said, said


def test_a_library_user_hears_each_once(world: dict, caplog: pytest.LogCaptureFixture) -> None:
    from changedetect.config import PipelineConfig
    from changedetect.pipeline import run

    root = world["root"]
    with caplog.at_level(logging.WARNING):
        summary = run(root / "tiles", permits=root / "far.gpkg", out=root / "lib",
                      config=PipelineConfig.from_toml(root / "run.toml"))
    said = [r.getMessage() for r in caplog.records]
    assert sum(RESOLUTION in m for m in said) == 1, said
    assert sum("could not be registered reliably" in m for m in said) == 1, said
    assert [w["kind"] for w in summary.warnings][:1] == ["resolution"]


def test_run_measures_the_model_fit_once(world: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """``run`` measures the model's fit before any work; detection measured it again for its log line: the
    pixel size per ``detect_each_pair`` call (per block in a blocked run), a grey date by reading windows of
    each date of each pair, and of each date again for the building segmenter."""
    import changedetect._detect_inputs as inputs
    import changedetect._grey as grey
    import changedetect.io.summary as summary  # model_fit's grey check, which holds its own sample_windows
    from changedetect.config import PipelineConfig
    from changedetect.pipeline import run

    calls = {"gsd": 0, "windows": 0, "fit_dates": 0}
    judge, sample, grey_date = inputs.gsd_mismatch, grey.sample_windows, summary._panchromatic

    def counted_gsd(*args: object, **kwargs: object) -> object:
        calls["gsd"] += 1
        return judge(*args, **kwargs)  # type: ignore[arg-type]

    def counted_windows(*args: object, **kwargs: object) -> object:
        calls["windows"] += 1  # detection's reads
        return sample(*args, **kwargs)  # type: ignore[arg-type]

    def counted_date(*args: object, **kwargs: object) -> object:
        calls["fit_dates"] += 1
        return grey_date(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(inputs, "gsd_mismatch", counted_gsd)
    monkeypatch.setattr(summary, "_panchromatic", counted_date)
    monkeypatch.setattr(grey, "sample_windows", counted_windows)
    root = world["root"]
    summary = run(root / "tiles", permits=root / "far.gpkg", out=root / "measured",
                  config=PipelineConfig.from_toml(root / "run.toml"))
    assert [w["kind"] for w in summary.warnings][:1] == ["resolution"]
    assert calls == {"gsd": 1, "windows": 0, "fit_dates": 2}, calls  # each of the 2 dates read once, by model_fit


@pytest.mark.parametrize("quiet", [False, True])
def test_the_nightly_says_a_register_far_away_once(tmp_path: Path, quiet: bool) -> None:
    """The night's summary says what a pair's run warned of (one line per area and kind); its run's log line
    (``changedetect.match``'s) came out too without ``-q``."""
    import geopandas as gpd

    from changedetect.testing import make_nightly_catalog

    world = make_nightly_catalog(tmp_path, {"a": 1})
    register = gpd.read_file(world["permits"])
    register["geometry"] = register.geometry.translate(20_000, 0)
    register.to_file(tmp_path / "far.gpkg")
    _, said = _said([*(["-q"] if quiet else []), "nightly", "--catalog", str(world["tiles"]), "--permits",
                     str(tmp_path / "far.gpkg"), "--state", str(tmp_path / "state"), "--out", str(tmp_path / "out"),
                     "--config", str(world["config"]), "--workers", "1"])
    assert said.count(FAR) == 1 and f"WARNING area a: {FAR}" in said, said


def test_a_match_whose_warnings_no_one_carries_keeps_its_log_line(tmp_path: Path) -> None:
    """The nightly's re-match of earlier nights' violations reads no ``attrs["warnings"]``: its match's line
    (a register now far from them) is the only place that says it, so the nightly's ``said_by_result`` must
    not drop it, while a pair's run's match (carried into run.json and the night's summary) is dropped."""
    import geopandas as gpd
    from shapely.geometry import box

    from changedetect._nightly_rematch import rematch
    from changedetect.cli import _WARNINGS_ONCE
    from changedetect.cli.options import said_by_result
    from changedetect.match import MatchConfig, match, warnings_carried
    from changedetect.permits import load_register
    from changedetect.testing import make_permits

    rows = make_footprints(make_stack(n_dates=2, size=64)).assign(
        violation_id=lambda f: [f"a-{i}" for i in range(len(f))], area="a", night="2020-07-05", status="unlicensed")
    register = make_permits(gpd.GeoDataFrame(geometry=[box(0, 0, 20, 20)], crs=rows.crs))
    register["geometry"] = register.geometry.translate(rows.total_bounds[0] + 20_000, rows.total_bounds[1])
    register.to_file(tmp_path / "far.gpkg")
    register = load_register(tmp_path / "far.gpkg")
    with root_log() as log:
        _WARNINGS_ONCE.install(detailed=False)
        try:
            with said_by_result():
                with warnings_carried():
                    match(rows, register, config=MatchConfig())  # a pair's run: its summary says it
                assert FAR not in log.getvalue()
                _WARNINGS_ONCE.logged.clear()  # (the same text would be dropped as a repeat)
                rematch(rows, register, "2020-09-04", config=MatchConfig())
        finally:
            _WARNINGS_ONCE.uninstall()
    assert log.getvalue().count(FAR) == 1, log.getvalue()


def test_run_says_unnamed_bands_once(tmp_path: Path) -> None:
    """Bands without names, read in the model's order: detection said "BEFORE has unnamed bands" and "AFTER
    has unnamed bands" as log lines besides the summary's line of run's model fit."""
    stack = make_stack(n_dates=2, size=64, seed=6)
    for path in write_stack(stack, tmp_path / "tiles", prefix="t"):
        with rasterio.open(path, "r+") as dst:
            for i in range(1, dst.count + 1):
                dst.set_band_description(i, "")
    make_permits(make_footprints(stack).iloc[:1]).to_file(tmp_path / "permits.gpkg")
    model = make_model(tmp_path / "tiny-model")
    (tmp_path / "run.toml").write_text(f'[detect]\nmodel = "{model}"\nwindow = 64\noverlap = 8\n', encoding="utf-8")
    _, said = _said(["run", str(tmp_path / "tiles"), "--permits", str(tmp_path / "permits.gpkg"), "--config",
                     str(tmp_path / "run.toml"), "--out", str(tmp_path / "out")])
    assert said.count("unnamed bands") + said.count("bands have no names") == 1, said
    assert "Warning: the tiles' bands have no names (B1, B2, B3, B4)" in said, said
