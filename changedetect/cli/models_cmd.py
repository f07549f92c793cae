"""``changedetect models``: list the shipped models, or show one model's card."""

from __future__ import annotations

import json
from typing import Any

import click


@click.command(name="models")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON instead of text: an array of the models' cards, or with NAME its card as one object.")
@click.option("--verify", is_flag=True, help="Also load the weights and check their sha256.")
def command(name: str | None, as_json: bool, verify: bool) -> None:
    """List the shipped models (no NAME) or print the card of NAME (a name or model folder).

    Models are looked for in $CHANGEDETECT_MODELS, then among the installed package's own
    models (changedetect/models/ in a wheel; a checkout's models/ folder).  With none found it
    says where it looked and exits with status 1 (with --json, after printing []).

    \b
    Examples:
      changedetect models
      changedetect models vhr-building
      changedetect models --json
      changedetect models s2-urban --verify
    """
    from changedetect.weights import find_model, list_shipped, load_model, models_dirs, read_card

    if name is None:
        cards = list_shipped()
        if verify:
            for c in cards:
                load_model(c.name)
        if as_json:
            click.echo(json.dumps([c.to_dict() for c in cards], indent=2, ensure_ascii=False))
            if cards:
                return
        if not cards:
            looked = ", ".join(str(d) for d in models_dirs())
            raise click.ClickException(
                f"no models found in {looked}; set CHANGEDETECT_MODELS to a folder of model folders, "
                "or reinstall changedetect (a checkout: restore models/ from git)")
        for c in cards:
            click.echo(_summary(c.to_dict()))
        return
    card = load_model(name).card if verify else read_card(find_model(name))
    if as_json:
        click.echo(json.dumps(card.to_dict(), indent=2, ensure_ascii=False))
        return
    d = card.to_dict()
    click.echo(_summary(d))
    click.echo(f"  architecture: {d['arch']} {json.dumps(d['arch_kwargs'])}")
    click.echo(f"  normalisation: {json.dumps(d['normalization'])}")
    click.echo(f"  window: {d['window']}  threshold: {d['threshold']}")
    click.echo(f"  sha256: {d['sha256']}{' (verified)' if verify else ''}")
    click.echo(f"  licence: {d['licence']}")
    click.echo(f"  trained with: {d['training'].get('command', '?')}")
    click.echo(f"  on: {d['training'].get('device', '?')}")
    click.echo("  held-out metrics:")
    for line in _metric_lines(d["metrics"]):
        click.echo(f"    {line}")


def _summary(d: dict[str, Any]) -> str:
    lo, hi = d["gsd_range_m"]
    gsd = f"{lo:g} m" if lo == hi else f"{lo:g}-{hi:g} m"
    return (f"{d['name']} {d['version']}: bands {', '.join(d['bands'])}; GSD {gsd}; "
            f"{d['description']}")


def _metric_lines(metrics: dict[str, Any]) -> list[str]:
    out = []
    for k, m in metrics.items():
        if isinstance(m, dict) and "f1" in m:
            pr = f" (P {m['precision']:.3f}, R {m['recall']:.3f})" if "precision" in m and "recall" in m else ""
            line = f"{k}: F1 {m['f1']:.3f}{pr}, floor {m.get('floor_f1', float('nan')):.3f}"
            if isinstance(m.get("cva_otsu"), dict):
                line += f", CVA {m['cva_otsu']['f1']:.3f}"
            if "seeds_f1_mean" in m:
                line += f", 3 seeds {m['seeds_f1_mean']:.3f} +- {m['seeds_f1_std']:.3f}"
            out.append(line + f" [{m.get('n_images', '?')} images]")
    return out
