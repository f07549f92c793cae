"""Review: messages said once per command or call, a closed pipe, PostGIS timestamptz permit dates."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from changedetect.cli import main

try:  # the throwaway PostgreSQL server of tests/test_postgis.py (its module skips without psycopg)
    from test_postgis import postgis_url  # noqa: F401  (a fixture)
except pytest.skip.Exception as _skipped:
    _NO_PSYCOPG = str(_skipped)

    @pytest.fixture(scope="module")
    def postgis_url() -> str:
        pytest.skip(_NO_PSYCOPG)

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
    from test_cli_errors import root_log

    with root_log() as stream:
        for _ in range(2):  # once per command: a second command in the same process says it again
            stream.seek(0)
            stream.truncate()
            code, _ = _exit([*(["-v"] if verbose else []), "info", str(tmp_path)], capsys)
            assert code == 2
            lines = [line for line in stream.getvalue().splitlines() if UNNAMED in line]
            assert lines == ["WARNING changedetect.detect: BEFORE has unnamed bands: using the first 3",
                             "WARNING changedetect.detect: AFTER has unnamed bands: using the first 3"]


def _into_closed_pipe(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``changedetect ARGS | true`` without the race: the reader's end is closed before it starts."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", "changedetect.cli", *args], stdout=write,
                              stderr=subprocess.PIPE, text=True, cwd=cwd, timeout=300, check=False)
    finally:
        os.close(write)


@pytest.mark.parametrize("args", [["info", "sample_tiles"], ["info", "sample_tiles", "--json"], ["info", "--help"]])
def test_a_closed_pipe_exits_141_quietly(args: list[str], repo_root: Path) -> None:
    done = _into_closed_pipe(args, repo_root)
    assert done.returncode == 141, done.stderr  # 128 + SIGPIPE, as `yes | head` reports; 1 says "a bug"
    assert done.stderr == ""


@pytest.mark.parametrize("args", ["info nowhere", "run sample_tiles --bogus"])
def test_an_error_into_a_closed_pipe_keeps_its_exit_status(args: str, repo_root: Path) -> None:
    """`changedetect ... 2>&1 | true`: writing the error raised BrokenPipeError, and the command exited 1
    ('a bug') instead of 2, whichever of the two processes came first."""
    done = subprocess.run(f"'{sys.executable}' -m changedetect.cli {args} 2>&1 | true; echo ${{PIPESTATUS[0]}}",
                          shell=True, executable="/bin/bash", capture_output=True, text=True, cwd=repo_root,
                          timeout=300, check=False)
    assert done.stdout.strip() == "2", done


def test_a_pipe_read_to_the_end_still_exits_0(repo_root: Path) -> None:
    done = subprocess.run(f"'{sys.executable}' -m changedetect.cli info sample_tiles --json | cat >/dev/null; "
                          "echo ${PIPESTATUS[0]}", shell=True, executable="/bin/bash", capture_output=True,
                          text=True, cwd=repo_root, timeout=300, check=False)
    assert done.stdout.strip() == "0", done  # cat reads it all: a pipe alone is no reason to exit 141


# --- 3. a timestamptz permit date is the day in the city's time zone ------------------------------------

MIDNIGHT_HCMC = "('GP-TZ-1', 'new_construction', '2024-01-01 00:00+07', '2025-12-31 00:00+07', 180, 'Số 1', 'active', "


@pytest.fixture(scope="module")
def tz_register(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("postgis_url")
    import psycopg
    from test_postgis import X0, Y0

    box = f"POLYGON(({X0} {Y0}, {X0 + 12} {Y0}, {X0 + 12} {Y0 + 15}, {X0} {Y0 + 15}, {X0} {Y0}))"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER DATABASE registers SET TimeZone = 'Etc/UTC'")  # a server in UTC
        conn.execute("CREATE TABLE tz_permits (permit_id text, permit_type text, issued_on timestamptz, "
                     "valid_until timestamptz, permitted_area_m2 float8, address text, status text, "
                     "geom geometry(Polygon, 9210))")
        conn.execute(f"INSERT INTO tz_permits VALUES {MIDNIGHT_HCMC} ST_GeomFromText('{box}', 9210))")
    return url


@pytest.mark.postgis
def test_timestamptz_permit_dates_are_days_in_the_named_time_zone(
    tz_register: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from changedetect.config import PermitsConfig
    from changedetect.permits import load_register

    monkeypatch.delenv("PGTZ", raising=False)
    # without a time zone: the server's (UTC here), as docs/permits.md says: the day before
    got = load_register(tz_register, table="tz_permits")
    assert got["issued_on"].tolist() == [dt.date(2023, 12, 31)]
    assert got["valid_until"].tolist() == [dt.date(2025, 12, 30)]
    for permits in (load_register(tz_register, table="tz_permits", timezone="Asia/Ho_Chi_Minh"),
                    PermitsConfig(table="tz_permits", timezone="Asia/Ho_Chi_Minh").load(tz_register)):
        assert permits["issued_on"].tolist() == [dt.date(2024, 1, 1)]
        assert permits["valid_until"].tolist() == [dt.date(2025, 12, 31)]


@pytest.mark.postgis
def test_an_unknown_time_zone_is_one_line(tz_register: str) -> None:
    from changedetect.errors import ConfigError
    from changedetect.permits import load_register

    with pytest.raises(ConfigError, match=r"time zone 'Asia/Saigonn'.*Asia/Ho_Chi_Minh") as err:
        load_register(tz_register, table="tz_permits", timezone="Asia/Saigonn")
    assert "\n" not in str(err.value)


def test_the_time_zone_is_a_permits_option_of_the_config_and_the_cli(tmp_path: Path) -> None:
    from changedetect.cli.options import with_register_options
    from changedetect.config import PipelineConfig

    toml = tmp_path / "city.toml"
    toml.write_text('[permits]\ntable = "permits"\ntimezone = "Asia/Ho_Chi_Minh"\n')
    assert PipelineConfig.from_toml(toml).permits.timezone == "Asia/Ho_Chi_Minh"
    given = with_register_options(PipelineConfig(), {"permits_timezone": "Asia/Bangkok"})
    assert given.permits.timezone == "Asia/Bangkok"
    assert with_register_options(PipelineConfig.from_toml(toml), {}).permits.timezone == "Asia/Ho_Chi_Minh"


def test_a_command_run_through_clirunner_leaves_no_filter_behind(caplog: pytest.LogCaptureFixture) -> None:
    """CliRunner calls the group without main(), so the once-per-command filter stayed on the root
    logger's handlers with its memory of the command's lines, and later library calls' identical
    warnings were dropped (the unnamed-bands tests failed after test_cli in the full suite)."""
    from click.testing import CliRunner

    from changedetect.cli import _WARNINGS_ONCE, cli

    assert CliRunner().invoke(cli, ["models"]).exit_code == 0
    assert not any(_WARNINGS_ONCE in h.filters for h in logging.getLogger().handlers)
    _WARNINGS_ONCE.logged.add("the same words")  # as if the command had said it
    with caplog.at_level(logging.WARNING, logger="changedetect"):
        logging.getLogger("changedetect.test").warning("the same words")
    assert [r.getMessage() for r in caplog.records] == ["the same words"]
