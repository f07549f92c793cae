"""The ONNX export against torch: the same probabilities, and how fast each runs on this machine.

Exports a shipped model (``changedetect.export.export_onnx``), co-registers the generated sample
city, and feeds its held-out pair (2024-07-12 -> 2025-01-20) to both, in 512 px windows
with each date's whole-scene statistics (``compute_stats``, as ``export.json`` says):

* agreement: the largest absolute difference of the probabilities, and the pixels whose side
  of the threshold differs;
* speed: Mpx/s of a batch of four 512 px windows, median of ``--repeat`` runs after a warm-up,
  the two alternating (their ratio: the median of the paired ratios), for torch (the module as ``changedetect detect`` runs it: BatchNorm folded, channels-last)
  and for onnxruntime (CPU provider, one intra-op thread per core).  Windows only: the
  blending and GeoTIFF writing of ``detect`` are not in either figure.

    .venv/bin/python benchmarks/onnx_export.py [--model vhr-building] [--repeat 11]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="vhr-building")
    ap.add_argument("--repeat", type=int, default=11)
    args = ap.parse_args()
    import onnxruntime as ort
    import torch

    from changedetect.coregister import coregister
    from changedetect.export import INPUTS, export_onnx
    from changedetect.io import open_stack
    from changedetect.weights import load_model

    loaded = load_model(args.model)
    bands = list(loaded.card.bands)
    stack, _ = coregister(open_stack(REPO / "sample_tiles"))
    pair = stack.sel(band=bands).isel(time=[1, 2]).values.astype(np.float32)  # (2, c, h, w)
    stats = [loaded.card.compute_stats(pair[k]) for k in range(2)]  # the card's transform, if any
    size, n = 512, 4
    h, w = (s - s % size for s in pair.shape[2:])
    wins = [(y, x) for y in range(0, h, size) for x in range(0, w, size)]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = export_onnx(loaded, Path(tmp) / "deploy")
        export_s = time.perf_counter() - t0
        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        session = ort.InferenceSession(str(Path(tmp) / "deploy" / "model.onnx"), options,
                                       providers=["CPUExecutionProvider"])

    def feed(batch: list[tuple[int, int]]) -> dict[str, np.ndarray]:
        arrays = [np.stack([pair[k][:, y:y + size, x:x + size] for y, x in batch]) for k in range(2)]
        m = len(batch)
        return dict(zip(INPUTS, [arrays[0], arrays[1], np.repeat(stats[0].mean[None], m, 0),
                                 np.repeat(stats[0].std[None], m, 0), np.repeat(stats[1].mean[None], m, 0),
                                 np.repeat(stats[1].std[None], m, 0)], strict=True))

    card = loaded.card
    thr = float(card.threshold)
    worst, flipped, total = 0.0, 0, 0
    for y, x in wins:
        got = session.run(None, feed([(y, x)]))[0][0, 0]
        want = loaded.predict(pair[0][:, y:y + size, x:x + size], pair[1][:, y:y + size, x:x + size],
                              stats_before=stats[0], stats_after=stats[1])
        worst = max(worst, float(np.abs(got - want).max()))
        flipped += int(((got >= thr) != (want >= thr)).sum())
        total += got.size
    batch = feed((wins * n)[:n])
    torch.set_num_threads(os.cpu_count() or 1)
    module = loaded.module
    a = torch.from_numpy(np.stack([card.preprocess(v, stats[0]) for v in batch["before"]]))
    b = torch.from_numpy(np.stack([card.preprocess(v, stats[1]) for v in batch["after"]]))
    a, b = (t.contiguous(memory_format=torch.channels_last) for t in (a, b))

    def run_torch() -> None:
        with torch.inference_mode():
            torch.sigmoid(module(a, b))

    def run_onnx() -> None:
        session.run(None, batch)

    mpx = n * size * size / 1e6
    runs: dict[str, list[float]] = {"torch": [], "onnxruntime": []}
    run_torch(), run_onnx()  # warm-up
    for _ in range(args.repeat):  # alternating, so that a change of load hits both alike
        for name, fn in (("torch", run_torch), ("onnxruntime", run_onnx)):
            t = time.perf_counter()
            fn()
            runs[name].append(time.perf_counter() - t)
    timings = {name: statistics.median(v) for name, v in runs.items()}
    ratio = statistics.median(o / t for o, t in zip(runs["onnxruntime"], runs["torch"], strict=True))
    print(f"{card.name} {card.version} exported in {export_s:.1f} s (onnx sha256 {summary.onnx_sha256[:12]}; "
          f"onnxruntime {ort.__version__}, torch {torch.__version__}, {os.cpu_count()} CPUs, load "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())})")
    print(f"sample city 2024-07-12 -> 2025-01-20, {len(wins)} windows of {size} px: largest difference "
          f"{worst:.2e}, pixels on the other side of the threshold {flipped} of {total}")
    for name, sec in timings.items():
        print(f"  {name:12s} {sec * 1000:7.1f} ms per batch of {n} x {size}^2 (median of {args.repeat}; "
              f"min {min(runs[name]) * 1000:.1f}, max {max(runs[name]) * 1000:.1f}): {mpx / sec:.2f} Mpx/s")
    print(f"  onnxruntime / torch time, median of the paired ratios: {ratio:.2f}x")


if __name__ == "__main__":
    main()
