"""``CoregisterConfig(band=...)`` on a file read by rioxarray, whose bands take the file's
descriptions as names (H119): the band is found by its name and, as before that change, by the
file's band number."""

from __future__ import annotations

import pytest

from changedetect.coregister import CoregisterConfig, coregister
from changedetect.errors import CoregistrationError
from changedetect.testing import make_stack


def _rioxarray_like() -> object:
    stack = make_stack(2, size=96, bands=("red", "green", "blue"))
    stack = stack.assign_coords(band=[1, 2, 3])
    stack.attrs["long_name"] = ("red", "green", "blue")
    return stack


@pytest.mark.parametrize("band", ["2", "green"])
def test_a_described_file_s_band_is_found_by_number_or_name(band: str) -> None:
    # was: band="2" refused ("matching band '2' is not in the stack; bands are ['red', 'green', 'blue']")
    _, report = coregister(_rioxarray_like(), config=CoregisterConfig(band=band, radiometric=False))  # type: ignore[arg-type]
    assert report.dates[1].matching == band


def test_an_absent_band_names_the_names_and_the_numbers() -> None:
    with pytest.raises(CoregistrationError) as err:
        coregister(_rioxarray_like(), config=CoregisterConfig(band="9", radiometric=False))  # type: ignore[arg-type]
    assert str(err.value) == ("matching band '9' is not in the stack; bands are ['red', 'green', 'blue'] "
                              "(band numbers ['1', '2', '3'])")
