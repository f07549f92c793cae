"""``run``'s coverage of a spilled stack (``_pipeline_coverage.valid_masks``) is the sample its spill
took while writing the scratch files, not a strided read of them, which decompressed every tile of
the compared dates again: the same masks, bit for bit, and the files are not read for them."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import test_spill

from changedetect._pipeline_coverage import valid_masks
from changedetect.io.spill import spill_stack


def test_a_spilled_stack_s_coverage_is_sampled_as_it_was_written(tmp_path: Path) -> None:
    stack, values = test_spill._lazy_stack()  # 3 dates x 1300 px: sampled every 2nd pixel, blocks of 1024
    values[0, 1, 1023:1030, 5:9] = np.nan  # across a block's edge, one band only
    stack = stack.copy(data=da.from_array(values, chunks=(1, 1, 512, 512)))
    held = valid_masks(stack.copy(data=values), [0, 1, 2])
    assert not held[0].all() and not held[1].all() and not held[2].all()
    spilled = spill_stack(stack, tmp_path / "scratch")
    pair = spilled.isel(time=[0, 2])  # the dates of one explicit pair, as run cuts them
    for f in (tmp_path / "scratch").glob("*/*"):  # not read again: the masks came with the spill
        f.unlink()
    for got, want in ((valid_masks(spilled, [0, 1, 2]), held), (valid_masks(pair, [0, 1]), {0: held[0], 1: held[2]})):
        assert got.keys() == want.keys()
        for i in got:
            np.testing.assert_array_equal(got[i], want[i])


def test_a_spilled_stack_cut_to_other_bands_is_read(tmp_path: Path) -> None:
    """The sample is of every band the spill wrote: with fewer bands, the masks are read again."""
    stack, values = test_spill._lazy_stack()
    spilled = spill_stack(stack, tmp_path / "scratch")
    bands = [str(b) for b in stack["band"].values if str(b) != str(stack["band"].values[2])]
    got = valid_masks(spilled.sel(band=bands), [2])
    np.testing.assert_array_equal(got[2], np.isfinite(values[2, [0, 1, 3]][:, 1::2, 1::2]).all(axis=0))
    assert got[2].all()  # the NaN of band 2 is not in it
