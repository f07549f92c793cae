"""Review of the `run` command's plumbing, its configuration, the vector writers, `export` and `info`.

Each test pins a defect found in review: it failed on the code before the fix.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
from affine import Affine
from rasterio.warp import transform as warp_transform
from shapely.geometry import box

import changedetect.cli as cdcli
from changedetect.config import PipelineConfig
from changedetect.errors import ConfigError, OutputExistsError
from changedetect.io.vectors import write_vector


def _site_grid_tiles(tmp_path: Path) -> Path:
    """Two dates in a local site grid (a LOCAL_CS with no way to WGS 84, as drone surveys give)."""
    from rasterio.crs import CRS as RioCRS

    folder = tmp_path / "site"
    folder.mkdir()
    local = RioCRS.from_wkt('LOCAL_CS["site grid",LOCAL_DATUM["unknown",32767],UNIT["metre",1],'
                            'AXIS["Easting",EAST],AXIS["Northing",NORTH]]')
    for name in ("site_20240101.tif", "site_20240301.tif"):
        with rasterio.open(folder / name, "w", driver="GTiff", width=32, height=32, count=3, dtype="uint8",
                           crs=local, transform=Affine(0.5, 0, 1000, 0, -0.5, 2000)) as dst:
            dst.write(np.full((3, 32, 32), 100, dtype=np.uint8))
    return folder


def _exit(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit status and stderr of ``changedetect ARGV`` through its console entry point."""
    from test_cli_errors import _exit as exit_of

    return exit_of(argv, capsys)


def _violations(n: int = 2) -> gpd.GeoDataFrame:
    x0, y0 = 686_000.0, 1_192_000.0  # EPSG:32648, Ho Chi Minh City
    frame = gpd.GeoDataFrame(
        {"violation_id": [f"V-{i}" for i in range(n)], "status": ["unlicensed"] * n,
         "first_seen": pd.to_datetime(["2024-07-12"] * n),
         "address": ["Lô B2, Đường Tô Ký, Phường Trung Mỹ Tây, Quận 12"] * n},
        geometry=[box(x0 + 20 * i, y0, x0 + 20 * i + 10, y0 + 10) for i in range(n)], crs="EPSG:32648")
    return frame


# --- a full disk -----------------------------------------------------------------------------------------------


def _disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk has no space left: GDAL's writers fail with their own exception (no errno)."""
    real = shutil.disk_usage

    def usage(path: str | os.PathLike[str]) -> object:
        return real(path)._replace(free=0)

    monkeypatch.setattr(shutil, "disk_usage", usage)


def test_a_full_disk_while_writing_a_geopackage_is_an_enospc_oserror(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """pyogrio reports a full disk as DataLayerError('... cannot rollback - no transaction is active') and
    rasterio as RasterioIOError('Write failed') without an errno: the CLI printed "Internal error ... This is a
    bug" (exit 1) where README promises exit 2 and one line."""
    def failing(*args: object, **kwargs: object) -> None:
        Path(args[1] if len(args) > 1 else kwargs["path"]).write_bytes(b"half")  # type: ignore[arg-type]
        raise pyogrio.errors.DataLayerError("Error while writing batch to OGR layer: sqlite3_exec(ROLLBACK) "
                                            "failed: cannot rollback - no transaction is active")

    monkeypatch.setattr(pyogrio, "write_dataframe", failing)
    _disk_full(monkeypatch)
    with pytest.raises(OSError) as info:
        write_vector(_violations(), tmp_path / "violations.gpkg")
    assert info.value.errno == errno.ENOSPC and str(tmp_path / "violations.gpkg") == info.value.filename
    assert isinstance(info.value.__cause__, pyogrio.errors.DataLayerError)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_a_writer_bug_with_space_left_is_not_called_a_full_disk(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a real bug")

    monkeypatch.setattr(pyogrio, "write_dataframe", failing)
    with pytest.raises(RuntimeError, match="a real bug"):
        write_vector(_violations(), tmp_path / "violations.gpkg")


def test_a_full_disk_in_a_command_is_exit_2_and_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    foot = tmp_path / "footprints.gpkg"
    write_vector(_violations().drop(columns="status").assign(footprint_id=["F-1", "F-2"]), foot)
    register = Path(__file__).resolve().parents[1] / "permits" / "sample_register.gpkg"
    if not register.is_file():
        pytest.skip("permits/sample_register.gpkg is not in this checkout")
    real = pyogrio.write_dataframe

    def failing(df: object, path: str, *args: object, **kwargs: object) -> None:
        real(df, path, *args, **kwargs)
        raise pyogrio.errors.DataLayerError("Error while writing batch to OGR layer: Cannot write feature")

    monkeypatch.setattr(pyogrio, "write_dataframe", failing)
    _disk_full(monkeypatch)
    out = tmp_path / "out" / "violations.gpkg"
    code, err = _exit(["-q", "match", str(foot), "--permits", str(register), "--out", str(out)], capsys)
    lines = [ln for ln in err.splitlines() if ln.startswith(("Error", "Internal"))]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("Error: no space left on the disk writing "), err
    assert not out.exists() and not out.parent.exists()  # nor the folder the write check made for it


@pytest.mark.skipif(shutil.which("unshare") is None or sys.platform != "linux", reason="needs Linux unshare")
def test_a_really_full_tmpfs(tmp_path: Path) -> None:
    """The same on a real 300 KiB tmpfs (a private mount namespace): GeoPackage and GeoJSON."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    script = textwrap.dedent(f"""
        import errno, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import geopandas as gpd, pandas as pd
        from test_review_run_export import _violations
        from changedetect.io.vectors import write_vector
        big = _violations(4000)
        for ext in (".gpkg", ".geojson"):
            try:
                write_vector(big, {str(mnt)!r} + "/v" + ext)
                print(ext, "written")
            except OSError as exc:
                print(ext, "errno", exc.errno)
        import os
        print("left", sorted(os.listdir({str(mnt)!r})))
    """)
    cmd = ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=300k tmpfs {mnt} && exec {sys.executable} -"]
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"user namespaces are not available here: {probe.stderr.decode().strip()}")
    done = subprocess.run(cmd, input=script, capture_output=True, text=True, timeout=300)
    if "mount:" in done.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    assert f".gpkg errno {errno.ENOSPC}" in done.stdout, done.stdout + done.stderr
    assert f".geojson errno {errno.ENOSPC}" in done.stdout, done.stdout + done.stderr
    assert "left []" in done.stdout


# --- configuration ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "needles"), [
    ({"detect": {"treshold": 0.5}}, ["'detect.treshold'", "did you mean 'threshold'"]),
    ({"detekt": {"threshold": 0.5}}, ["'detekt'", "did you mean [detect]"]),
    ({"report": {"chip_pixels": 100}}, ["'report.chip_pixels'", "did you mean 'chip_px'"]),
])
def test_an_unknown_key_or_table_names_the_nearest_valid_name(data: dict, needles: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_dict(data, source="run.toml")
    for needle in needles:
        assert needle in str(info.value), str(info.value)


@pytest.mark.parametrize(("report", "needle"), [
    ({"chip_px": 0}, "chip_px"),              # crashed "cannot write empty image" after the whole run
    ({"overview_px": -1}, "overview_px"),
    ({"max_cards": -1}, "max_cards"),         # silently dropped the last card
    ({"chip_margin_m": -100}, "chip_margin_m"),  # WindowError after the whole run
    ({"chip_margin_m": float("nan")}, "chip_margin_m"),
    ({"rgb_bands": "red"}, "rgb_bands"),      # taken as the bands 'r', 'e', 'd'
    ({"rgb_bands": ["nir", "red"]}, "rgb_bands"),  # broadcast error writing before_rgb.tif
    ({"rgb_bands": [1, 2, 3]}, "rgb_bands"),  # AttributeError: 'int' object has no attribute 'lower'
])
def test_a_bad_report_setting_is_refused_when_the_config_is_read(report: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as info:
        PipelineConfig.from_dict({"report": report}, source="run.toml")
    assert str(info.value).startswith("run.toml: ")


@pytest.mark.parametrize(("permits", "needle"), [
    ({"params": "x"}, "params"),              # dict('x'): ValueError in load_register, "Internal error"
    ({"column_map": ["so_gp"]}, "column_map"),
    ({"column_map": {"so_gp": 5}}, "column_map"),
])
def test_a_register_option_of_the_wrong_shape_is_refused(permits: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        PipelineConfig.from_dict({"permits": permits}, source="run.toml")


def test_good_report_and_register_settings_still_read(tmp_path: Path) -> None:
    cfg = PipelineConfig.from_dict({"report": {"rgb_bands": ["nir", "red", "green"], "chip_px": 64, "max_cards": 0,
                                               "chip_margin_m": 0},
                                    "permits": {"params": {"d": "12"}, "column_map": {"so_gp": "permit_id"}}})
    assert cfg.report.rgb_bands == ("nir", "red", "green") and cfg.report.chip_margin_m == 0.0
    assert cfg.permits.params == {"d": "12"} and cfg.permits.column_map == {"so_gp": "permit_id"}
    (tmp_path / "run.toml").write_text(cfg.to_toml(), encoding="utf-8")
    assert PipelineConfig.from_toml(tmp_path / "run.toml") == cfg


def test_a_config_path_that_is_a_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file"):
        PipelineConfig.from_toml(tmp_path)


# --- export -------------------------------------------------------------------------------------------------


@pytest.fixture()
def tiny_model(tmp_path: Path) -> Path:
    pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install '.[onnx]')")
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from test_weights import CARD

    from changedetect.nn import get_model
    from changedetect.weights import save_model

    torch.manual_seed(0)
    folder = tmp_path / "tiny"
    save_model(get_model(CARD.arch, in_channels=3, **CARD.arch_kwargs), CARD, folder)
    return folder


def test_export_overwrite_into_the_current_folder_keeps_the_users_files(
        tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`changedetect export MODEL --out . --overwrite` deleted every file of the current folder, then failed
    with 'OSError: [Errno 22] Invalid argument' (an Internal error) and wrote nothing."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "thesis.docx").write_text("years of work")
    monkeypatch.chdir(work)
    code, err = _exit(["-q", "export", str(tiny_model), "--out", ".", "--overwrite", "--no-check"], capsys)
    assert code == 0, err
    assert (work / "thesis.docx").read_text() == "years of work"
    assert {"model.onnx", "export.json"} <= {p.name for p in work.iterdir()}
    assert not [p for p in work.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_export_overwrite_replaces_its_own_files_only(tiny_model: Path, tmp_path: Path) -> None:
    from changedetect.export import export_onnx

    out = tmp_path / "deploy"
    export_onnx(tiny_model, out, check=False)
    (out / "notes.txt").write_text("mine")
    (out / "model.onnx").write_bytes(b"stale")
    with pytest.raises(OutputExistsError):
        export_onnx(tiny_model, out, check=False)
    export_onnx(tiny_model, out, overwrite=True, check=False)
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "model.onnx").read_bytes() != b"stale"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy", "tiny"]


# --- info ---------------------------------------------------------------------------------------------------


def _mixed_crs_folder(folder: Path) -> Path:
    folder.mkdir()
    size = 64
    data = np.full((3, size, size), 100, dtype=np.uint8)
    with rasterio.open(folder / "a_20240101.tif", "w", driver="GTiff", width=size, height=size, count=3,
                       dtype="uint8", crs="EPSG:32648", transform=Affine(0.5, 0, 683_000, 0, -0.5, 1_203_000)) as dst:
        dst.write(data)
    xs, ys = warp_transform("EPSG:32648", "EPSG:4326", [683_000], [1_203_000])
    with rasterio.open(folder / "b_20240301.tif", "w", driver="GTiff", width=size, height=size, count=3,
                       dtype="uint8", crs="EPSG:4326", transform=Affine(4.6e-6, 0, xs[0], 0, -4.6e-6, ys[0])) as dst:
        dst.write(data)
    return folder


def test_info_on_dates_in_different_crs_says_so(tmp_path: Path) -> None:
    """A folder whose second date is in EPSG:4326 was described as 'CRS: EPSG:32648' only."""
    import json

    from click.testing import CliRunner

    folder = _mixed_crs_folder(tmp_path / "mixed")
    text = CliRunner().invoke(cdcli.cli, ["info", str(folder)])
    assert text.exit_code == 0, text.output
    assert "EPSG:4326" in text.output and "2024-03-01" in text.output.split("CRS:")[1], text.output
    info = json.loads(CliRunner().invoke(cdcli.cli, ["info", "--json", str(folder)]).output)
    assert [s["crs"] for s in info["scenes"]] == ["EPSG:32648", "EPSG:4326"]


def test_info_on_one_crs_says_nothing_more(tmp_path: Path) -> None:
    from click.testing import CliRunner

    folder = _mixed_crs_folder(tmp_path / "mixed")
    (folder / "b_20240301.tif").unlink()
    shutil.copy(folder / "a_20240101.tif", folder / "a_20240301.tif")
    out = CliRunner().invoke(cdcli.cli, ["info", str(folder)]).output
    assert "differ" not in out and out.count("EPSG:") == 1, out


# --- an empty violation list --------------------------------------------------------------------------------


def _match_frames() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    from changedetect.match import match
    from changedetect.testing import make_footprints, make_permits

    footprints = make_footprints()
    permits = make_permits(footprints)
    return match(footprints, permits), match(footprints.iloc[:0], permits)


def test_an_empty_violation_list_has_the_schema_of_a_full_one(tmp_path: Path) -> None:
    """A night without violations wrote first_seen as a DATETIME field (a DATE otherwise) in the GeoPackage,
    and in GeoParquet the text columns as Arrow `null` and first_seen as a timestamp (string, date32
    otherwise): a reader of a folder of nights meets two schemas."""
    import pyarrow.parquet as pq

    full, empty = _match_frames()
    assert len(full) and not len(empty)
    for name, frame in (("full", full), ("empty", empty)):
        write_vector(frame, tmp_path / f"{name}.gpkg")
        write_vector(frame, tmp_path / f"{name}.parquet")
    a, b = pyogrio.read_info(tmp_path / "full.gpkg"), pyogrio.read_info(tmp_path / "empty.gpkg")
    assert list(a["fields"]) == list(b["fields"])
    assert dict(zip(a["fields"], a["ogr_types"], strict=True)) == dict(zip(b["fields"], b["ogr_types"], strict=True))
    assert dict(zip(a["fields"], a["ogr_types"], strict=True))["first_seen"] == "OFTDate"
    sa, sb = pq.read_schema(tmp_path / "full.parquet"), pq.read_schema(tmp_path / "empty.parquet")
    assert {f.name: str(f.type) for f in sa} == {f.name: str(f.type) for f in sb}
    assert str(sa.field("first_seen").type) == "date32[day]" and str(sa.field("status").type) == "string"
    back = gpd.read_parquet(tmp_path / "empty.parquet")
    assert len(back) == 0 and back.crs == full.crs


def test_an_all_nat_date_column_is_still_a_date(tmp_path: Path) -> None:
    frame = _violations()
    frame["first_seen"] = pd.NaT
    frame["first_seen"] = frame["first_seen"].astype("datetime64[ns]")
    write_vector(frame, tmp_path / "v.gpkg")
    info = pyogrio.read_info(tmp_path / "v.gpkg")
    assert dict(zip(info["fields"], info["ogr_types"], strict=True))["first_seen"] == "OFTDate"
    assert gpd.read_file(tmp_path / "v.gpkg")["first_seen"].isna().all()


# --- run.json provenance ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """test_pipeline's tiny series, register and random model."""
    sys.path.insert(0, str(Path(__file__).parent))
    import test_pipeline

    return test_pipeline.inputs.__wrapped__(tmp_path_factory)  # type: ignore[attr-defined]


def test_a_register_url_password_is_not_written_to_run_json(inputs: dict, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """`--permits postgresql://inspector:s3cret@db/city` was recorded verbatim in run.json (a file handed to
    inspectors and archived with each night), though every message already hides the password."""
    from changedetect.config import PermitsConfig
    from changedetect.pipeline import run

    register = gpd.read_file(inputs["permits"])
    monkeypatch.setattr(PermitsConfig, "load", lambda self, source, **kw: register)
    url = "postgresql://inspector:s3cret@db.example:5432/city?sslmode=require"
    out = tmp_path / "out"
    run(inputs["tiles"], permits=url, out=out, config=inputs["config"])
    text = (out / "run.json").read_text(encoding="utf-8")
    assert "s3cret" not in text
    import json

    recorded = json.loads(text)["inputs"]["permits"]
    assert recorded["path"] == "postgresql://inspector:***@db.example:5432/city?sslmode=require"
    assert recorded["sha256"] is None


def test_to_toml_quotes_register_column_names_that_are_not_bare_keys(tmp_path: Path) -> None:
    """A Vietnamese register's column map ({"Số giấy phép" = "permit_id"}) was written as a bare key, which
    TOML refuses ('Expected = after a key'); a name with a dot was written as a dotted key (another table)."""
    cfg = PipelineConfig.from_dict({"permits": {"column_map": {"Số giấy phép": "permit_id", "dia.chi": "address",
                                                               "so_gp": "permit_id"},
                                                "params": {"quận": "12"}}})
    path = tmp_path / "run.toml"
    path.write_text(cfg.to_toml(), encoding="utf-8")
    back = PipelineConfig.from_toml(path)
    assert back == cfg
    assert back.permits.column_map == {"Số giấy phép": "permit_id", "dia.chi": "address", "so_gp": "permit_id"}


def test_run_takes_several_tile_files_as_info_does(inputs: dict, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`run --help` says TILES is anything `info` reads, and `info a_20240101.tif b_20240301.tif` reads two files;
    `run` took one path only ('Got unexpected extra argument')."""
    import json

    first, last = inputs["tile_paths"][0], inputs["tile_paths"][-1]
    out = tmp_path / "out"
    code = 0
    try:
        cdcli.main(["-q", "run", str(first), str(last), "--permits", str(inputs["permits"]), "--out", str(out),
                    "--config", str(inputs["toml"]), "--json"])
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert len(summary["dates"]) == 2 and (out / "run.json").is_file()
    recorded = json.loads((out / "run.json").read_text(encoding="utf-8"))["inputs"]["tiles"]
    assert sorted(Path(t["path"]).name for t in recorded) == sorted([first.name, last.name])


def test_a_stage_key_outside_its_table_says_which_table_it_belongs_to() -> None:
    """`threshold = 0.6` above any [table] header: the message said only 'unknown key' and listed the tables."""
    with pytest.raises(ConfigError, match=r"'threshold' is a key of \[detect\], \[vectorize\]"):
        PipelineConfig.from_dict({"threshold": 0.6}, source="run.toml")
    with pytest.raises(ConfigError, match=r"did you mean \[detect\]"):
        PipelineConfig.from_dict({"detec": {}}, source="run.toml")


def test_info_on_tiles_in_a_local_site_grid(tmp_path: Path) -> None:
    """A drone orthomosaic in a local engineering CRS (LOCAL_CS, no way to WGS 84): `info` printed
    'Internal error: ProjError: Error creating Transformer from CRS. This is a bug' (exit 1)."""
    import json

    from click.testing import CliRunner

    folder = _site_grid_tiles(tmp_path)
    done = CliRunner().invoke(cdcli.cli, ["info", str(folder)])
    assert done.exit_code == 0, done.output
    assert "site grid" in done.output and "Bounds: 1000.000000, 1984.000000, 1016.000000, 2000.000000" in done.output
    assert "lon " not in done.output
    info = json.loads(CliRunner().invoke(cdcli.cli, ["info", "--json", str(folder)]).output)
    assert info["bounds_lonlat"] is None and info["bounds"] == [1000.0, 1984.0, 1016.0, 2000.0]


def test_run_on_a_local_site_grid_is_refused_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same tiles in `run`: 'ProjError: Error creating Transformer from CRS' from vectorize, after
    co-registration and detection (footprint ids, areas, the CSV and GeoJSON all need WGS 84)."""
    import changedetect.coregister as coreg
    from changedetect.errors import GeoreferenceError
    from changedetect.pipeline import run
    from changedetect.testing import (
        make_footprints,
        make_model,
        make_permits,
        make_stack,
        write_stack,
    )

    wkt = ('LOCAL_CS["site grid",LOCAL_DATUM["unknown",32767],UNIT["metre",1],AXIS["Easting",EAST],'
           'AXIS["Northing",NORTH]]')
    stack = make_stack(n_dates=2, size=32, seed=3)
    write_stack(stack.rio.write_crs(wkt), tmp_path / "tiles", prefix="site")
    make_permits(make_footprints(stack).iloc[:1]).to_file(tmp_path / "permits.gpkg")
    model = make_model(tmp_path / "m")

    def not_reached(*args: object, **kwargs: object) -> None:
        raise AssertionError("co-registration started")

    monkeypatch.setattr(coreg, "coregister", not_reached)
    with pytest.raises(GeoreferenceError, match="site grid") as info:
        run(tmp_path / "tiles", permits=tmp_path / "permits.gpkg", out=tmp_path / "out",
            config=PipelineConfig().with_model(str(model)))
    assert "WGS 84" in str(info.value) and "gdalwarp" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_a_toml_file_saved_with_a_byte_order_mark_reads(tmp_path: Path) -> None:
    """Windows editors may save UTF-8 with a BOM: 'not valid TOML: Invalid statement (at line 1, column 1)'."""
    path = tmp_path / "run.toml"
    path.write_bytes('[report]\ntitle = "Quận 12, tuần 48"\n'.encode("utf-8-sig"))
    assert PipelineConfig.from_toml(path).report.title == "Quận 12, tuần 48"


def test_run_json_register_checksum_covers_a_shapefiles_attributes(inputs: dict, tmp_path: Path) -> None:
    """A Shapefile register's sha256 in run.json was the .shp's alone: revoking a permit (its status lives in the
    .dbf) left the recorded checksum unchanged, so the provenance could not tell the two registers apart."""
    import json

    from changedetect.pipeline import run

    register = gpd.read_file(inputs["permits"])
    shp = tmp_path / "register" / "permits.shp"
    shp.parent.mkdir()
    register.to_file(shp)
    recorded = []
    for k, status in enumerate(("active", "revoked")):
        register.assign(status=status).to_file(shp)
        out = tmp_path / f"out{k}"
        run(inputs["tiles"], permits=shp, out=out, config=inputs["config"])
        recorded.append(json.loads((out / "run.json").read_text(encoding="utf-8"))["inputs"]["permits"]["sha256"])
    assert all(isinstance(r, str) and len(r) == 64 for r in recorded)
    assert recorded[0] != recorded[1]


def test_info_text_names_a_crs_without_an_epsg_code_instead_of_printing_its_wkt(tmp_path: Path) -> None:
    """A CRS without an authority code (a local grid, many ESRI-written GeoTIFFs) filled the CRS line with its
    whole WKT (over 200 characters)."""
    from click.testing import CliRunner

    folder = _site_grid_tiles(tmp_path)
    out = CliRunner().invoke(cdcli.cli, ["info", str(folder)]).output
    line = next(ln for ln in out.splitlines() if ln.startswith("CRS:"))
    assert "site grid" in line and "ENGCRS" not in line and len(line) < 120, line


@pytest.mark.parametrize("ext", [".geojson", ".csv"])
def test_geojson_or_csv_of_features_in_a_local_grid_is_a_clear_error(tmp_path: Path, ext: str) -> None:
    """GeoJSON and the CSV's WKT are WGS 84: features in a local grid raised 'ProjError: Error creating
    Transformer from CRS' (an Internal error in `match --out x.geojson`)."""
    from changedetect.errors import OutputFormatError

    wkt = ('LOCAL_CS["site grid",LOCAL_DATUM["unknown",32767],UNIT["metre",1],AXIS["Easting",EAST],'
           'AXIS["Northing",NORTH]]')
    frame = _violations().set_crs(wkt, allow_override=True)
    with pytest.raises(OutputFormatError, match=r"site grid.*\.gpkg"):
        write_vector(frame, tmp_path / f"v{ext}")
    assert list(tmp_path.iterdir()) == []
    write_vector(frame, tmp_path / "v.gpkg")  # keeps the CRS
