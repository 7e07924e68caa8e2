"""``python -m benchmarks run --scale 1m,10m``: the pipeline scale benchmark (see benchmarks/scale.py)."""
from __future__ import annotations

import argparse
import tempfile
from datetime import datetime
from pathlib import Path

from benchmarks.scale import parse_scale, run
from lakeforge.cli import parse_overrides


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    scale = commands.add_parser("run", help="run the pipeline at each scale and print growth ratios")
    scale.add_argument("--scale", default="1m,10m", help="comma-separated flights counts, e.g. 1m,10m,30m")
    scale.add_argument("--work", type=Path, help="where generated data and tables go (default: a temp folder)")
    scale.add_argument("--out", type=Path, help="JSON report (default: benchmarks/results/scale-<time>.json)")
    scale.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    scale.add_argument("--keep", action="store_true", help="keep the generated data and tables")
    args = parser.parse_args()
    scales = [parse_scale(part) for part in args.scale.split(",")]
    work = args.work or Path(tempfile.mkdtemp(prefix="lakeforge-scale-"))
    out = args.out or Path(__file__).parent / "results" / f"scale-{datetime.now():%Y%m%d-%H%M%S}.json"
    run(scales, work, out, parse_overrides(args.set), keep=args.keep)


if __name__ == "__main__":
    main()
