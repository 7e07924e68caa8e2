"""Seed the seattle_weather example's landing folder with the daily Seattle weather of 2012-2015 that
the ``vega_datasets`` package ships (``vega_datasets.local_data.seattle_weather()``; install it with
``pip install 'lakeforge[examples]'``).

    python examples/seattle_weather/seed.py [--conf examples/seattle_weather/pipeline.yaml]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lakeforge.config import load_config
from lakeforge.errors import LakeforgeError


def seed_landing(landing_dir: Path) -> Path:
    """Write the table as CSV to ``<landing_dir>/seattle_weather/`` unless a CSV file is already there."""
    target = landing_dir / "seattle_weather" / "seattle-weather.csv"
    if not any(target.parent.glob("*.csv")):
        try:
            from vega_datasets import local_data
        except ImportError:
            raise LakeforgeError("the vega_datasets package is not installed: pip install 'lakeforge[examples]'") from None
        target.parent.mkdir(parents=True, exist_ok=True)
        local_data.seattle_weather().to_csv(target, index=False, date_format="%Y-%m-%d")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conf", default=str(Path(__file__).with_name("pipeline.yaml")))
    args = parser.parse_args(argv)
    print(f"[seed] seattle_weather example: {seed_landing(load_config(args.conf).landing_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
