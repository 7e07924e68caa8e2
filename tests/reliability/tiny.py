"""A tiny pipeline for the reliability tests: one CSV source of six rows, written as a YAML file, so a
test runs the real CLI on it (`lakeforge.cli.main`) in seconds with the session's SparkSession."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from delta.tables import DeltaTable

TRIPS = "trip,at,distance,late\n" + "".join(
    f"{i},2024-01-{i + 1:02d} 10:00:00,{i * 1.5},{i % 2}\n" for i in range(1, 7))


def tiny_pipeline(folder: Path, **settings: Any) -> Path:
    """Write ``folder/pipeline.yaml`` (storage root ``folder/lake``, with `settings` merged into the top
    level) and land the trips file; return the YAML's path."""
    root = folder / "lake"
    config = {
        "project": "tiny",
        "storage_root": str(root),
        "spark": {"conf": {"spark.sql.shuffle.partitions": 2}},
        "sources": {"trips": {"path": "trips/*.csv",
                              "columns": {"trip": "int", "at": "timestamp", "distance": "double", "late": "int"}}},
        "dataset": {"table": "trip_rows", "spine": {"source": "trips", "key": "cast(trip AS string)", "time": "at"}},
        "task": {"label": "late = 1"},
        "windows": {"train": ["2024-01-01", "2024-01-05"], "score": ["2024-01-05", "2024-02-01"]},
        "model": {"numeric_features": ["distance"]},
    }
    for key, value in settings.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) and key in config else value
    (root / "landing" / "trips").mkdir(parents=True, exist_ok=True)
    (root / "landing" / "trips" / "a.csv").write_text(TRIPS)
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def table_versions(spark, root: Path) -> dict[str, int]:
    """Every Delta table under ``root/delta``: name -> newest version (empty when there is none)."""
    tables = sorted(p for p in (root / "delta").glob("*") if (p / "_delta_log").is_dir())
    return {p.name: DeltaTable.forPath(spark, str(p)).history(1).head()["version"] for p in tables}
