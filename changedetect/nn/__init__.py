"""Change-detection networks (pure ``nn.Module`` s) and their registry.

Every network takes the two dates and returns change logits::

    model = get_model("siamese_unet", in_channels=3)
    logits = model(a, b)  # a, b: (n, c, h, w) float32 -> (n, 1, h, w)

Weights and their model cards live in :mod:`changedetect.weights`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from changedetect.errors import ModelError
from changedetect.nn.siamese_unet import SiameseUNet, count_parameters

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator adding a model builder ``f(*, in_channels, **kwargs) -> nn.Module``."""

    def deco(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = builder
        return builder

    return deco


@register("siamese_unet")
def _siamese_unet(*, in_channels: int, **kwargs: Any) -> nn.Module:
    """The default: widths (16, 32, 64, 128, 192), stride-2 stem, about 0.21 M parameters."""
    return SiameseUNet(in_channels, **kwargs)


@register("siamese_unet_s2")
def _siamese_unet_s2(*, in_channels: int, **kwargs: Any) -> nn.Module:
    """For 10 m Sentinel-2: full-resolution stem, four levels (buildings are a few pixels)."""
    opts: dict[str, Any] = {"widths": (32, 48, 64, 96), "depths": (1, 1, 2, 2), "fusion": "diffsum",
                            "decoder_width": 32, "stem_stride": 1}
    opts.update(kwargs)
    return SiameseUNet(in_channels, **opts)


@register("siamese_unet_wide")
def _siamese_unet_wide(*, in_channels: int, **kwargs: Any) -> nn.Module:
    """Wider variant (widths (24, 48, 96, 160, 256), decoder 32), about 0.36 M parameters."""
    opts: dict[str, Any] = {"widths": (24, 48, 96, 160, 256), "depths": (0, 2, 2, 3, 2),
                            "decoder_width": 32}
    opts.update(kwargs)
    return SiameseUNet(in_channels, **opts)


def list_models() -> list[str]:
    """Names accepted by :func:`get_model`, sorted."""
    return sorted(_REGISTRY)


def get_model(name: str, *, in_channels: int, **kwargs: Any) -> nn.Module:
    """Build an untrained network by registry name.

    Parameters
    ----------
    name
        One of :func:`list_models`.
    in_channels
        Bands per date.
    **kwargs
        Passed to the architecture (e.g. ``widths``, ``fusion``).

    Raises
    ------
    ModelError
        If ``name`` is not registered or the keyword arguments do not fit it.
    """
    if name not in _REGISTRY:
        raise ModelError(f"unknown model architecture {name!r}; available: {', '.join(list_models())}")
    try:
        return _REGISTRY[name](in_channels=in_channels, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"cannot build model {name!r} with in_channels={in_channels}, "
                         f"{kwargs}: {exc}") from exc


__all__ = ["SiameseUNet", "count_parameters", "get_model", "list_models", "register"]
