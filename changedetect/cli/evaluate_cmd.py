"""``changedetect evaluate``: precision, recall, F1 and IoU on labelled pairs."""

from __future__ import annotations

from pathlib import Path

import click

from changedetect.cli.options import json_opt, quiet


@click.command(name="evaluate")
@click.argument("path", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--model", "-m", required=True,
              help="Shipped model name, model folder, or 'cva' (change vector analysis + Otsu).")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Probability counted as change (default: the model card's; 0.5 = Otsu for cva).")
@click.option("--cities", help="OSCD-style roots only: comma-separated cities to evaluate.")
@json_opt
@click.pass_context
def command(ctx: click.Context, path: Path, model: str, threshold: float | None, cities: str | None,
            as_json: bool) -> None:
    """Scores of the change class, from pixel counts pooled over every pair under PATH.

    PATH is a LEVIR-style folder (A/, B/, label/ with matching names; labels
    0/255 or 0/1) or an OSCD-style root (images/<city>/imgs_1, imgs_2 with one
    file per band; labels/<city>/cm/<city>-cm.tif with 1 = no change, 2 = change).
    The model's card decides which bands are read.

    \b
    Examples:
      changedetect evaluate ../shared/data/levir_samples --model vhr-building
      changedetect evaluate ../shared/data/oscd --model s2-urban --cities paris,rennes --json
      changedetect evaluate ../shared/data/levir_samples --model cva
    """
    import json

    from changedetect._detect_inputs import heard
    from changedetect.evaluate import evaluate_detailed

    city_list = [c.strip() for c in cities.split(",") if c.strip()] if cities else None
    with heard() as said:  # a model made for other pixels: -q drops its log line, said after the scores
        result = evaluate_detailed(path, model=model, threshold=threshold, cities=city_list,
                                   progress=not (quiet(ctx) or as_json))
    scores = result.scores()
    if as_json:
        click.echo(json.dumps({k: scores[k] for k in ("precision", "recall", "f1", "iou", "n_images")}))
        _say(said, quiet(ctx))
        return
    floor = result.floor()
    click.echo(f"{result.model} on {path} ({result.n_images} pairs, threshold {result.threshold:.2f}; "
               "pixel counts pooled):")
    click.echo(f"  precision {scores['precision']:.4f}  recall {scores['recall']:.4f}  "
               f"f1 {scores['f1']:.4f}  iou {scores['iou']:.4f}")
    click.echo(f"  'everything changed' floor: f1 {floor['f1']:.4f}  iou {floor['iou']:.4f}")
    _say(said, quiet(ctx))


def _say(said: list[str], quiet: bool) -> None:
    """The warnings about the scores (a model made for other pixels) as ``Warning:`` lines on stderr,
    where ``-q`` dropped their log lines; without it the log already said them."""
    for line in said if quiet else []:
        click.echo(f"Warning: {line}", err=True)
