"""Sentinel-2 names of the format before December 2016 (audit D): their first date is when the file was
made, not when the image was taken (OSCD pisa's first date, taken 2015-07-04, is in files named
``S2A_OPER_MSI_L1C_TL_EPA__20160809T015434_...``): read as the acquisition date, a copy of the band files
without OSCD's dates.txt was dated 2016-08-09 with nothing said, and first_seen, before_date and every
permit's date check with it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from changedetect.errors import TimeSeriesError
from changedetect.io import open_series
from changedetect.io._names import date_from_name

OLD_TILE = "S2A_OPER_MSI_L1C_TL_EPA__20160809T015434_A000162_T32TPP_{band}.tif"


def test_an_old_format_tile_name_gives_no_date() -> None:
    assert date_from_name(OLD_TILE.format(band="B02")) is None


def test_an_old_format_product_name_gives_its_sensing_start() -> None:
    name = "S2A_OPER_PRD_MSIL1C_PDMC_20160809T015434_R022_V20150704T101337_20150704T101337_B02.tif"
    assert date_from_name(name) == dt.date(2015, 7, 4)


@pytest.mark.parametrize(("name", "day"), [
    ("T32TPP_20180211T102141_B02.tif", dt.date(2018, 2, 11)),
    ("S2A_MSIL1C_20170621T110651_N0205_R137_T30UWU_20170621T110646_B02.tif", dt.date(2017, 6, 21)),
    ("LC09_L2SP_125052_20240115_20240117_02_T1_SR_B5.TIF", dt.date(2024, 1, 15)),
])
def test_other_names_keep_their_first_date(name: str, day: dt.date) -> None:
    assert date_from_name(name) == day


def _bands(write_tif: Callable[..., Path], folder: Path) -> None:
    for band in ("B02", "B03", "B04", "B08"):
        write_tif(folder / OLD_TILE.format(band=band), np.full((1, 16, 16), 900, "uint16"))


def test_a_folder_of_old_format_band_files_asks_for_the_date(write_tif: Callable[..., Path], tmp_path: Path) -> None:
    _bands(write_tif, tmp_path / "granule")
    with pytest.raises(TimeSeriesError, match=r"an old-format Sentinel-2 name, S2A_OPER_\.\.\.: its date, "
                       r"2016-08-09, is when the file was made, not when the image was taken.*manifest"):
        open_series(tmp_path / "granule")


def test_oscd_s_dates_txt_still_dates_them(write_tif: Callable[..., Path], tmp_path: Path) -> None:
    _bands(write_tif, tmp_path / "pisa" / "imgs_1")
    (tmp_path / "pisa" / "dates.txt").write_text("date_1: 20150704\ndate_2: 20180211\n")
    assert open_series(tmp_path / "pisa" / "imgs_1").dates == [dt.date(2015, 7, 4)]
