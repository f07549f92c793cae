"""`changedetect run` refuses a register on a datum PROJ cannot take to the imagery's before any
work: the match stage refuses it (tests/test_review_register_crs.py), but `run` had already
co-registered, detected and vectorised the whole scene by then (minutes on a district) to stop at
the last stage."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_review_register_crs import _shapefile_losing_towgs84

from changedetect.errors import GeoreferenceError
from changedetect.testing import make_run_inputs


def test_run_refuses_the_register_before_co_registering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import changedetect.pipeline as pipeline

    def chain(*args: object, **kwargs: object) -> None:
        raise AssertionError("the chain started: co-registration, detection and vectorising ran first")

    monkeypatch.setattr(pipeline, "chain", chain)
    config = make_run_inputs(tmp_path / "inputs")
    register = _shapefile_losing_towgs84(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(GeoreferenceError, match=r"giay_phep\.shp.*no transformation.*--permits-crs"):
        pipeline.run(tmp_path / "inputs" / "tiles", permits=register, out=out, config=config)
    assert not out.exists()
