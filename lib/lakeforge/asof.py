"""Point-in-time ("as of") joins that scale: equi-joins on time buckets, no cross join, no window.

For each left row, the match is the latest right row with the same keys whose time is at or
before the left time and no older than `max_age` (and, with `right_known_time`, that was already
known at the left time: rows that arrived late are skipped). Times are bucketed by `max_age`, so a match
can only sit in the left row's bucket or the one before: each right row is copied into its own
bucket and the next one (the right side is usually the smaller), left rows are equi-joined on keys
+ bucket, and the latest candidate is kept with an aggregate. Ties on time are broken by the
right row's values, so the result is deterministic.
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

_BUCKET = "_asof_bucket"
_MATCH = "_asof_match"


def asof_matches(
    left: DataFrame,
    right: DataFrame,
    *,
    left_id: str,
    keys: list[str],
    left_time: str,
    right_time: str,
    max_age_seconds: int,
    right_known_time: str | None = None,
) -> DataFrame:
    """`left_id` plus the matching right row's non-key columns, for the left rows that have a match.

    `right_known_time` names a right column saying when the row became available; rows known
    after the left time are ignored (late rows).
    """
    if max_age_seconds <= 0:
        raise ValueError("max_age_seconds must be positive")
    values = [c for c in right.columns if c not in keys]

    def bucket(column: str) -> F.Column:
        return F.floor(F.unix_timestamp(F.col(column)) / max_age_seconds)

    probes = left.select(left_id, *keys, F.col(left_time).alias("_asof_left_time"), bucket(left_time).alias(_BUCKET))
    candidates = right.withColumn(_BUCKET, F.explode(F.array(bucket(right_time), bucket(right_time) + 1)))
    age = F.unix_timestamp("_asof_left_time") - F.unix_timestamp(F.col(right_time))
    usable = (age >= 0) & (age <= max_age_seconds)
    if right_known_time is not None:
        usable &= F.col(right_known_time) <= F.col("_asof_left_time")
    return (
        probes.join(candidates, on=[*keys, _BUCKET])
        .where(usable)
        .groupBy(*keys, _BUCKET, left_id)  # a left row sits in one bucket: no shuffle after the join
        .agg(F.max(F.struct(right_time, *[c for c in values if c != right_time])).alias(_MATCH))
        .select(left_id, *[F.col(f"{_MATCH}.{c}").alias(c) for c in values])
    )


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
    right_known_time: str | None = None,
) -> DataFrame:
    """Left-join `right`'s other columns onto `left` as of `left_time` (see `asof_matches`).

    `left_id` must identify a left row uniquely. Right columns other than `keys` keep their names
    (so they must not clash with left's); unmatched left rows get nulls, and `matched_flag`, if
    given, names a boolean column telling which rows found a match.
    """
    clash = sorted((set(right.columns) - set(keys)) & set(left.columns))
    if clash:
        raise ValueError(f"as-of join: right columns {clash} already exist on the left side")
    latest = asof_matches(left, right, left_id=left_id, keys=keys, left_time=left_time, right_time=right_time,
                          max_age_seconds=max_age_seconds, right_known_time=right_known_time)
    joined = left.join(latest, on=left_id, how="left")
    if matched_flag:
        joined = joined.withColumn(matched_flag, F.col(right_time).isNotNull())
    return joined
