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
# # The chain on the sample city, step by step
#
# This notebook runs what `changedetect run` does, one stage at a time, with the Python
# API, on the generated sample city that ships with the project (District 12, Ho Chi Minh
# City, three dates at 0.5 m, red/green/blue/near-infrared):
#
# 1. open the stack of tiles (metadata only, then lazily),
# 2. co-register the dates and read the co-registration report,
# 3. compute the change probability and the date change was first seen,
# 4. turn it into building footprints,
# 5. match them against the permit register,
# 6. map the violations and write the inspectors' report.
#
# Every stage takes and returns in-memory objects (xarray, GeoDataFrames), so you can
# stop anywhere, look, change a parameter and go on.

# %% tags=["parameters"]
import os
from pathlib import Path

ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
TILES = ROOT / "sample_tiles"
PERMITS = ROOT / "permits" / "sample_register.gpkg"
# The model: the shipped building-change model (a model folder path also works).
MODEL = os.environ.get("CHANGEDETECT_NOTEBOOK_MODEL", "vhr-building")
# Work on a window of the city to keep it quick; None for the whole scene.
CROP = int(os.environ.get("CHANGEDETECT_NOTEBOOK_CROP", "512")) or None
# ruff: noqa: E402, B018

# %%
import matplotlib.pyplot as plt
import numpy as np
from matplotlib_inline.backend_inline import set_matplotlib_formats

from changedetect.io import open_series

set_matplotlib_formats("jpeg")  # imagery: far smaller notebooks than PNG

series = open_series(TILES)
series

# %% [markdown]
# ## 1. The stack
# `open_series` reads metadata only: dates, bands, the grid.  `to_stack` gives a lazy
# `(time, band, y, x)` float32 DataArray; nothing is read until it is needed.

# %%
print("dates:", [d.isoformat() for d in series.dates])
print("bands:", series.band_names, " CRS:", series.crs.to_string())
stack = series.to_stack()
if CROP:
    stack = stack.isel(y=slice(0, CROP), x=slice(0, CROP))
stack


# %%
def rgb(image, lo=None, hi=None):
    """(band, y, x) -> (y, x, 3) in [0, 1] for imshow (2-98 % stretch)."""
    arr = np.asarray(image.sel(band=["red", "green", "blue"]).values, dtype=float)
    lo = np.nanpercentile(arr, 2) if lo is None else lo
    hi = np.nanpercentile(arr, 98) if hi is None else hi
    return np.clip((arr - lo) / (hi - lo), 0, 1).transpose(1, 2, 0)


fig, axes = plt.subplots(1, stack.sizes["time"], figsize=(5 * stack.sizes["time"], 5))
for ax, t in zip(axes, range(stack.sizes["time"]), strict=True):
    ax.imshow(rgb(stack.isel(time=t), 0, 255))
    ax.set_title(str(stack["time"].values[t])[:10])
    ax.axis("off")
plt.tight_layout()

# %% [markdown]
# ## 2. Co-registration
# Each date is aligned on the first one (global sub-pixel shift, then a smooth local shift
# field) and its radiometry matched.  The report says how far each date had to move and how
# reliable the estimate is.

# %%
import pandas as pd

from changedetect.coregister import CoregisterConfig, coregister

aligned, creport = coregister(stack, config=CoregisterConfig())
table = pd.DataFrame([
    {"date": d.date, "status": d.status, "shift x (m)": d.shift_m[0], "shift y (m)": d.shift_m[1],
     "reliability": d.reliability, "tie points kept": d.tie_points_kept, "warnings": "; ".join(d.warnings)}
    for d in creport.dates
])
table

# %%
fig, ax = plt.subplots(figsize=(5, 5))
ax.axhline(0, color="grey", lw=0.5)
ax.axvline(0, color="grey", lw=0.5)
for d in creport.dates:
    ax.scatter(*d.shift_m, s=60)
    ax.annotate(d.date, d.shift_m, textcoords="offset points", xytext=(5, 5))
ax.set_xlabel("shift east (m)")
ax.set_ylabel("shift north (m)")
ax.set_title("Global shift of each date onto the reference")
ax.set_aspect("equal")

# %% [markdown]
# ## 3. Change probability
# `detect_series` runs the model between consecutive dates, and between same-season dates a year
# or more apart (here January 2024 → January 2025, where the shadows fall alike: `prob.attrs["pairs"]`),
# and keeps, per pixel, the highest probability and the first date it crossed the threshold.
# Given the model's building segmenter, it also runs the *presence check*: where the network only
# hints at change and the segmenter sees a building on one date and none on the other, the
# probability is raised. It checks the same-season pair, and the two pairs across seasons (January →
# July, July → January) against the two Januaries (the same sun: a shadow is not taken for a roof), as
# `prob.attrs["presence_check_pairs"]` says (`docs/detection.md`).

# %%
from changedetect.detect import DetectConfig, detect_series
from changedetect.weights import building_segmenter

aligned = aligned.persist()
segmenter = building_segmenter(MODEL)  # None for a model without a buildings/ stage: no check
prob, first_seen = detect_series(aligned, config=DetectConfig(model=MODEL), segmenter=segmenter)
print(prob.attrs)

fig, axes = plt.subplots(1, 3, figsize=(16, 5))
axes[0].imshow(rgb(aligned.isel(time=-1), 0, 255))
axes[0].set_title("last date")
im = axes[1].imshow(prob.values, vmin=0, vmax=1, cmap="magma")
axes[1].set_title("change probability")
plt.colorbar(im, ax=axes[1], fraction=0.046)
seen = first_seen.values.astype("datetime64[D]")
dates = [str(d) for d in stack["time"].values.astype("datetime64[D]")]
index = np.full(seen.shape, np.nan)
for i, d in enumerate(dates):
    index[seen == np.datetime64(d)] = i
im = axes[2].imshow(index, cmap=plt.get_cmap("viridis", len(dates)), vmin=-0.5, vmax=len(dates) - 0.5)
axes[2].set_title("first seen")
bar = plt.colorbar(im, ax=axes[2], fraction=0.046, ticks=range(len(dates)))
bar.ax.set_yticklabels(dates)
for ax in axes:
    ax.axis("off")
plt.tight_layout()

# %% [markdown]
# ## 4. Footprints
# Thresholds with hysteresis, clean-up, polygons regularised to building-like shapes. As
# `changedetect run` does, each footprint's `change_type` (new, altered, demolished) comes from the
# segmenter's building probability on the first and last dates (`presence`), and a footprint with no
# building on either date is dropped (`docs/permits.md`); without a segmenter, from the images' brightness.

# %%
from changedetect.detect import detect_pair
from changedetect.vectorize import VectorizeConfig, vectorize

presence = None if segmenter is None else tuple(  # each date's building probability
    detect_pair(aligned.isel(time=i), aligned.isel(time=i), model=segmenter) for i in (0, -1))
footprints = vectorize(prob, first_seen=first_seen, before=aligned.isel(time=0), after=aligned.isel(time=-1),
                       presence=presence, config=VectorizeConfig())
print(len(footprints), "footprints")
footprints.drop(columns="geometry").head()

# %% [markdown]
# ## 5. Matching against the permit register
# The register is validated against `permits/schema.json` on load; each footprint gets a
# status and a one-line reason.

# %%
from changedetect.match import MatchConfig, match
from changedetect.permits import load_register

permits = load_register(PERMITS)
violations = match(footprints, permits, config=MatchConfig())
violations["status"].value_counts()

# %%
violations[["violation_id", "status", "reason", "permit_ids", "area_m2", "confidence"]].head(10)

# %% [markdown]
# ## 6. The map
# The last date with the permits (white) and the footprints coloured by status.

# %%
from changedetect.report import COLOURS

left, bottom, right, top = (float(v) for v in aligned.rio.bounds())
fig, ax = plt.subplots(figsize=(9, 9))
ax.imshow(rgb(aligned.isel(time=-1), 0, 255), extent=(left, right, bottom, top))
permits.to_crs(aligned.rio.crs).boundary.plot(ax=ax, color="white", lw=0.8)
for status, group in violations.groupby("status"):
    colour = np.array(COLOURS.get(status, (255, 255, 255))) / 255
    group.boundary.plot(ax=ax, color=colour, lw=2, label=f"{status} ({len(group)})")
ax.set_xlim(left, right)
ax.set_ylim(bottom, top)
if len(violations):
    ax.legend(loc="lower right")
ax.set_title("Footprints by status (white: the permits' outlines)")

# %% [markdown]
# ## 7. The inspectors' report
# One self-contained HTML file (inline images, no network), most urgent violation first.

# %%
import tempfile

from changedetect.report import write_report

report = write_report(violations, out_path=Path(tempfile.mkdtemp()) / "report.html", stack=aligned)
print(report, f"{report.stat().st_size / 1e6:.1f} MB")

# %% [markdown]
# The same in one call, with every file and `run.json` provenance:
#
# ```python
# from changedetect.pipeline import run
# summary = run("sample_tiles", permits="permits/sample_register.gpkg", out="demo_out")
# summary.to_dict()
# ```
# or `changedetect run sample_tiles --permits permits/sample_register.gpkg --out demo_out`.
