"""OUT may not be the folder the tiles are read from: the outputs would be read as tiles next time.

``changedetect run tiles --out tiles`` wrote before_rgb.tif and the rest among the tiles, and ``info`` and
``run`` of the folder then failed ('no date in the file name ... after_rgb.tif'); ``coregister`` wrote its
``aligned_YYYYMMDD.tif``, dated, which the next read took for second copies of each date.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from changedetect.cli import cli
from changedetect.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def tiles(tmp_path: Path) -> Path:
    folder = tmp_path / "tiles"
    folder.mkdir()
    for tif in sorted((REPO / "sample_tiles").glob("*.tif")):
        shutil.copy(tif, folder / tif.name)
    return folder


@pytest.mark.parametrize("command", ["run", "coregister", "coregister files"])
def test_out_in_the_tiles_folder_is_refused_before_anything_is_written(tiles: Path, command: str) -> None:
    before = sorted(p.name for p in tiles.iterdir())
    given = sorted(str(p) for p in tiles.glob("*.tif")) if command == "coregister files" else [str(tiles)]
    extra = ["--permits", str(REPO / "permits" / "sample_register.gpkg")] if command == "run" else []
    done = CliRunner().invoke(cli, ["-q", command.split()[0], *given, *extra, "--out", str(tiles), "--overwrite"])
    assert done.exit_code != 0 and isinstance(done.exception, ConfigError), (done.exit_code, done.output)
    assert f"output folder '{tiles}' is the" in str(done.exception)
    assert sorted(p.name for p in tiles.iterdir()) == before


@pytest.mark.parametrize("suffix", [".jp2", ".vrt", ".png"])
def test_the_folder_of_any_raster_given_is_refused(tmp_path: Path, suffix: str) -> None:
    from changedetect._pipeline_output import check_apart

    (tmp_path / f"a_20240101{suffix}").write_bytes(b"")
    with pytest.raises(ConfigError, match="is the folder of the tile"):
        check_apart(tmp_path, [tmp_path / f"a_20240101{suffix}"])
    check_apart(tmp_path / "out", [tmp_path / f"a_20240101{suffix}"])  # another folder: fine


def test_the_library_run_refuses_it_too(tiles: Path) -> None:
    from changedetect.pipeline import run

    with pytest.raises(ConfigError, match="is the tiles folder"):
        run(tiles, permits=REPO / "permits" / "sample_register.gpkg", out=tiles, overwrite=True)
    assert sorted(p.name for p in tiles.iterdir()) == sorted(p.name for p in (REPO / "sample_tiles").glob("*.tif"))


def test_one_date_is_refused_before_it_is_co_registered(tiles: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """One date opened, co-registered and only then refused by detection; now at open."""
    from changedetect import coregister
    from changedetect.errors import TimeSeriesError
    from changedetect.pipeline import run

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("co-registered one date")

    monkeypatch.setattr(coregister, "coregister", never)
    one = sorted(tiles.glob("*.tif"))[0]
    with pytest.raises(TimeSeriesError, match=r"two or more dates; '.*' holds 1 \(2024-01-15\)"):
        run(one, permits=REPO / "permits" / "sample_register.gpkg", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_full_disk_that_names_no_file_names_the_run_folder(tiles: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A GDAL write stopped by a full disk names no file: the error said 'no space left on the disk (...)'
    with no place; it names OUT, which the user chose."""
    import errno

    from changedetect import pipeline

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipeline, "chain", full)
    with pytest.raises(OSError) as err:
        pipeline.run(tiles, permits=REPO / "permits" / "sample_register.gpkg", out=tmp_path / "out")
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(tmp_path / "out")
