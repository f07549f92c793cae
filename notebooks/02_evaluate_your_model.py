# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # How good is a model on *your* labelled data?
#
# Before trusting a change-detection model in a new city or with a new sensor, measure it
# on a few pairs you have labelled yourself.  `changedetect.evaluate` reads the layout most
# change-detection sets use (LEVIR-CD):
#
# ```
# my_pairs/
#   A/      before images   (PNG, JPEG or GeoTIFF; same names in the three folders)
#   B/      after images
#   label/  change masks: 0 = no change, anything else = change
# ```
#
# and reports precision, recall, F1 and IoU of the change class, pooled over the pixels of
# all pairs (the standard way: a few big pairs do not drown in many small ones).
#
# Here we build such a folder from the sample city's truth, so the notebook runs anywhere;
# point `PAIRS` at your own folder instead.  Its two dates are co-registered first, as the
# pairs of a labelled set must be: the sample city's raw dates are a few pixels apart, and a
# model scored on such pairs is blamed for every edge that moved.

# %% tags=["parameters"]
import os
from pathlib import Path

ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
MODEL = os.environ.get("CHANGEDETECT_NOTEBOOK_MODEL", "vhr-building")
PAIRS = None  # e.g. Path("/data/my_pairs"); None: build one from the sample city
CHIP = 256
N_PAIRS = int(os.environ.get("CHANGEDETECT_NOTEBOOK_PAIRS", "16"))  # chips of the sample city to use
# ruff: noqa: E402, B018

# %%
import tempfile

import matplotlib.pyplot as plt
import numpy as np
import rasterio
from matplotlib_inline.backend_inline import set_matplotlib_formats
from PIL import Image

from changedetect.coregister import coregister
from changedetect.io import open_stack

set_matplotlib_formats("jpeg")  # imagery: far smaller notebooks than PNG


def build_levir_folder(root: Path, out: Path, chip: int = 256, n: int = 16) -> Path:
    """LEVIR-style A/B/label chips of the sample city's first two dates, co-registered, and its
    true change.

    The dates are aligned first, as the pairs of a labelled set are: the sample city's raw dates
    are a few pixels apart, and every edge would then count as change.  Keeps the ``n`` chips
    with the most change (a real set would be chosen the same way: label where things happen,
    plus some quiet places).
    """
    tiles = sorted((root / "sample_tiles").glob("district12_*.tif"))[:2]
    aligned, _ = coregister(open_stack([str(t) for t in tiles], bands=["red", "green", "blue"]))
    before, after = (np.clip(np.nan_to_num(aligned.isel(time=i).values), 0, 255).astype(np.uint8) for i in (0, 1))
    day = lambda p: p.stem.split("_")[-1]  # noqa: E731
    with rasterio.open(root / "sample_tiles" / "truth" / f"change_{day(tiles[0])}_{day(tiles[1])}.tif") as t:
        label = t.read(1) > 0
    for sub in ("A", "B", "label"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    h, w = label.shape
    corners = [(r, c) for r in range(0, h - chip + 1, chip) for c in range(0, w - chip + 1, chip)]
    corners.sort(key=lambda rc: -label[rc[0] : rc[0] + chip, rc[1] : rc[1] + chip].sum())
    for r, c in sorted(corners[:n]):
        name = f"district12_{r:04d}_{c:04d}.png"
        win = (slice(r, r + chip), slice(c, c + chip))
        Image.fromarray(before[:, win[0], win[1]].transpose(1, 2, 0)).save(out / "A" / name)
        Image.fromarray(after[:, win[0], win[1]].transpose(1, 2, 0)).save(out / "B" / name)
        Image.fromarray((label[win] * 255).astype(np.uint8)).save(out / "label" / name)
    return out


if PAIRS is None:
    PAIRS = build_levir_folder(ROOT, Path(tempfile.mkdtemp()) / "my_pairs", CHIP, N_PAIRS)
names = sorted(p.name for p in (PAIRS / "label").iterdir())
print(len(names), "labelled pairs in", PAIRS)

# %% [markdown]
# ## A look at the data
# Always look at a few pairs first: a label that is shifted or inverted makes every score meaningless.

# %%
show = names[:3]
fig, axes = plt.subplots(len(show), 3, figsize=(10, 3.4 * len(show)))
for row, name in zip(np.atleast_2d(axes), show, strict=True):
    for ax, sub in zip(row, ("A", "B", "label"), strict=True):
        ax.imshow(Image.open(PAIRS / sub / name), cmap="gray")
        ax.set_title(f"{sub}: {name}", fontsize=8)
        ax.axis("off")
plt.tight_layout()

# %% [markdown]
# ## Scores
# The model against two references: the unsupervised change-vector-analysis baseline
# (`"cva"`, no training at all) and the floor of predicting "everything changed".

# %%
import pandas as pd

from changedetect.evaluate import evaluate_detailed, make_predictor

predictor = make_predictor(MODEL)  # loads the model once (a name, a folder, or "cva")
results = {MODEL: evaluate_detailed(PAIRS, model=predictor), "cva": evaluate_detailed(PAIRS, model="cva")}
rows = [{"model": Path(str(n)).name, **r.scores()} for n, r in results.items()]
rows.append({"model": "everything changed (floor)", **results["cva"].floor()})
scores = pd.DataFrame(rows).set_index("model")
scores.round(3)

# %%
per_image = pd.DataFrame({Path(str(n)).name: {k: v["f1"] for k, v in r.per_image.items()}
                          for n, r in results.items()})
ax = per_image.plot.bar(figsize=(10, 3.5), rot=90)
ax.set_ylabel("F1 of the change class")
ax.set_title("Per pair: where does the model fail?")
plt.tight_layout()

# %% [markdown]
# ## Where the model is right and wrong
# Green: found change; red: missed change; blue: false alarm.

# %%
from changedetect.evaluate import iter_pairs

pairs = list(iter_pairs(PAIRS, bands=predictor.bands))
probs = {pair.name: np.nan_to_num(predictor(pair.before, pair.after)) for pair in pairs}  # once
worst = set(per_image[Path(str(MODEL)).name].sort_values().index[:2])
shown = [p for p in pairs if p.name in worst]
fig, axes = plt.subplots(len(shown), 3, figsize=(10, 3.4 * max(len(shown), 1)), squeeze=False)
for row, pair in zip(axes, shown, strict=True):
    prob = probs[pair.name]
    pred = np.nan_to_num(prob) >= predictor.threshold
    overlay = np.zeros((*pred.shape, 3))
    overlay[pred & pair.label] = (0, 0.8, 0)
    overlay[~pred & pair.label] = (0.9, 0, 0)
    overlay[pred & ~pair.label] = (0, 0.3, 1)
    row[0].imshow(np.clip(pair.after.values[:3].transpose(1, 2, 0) / 255, 0, 1))
    row[0].set_title(f"after: {pair.name}", fontsize=8)
    row[1].imshow(prob, vmin=0, vmax=1, cmap="magma")
    row[1].set_title("probability", fontsize=8)
    row[2].imshow(overlay)
    row[2].set_title("hits / misses / false alarms", fontsize=8)
    for ax in row:
        ax.axis("off")
plt.tight_layout()

# %% [markdown]
# ## Choosing a threshold for your data
# The model card's threshold was chosen on its validation data.  On yours, precision and
# recall trade off like this (pixels pooled over every pair):

# %%
all_probs = np.concatenate([probs[p.name].ravel() for p in pairs])
labels = np.concatenate([p.label.ravel() for p in pairs])
curve = []
for t in np.linspace(0.05, 0.95, 19):
    p = all_probs >= t
    tp, fp, fn = (p & labels).sum(), (p & ~labels).sum(), (~p & labels).sum()
    curve.append({"threshold": t, "precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1),
                  "f1": 2 * tp / max(2 * tp + fp + fn, 1)})
curve = pd.DataFrame(curve).set_index("threshold")
ax = curve.plot(figsize=(7, 4), marker=".")
ax.axvline(predictor.threshold, color="grey", ls="--", label="model card")
ax.set_ylim(0, 1)
ax.legend()
ax.set_title("Precision, recall and F1 against the threshold")
print("best F1 at threshold", curve["f1"].idxmax().round(2))

# %% [markdown]
# From the command line the same scores come from
# `changedetect evaluate my_pairs --model vhr-building`; to use another threshold in a run, set
# `threshold` under `[detect]` (and `[vectorize]`) in the TOML file given to `changedetect run --config`.
