"""``changedetect export``: a model as one ONNX graph with its normalisation, for deployment."""

from __future__ import annotations

import json
from pathlib import Path

import click

from changedetect.cli.options import (
    check_overwrite,
    check_writable,
    json_opt,
    out_path_opt,
    overwrite_opt,
)


@click.command(name="export")
@click.argument("model")
@out_path_opt(help="Folder to write: model.onnx, export.json (inputs, bands, threshold, statistics recipe) "
                   "and the model card.")
@click.option("--opset", type=click.IntRange(13, 21), default=17, show_default=True, help="ONNX opset version.")
@click.option("--no-check", is_flag=True, help="Do not run the exported graph with onnxruntime against torch.")
@overwrite_opt
@json_opt
def command(model: str, out: Path, opset: int, no_check: bool, overwrite: bool,
            as_json: bool) -> None:
    """Export MODEL (a shipped name or a model folder) to ONNX, ready to deploy.

    The graph takes the raw pixel values of the two dates, in the card's bands
    and order (NaN = no data; height and width multiples of 32), and each
    date's per-band mean and standard deviation over its whole scene; it
    normalises them as the model was trained, runs the network and returns the
    change probability.  export.json says exactly how to compute the
    statistics and which threshold to apply.  Windowing and blending of large
    scenes stay with the caller (changedetect detect does them).  Unless
    --no-check, the graph is run once with onnxruntime and compared with torch.
    Needs the onnx extra: pip install -e '.[onnx]' in the repository (README,
    Install).

    \b
    Examples:
      changedetect export vhr-building --out deploy/vhr-building
      changedetect export models/s2-urban --out deploy/s2-urban --opset 18 --json
    """
    from changedetect.export import export_onnx

    check_overwrite(out, overwrite)
    check_writable(out, folder=True)
    summary = export_onnx(model, out, opset=opset, overwrite=overwrite, check=not no_check)
    meta = summary.metadata
    if as_json:
        click.echo(json.dumps({"folder": str(summary.folder), "onnx_sha256": summary.onnx_sha256,
                               "max_abs_diff": summary.max_abs_diff, "model": meta["model"],
                               "version": meta["version"], "bands": meta["bands"],
                               "threshold": meta["threshold"], "opset": meta["opset"]}))
        return
    click.echo(f"changedetect export: {meta['model']} {meta['version']} -> {summary.folder / meta['file']} "
               f"(opset {meta['opset']}, sha256 {summary.onnx_sha256[:12]})")
    click.echo(f"  inputs: before, after (n, {len(meta['bands'])}, h, w) raw {', '.join(meta['bands'])}; "
               f"mean/std of each date's whole scene; h, w multiples of {meta['size_multiple']}")
    click.echo(f"  output: probability (n, 1, h, w); threshold {meta['threshold']}")
    if summary.max_abs_diff is not None:
        click.echo(f"  onnxruntime vs torch: largest difference {summary.max_abs_diff:.2e}")
    click.echo(f"  how to feed it: {summary.folder / 'export.json'}")
