"""Seed the bikeshare example's landing folder with Capital Bikeshare's hourly counts of 2011, as the
ISLP package ships them (``ISLP/data/Bikeshare.csv``, read by path: importing ISLP needs its heavy
dependencies, so install it with ``pip install --no-deps islp``).

    python examples/bikeshare/seed.py [--conf examples/bikeshare/pipeline.yaml]
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from lakeforge.config import load_config
from lakeforge.errors import LakeforgeError
from lakeforge.storage import Storage, join, storage_for


def bikeshare_csv() -> Path:
    """The package's CSV file."""
    spec = importlib.util.find_spec("ISLP")
    if spec is None or spec.origin is None:
        raise LakeforgeError("the ISLP package is not installed: pip install --no-deps islp")
    return Path(spec.origin).parent / "data" / "Bikeshare.csv"


def seed_landing(storage: Storage, landing_dir: str) -> str:
    """Copy the CSV to ``<landing_dir>/bikeshare/`` (a path or URI) unless a CSV file is already there."""
    folder = join(landing_dir, "bikeshare")
    target = join(folder, "Bikeshare.csv")
    if not any(name.endswith(".csv") for name in storage.children(folder)):
        storage.write_bytes(target, bikeshare_csv().read_bytes())
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conf", default=str(Path(__file__).with_name("pipeline.yaml")))
    args = parser.parse_args(argv)
    config = load_config(args.conf)
    print(f"[seed] bikeshare example: {seed_landing(storage_for(config), config.landing_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
