"""Shared fixtures: one real SparkSession (with Delta) for the whole test session."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from lakeforge.config import LakeforgeConfig, load_config
from lakeforge.spark import get_spark

REPO = Path(__file__).resolve().parents[1]
FLIGHTS_CONF = REPO / "conf" / "flights.yaml"


def flights_config(storage_root: Path, **overrides: Any) -> LakeforgeConfig:
    """conf/flights.yaml with a private storage root, small Spark settings and `overrides`."""
    base = {"storage_root": str(storage_root), "spark.conf": {"spark.sql.shuffle.partitions": 2}}
    return load_config(FLIGHTS_CONF, {**base, **overrides})


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> SparkSession:
    root = tmp_path_factory.mktemp("spark")
    config = flights_config(root, **{"spark.master": "local[2]"})
    session = get_spark(config.spark, root / "warehouse")
    yield session
    session.stop()
