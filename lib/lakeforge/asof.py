"""Point-in-time ("as of") joins that scale: equi-joins on time buckets, no cross join, no window.

For each left row, the match is the latest right row with the same keys whose time is at or
before the left time and no older than `max_age`. Times are bucketed by `max_age`, so a match
can only sit in the left row's bucket or the one before: each left row is joined against two
buckets, and the latest candidate is kept with an aggregate. Ties on time are broken by the
right row's values, so the result is deterministic.
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

_BUCKET = "_asof_bucket"
_MATCH = "_asof_match"


def asof_join(
    left: DataFrame,
    right: DataFrame,
    *,
    left_id: str,
    keys: list[str],
    left_time: str,
    right_time: str,
    max_age_seconds: int,
    matched_flag: str | None = None,
) -> DataFrame:
    """Left-join `right`'s other columns onto `left` as of `left_time`.

    `left_id` must identify a left row uniquely. Right columns other than `keys` keep their names
    (so they must not clash with left's); unmatched left rows get nulls, and `matched_flag`, if
    given, names a boolean column telling which rows found a match.
    """
    if max_age_seconds <= 0:
        raise ValueError("max_age_seconds must be positive")
    values = [c for c in right.columns if c not in keys]
    clash = sorted(set(values) & set(left.columns))
    if clash:
        raise ValueError(f"as-of join: right columns {clash} already exist on the left side")

    def bucket(column: str) -> F.Column:
        return F.floor(F.unix_timestamp(F.col(column)) / max_age_seconds)

    probes = left.select(
        left_id, *keys, F.col(left_time).alias("_asof_left_time"),
        F.explode(F.array(bucket(left_time), bucket(left_time) - 1)).alias(_BUCKET),
    )
    candidates = right.withColumn(_BUCKET, bucket(right_time))
    age = F.unix_timestamp("_asof_left_time") - F.unix_timestamp(F.col(right_time))
    latest = (
        probes.join(candidates, on=[*keys, _BUCKET])
        .where((age >= 0) & (age <= max_age_seconds))
        .groupBy(left_id)
        .agg(F.max(F.struct(right_time, *[c for c in values if c != right_time])).alias(_MATCH))
        .select(left_id, *[F.col(f"{_MATCH}.{c}").alias(c) for c in values])
    )
    joined = left.join(latest, on=left_id, how="left")
    if matched_flag:
        joined = joined.withColumn(matched_flag, F.col(right_time).isNotNull())
    return joined
