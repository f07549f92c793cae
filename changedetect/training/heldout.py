"""Scores of a trained model and of CVA on the held-out sets of its training config.

``python -m changedetect.training.heldout models/vhr-building [more model folders...]``
prints, for every held-out set of each model's ``train.toml`` (held-out areas turned into
seeded synthetic pairs, held-out sample-city pair, LEVIR samples, held-out OSCD cities),
precision / recall / F1 / IoU pooled over the set for the model, for change vector
analysis with Otsu's threshold (:mod:`changedetect.baselines`), and the "everything
changed" floor.  These are the figures quoted in the model cards.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from changedetect.training.config import TrainConfig
from changedetect.training.loaders import load_data, split
from changedetect.training.metrics import Counts, confusion_counts, floor_scores, scores
from changedetect.training.train import _predict, validation_sets
from changedetect.weights import load_model


def heldout_scores(model_dir: Path, *, config: Path | None = None) -> dict[str, dict[str, Any]]:
    """``{set: {"model": scores, "cva": scores, "floor_f1": .., "n_images": ..}}``.

    The held-out sets are those of ``config`` (default: the folder's ``train.toml``, or for a
    stage folder without one, such as ``models/vhr-building/stage1``, its parent's)."""
    from changedetect.baselines import cva_probability

    if config is None:
        config = next((c for c in (model_dir / "train.toml", model_dir.parent / "train.toml") if c.is_file()),
                      model_dir / "train.toml")
    cfg = TrainConfig.from_toml(config)
    loaded = load_model(model_dir)
    parts = split(cfg, *load_data(cfg))
    out: dict[str, dict[str, Any]] = {}
    dev = torch.device("cpu")
    for name, items in validation_sets(cfg, parts).items():
        cm, cc = Counts(), Counts()
        for a, b, lab in items:
            cm = cm + confusion_counts(_predict(loaded.module, a, b, dev) >= loaded.card.threshold, lab)
            prob, _ = cva_probability(a, b)
            cc = cc + confusion_counts(np.nan_to_num(prob) >= 0.5, lab)
        out[name] = {"model": _round(scores(cm)), "cva_otsu": _round(scores(cc)),
                     "floor_f1": round(floor_scores(cm)["f1"], 4), "n_images": len(items),
                     "changed_fraction": round((cm.tp + cm.fn) / max(cm.total, 1), 4)}
    return out


def _round(d: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in d.items()}


def main(argv: list[str] | None = None) -> None:
    """Print the held-out table of each model folder given (JSON with --json)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--config", type=Path, default=None,
                    help="training config whose held-out sets to score (default: each folder's train.toml, "
                         "or its parent's for a stage folder)")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    res = {str(m): heldout_scores(m, config=args.config) for m in args.models}
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print("| model | held-out set | images | changed | model F1 (P, R) | CVA+Otsu F1 (P, R) | floor F1 |")
    print("|---|---|---|---|---|---|---|")
    for m, sets in res.items():
        for name, r in sets.items():
            a, c = r["model"], r["cva_otsu"]
            print(f"| {Path(m).name} | {name} | {r['n_images']} | {r['changed_fraction']:.3f} | "
                  f"{a['f1']:.3f} ({a['precision']:.2f}, {a['recall']:.2f}) | "
                  f"{c['f1']:.3f} ({c['precision']:.2f}, {c['recall']:.2f}) | {r['floor_f1']:.3f} |")


if __name__ == "__main__":
    main()
