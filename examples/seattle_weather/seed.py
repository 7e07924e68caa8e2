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
from lakeforge.storage import Storage, join, storage_for


def seed_landing(storage: Storage, landing_dir: str) -> str:
    """Write the table as CSV to ``<landing_dir>/seattle_weather/`` (a path or URI) unless a CSV file is there."""
    folder = join(landing_dir, "seattle_weather")
    target = join(folder, "seattle-weather.csv")
    if not any(name.endswith(".csv") for name in storage.children(folder)):
        try:
            from vega_datasets import local_data
        except ImportError:
            raise LakeforgeError("the vega_datasets package is not installed: pip install 'lakeforge[examples]'") from None
        storage.write_text(target, local_data.seattle_weather().to_csv(index=False, date_format="%Y-%m-%d"))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conf", default=str(Path(__file__).with_name("pipeline.yaml")))
    config = load_config(parser.parse_args(argv).conf)
    print(f"[seed] seattle_weather example: {seed_landing(storage_for(config), config.landing_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
