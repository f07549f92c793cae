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
# # The nightly register over time
#
# `changedetect nightly` (`changedetect.run_nightly`) looks at what arrived in a catalog since
# its last run and keeps one cumulative register of open violations, `OUT/open_violations.gpkg`,
# with ids that do not change from night to night (`docs/nightly.md`). This notebook follows that
# register on the sample city (District 12, three dates at 0.5 m), in a temporary folder:
#
# 1. three nights, one new date each: what opens, what is withdrawn, the map;
# 2. a permit entered in the register for a building reported `unlicensed`: the register follows;
# 3. the inspectors' decisions (a false alarm dismissed, a violation confirmed on the ground).
#
# Each step names the file of `OUT/` to open in QGIS. The GeoPackages carry a default style by
# status, and their layer is named after the file (`open_violations`, `withdrawn-2025-01-21`, ...):
# `geopandas.read_file` wants that name.
#
# Run time: under a minute on two cores (the July and January nights each run the whole chain,
# 10-35 s); the nights after that run no pair and take under a second.

# %% tags=["parameters"]
import os
from pathlib import Path

ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
TILES = ROOT / "sample_tiles"
PERMITS = ROOT / "permits" / "sample_register.gpkg"
PARCELS = ROOT / "permits" / "sample_parcels.gpkg"
# The model: the shipped building-change model (a model folder path also works).
MODEL = os.environ.get("CHANGEDETECT_NOTEBOOK_MODEL", "vhr-building")
# ruff: noqa: E402, B018

# %%
import shutil
import tempfile
import time

import geopandas as gpd
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib_inline.backend_inline import set_matplotlib_formats

import changedetect
from changedetect.report import COLOURS

set_matplotlib_formats("jpeg")  # imagery: far smaller notebooks than PNG
pd.set_option("display.max_colwidth", None)  # the reasons are long

WORK = Path(tempfile.mkdtemp(prefix="changedetect_nightly_"))
CATALOG, STATE, OUT = WORK / "catalog", WORK / "state", WORK / "out"
(CATALOG / "district12").mkdir(parents=True)  # one sub-folder per area: the area is `district12`
CONFIG = changedetect.PipelineConfig(detect=changedetect.DetectConfig(model=MODEL))
summaries: dict[str, dict] = {}  # night -> what run_nightly said
registers: dict[str, gpd.GeoDataFrame] = {}  # night -> the open register after it


def night(date: str, *, permits: Path = PERMITS, decisions: Path | None = None) -> dict:
    """One night of the job, as cron would run it; then read the open register it left."""
    start = time.perf_counter()
    summary = changedetect.run_nightly(CATALOG, permits=permits, parcels=PARCELS, decisions=decisions,
                                       state=STATE, out=OUT, night=date, workers=1, config=CONFIG).to_dict()
    summary["seconds"] = round(time.perf_counter() - start, 1)
    summaries[date] = summary
    registers[date] = gpd.read_file(OUT / "open_violations.gpkg", layer="open_violations")
    why = f" {summary['withdrawn_reasons']}" if summary["withdrawn"] else ""
    print(f"night {date}: {summary['new_acquisitions']} new date(s), {summary['pairs']} pair(s) run; "
          f"{summary['new_violations']} new, {len(summary['withdrawn'])} withdrawn{why}, "
          f"{summary['open_violations']} open ({summary['pending']} awaiting a same-season check); "
          f"{summary['seconds']} s")
    return summary


def withdrawn(date: str) -> gpd.GeoDataFrame:
    """The night's withdrawn list (empty when the night withdrew nothing)."""
    path = OUT / f"withdrawn-{date}.gpkg"
    return gpd.read_file(path, layer=f"withdrawn-{date}") if path.is_file() else gpd.GeoDataFrame()


print("catalog, state and OUT under", WORK)

# %% [markdown]
# ## 1. Three nights, one new date each
# A date arrives in the catalog, the job runs that night. The first date only sets the area's
# baseline (and its registration reference); each later one is compared with the previous date,
# and the January 2025 one with January 2024 too, under the same sun. After each night we read the
# open register back.

# %%
ARRIVALS = {"2024-01-16": "district12_20240115.tif",  # night -> the date that arrived the day before
            "2024-07-13": "district12_20240712.tif",
            "2025-01-21": "district12_20250120.tif"}
for date, tif in ARRIVALS.items():
    shutil.copy(TILES / tif, CATALOG / "district12" / tif)
    night(date)

# %% [markdown]
# Open violations by status after each night, with what the night added and took away. The
# January 2025 night withdraws July's violations that January 2024 → January 2025 does not see (a
# shadow that moved between the seasons is not a building); the rest of July's are now
# `confirmed` in the `same_sun` column.

# %%
def counts(dates: list[str]) -> pd.DataFrame:
    table = pd.DataFrame({d: registers[d]["status"].value_counts() for d in dates}).T.fillna(0).astype(int)
    table = table[[s for s in COLOURS if s in table.columns]]  # in the order of the report's colours
    table.index.name = "night"
    table["new"] = [summaries[d]["new_violations"] for d in dates]
    table["withdrawn"] = [len(summaries[d]["withdrawn"]) for d in dates]
    table["open"] = [summaries[d]["open_violations"] for d in dates]
    return table


table = counts(list(ARRIVALS))
table

# %%
statuses = [s for s in COLOURS if s in table.columns]
fig, ax = plt.subplots(figsize=(7, 3.5))
table[statuses].plot.bar(stacked=True, ax=ax, color=[np.array(COLOURS[s]) / 255 for s in statuses], rot=0)
ax.set_ylabel("open violations")
ax.set_title("The open register after each night, by status")
ax.legend(loc="upper left", fontsize=8)
plt.tight_layout()
plt.show()

# %%
last = withdrawn("2025-01-21")
last[["violation_id", "status", "area_m2", "first_seen", "withdrawn", "withdrawn_reason"]]

# %% [markdown]
# The map: the open register after the last night over the last date (the raw tile, not
# co-registered: an outline may sit a pixel off), coloured by status, the largest ones labelled with
# the cadastral parcel they stand on (`parcel_id`, from `--parcels`). In QGIS: open
# `OUT/open_violations.gpkg` (styled by status) over `catalog/district12/district12_20250120.tif`; the
# night's new ones alone are `OUT/violations-2025-01-21.gpkg`, its withdrawals
# `OUT/withdrawn-2025-01-21.gpkg`.

# %%
scene = changedetect.open_stack(CATALOG / "district12" / "district12_20250120.tif")
crs = scene.rio.crs
left, bottom, right, top = (float(v) for v in scene.rio.bounds())
image = np.clip(scene.isel(time=0).sel(band=["red", "green", "blue"]).values[:, ::2, ::2] / 255, 0, 1)
image = image.transpose(1, 2, 0)  # every other pixel: enough for a map of the whole scene


def draw_register(ax: plt.Axes, register: gpd.GeoDataFrame, labels: int = 6) -> None:
    ax.imshow(image, extent=(left, right, bottom, top))
    register = register.to_crs(crs)
    for status, group in register.groupby("status"):
        group.boundary.plot(ax=ax, color=np.array(COLOURS.get(status, (255, 255, 255))) / 255, lw=2,
                            label=f"{status} ({len(group)})")
    for _, row in register.nlargest(labels, "area_m2").iterrows():
        point = row.geometry.representative_point()
        label = row["parcel_id"] if pd.notna(row["parcel_id"]) and row["parcel_id"] else row["violation_id"]
        ax.annotate(label, (point.x, point.y), xytext=(6, 6),
                    textcoords="offset points", color="white", fontsize=8,
                    bbox={"facecolor": "black", "alpha": 0.5, "pad": 1, "lw": 0})
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_axis_off()
    ax.legend(loc="lower right", fontsize=8)


fig, ax = plt.subplots(figsize=(9, 9))
draw_register(ax, registers["2025-01-21"])
ax.set_title("Open violations after the night of 2025-01-21, by status (labels: parcel)")
plt.show()

# %% [markdown]
# ## 2. The register follows the permit register
# A city's permit register lags its streets: here the largest `unlicensed` building gets its
# permit entered after it was reported. We copy the register and add that permit, a row with the
# register's schema (`permits/README.md`: `permit_id`, `permit_type`, `issued_on`, `valid_until`,
# `permitted_area_m2`, `address`, `status`), then run the next night with it (nothing new arrived
# in the catalog). Every earlier night's open violation is matched again against the changed
# register: the one the permit now covers leaves the register for `OUT/withdrawn-2025-01-22.gpkg`,
# whose `withdrawn_reason` names the permit (open it in QGIS beside `open_violations.gpkg`).

# %%
register = gpd.read_file(PERMITS, layer="permits")
open_now = registers["2025-01-21"]
house = open_now[open_now["status"] == "unlicensed"].nlargest(1, "area_m2").iloc[0]
permit = gpd.GeoDataFrame([{
    "permit_id": "GPXD-2024-0999", "permit_type": "new_construction", "issued_on": "2024-03-01",
    "valid_until": "2025-03-01", "permitted_area_m2": round(float(house["area_m2"]) * 1.05, 1),
    "address": house["parcel_address"], "status": "active",
    "geometry": house.geometry.buffer(0.5)}], crs=open_now.crs).to_crs(register.crs)
entered = pd.concat([register, permit[register.columns]], ignore_index=True)
ENTERED = WORK / "register_entered.gpkg"
entered.to_file(ENTERED, layer="permits")
print(f"{house['violation_id']} ({house['area_m2']:.0f} m², parcel {house['parcel_id']}): "
      f"permit {permit['permit_id'].iloc[0]} entered; the register now has {len(entered)} permits")
night("2025-01-22", permits=ENTERED)
withdrawn("2025-01-22")[["violation_id", "status", "area_m2", "withdrawn", "withdrawn_reason"]]

# %% [markdown]
# The building before (January 2024) and after (January 2025), with its outline (red) and the
# permit entered since (white).

# %%
before = changedetect.open_stack(CATALOG / "district12" / "district12_20240115.tif")
outline = gpd.GeoSeries([house.geometry], crs=open_now.crs).to_crs(crs)
x0, y0, x1, y1 = outline.buffer(15).total_bounds
fig, axes = plt.subplots(1, 2, figsize=(10, 5))
for ax, stack, title in zip(axes, (before, scene), ("2024-01-15", "2025-01-20"), strict=True):
    chip = stack.isel(time=0).sel(band=["red", "green", "blue"], x=slice(x0, x1), y=slice(y1, y0))
    ax.imshow(np.clip(chip.values.transpose(1, 2, 0) / 255, 0, 1),
              extent=(float(chip.x[0]), float(chip.x[-1]), float(chip.y[-1]), float(chip.y[0])))
    permit.to_crs(crs).boundary.plot(ax=ax, color="white", lw=1, ls="--")
    outline.boundary.plot(ax=ax, color=np.array(COLOURS["unlicensed"]) / 255, lw=2)
    ax.set_title(f"{title}: {house['violation_id']}")
    ax.set_axis_off()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 3. The inspectors' decisions
# After a visit the city records a decision by `violation_id` (`docs/nightly.md`, *The inspectors'
# decisions*): here the smallest `unlicensed` violation turns out to be nothing on the ground
# (`false_alarm`) and the oldest large one is `confirmed`. The job reads the city's cumulative
# decisions file every night (`decisions=`, `--decisions`): a false alarm leaves the register for
# `OUT/withdrawn-2025-02-05.gpkg` with who dismissed it and why, and is not opened again when a
# later pair finds the same change; the confirmed one stays open with the columns `decision`,
# `decided_on` and `inspector` in `OUT/open_violations.gpkg` (filter `"decision" = 'confirmed'` in
# QGIS).

# %%
open_now = registers["2025-01-22"]
unlicensed = open_now[open_now["status"] == "unlicensed"]
blob = unlicensed.nsmallest(1, "area_m2").iloc[0]
seen = unlicensed.drop(index=blob.name).sort_values(["first_seen", "area_m2"], ascending=[True, False]).iloc[0]
DECISIONS = WORK / "quyet_dinh.csv"
pd.DataFrame([
    {"violation_id": blob["violation_id"], "decision": "false_alarm", "decided_on": "2025-02-03",
     "inspector": "Nguyễn Văn An", "note": "bóng cây trên mái tôn, không có công trình mới"},
    {"violation_id": seen["violation_id"], "decision": "confirmed", "decided_on": "2025-02-04",
     "inspector": "Trần Thị Bích", "note": "nhà xây mới không phép, đã lập biên bản"},
]).to_csv(DECISIONS, index=False, encoding="utf-8")
print(DECISIONS.read_text(encoding="utf-8"))
night("2025-02-05", permits=ENTERED, decisions=DECISIONS)
withdrawn("2025-02-05")[["violation_id", "status", "area_m2", "withdrawn", "withdrawn_reason"]]

# %%
final = registers["2025-02-05"]
final.loc[final["decision"].notna() & (final["decision"] != ""),
          ["violation_id", "status", "parcel_id", "area_m2", "decision", "decided_on", "inspector"]]

# %% [markdown]
# The register's history over the five nights, and the map after the last one: the open violations
# by status, and in grey (dashed) what left the register and why.

# %%
counts(list(summaries))

# %%
gone = pd.concat([withdrawn(d).assign(why=withdrawn(d)["withdrawn_reason"].str.split(":").str[0])
                  for d in summaries if len(withdrawn(d))], ignore_index=True)
fig, ax = plt.subplots(figsize=(9, 9))
draw_register(ax, final, labels=0)
for _, row in gone.to_crs(crs).iterrows():
    gpd.GeoSeries([row.geometry]).boundary.plot(ax=ax, color="0.8", lw=1.5, ls="--")
    point = row.geometry.representative_point()
    ax.annotate(row["why"], (point.x, point.y), xytext=(6, -10), textcoords="offset points",
                color="white", fontsize=7, bbox={"facecolor": "0.3", "alpha": 0.6, "pad": 1, "lw": 0})
final[final["decision"] == "confirmed"].to_crs(crs).boundary.plot(ax=ax, color="white", lw=3, label="confirmed")
ax.legend(loc="lower right", fontsize=8)
ax.set_title("After 2025-02-05: open by status (white: confirmed), withdrawn dashed with the reason")
plt.show()

# %% [markdown]
# What is where, for QGIS: `OUT/open_violations.gpkg` is the register now; each night's
# `violations-<night>.gpkg` what it found first, `withdrawn-<night>.gpkg` what it took away and why,
# `report-<night>-district12.html` the inspectors' cards. The `.csv` beside each list has the same
# rows (WKT in EPSG:4326) for a spreadsheet.

# %%
sorted(p.name for p in OUT.iterdir() if p.suffix in {".gpkg", ".html"})
