"""Shapes, registry and BatchNorm folding of the change-detection networks."""

from __future__ import annotations

import pytest
import torch

from changedetect.errors import ModelError
from changedetect.nn import count_parameters, get_model, list_models
from changedetect.nn.blocks import fold_batchnorm


def test_registry_lists_the_family() -> None:
    names = list_models()
    assert {"siamese_unet", "siamese_unet_s2", "siamese_unet_wide"} <= set(names)
    assert names == sorted(names)


@pytest.mark.parametrize("name", ["siamese_unet", "siamese_unet_s2", "siamese_unet_wide"])
@pytest.mark.parametrize("bands", [1, 3, 4, 13])
def test_output_shape_for_any_band_count(name: str, bands: int) -> None:
    torch.manual_seed(0)
    model = get_model(name, in_channels=bands).eval()
    a, b = torch.randn(2, bands, 40, 52), torch.randn(2, bands, 40, 52)  # not multiples of the stride
    with torch.no_grad():
        out = model(a, b)
    assert out.shape == (2, 1, 40, 52)
    assert torch.isfinite(out).all()


def test_models_are_small() -> None:
    assert "siamese_unet" in list_models()
    for name in list_models():
        assert count_parameters(get_model(name, in_channels=3)) < 2_000_000


def test_unknown_name_raises_model_error_listing_names() -> None:
    with pytest.raises(ModelError, match="siamese_unet"):
        get_model("resnet9000", in_channels=3)


def test_bad_kwargs_raise_model_error() -> None:
    with pytest.raises(ModelError, match="fusion"):
        get_model("siamese_unet", in_channels=3, fusion="multiply")


def test_wrong_band_count_is_refused() -> None:
    model = get_model("siamese_unet", in_channels=4)
    with pytest.raises(ValueError, match="expected 4 bands"):
        model(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32))


def test_identical_dates_give_symmetric_fusion() -> None:
    torch.manual_seed(1)
    model = get_model("siamese_unet", in_channels=3).eval()
    a, b = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(a, b), model(b, a), atol=1e-5)


def test_fold_batchnorm_keeps_outputs() -> None:
    torch.manual_seed(2)
    model = get_model("siamese_unet", in_channels=3)
    model.train()
    with torch.no_grad():  # give the BatchNorms non-trivial running statistics
        for _ in range(3):
            model(torch.randn(2, 3, 64, 64) * 3 + 1, torch.randn(2, 3, 64, 64))
    model.eval()
    a, b = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = model(a, b)
        fold_batchnorm(model)
        after = model(a, b)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert torch.allclose(before, after, atol=1e-4)
