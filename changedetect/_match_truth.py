"""Agreement of a violation list with a truth file (private; public as :func:`changedetect.match.agreement`)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely


def agreement(
    violations: gpd.GeoDataFrame,
    truth: gpd.GeoDataFrame,
    expected: pd.DataFrame,
    *,
    id_column: str = "structure_id",
    min_overlap: float = 0.5,
) -> pd.DataFrame:
    """Precision and recall per status of ``violations`` against planted truth.

    Parameters
    ----------
    violations
        :func:`changedetect.match.match` output (detected footprints, any CRS).
    truth
        Truth structures with ``id_column`` and geometry (e.g. ``sample_tiles/truth/footprints.gpkg``).
    expected
        ``id_column`` -> ``expected_status`` (e.g. ``permits/expected_violations.csv``).
    min_overlap
        A detection and a truth structure are the same object when their overlap
        is at least this share of the smaller of the two (one-to-one, largest overlaps first).

    Returns
    -------
    pandas.DataFrame
        One row per status (+ ``all``): ``truth``, ``detected``, ``tp``, ``precision``,
        ``recall``; ``attrs["permitted_flagged"]`` counts truly permitted structures
        that got another status, ``attrs["missed"]`` truth structures with no detection.
    """
    want = expected.set_index(id_column)["expected_status"]
    tr = truth[truth[id_column].isin(want.index)].to_crs(violations.crs).reset_index(drop=True)
    det = violations.reset_index(drop=True)
    ti, di = shapely.STRtree(np.asarray(det.geometry.values)).query(
        np.asarray(tr.geometry.values), predicate="intersects")
    inter = shapely.area(shapely.intersection(tr.geometry.values[ti], det.geometry.values[di]))
    smaller = np.minimum(tr.geometry.area.to_numpy()[ti], det.geometry.area.to_numpy()[di])
    ok = inter >= min_overlap * smaller
    paired_t: dict[int, int] = {}
    used_d: set[int] = set()
    for k in np.argsort(-inter):
        if not ok[k] or ti[k] in paired_t or di[k] in used_d:
            continue
        paired_t[int(ti[k])] = int(di[k])
        used_d.add(int(di[k]))
    truth_status = [want[s] for s in tr[id_column]]
    got = {t: str(det["status"].iat[d]) for t, d in paired_t.items()}
    rows = []
    statuses = sorted(set(truth_status) | set(det["status"]))
    for s in [*statuses, "all"]:
        n_truth = sum(1 for x in truth_status if s in (x, "all"))
        n_det = int(len(det)) if s == "all" else int((det["status"] == s).sum())
        tp = sum(1 for t, x in enumerate(truth_status) if s in (x, "all") and got.get(t) == x)
        rows.append({"status": s, "truth": n_truth, "detected": n_det, "tp": tp,
                     "precision": tp / n_det if n_det else float("nan"),
                     "recall": tp / n_truth if n_truth else float("nan")})
    table = pd.DataFrame(rows).set_index("status")
    table.attrs["permitted_flagged"] = sum(
        1 for t, x in enumerate(truth_status) if x == "permitted" and t in got and got[t] != "permitted")
    table.attrs["missed"] = sum(1 for t in range(len(tr)) if t not in got)
    return table


__all__ = ["agreement"]
