"""The command line's answers to bad output locations, formats, devices, CRSs, patterns and Ctrl-C.

Each case must be exit 2 (or 130 for Ctrl-C) with one line saying what to do, and must be caught
before any work is done.  The inputs are dummies where the check has to come before they are read.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box

import changedetect.cli as cdcli
from changedetect.errors import ChangeDetectError, ConfigError, OutputFormatError, TimeSeriesError

REGISTER = Path(__file__).resolve().parents[1] / "permits" / "sample_register.gpkg"
#: A folder in which nobody, root included, can create a file (chmod cannot stop root).
UNWRITABLE = Path("/proc")
needs_proc = pytest.mark.skipif(not UNWRITABLE.is_dir(), reason="needs Linux /proc as an unwritable folder")


def _exit(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the CLI; its exit status and its stderr."""
    cdcli._STATE["debug"] = False
    with pytest.raises(SystemExit) as info:
        cdcli.main(argv)
    code = info.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


@contextmanager
def root_log() -> Iterator[io.StringIO]:
    """What the root logger's handlers print during the block, as the CLI formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    assert "Internal error" not in err and "Traceback" not in err, err
    return lines[-1]


@pytest.fixture()
def dummies(tmp_path: Path) -> dict[str, Path]:
    """Files that exist (for click's checks) but that no command could read."""
    paths = {name: tmp_path / name for name in ("a.tif", "b.tif", "fp.gpkg")}
    for path in paths.values():
        path.write_bytes(b"not a raster")
    (tmp_path / "tiles").mkdir()
    paths["tiles"] = tmp_path / "tiles"
    return paths


def _footprints(path: Path) -> Path:
    """A one-footprint file in the sample register's neighbourhood (EPSG:32648)."""
    frame = gpd.GeoDataFrame({"footprint_id": ["f1"], "area_m2": [150.0]},
                             geometry=[box(683_000, 1_192_000, 683_010, 1_192_015)], crs="EPSG:32648")
    frame.to_file(path, driver="GPKG")
    return path


# --- M2: unwritable output locations ---------------------------------------------------------------


@needs_proc
@pytest.mark.parametrize("case", [
    "coregister", "detect", "vectorize", "match", "report", "run", "nightly-out", "nightly-state", "export",
])
def test_unwritable_output_is_exit_2_before_any_work(
    case: str, dummies: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    ro = UNWRITABLE
    argv = {
        "coregister": ["coregister", str(dummies["tiles"]), "--out", str(ro / "co")],
        "detect": ["detect", str(dummies["a.tif"]), str(dummies["b.tif"]), "--out", str(ro / "change.tif")],
        "vectorize": ["vectorize", str(dummies["a.tif"]), "--out", str(ro / "fp.gpkg")],
        "match": ["match", str(dummies["fp.gpkg"]), "--permits", str(REGISTER), "--out", str(ro / "v.gpkg")],
        "report": ["report", str(dummies["tiles"]), "--out", str(ro / "r.html")],
        "run": ["run", str(dummies["tiles"]), "--permits", str(REGISTER), "--out", str(ro / "runout")],
        "nightly-out": ["nightly", "--catalog", str(dummies["tiles"]), "--permits", str(REGISTER),
                        "--state", str(tmp_path / "st"), "--out", str(ro / "nout")],
        "nightly-state": ["nightly", "--catalog", str(dummies["tiles"]), "--permits", str(REGISTER),
                          "--state", str(ro / "st"), "--out", str(tmp_path / "nout")],
        "export": ["export", "vhr-building", "--out", str(ro / "exp")],
    }[case]
    code, err = _exit(argv, capsys)
    assert code == 2, err
    assert _error_line(err) == (
        f"Error: cannot write to '{ro}': files cannot be created in this folder (a system or virtual "
        f"filesystem: mkstemp says 'No such file or directory'); choose a writable folder"
    )
    assert not (tmp_path / "st").exists() and not (tmp_path / "nout").exists()  # nothing begun


@needs_proc
def test_unwritable_missing_parent_names_the_folder_it_could_not_create(
    dummies: dict[str, Path], capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = _exit(["vectorize", str(dummies["a.tif"]), "--out", "/proc/no/such/fp.gpkg"], capsys)
    assert code == 2
    assert _error_line(err).startswith("Error: cannot write to '/proc/no': ")


def test_writable_check_creates_missing_parents_and_leaves_nothing(tmp_path: Path) -> None:
    from changedetect.cli.options import check_writable

    check_writable(tmp_path / "a" / "b" / "fp.gpkg")
    assert (tmp_path / "a" / "b").is_dir()
    assert list((tmp_path / "a" / "b").iterdir()) == []
    check_writable(tmp_path / "run", folder=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # the folder itself is the writer's to make


# --- M3 and S20: output formats --------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".shp", ".txt", ""])
def test_unknown_vector_format_is_exit_2_before_the_work(
    suffix: str, dummies: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "m" / f"v{suffix}"
    for argv in (["match", str(dummies["fp.gpkg"]), "--permits", str(REGISTER), "--out", str(out)],
                 ["vectorize", str(dummies["a.tif"]), "--out", str(out)]):
        code, err = _exit(argv, capsys)
        assert code == 2, err
        line = _error_line(err)
        assert line.startswith(f"Error: cannot write '{out}': ") and "use one of .csv, .geojson" in line
        if suffix == ".shp":
            assert "Shapefiles are read but not written: use .gpkg" in line


def test_match_rejects_path_format_is_checked(
    dummies: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = _exit(["match", str(dummies["fp.gpkg"]), "--permits", str(REGISTER), "--lenient",
                       "--rejects", str(tmp_path / "rej.shp"), "--out", str(tmp_path / "v.gpkg")], capsys)
    assert code == 2
    assert "unknown extension '.shp'" in _error_line(err)
    # --rejects without --lenient would be ignored: refused, naming the missing option, before any work
    code, err = _exit(["match", str(dummies["fp.gpkg"]), "--permits", str(REGISTER),
                       "--rejects", str(tmp_path / "rej.gpkg"), "--out", str(tmp_path / "v.gpkg")], capsys)
    assert code == 2 and "add --lenient" in err and not (tmp_path / "v.gpkg").exists()


def test_write_vector_format_error_is_a_changedetect_error(tmp_path: Path) -> None:
    from changedetect.io.vectors import write_vector

    frame = gpd.GeoDataFrame({"a": [1]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:32648")
    with pytest.raises(OutputFormatError, match=r"unknown extension '\.shp'") as info:
        write_vector(frame, tmp_path / "x.shp")
    assert isinstance(info.value, ChangeDetectError) and isinstance(info.value, ValueError)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["change.png", "change.gpkg", "change"])
def test_detect_refuses_non_tiff_output(
    name: str, dummies: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / name
    code, err = _exit(["detect", str(dummies["a.tif"]), str(dummies["b.tif"]), "--out", str(out)], capsys)
    assert code == 2, err
    assert "use one of .tif, .tiff" in _error_line(err)
    assert not out.exists()


# --- M7: devices -----------------------------------------------------------------------------------


def _cuda_missing() -> bool:
    import torch

    return torch.version.cuda is None


@pytest.mark.skipif(not _cuda_missing(), reason="this torch build has CUDA")
def test_detect_cuda_without_cuda_is_exit_2(
    dummies: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = _exit(["detect", str(dummies["a.tif"]), str(dummies["b.tif"]), "--out",
                       str(tmp_path / "c.tif"), "--device", "cuda"], capsys)
    assert code == 2, err
    assert _error_line(err) == "Error: CUDA is not available in this torch build; use --device cpu"


def test_detect_unknown_device_is_exit_2(
    dummies: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = _exit(["detect", str(dummies["a.tif"]), str(dummies["b.tif"]), "--out",
                       str(tmp_path / "c.tif"), "--device", "tpu"], capsys)
    assert code == 2, err
    line = _error_line(err)
    assert line.startswith("Error: unknown device 'tpu'") and line.endswith("use --device cpu")


@pytest.mark.skipif(not _cuda_missing(), reason="this torch build has CUDA")
def test_run_config_device_cuda_is_exit_2_naming_the_config_key(
    dummies: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text('[detect]\ndevice = "cuda"\n')
    code, err = _exit(["run", str(dummies["tiles"]), "--permits", str(REGISTER), "--config", str(toml),
                       "--out", str(tmp_path / "o")], capsys)
    assert code == 2, err
    assert _error_line(err) == ('Error: CUDA is not available in this torch build; use device = "cpu" in the '
                                "[detect] table of --config")
    assert not (tmp_path / "o").exists()


def test_check_device_accepts_cpu() -> None:
    from changedetect.cli.options import check_device

    assert check_device("cpu") == "cpu"
    assert check_device("CPU") == "cpu"


# --- M8: --permits-crs -----------------------------------------------------------------------------


def _wkt_register(path: Path) -> Path:
    path.write_text(
        "permit_id,permit_type,issued_on,valid_until,permitted_area_m2,status,wkt\n"
        "P1,new_construction,2023-01-01,2026-01-01,150,active,"
        "\"POLYGON ((603800 1192100, 603812 1192100, 603812 1192115, 603800 1192115, 603800 1192100))\"\n"
    )
    return path


def test_bad_register_crs_is_a_config_error_naming_it(tmp_path: Path) -> None:
    from changedetect.io.registers import read_register

    with pytest.raises(ConfigError, match=r"CRS 'EPSG:99999' \(--permits-crs / crs=\) is not a CRS pyproj knows"):
        read_register(_wkt_register(tmp_path / "reg.csv"), crs="EPSG:99999")
    frame, _ = read_register(tmp_path / "reg.csv", crs="EPSG:9210")
    assert frame.crs.to_epsg() == 9210


def test_match_bad_permits_crs_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _exit(["match", str(_footprints(tmp_path / "fp.gpkg")), "--permits",
                       str(_wkt_register(tmp_path / "reg.csv")), "--permits-crs", "EPSG:99999",
                       "--out", str(tmp_path / "v.gpkg")], capsys)
    assert code == 2, err
    assert "'EPSG:99999'" in _error_line(err)
    assert not (tmp_path / "v.gpkg").exists()


# --- M9: --pattern ---------------------------------------------------------------------------------


def test_invalid_pattern_is_a_time_series_error() -> None:
    from changedetect.io._names import date_from_name

    with pytest.raises(TimeSeriesError, match=r"date pattern '\(\[' .*not a valid regular expression: "
                                              r"unterminated character set"):
        date_from_name("tile_20240101.tif", "([")
    assert str(date_from_name("tile_20240101.tif", r"(?P<date>\d{8})")) == "2024-01-01"


@pytest.mark.parametrize("command", ["info", "coregister"])
def test_invalid_pattern_is_exit_2(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    for name in ("t_20240101.tif", "t_20240701.tif"):
        (tiles / name).write_bytes(b"x")
    argv = [command, str(tiles), "--pattern", "(["]
    if command == "coregister":
        argv += ["--out", str(tmp_path / "co")]
    code, err = _exit(argv, capsys)
    assert code == 2, err
    assert "'([' (--pattern / pattern=) is not a valid regular expression" in _error_line(err)


# --- M12: Ctrl-C -----------------------------------------------------------------------------------


def test_ctrl_c_inside_a_command_exits_130(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    import changedetect.io.summary as summary

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(summary, "describe", interrupted)
    code, err = _exit(["info", str(tmp_path)], capsys)
    assert code == 130
    assert err.strip() == "Interrupted."


# --- S1: messages name what the command can do -------------------------------------------------------


def test_run_register_errors_point_to_what_exists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The last run, which only has to take both options and finish, runs on three generated 256 px
    dates (4 s), not on the sample city (14 s)."""
    from changedetect.testing import make_stack, write_stack

    tiles = tmp_path / "tiles"
    write_stack(make_stack(n_dates=3, size=256, seed=3), tiles, prefix="district12")
    nocrs = tmp_path / "nocrs.csv"
    nocrs.write_text(_wkt_register(tmp_path / "reg.csv").read_text())
    bad_rows = tmp_path / "bad.csv"
    bad_rows.write_text(nocrs.read_text().replace("2023-01-01", "15/03/2023")
                        .replace("POLYGON ((", "SRID=9210;POLYGON (("))
    args = ["-q", "run", str(tiles), "--out", str(tmp_path / "o"), "--permits"]
    code, err = _exit([*args, str(nocrs)], capsys)
    assert code == 2, err
    assert "--permits-crs on the command line" in err and "pass crs=" not in err
    code, err = _exit([*args, str(bad_rows)], capsys)
    assert code == 2, err
    assert "15/03/2023" in err
    assert "give --lenient on the command line" in err and "(--lenient)" not in err
    assert not (tmp_path / "o").exists()
    code, err = _exit([*args, str(nocrs), "--permits-crs", "EPSG:9210", "--lenient"], capsys)  # both exist on run
    assert code == 0, err


def test_run_and_report_over_an_existing_output_say_pass_overwrite(
    repo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    done = tmp_path / "done"
    done.mkdir()
    (done / "footprints.gpkg").write_bytes(b"x")
    (done / "report.html").write_text("<html></html>")
    code, err = _exit(["run", str(repo_root / "sample_tiles"), "--permits", str(REGISTER), "--out", str(done)],
                      capsys)
    assert code == 2, err
    assert _error_line(err) == (f"Error: output folder '{done}' already holds a run; pass --overwrite to replace "
                                "it, or choose another folder")
    code, err = _exit(["report", str(done)], capsys)
    assert code == 2, err
    assert _error_line(err) == f"Error: output '{done / 'report.html'}' already exists; pass --overwrite to replace it"


# --- S7: each warning once, one clean line -----------------------------------------------------------


def _warn_log_and_stop(*args: object, **kwargs: object) -> None:
    import logging
    import warnings

    from changedetect.errors import CoregistrationWarning

    warnings.warn("date 2024-07-12 could not be registered", CoregistrationWarning, stacklevel=2)
    logging.getLogger("changedetect.coregister").warning("date 2024-07-12 could not be registered")
    warnings.warn("'crs' was not provided", UserWarning, stacklevel=2)
    raise TimeSeriesError("stop here")


@pytest.mark.parametrize("verbose", [False, True])
def test_each_warning_is_one_line_said_once(
    verbose: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    import warnings

    import changedetect.io.summary as summary

    monkeypatch.setattr(summary, "describe", _warn_log_and_stop)
    with root_log() as stream, warnings.catch_warnings():
        warnings.simplefilter("always")
        code, _ = _exit([*(["-v"] if verbose else []), "info", str(tmp_path)], capsys)
    assert code == 2
    lines = [line for line in stream.getvalue().splitlines() if line.startswith("WARNING")]
    assert len(stream.getvalue().splitlines()) == len(lines) == 2, stream.getvalue()
    if verbose:
        assert lines[0].startswith("WARNING changedetect: date 2024-07-12 could not be registered "
                                   "(CoregistrationWarning at ")
        assert lines[1].startswith("WARNING py.warnings: UserWarning: 'crs' was not provided (")
        assert "info.py:" in lines[1]  # stacklevel=2: the caller of the patched describe
    else:
        assert lines == ["WARNING changedetect: date 2024-07-12 could not be registered",
                         "WARNING py.warnings: UserWarning: 'crs' was not provided"]


def test_an_output_folder_that_cannot_be_listed_is_exit_2(
    repo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As root every folder can be listed: the permission error is simulated on the output folder."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real = Path.iterdir

    def iterdir(self: Path):  # noqa: ANN202
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    for argv in (["coregister", str(repo_root / "sample_tiles"), "--out", str(locked)],
                 ["run", str(repo_root / "sample_tiles"), "--permits",
                  str(repo_root / "permits" / "sample_register.gpkg"), "--out", str(locked)]):
        code, err = _exit(["-q", *argv], capsys)
        assert code == 2 and "locked" in _error_line(err) and "Permission denied" in err, err


def test_a_full_disk_is_one_clear_error_not_a_bug(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """"No space left on device" is the machine's state, not a bug: exit 2 and one line saying what to do
    (it printed "Internal error ... This is a bug")."""
    import errno

    import changedetect.io.summary as summary

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "info.json"))

    monkeypatch.setattr(summary, "describe", full)
    code, err = _exit(["info", str(tmp_path)], capsys)
    line = _error_line(err)
    assert code == 2 and line.startswith("Error: no space left on the disk writing ") and "free some space" in line


@pytest.mark.parametrize("name", ["result.gpkg", "violations.csv", "out.tif"])
def test_an_output_folder_named_like_a_file_is_refused_before_any_work(
        name: str, dummies: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`run --out result.gpkg` made a folder named result.gpkg (which QGIS then would not open as a
    GeoPackage); it is refused in one line, naming the folder to give instead, and nothing is made."""
    out = tmp_path / name
    code, err = _exit(["run", str(dummies["a.tif"]), "--permits", "r.gpkg", "--out", str(out)], capsys)
    assert code == 2, err
    assert f"names a {out.suffix} file, but this output is a folder" in err and str(out.with_suffix("")) in err
    assert not out.exists()
    out.write_text("x")  # an existing file of that name
    code, err = _exit(["run", str(dummies["a.tif"]), "--permits", "r.gpkg", "--out", str(out)], capsys)
    assert code == 2 and "is a file" in err and "folder" in err


def test_verbose_keeps_gdal_error_chain_out_and_debug_shows_it(tmp_path: Path) -> None:
    """`-v` is for changedetect's own steps: a corrupt tile's error is one line that quotes GDAL, so rasterio's
    INFO 'GDAL signalled an error' records behind it (two here, eight on a full disk) stay out; `-vv` shows them."""
    import subprocess
    import sys

    tile = next((Path(__file__).parents[1] / "sample_tiles").glob("*.tif"))
    (tmp_path / "a.tif").write_bytes(tile.read_bytes()[:5000])
    said = {}
    for flag in ("-v", "-vv"):
        done = subprocess.run([sys.executable, "-m", "changedetect", flag, "info", str(tmp_path)],
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 2 and _error_line(done.stderr).startswith("Error: "), done.stderr
        said[flag] = done.stderr
    assert "GDAL signalled an error" not in said["-v"], said["-v"]
    assert "GDAL signalled an error" in said["-vv"], said["-vv"]
