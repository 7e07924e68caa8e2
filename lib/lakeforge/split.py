"""Repeatable hash-based splitting and sampling: a row's side depends only on its key and the seed."""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

_BUCKETS = 10_000
_SAMPLE_BUCKETS = 1 << 30


def hash_split(df: DataFrame, key: str, validation_fraction: float, seed: int, flag: str = "is_validation") -> DataFrame:
    """Add boolean column `flag`: True for about `validation_fraction` of the rows, the same rows every run."""
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    bucket = F.pmod(F.xxhash64(F.col(key).cast("string"), F.lit(seed)), F.lit(_BUCKETS))
    return df.withColumn(flag, bucket < F.lit(int(round(validation_fraction * _BUCKETS))))


def hash_sample(df: DataFrame, key: str, fraction: float, seed: int) -> DataFrame:
    """About `fraction` of the rows, the same rows every run, drawn independently of `hash_split`'s sides."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    bucket = F.pmod(F.xxhash64(F.col(key).cast("string"), F.lit(seed), F.lit("sample")), F.lit(_SAMPLE_BUCKETS))
    return df.where(bucket < F.lit(int(fraction * _SAMPLE_BUCKETS)))
