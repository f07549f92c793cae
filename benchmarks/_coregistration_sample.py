"""The sample-city part of ``benchmarks/coregistration.py`` (``--sample``).

``run_sample``: ``coregister`` on the generated city against the displacement its generator
records; ``run_sample_residuals``: what the scene itself moves once each date is put back by the
generator's own field.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from changedetect._registration.synthetic import true_field
from changedetect.coregister import CoregisterConfig


def run_sample(folder: Path, matching: str = "auto") -> None:
    from changedetect.coregister import coregister
    from changedetect.io import open_series

    truth = json.loads((folder / "truth/registration.json").read_text())
    t0 = time.perf_counter()
    stack = open_series(folder).to_stack()
    _, report = coregister(stack, config=CoregisterConfig(matching=matching))
    seconds = time.perf_counter() - t0
    h, w = stack.shape[-2:]
    rows, cols = np.meshgrid(np.arange(h, dtype=float), np.arange(w, dtype=float), indexing="ij")
    print(f"\nsample city {folder} ({h}x{w}, {len(truth['dates'])} dates), coregister {seconds:.1f} s")
    print("| date | status | matched on | global shift px | truth mean displacement px | error median px | p95 | max |")
    print("|---|---|---|---|---|---|---|---|")
    for d in truth["dates"]:
        entry = report[d["date"]]
        if entry.status == "reference":
            print(f"| {d['date']} | reference | | | | | | |")
            continue
        m = d["misregistration"]
        g, terms = m["global_shift_px"], m["warp_terms"]

        def u(r: np.ndarray, c: np.ndarray, g: dict = g, terms: list = terms) -> tuple[np.ndarray, np.ndarray]:
            ux, uy = np.full(r.shape, g["dx"]), np.full(r.shape, g["dy"])
            for k in terms:
                ph = 2 * np.pi * (k["fc"] * c + k["fr"] * r)
                ux, uy = ux + k["ax"] * np.sin(ph + k["phx"]), uy + k["ay"] * np.sin(ph + k["phy"])
            return ux, uy

        tx, ty = true_field(u, rows, cols)
        ex, ey = entry.shift_field.dense(0, h, 0, w)
        err = np.hypot(ex - tx, ey - ty)
        md = m["mean_displacement_px"]
        print(f"| {d['date']} | {entry.status} | {entry.matching} | {entry.shift_px[0]:+.3f}, {entry.shift_px[1]:+.3f} | "
              f"{md['dx']:+.3f}, {md['dy']:+.3f} | {np.median(err):.4f} | {np.percentile(err, 95):.3f} | "
              f"{err.max():.3f} |")


def _lk_residual(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
    """Weighted least-squares (Lucas-Kanade) displacement of ``b`` against ``a`` on their gradient
    magnitudes (sigma 2), for small residuals; ``weight`` 0 leaves a pixel out (it creates no edge)."""
    from changedetect._registration.shift import gradient_magnitude

    ga, gb = gradient_magnitude(a, sigma=2.0), gradient_magnitude(b, sigma=2.0)
    gb = gb * float(np.sum(weight * ga * gb) / np.sum(weight * gb * gb))
    gy, gx = np.gradient(0.5 * (ga + gb))
    diff, w = (gb - ga)[24:-24, 24:-24], weight[24:-24, 24:-24]
    gx, gy = gx[24:-24, 24:-24], gy[24:-24, 24:-24]
    m = np.array([[np.sum(w * gx * gx), np.sum(w * gx * gy)], [np.sum(w * gx * gy), np.sum(w * gy * gy)]])
    dx, dy = np.linalg.solve(m, -np.array([np.sum(w * gx * diff), np.sum(w * gy * diff)]))
    return float(dx), float(dy)


def run_sample_residuals(folder: Path) -> None:
    """What the generated scene itself moves: each date put back on the reference by the generator's
    own field, then the residual displacement of the band mean, on all pixels and without the pixels
    whose cast shadow changed (nuisance bit 4) or that hold trees, vehicles or new buildings (bits 1, 2
    and the change mask), each dilated by 6 px."""
    import rasterio
    from scipy import ndimage

    from changedetect.samplecity.registration import Misregistration, inverse_map

    truth = json.loads((folder / "truth/registration.json").read_text())

    def read(path: Path) -> np.ndarray:
        with rasterio.open(path) as src:
            return src.read().astype(np.float64)

    ref = read(folder / truth["dates"][0]["path"].removeprefix("../")).mean(axis=0)
    n = ref.shape[0]
    print("\nresidual after the generator's own alignment (px, dx, dy; Lucas-Kanade on gradient magnitudes):")
    print("| date | all pixels | cast-shadow changes left out | trees, vehicles, new buildings left out |")
    print("|---|---|---|---|")
    for d in truth["dates"][1:]:
        tag = d["date"].replace("-", "")
        cols, rows = inverse_map(Misregistration.from_dict(d["misregistration"]), n)
        mov = read(folder / d["path"].removeprefix("../"))
        back = np.mean([ndimage.map_coordinates(b, [rows, cols], order=3, mode="nearest") for b in mov], axis=0)
        bits = read(folder / f"truth/nuisance/nuisance_{truth['reference'].replace('-', '')}_{tag}.tif")[0].astype(int)
        built = read(folder / f"truth/change_{truth['reference'].replace('-', '')}_{tag}.tif")[0] > 0
        cells = []
        for mask in (np.zeros(ref.shape, bool), (bits & 4) > 0, ((bits & 3) > 0) | built):
            keep = (~ndimage.binary_dilation(mask, iterations=6)).astype(np.float64) if mask.any() else np.ones(ref.shape)
            dx, dy = _lk_residual(ref, back, keep)
            cells.append(f"{dx:+.3f}, {dy:+.3f} ({keep.mean():.0%} kept)")
        print(f"| {d['date']} | " + " | ".join(cells) + " |")


