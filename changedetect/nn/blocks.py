"""Building blocks of the change-detection networks.

All blocks keep the spatial size unless they are given ``stride=2``; tensors are
``(b, c, h, w)`` float32 throughout.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

Fusion = Literal["diff", "diffsum", "concat"]


class ConvBNAct(nn.Sequential):
    """``k x k`` convolution, BatchNorm, ReLU: ``(b, cin, h, w) -> (b, cout, h/s, w/s)``."""

    def __init__(self, cin: int, cout: int, *, k: int = 3, stride: int = 1, groups: int = 1,
                 act: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every :class:`ConvBNAct`'s BatchNorm into its convolution, in place (inference only).

    The outputs are unchanged in ``eval()`` mode (to float rounding); the module gets faster
    because one memory pass per convolution disappears.  Returns ``module``.
    """
    for m in module.modules():
        if isinstance(m, ConvBNAct) and isinstance(m[1], nn.BatchNorm2d):
            conv, bn = m[0], m[1]
            assert isinstance(conv, nn.Conv2d)
            var = bn.running_var if bn.running_var is not None else torch.ones(bn.num_features)
            mean = bn.running_mean if bn.running_mean is not None else torch.zeros(bn.num_features)
            gamma = bn.weight if bn.weight is not None else torch.ones_like(var)
            beta = bn.bias if bn.bias is not None else torch.zeros_like(var)
            scale = gamma / torch.sqrt(var + bn.eps)
            with torch.no_grad():
                conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
                bias = beta - mean * scale
                if conv.bias is not None:
                    bias = bias + conv.bias * scale
                conv.bias = nn.Parameter(bias.detach().clone())
            m[1] = nn.Identity()
    return module


class DSConv(nn.Sequential):
    """Depthwise-separable convolution: depthwise ``3 x 3`` (stride ``s``) then pointwise ``1 x 1``.

    ``(b, cin, h, w) -> (b, cout, h/s, w/s)``.
    """

    def __init__(self, cin: int, cout: int, *, stride: int = 1) -> None:
        super().__init__(
            ConvBNAct(cin, cin, k=3, stride=stride, groups=cin),
            ConvBNAct(cin, cout, k=1),
        )


class ResDS(nn.Module):
    """Residual depthwise-separable block: ``x + DS(DS(x))``, ``(b, c, h, w) -> (b, c, h, w)``."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvBNAct(c, c, k=3, groups=c),
            ConvBNAct(c, c, k=1, act=False),
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class Fuse(nn.Module):
    """Fuse the two dates' features at one scale: ``(b, c, h, w) x 2 -> (b, cout, h, w)``.

    ``"diff"``: ``|a - b|`` then ``1 x 1`` conv; ``"diffsum"``: ``concat(|a - b|, a + b)``
    then ``1 x 1`` conv (symmetric in the two dates, sees both the change and the context);
    ``"concat"``: ``concat(a, b)`` then ``1 x 1`` conv (not symmetric).
    """

    def __init__(self, c: int, cout: int, *, mode: Fusion = "diffsum") -> None:
        super().__init__()
        if mode not in ("diff", "diffsum", "concat"):
            raise ValueError(f"fusion must be 'diff', 'diffsum' or 'concat', got {mode!r}")
        self.mode = mode
        cin = c if mode == "diff" else 2 * c
        self.proj = ConvBNAct(cin, cout, k=1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.mode == "diff":
            x = torch.abs(a - b)
        elif self.mode == "diffsum":
            x = torch.cat([torch.abs(a - b), a + b], dim=1)
        else:
            x = torch.cat([a, b], dim=1)
        return self.proj(x)


class UpBlock(nn.Module):
    """Decoder step: upsample the coarse map x2, add the fused skip, refine.

    ``coarse (b, cin, h/2, w/2), skip (b, cout, h, w) -> (b, cout, h, w)``.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.reduce = ConvBNAct(cin, cout, k=1)
        self.refine = DSConv(cout, cout)

    def forward(self, coarse: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.reduce(coarse), size=skip.shape[-2:], mode="bilinear",
                          align_corners=False)
        return self.refine(x + skip)


__all__ = ["ConvBNAct", "DSConv", "Fuse", "Fusion", "ResDS", "UpBlock", "fold_batchnorm"]
