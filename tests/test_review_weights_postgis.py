"""Review of saving model folders (all files or none) and of streaming the PostGIS register."""

from __future__ import annotations

import errno
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

try:
    import psycopg  # noqa: F401
except ImportError:
    @pytest.fixture(scope="module")
    def postgis_url() -> str:
        pytest.skip("psycopg is not installed (pip install '.[postgis]')")
else:
    from test_postgis import postgis_url  # noqa: F401  (the throwaway PostGIS server's fixture)

from changedetect.nn import get_model
from changedetect.weights import ModelCard, load_model, read_card, save_model

CARD = ModelCard(name="tiny", version="0.0.1", arch="siamese_unet", bands=("red", "green", "blue"),
                 arch_kwargs={"widths": [8, 16, 16], "depths": [0, 1, 1], "decoder_width": 8})
OWNED = ("MODEL_CARD.md", "metadata.json", "weights.pt")


def _module(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return get_model(CARD.arch, in_channels=3, **CARD.arch_kwargs)


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (subfolders too), by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """A valid model folder that also holds things save_model does not own (a stage, a config)."""
    folder = tmp_path / "m"
    save_model(_module(0), CARD, folder)
    (folder / "stage1").mkdir()
    (folder / "stage1" / "weights.pt").write_bytes(b"stage one")
    (folder / "finetune.toml").write_text("steps = 3\n")
    return folder


def _assert_old_model_intact(folder: Path, before: dict[str, bytes]) -> None:
    assert _snapshot(folder) == before  # byte for byte, nothing new (no temporaries, no backups)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*OWNED, "finetune.toml", "stage1"])
    assert read_card(folder).version == CARD.version
    # the sha256 of the card still matches its weights (load_model checks it); no BN folding, to compare
    raw = load_model(folder, fold_bn=False, channels_last=False).module.state_dict()
    ref = _module(0).state_dict()
    assert all(torch.equal(raw[k], ref[k]) for k in ref)


def test_a_card_that_cannot_be_written_leaves_the_old_model(saved: Path) -> None:
    before = _snapshot(saved)
    bad = replace(CARD, version="0.0.2", metrics={"f1": np.float32(0.5)})  # not JSON-serialisable
    with pytest.raises(TypeError, match="float32"):
        save_model(_module(1), bad, saved)
    _assert_old_model_intact(saved, before)


def test_a_full_disk_midway_leaves_the_old_model(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _snapshot(saved)
    real_open = os.open
    opened: list[str] = []

    def open_(path: os.PathLike[str] | str, flags: int, *args: int, **kwargs: int) -> int:
        if Path(path).parent == saved and flags & os.O_CREAT:
            opened.append(str(path))
            if len(opened) == 2:  # the first file went through; the disk is full for the second
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    with pytest.raises(OSError, match="No space"):
        save_model(_module(1), replace(CARD, version="0.0.2"), saved)
    monkeypatch.undo()
    assert len(opened) == 2
    _assert_old_model_intact(saved, before)


@pytest.mark.parametrize("fail_at", [1, 2, 3])
def test_a_rename_that_fails_midway_puts_the_old_files_back(saved: Path, monkeypatch: pytest.MonkeyPatch,
                                                           fail_at: int) -> None:
    before = _snapshot(saved)
    real_replace = os.replace
    calls: list[str] = []

    def replace_(src: os.PathLike[str] | str, dst: os.PathLike[str] | str) -> None:
        if Path(dst).parent == saved and Path(dst).name in OWNED:
            calls.append(Path(dst).name)
            if len(calls) == fail_at:
                raise OSError(errno.EIO, os.strerror(errno.EIO), str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_)
    with pytest.raises(OSError, match="Input/output"):
        save_model(_module(1), replace(CARD, version="0.0.2"), saved)
    monkeypatch.undo()
    _assert_old_model_intact(saved, before)


def test_a_successful_save_replaces_only_its_own_files(saved: Path) -> None:
    card = save_model(_module(1), replace(CARD, version="0.0.2"), saved)
    assert sorted(p.name for p in saved.iterdir()) == sorted([*OWNED, "finetune.toml", "stage1"])
    assert (saved / "stage1" / "weights.pt").read_bytes() == b"stage one"
    assert read_card(saved).version == "0.0.2" and read_card(saved).sha256 == card.sha256
    raw = load_model(saved, fold_bn=False, channels_last=False).module.state_dict()
    ref = _module(1).state_dict()
    assert all(torch.equal(raw[k], ref[k]) for k in ref)


def test_a_first_save_that_fails_leaves_no_half_model(tmp_path: Path) -> None:
    folder = tmp_path / "new"
    with pytest.raises(TypeError):
        save_model(_module(1), replace(CARD, metrics={"f1": np.float32(0.5)}), folder)
    assert not folder.exists() or list(folder.iterdir()) == []



def test_a_card_saved_with_a_byte_order_mark_is_read(saved: Path) -> None:
    """Notepad and Windows PowerShell 5 (Set-Content -Encoding UTF8) put a BOM before UTF-8 text."""
    meta = saved / "metadata.json"
    meta.write_bytes(b"\xef\xbb\xbf" + meta.read_bytes())
    assert read_card(saved).name == "tiny"
    load_model(saved)


def test_a_card_that_is_not_utf8_is_one_clear_error(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from changedetect.errors import ModelError
    from changedetect.weights import list_shipped

    meta = saved / "metadata.json"
    meta.write_bytes(meta.read_text().replace('"description": ""', '"description": "Café"').encode("cp1252"))
    with pytest.raises(ModelError, match=r"metadata\.json' is not UTF-8 text.*byte 0xe9.*UTF-8"):
        read_card(saved)
    monkeypatch.setenv("CHANGEDETECT_MODELS", str(saved.parent))
    assert "tiny" not in [c.name for c in list_shipped()]  # skipped with a warning, the others still listed


# -- the PostGIS register, read in batches ----------------------------------------------------
def _postgis_module():  # type: ignore[no-untyped-def]
    from changedetect.io import _postgis

    return _postgis


@pytest.fixture(scope="module")
def big_table(postgis_url: str) -> str:
    """23 permits (more than a few batches of 3): district NULL on even rows, row 8 a curve, row 11
    without geometry."""
    import psycopg
    from test_postgis import X0, Y0

    env = f"ST_MakeEnvelope({X0} + 30 * i, {Y0}, {X0} + 30 * i + 12, {Y0} + 15, 9210)"
    curve = (f"ST_GeomFromText('CURVEPOLYGON(CIRCULARSTRING({X0} {Y0}, {X0 + 10} {Y0 + 10}, {X0 + 20} {Y0}, "
             f"{X0 + 10} {Y0 - 10}, {X0} {Y0}))', 9210)")
    with psycopg.connect(postgis_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE rw_big AS SELECT 'GP-' || lpad(i::text, 4, '0') AS permit_id, "
            "'new_construction'::text AS permit_type, date '2024-01-01' + i AS issued_on, "
            "date '2025-12-31' AS valid_until, 180.0::float8 AS permitted_area_m2, 'Số ' || i AS address, "
            "'active'::text AS status, CASE WHEN i % 2 = 0 THEN NULL ELSE i END AS district, "
            f"(CASE WHEN i = 11 THEN NULL WHEN i = 8 THEN {curve} ELSE {env} END)::geometry(Geometry, 9210) "
            "AS geom FROM generate_series(1, 23) AS i ORDER BY i")
    return postgis_url


@pytest.mark.postgis
def test_a_register_larger_than_a_batch_is_streamed_and_reads_the_same(
        big_table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg
    from geopandas.testing import assert_geodataframe_equal

    pg = _postgis_module()
    whole, name = pg._read_postgis(big_table, table="rw_big", query=None, params=None)
    fetched: list[int] = []
    real_fetchmany = psycopg.ServerCursor.fetchmany

    def fetchmany(self: psycopg.ServerCursor, size: int = 0) -> list:  # type: ignore[type-arg]
        rows = real_fetchmany(self, size)
        fetched.append(len(rows))
        return rows

    monkeypatch.setattr(psycopg.ServerCursor, "fetchmany", fetchmany)
    monkeypatch.setattr(pg, "_BATCH", 3)
    batched, name2 = pg._read_postgis(big_table, table="rw_big", query=None, params=None)
    assert fetched[:8] == [3] * 7 + [2] and sum(fetched) == 23  # in batches, from a server-side cursor
    assert name2 == name and len(whole) == 23
    assert_geodataframe_equal(batched, whole)
    assert batched.attrs["geometry_errors"] == whole.attrs["geometry_errors"]
    assert sorted(whole.attrs["geometry_errors"]) == [7]  # the curve: its row index, not its index in a batch
    assert whole.geometry.iloc[10] is None and whole.crs.to_epsg() == 9210
    assert whole["district"].isna().tolist() == [i % 2 == 0 for i in range(1, 24)]


@pytest.mark.postgis
def test_row_problems_in_later_batches_name_their_rows(big_table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from changedetect.errors import PermitSchemaError
    from changedetect.permits import load_register

    pg = _postgis_module()
    monkeypatch.setattr(pg, "_BATCH", 3)
    with pytest.raises(PermitSchemaError) as err:
        load_register(big_table, table="rw_big")
    assert "row 8" in str(err.value) and "CurvePolygon" in str(err.value)
    assert "row 11" in str(err.value) and "missing geometry" in str(err.value)
    got = load_register(big_table, query="SELECT * FROM rw_big WHERE geom IS NOT NULL AND NOT "
                        "ST_HasArc(geom) AND district = %(d)s", params={"d": 13}, strict=False)
    assert list(got["permit_id"]) == ["GP-0013"]


@pytest.mark.postgis
def test_a_data_modifying_query_is_still_refused_as_read_only(big_table: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from changedetect.errors import PermitSchemaError
    from changedetect.permits import load_register

    pg = _postgis_module()
    monkeypatch.setattr(pg, "_BATCH", 3)
    with pytest.raises(PermitSchemaError, match="read-only"):  # not DECLARE's own refusal
        load_register(big_table, query="WITH d AS (DELETE FROM rw_big RETURNING *) SELECT * FROM d",
                      timezone="Asia/Ho_Chi_Minh")


@pytest.mark.postgis
def test_an_empty_result_is_an_empty_register_with_its_columns(big_table: str) -> None:
    pg = _postgis_module()
    empty, _ = pg._read_postgis(big_table, table=None, query="SELECT * FROM rw_big WHERE false", params=None)
    assert len(empty) == 0 and "permit_id" in empty.columns and "geom" not in empty.columns
    assert empty.crs is None and empty.attrs["geometry_errors"] == {}
