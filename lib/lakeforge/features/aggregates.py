"""Past-only aggregates per key: the `aggregate` kind of feature view.

Two forms, both point in time (a row never sees itself or a later row, ties included):

* ``snapshots`` (with `every`): one row per key and period start ``s`` (multiples of `every` since
  the epoch, UTC) aggregating the rows with event time in ``[s - window, s)``. Each event row is
  copied to the snapshots it belongs to and each snapshot is one group. When every metric is a
  plain ``count``, ``sum``, ``avg``, ``min`` or ``max``, the rows are first aggregated per key and
  period and those partial aggregates are copied instead (same values, far fewer rows). A snapshot
  exists only where its window holds at least one row.
* ``as_of_points`` (without `every`): one row per key and query time ``t`` (the spine's times)
  aggregating the rows with event time in ``[t - window, t)``: the event rows and the query points
  are stacked and each metric is a window aggregate over a range frame that ends one microsecond
  before the current row, counting event rows only (``FILTER (WHERE ...)``).
"""
from __future__ import annotations

import re

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

EVENT_TIME = "event_time"
_SECONDS = "_agg_seconds"
_IS_EVENT = "_agg_is_event"
_SIMPLE = re.compile(r"^\s*(count|sum|avg|min|max)\s*\((.*)\)\s*$", re.I | re.S)

__all__ = ["EVENT_TIME", "as_of_points", "snapshots"]


def _decomposed(metric: str) -> tuple[str, list[str], str] | None:
    """``avg(x)`` -> (final expression over partials, partial expressions, kind); None if not simple."""
    match = _SIMPLE.match(metric)
    if not match or re.match(r"^\s*distinct\b", match.group(2), re.I):
        return None
    function, argument = match.group(1).lower(), match.group(2).strip()
    if function == "avg":
        return "try_divide(sum({0}), sum({1}))", [f"sum({argument})", f"count({argument})"], function
    final = {"count": "sum({0})", "sum": "sum({0})", "min": "min({0})", "max": "max({0})"}[function]
    return final, [f"{function}({argument})"], function


def snapshots(rows: DataFrame, keys: list[str], metrics: dict[str, str], window_seconds: int,
              every_seconds: int) -> DataFrame:
    """Per key and period start (`EVENT_TIME`), `metrics` over the rows of the `window_seconds` before it.

    `rows` hold `keys`, `EVENT_TIME` (timestamp) and the columns the metrics use.
    """
    seconds = F.unix_micros(F.col(EVENT_TIME)) / 1_000_000
    timed = rows.where(F.col(EVENT_TIME).isNotNull()).withColumn(_SECONDS, seconds)
    first = F.floor(F.col(_SECONDS) / every_seconds) + 1            # the first period start after the row
    last = F.floor((F.col(_SECONDS) + window_seconds) / every_seconds)  # the last whose window holds it
    decomposed = {name: _decomposed(metric) for name, metric in metrics.items()}
    if all(decomposed.values()):
        partial_names = {name: [f"_agg_{name}_{i}" for i in range(len(parts))]
                         for name, (_, parts, _) in decomposed.items()}
        bucket = F.floor(F.col(_SECONDS) / every_seconds)
        partials = timed.groupBy(*keys, bucket.alias("_agg_bucket")).agg(*[
            F.expr(part).alias(alias) for name, (_, parts, _) in decomposed.items()
            for part, alias in zip(parts, partial_names[name])])
        copies = partials.withColumn("_agg_period", F.explode(F.sequence(
            F.col("_agg_bucket") + 1, F.col("_agg_bucket") + window_seconds // every_seconds)))
        types = dict(rows.groupBy().agg(*[F.expr(m).alias(n) for n, m in metrics.items()]).dtypes)
        finals = [F.expr(final.format(*partial_names[name])).cast(types[name]).alias(name)
                  for name, (final, _, _) in decomposed.items()]
    else:
        copies = timed.withColumn("_agg_period", F.explode(F.sequence(first, last)))
        finals = [F.expr(metric).alias(name) for name, metric in metrics.items()]
    return (copies.groupBy(*keys, "_agg_period").agg(*finals)
            .select(*keys, F.timestamp_seconds(F.col("_agg_period") * every_seconds).alias(EVENT_TIME),
                    *metrics))


def as_of_points(rows: DataFrame, points: DataFrame, keys: list[str], metrics: dict[str, str],
                 window_seconds: int) -> DataFrame:
    """Per distinct (keys, `EVENT_TIME`) of `points`, `metrics` over `rows` with the same keys and an
    event time in ``[time - window, time)``.

    `rows` hold `keys`, `EVENT_TIME` and the metrics' columns; `points` hold `keys` and `EVENT_TIME`.
    Each metric must be one aggregate function call (``avg(amount)``, ``count(*)``).
    """
    events = rows.where(F.col(EVENT_TIME).isNotNull()).withColumn(_IS_EVENT, F.lit(True))
    queries = (points.select(*keys, EVENT_TIME).where(F.col(EVENT_TIME).isNotNull()).distinct()
               .withColumn(_IS_EVENT, F.lit(False)))
    stacked = events.unionByName(queries, allowMissingColumns=True)
    partition = f"PARTITION BY {', '.join(f'`{k}`' for k in keys)} " if keys else ""
    frame = (f"OVER ({partition}ORDER BY unix_micros({EVENT_TIME}) "
             f"RANGE BETWEEN {window_seconds * 1_000_000} PRECEDING AND 1 PRECEDING)")
    measured = stacked.select(*keys, EVENT_TIME, _IS_EVENT, *[
        F.expr(f"{metric} FILTER (WHERE {_IS_EVENT}) {frame}").alias(name) for name, metric in metrics.items()])
    return measured.where(~F.col(_IS_EVENT)).select(*keys, EVENT_TIME, *metrics)
