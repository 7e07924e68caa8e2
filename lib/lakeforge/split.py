"""Repeatable hash-based splitting: a row's side depends only on its key and the seed."""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

_BUCKETS = 10_000


def hash_split(df: DataFrame, key: str, validation_fraction: float, seed: int, flag: str = "is_validation") -> DataFrame:
    """Add boolean column `flag`: True for about `validation_fraction` of the rows, the same rows every run."""
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    bucket = F.pmod(F.xxhash64(F.col(key).cast("string"), F.lit(seed)), F.lit(_BUCKETS))
    return df.withColumn(flag, bucket < F.lit(int(round(validation_fraction * _BUCKETS))))
