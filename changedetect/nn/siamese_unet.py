"""A light Siamese U-Net for bitemporal change detection.

One encoder with shared weights reads both dates; at every scale the two dates'
features are fused (see :class:`~changedetect.nn.blocks.Fuse`); a light
top-down decoder turns the fused pyramid into change logits at full resolution.

Shapes: ``a, b: (n, c, h, w) -> logits (n, 1, h, w)`` for any ``h, w`` (inputs are
reflect-padded to a multiple of the network's total stride and the output cropped back).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from changedetect.nn.blocks import ConvBNAct, DSConv, Fuse, Fusion, ResDS, UpBlock


class Encoder(nn.Module):
    """Feature pyramid of one date.

    ``(n, c, h, w) -> [(n, widths[0], h/s, w/s), (n, widths[1], h/2s, w/2s), ...]`` with
    ``s = stem_stride``; each level after the first halves the size again.
    """

    def __init__(self, in_channels: int, widths: Sequence[int], depths: Sequence[int],
                 *, stem_stride: int = 2) -> None:
        super().__init__()
        if len(widths) != len(depths):
            raise ValueError(f"widths {list(widths)} and depths {list(depths)} differ in length")
        self.stem = nn.Sequential(
            ConvBNAct(in_channels, widths[0], k=3, stride=stem_stride),
            *[ResDS(widths[0]) for _ in range(depths[0])],
        )
        self.stages = nn.ModuleList(
            nn.Sequential(DSConv(widths[i - 1], widths[i], stride=2),
                          *[ResDS(widths[i]) for _ in range(depths[i])])
            for i in range(1, len(widths))
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.stem(x)]
        for stage in self.stages:
            feats.append(stage(feats[-1]))
        return feats


class SiameseUNet(nn.Module):
    """Siamese encoder, fusion at every scale, light decoder.

    Parameters
    ----------
    in_channels
        Number of bands of each date (the same for both).
    widths
        Channels of each encoder level, finest first.
    depths
        Residual blocks per level.
    decoder_width
        Channels of every decoder level (fused features are projected to it).
    stem_stride
        1 keeps full resolution at the first level (Sentinel-2, where a building is a
        few pixels); 2 halves it (VHR imagery, faster).
    fusion
        How the two dates' features meet, see :class:`~changedetect.nn.blocks.Fuse`.

    Notes
    -----
    ``forward(a, b)``: ``a, b (n, in_channels, h, w)`` float32, normalised as the model
    card says -> change logits ``(n, 1, h, w)`` (apply a sigmoid for probabilities).
    """

    def __init__(self, in_channels: int, *, widths: Sequence[int] = (16, 32, 64, 128, 192),
                 depths: Sequence[int] = (0, 1, 2, 3, 2), decoder_width: int = 24,
                 stem_stride: int = 2, fusion: Fusion = "diffsum") -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride}")
        self.in_channels = in_channels
        self.stride = stem_stride * 2 ** (len(widths) - 1)
        self.stem_stride = stem_stride
        self.encoder = Encoder(in_channels, widths, depths, stem_stride=stem_stride)
        self.fuse = nn.ModuleList(Fuse(w, decoder_width, mode=fusion) for w in widths)
        self.up = nn.ModuleList(UpBlock(decoder_width, decoder_width) for _ in widths[1:])
        self.head = nn.Sequential(DSConv(decoder_width, decoder_width),
                                  nn.Conv2d(decoder_width, 1, 1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``a, b (n, c, h, w) -> logits (n, 1, h, w)``."""
        if a.shape != b.shape:
            raise ValueError(f"the two dates differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
        if a.shape[1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} bands, got {a.shape[1]}")
        h, w = a.shape[-2:]
        ph, pw = (-h) % self.stride, (-w) % self.stride
        if ph or pw:
            mode = "reflect" if min(h, w) > max(ph, pw) else "replicate"
            a = F.pad(a, (0, pw, 0, ph), mode=mode)
            b = F.pad(b, (0, pw, 0, ph), mode=mode)
        n = a.shape[0]
        feats = self.encoder(torch.cat([a, b], dim=0))  # one pass for both dates
        fused = [f(x[:n], x[n:]) for f, x in zip(self.fuse, feats, strict=True)]
        x = fused[-1]
        for i in range(len(fused) - 2, -1, -1):
            x = self.up[i](x, fused[i])
        logits = self.head(x)
        if self.stem_stride > 1:
            logits = F.interpolate(logits, scale_factor=self.stem_stride, mode="bilinear",
                                   align_corners=False)
        return logits[..., :h, :w]


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


__all__ = ["Encoder", "SiameseUNet", "count_parameters"]
