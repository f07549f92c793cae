"""Agreement of a run's violation list with the sample city's planted truth.

Prints precision and recall per status (issue 5's bar), comparing
``RUN_DIR/violations.gpkg`` with ``sample_tiles/truth/footprints.gpkg`` and
``permits/expected_violations.csv``.  ``make demo`` runs it after
``changedetect run``::

    .venv/bin/python benchmarks/sample_city_agreement.py demo_out
"""

from __future__ import annotations

import argparse
from pathlib import Path

import geopandas as gpd
import pandas as pd

from changedetect.match import agreement

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="output folder of `changedetect run`")
    parser.add_argument("--truth", type=Path, default=REPO / "sample_tiles" / "truth" / "footprints.gpkg")
    parser.add_argument("--expected", type=Path, default=REPO / "permits" / "expected_violations.csv")
    args = parser.parse_args()
    for path in (args.run_dir / "violations.gpkg", args.truth, args.expected):
        if not path.is_file():
            parser.error(f"{path} does not exist: give the output folder of `changedetect run` "
                         "(and the sample city's truth files)")
    violations = gpd.read_file(args.run_dir / "violations.gpkg", layer="violations")
    truth = gpd.read_file(args.truth, layer="footprints")
    expected = pd.read_csv(args.expected)
    table = agreement(violations, truth, expected)
    print("Agreement with the sample city's truth (precision and recall per status):")
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print(table.round(3).to_string())


if __name__ == "__main__":
    main()
