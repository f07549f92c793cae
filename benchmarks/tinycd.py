"""TinyCD (Codegoni et al. 2023), reimplemented in plain torch, to load the published anchor weights.

COMPARISON ONLY.  The weights (``../shared/data/anchors/tinycd/{levir,whu}_best.pth``)
are licensed for non-commercial research use; they are never shipped, never
loaded by default and never distilled into the project's models.  This module
lives in ``benchmarks/`` and is imported by ``benchmarks/detection_accuracy.py``.

The architecture (from the paper and its public code, "Tiny_model_4_CD"):

- backbone: torchvision's EfficientNet-b4 ``features[0:4]`` (stem conv 3->48,
  stride 2; MBConv1 k3 x2 -> 24; MBConv6 k3 s2 x4 -> 32; MBConv6 k5 s2 x4 -> 56),
  shared by the two dates.  torchvision cannot be installed beside torch 2.13.0
  here, so the blocks are rewritten below with the same module names, and the
  published ``state_dict`` loads with ``strict=True``;
- "mixing mask attention" blocks: the two dates' channels are interleaved and
  mixed by a grouped 3x3 conv (PReLU, InstanceNorm); at the three finer levels a
  pixel-wise MLP turns the mix into a one-channel attention mask;
- decoder: three ``UpMask`` steps (bilinear x2, multiply by the mask of the next
  finer level, depthwise 3x3 + pointwise conv) and a pixel-wise MLP with a sigmoid.

Inputs are RGB in [0, 1] normalised with ImageNet's mean and std; output is a
change probability (the network ends with a sigmoid).

Usage::

    python benchmarks/tinycd.py ../shared/data/levir_samples   # prints F1 of both weights
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ANCHORS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "anchors" / "tinycd"


# ----------------------------------------------------------------------------- EfficientNet blocks
class ConvNormAct(nn.Sequential):
    """torchvision's Conv2dNormActivation: conv (no bias), BatchNorm, optional SiLU."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: bool = True) -> None:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                                   nn.BatchNorm2d(cout)]
        if act:
            layers.append(nn.SiLU(inplace=True))
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """torchvision's SqueezeExcitation (SiLU inside, sigmoid gate)."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = nn.functional.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(nn.functional.silu(self.fc1(s))))


class MBConv(nn.Module):
    """torchvision's MBConv (stochastic depth is the identity at inference)."""

    def __init__(self, cin: int, cout: int, expand: int, k: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        layers: list[nn.Module] = []
        if mid != cin:
            layers.append(ConvNormAct(cin, mid, 1))
        layers += [ConvNormAct(mid, mid, k, stride, groups=mid), SqueezeExcitation(mid, max(1, cin // 4)),
                   ConvNormAct(mid, cout, 1, act=False)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return y + x if self.residual else y


def _stage(cin: int, cout: int, expand: int, k: int, stride: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[MBConv(cin if i == 0 else cout, cout, expand, k, stride if i == 0 else 1)
                           for i in range(n)])


def efficientnet_b4_head() -> nn.ModuleList:
    """EfficientNet-b4 ``features[0:4]``: (n, 3, h, w) -> strides 2, 2, 4, 8 with 48, 24, 32, 56 channels."""
    return nn.ModuleList([ConvNormAct(3, 48, 3, 2), _stage(48, 24, 1, 3, 1, 2),
                          _stage(24, 32, 6, 3, 2, 4), _stage(32, 56, 6, 5, 2, 4)])


# ----------------------------------------------------------------------------- TinyCD blocks
class PixelwiseLinear(nn.Module):
    def __init__(self, fin: Sequence[int], fout: Sequence[int], last: nn.Module | None = None) -> None:
        super().__init__()
        n = len(fin)
        self._linears = nn.Sequential(*[
            nn.Sequential(nn.Conv2d(fin[i], fout[i], 1), nn.PReLU() if i < n - 1 or last is None else last)
            for i in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._linears(x)


class MixingBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self._convmix = nn.Sequential(nn.Conv2d(cin, cout, 3, groups=cout, padding=1), nn.PReLU(),
                                      nn.InstanceNorm2d(cout))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        mixed = torch.stack((x, y), dim=2).reshape(x.shape[0], -1, x.shape[2], x.shape[3])
        return self._convmix(mixed)


class MixingMaskAttentionBlock(nn.Module):
    def __init__(self, cin: int, cout: int, fin: Sequence[int], fout: Sequence[int]) -> None:
        super().__init__()
        self._mixing = MixingBlock(cin, cout)
        self._linear = PixelwiseLinear(fin, fout)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._linear(self._mixing(x, y))


class UpMask(nn.Module):
    def __init__(self, nin: int, nout: int) -> None:
        super().__init__()
        self._convolution = nn.Sequential(
            nn.Conv2d(nin, nin, 3, 1, groups=nin, padding=1), nn.PReLU(), nn.InstanceNorm2d(nin),
            nn.Conv2d(nin, nout, 1), nn.PReLU(), nn.InstanceNorm2d(nout))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self._convolution(x * y)


class TinyCD(nn.Module):
    """TinyCD: ``(n, 3, h, w) x 2 -> (n, 1, h, w)`` change probability (h, w multiples of 8)."""

    def __init__(self) -> None:
        super().__init__()
        self._backbone = efficientnet_b4_head()
        self._first_mix = MixingMaskAttentionBlock(6, 3, [3, 10, 5], [10, 5, 1])
        self._mixing_mask = nn.ModuleList([MixingMaskAttentionBlock(48, 24, [24, 12, 6], [12, 6, 1]),
                                           MixingMaskAttentionBlock(64, 32, [32, 16, 8], [16, 8, 1]),
                                           MixingBlock(112, 56)])
        self._up = nn.ModuleList([UpMask(56, 64), UpMask(64, 64), UpMask(64, 32)])
        self._classify = PixelwiseLinear([32, 16, 8], [16, 8, 1], nn.Sigmoid())

    def forward(self, ref: torch.Tensor, test: torch.Tensor) -> torch.Tensor:
        features = [self._first_mix(ref, test)]
        for num, layer in enumerate(self._backbone):
            ref, test = layer(ref), layer(test)
            if num != 0:
                features.append(self._mixing_mask[num - 1](ref, test))
        up = features[-1]
        for i, j in enumerate(range(-2, -5, -1)):
            up = self._up[i](up, features[j])
        return self._classify(up)


def load_tinycd(path: str | Path) -> TinyCD:
    """TinyCD with the published weights at ``path`` (``strict=True``), in eval mode."""
    model = TinyCD()
    state = torch.load(path, map_location="cpu", weights_only=True)
    # the WHU checkpoint wraps the coarsest MixingBlock in a module of its own
    # (keys "_mixing_mask.2._mixing._convmix.*"; no mask MLP): same weights, same function.
    state = {k.replace("_mixing_mask.2._mixing.", "_mixing_mask.2."): v for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    return model.eval()


# ----------------------------------------------------------------------------- harness adapter
class _Logits(nn.Module):
    """Turns TinyCD's probabilities into logits, as changedetect.detect expects."""

    def __init__(self, net: TinyCD) -> None:
        super().__init__()
        self.net = net

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.logit(self.net(a, b).clamp(1e-6, 1 - 1e-6))


@dataclass
class TinyCDPredictor:
    """A :class:`changedetect.evaluate.Predictor` running TinyCD through ``detect_pair``.

    Images are windowed at 256 px (LEVIR-CD's crop size, the size it was trained on).
    """

    weights: str = "levir"
    bands: tuple[str, ...] = ("red", "green", "blue")
    threshold: float = 0.5

    def __post_init__(self) -> None:
        from changedetect.weights import LoadedModel, ModelCard

        path = ANCHORS / f"{self.weights}_best.pth"
        self.name = f"tinycd-{self.weights}"
        card = ModelCard(name=self.name, version="published", arch="tinycd", bands=self.bands,
                         normalization={"kind": "fixed", "mean": [255 * m for m in IMAGENET_MEAN],
                                        "std": [255 * s for s in IMAGENET_STD]},
                         window=256, threshold=0.5, licence="non-commercial research (anchor only)")
        self.loaded = LoadedModel(module=_Logits(load_tinycd(path)), card=card, path=path.parent)

    def __call__(self, before: xr.DataArray, after: xr.DataArray) -> np.ndarray:
        from changedetect.detect import DetectConfig, detect_pair

        cfg = DetectConfig(model=self.name, window=256, overlap=32, batch_size=4, threshold=self.threshold)
        return detect_pair(before, after, config=cfg, model=self.loaded).values


def main(argv: Sequence[str]) -> None:
    """Print the pooled scores of both TinyCD weights on a LEVIR-style folder."""
    from changedetect.evaluate import evaluate

    root = Path(argv[0]) if argv else ANCHORS.parents[1] / "levir_samples"
    net = TinyCD()
    n = sum(p.numel() for p in net.parameters())
    n_state = sum(v.numel() for v in net.state_dict().values())
    print(f"TinyCD: {n:,} trainable parameters, {n_state:,} numbers in the state_dict "
          "(with BatchNorm statistics; the published 293,877)")
    for w in ("levir", "whu"):
        s = evaluate(root, model=TinyCDPredictor(w))
        print(f"tinycd-{w} on {root}: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                                   for k, v in s.items()))


if __name__ == "__main__":
    main(sys.argv[1:])
