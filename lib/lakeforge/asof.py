"""Point-in-time ("as of") joins that scale: one shuffle and one sort for any number of right sides.

For each left row and each right side, the match is that side's latest row with the same keys whose
time is at or before the left time and no older than the side's `max_age_seconds` (and, with
`known_time`, that was already known at the left time: rows that arrived late are skipped).

How: left rows and the rows of every side sharing the same keys are stacked into one frame,
partitioned by keys + a time bucket as wide as the largest max age (each right row is copied into
its own bucket and the next, so a match always shares the left row's partition), and sorted by the
time each row became visible, right rows before left rows at equal times. A running `max` of each
side's (time, values) struct over that order then gives, at every left row, the newest row already
visible; it is kept if it is young enough. Ties on time go to the larger values (deterministic).
No cross join, no per-row Python, and partitions stay small even for a handful of keys.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

_BUCKET = "_asof_bucket"
_VISIBLE = "_asof_visible"
_IS_LEFT = "_asof_is_left"


@dataclass(frozen=True)
class AsOfSide:
    """One right side of an as-of join: `rows` hold the join keys, `time` and value columns.

    `known_time`, if given, names a column saying when each row became available (it is used to
    skip late rows and is not returned). `matched_flag` names a boolean column to add telling which
    left rows found a match on this side.
    """

    rows: DataFrame
    time: str
    max_age_seconds: int
    known_time: str | None = None
    matched_flag: str | None = None

    def returned_columns(self, keys: Sequence[str]) -> list[str]:
        """The side's columns added to the left rows: its time and values (keys and known time excluded)."""
        return [self.time] + [c for c in self.rows.columns if c not in (*keys, self.time, self.known_time)]


def asof_join(left: DataFrame, sides: Sequence[AsOfSide], *, keys: Sequence[str], left_time: str) -> DataFrame:
    """Left-join each side's time and values onto `left` as of `left_time` (see module docstring).

    All sides join on the same `keys`. Returned columns keep their names, so they must not clash
    with the left's or with another side's; unmatched left rows get nulls.
    """
    keys = list(keys)
    _check(left, sides, keys, left_time)
    width = max(side.max_age_seconds for side in sides)
    key_types = {k: left.schema[k].dataType for k in keys}

    def bucket(time: Column) -> Column:
        return F.floor(F.unix_timestamp(time) / width)

    stacked = [left.select("*", F.col(left_time).alias(_VISIBLE), F.lit(True).alias(_IS_LEFT),
                           bucket(F.col(left_time)).alias(_BUCKET))]
    for index, side in enumerate(sides):
        visible = F.greatest(side.time, side.known_time) if side.known_time else F.col(side.time)
        rows = side.rows.where(reduce(lambda a, b: a & b, [F.col(c).isNotNull() for c in [*keys, side.time]]))
        stacked.append(rows.select(
            *[F.col(k).cast(key_types[k]).alias(k) for k in keys], visible.alias(_VISIBLE), F.lit(False).alias(_IS_LEFT),
            F.struct(*side.returned_columns(keys)).alias(_newest(index)),
            F.explode(F.array(bucket(visible), bucket(visible) + 1)).alias(_BUCKET)))
    rows = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), stacked)
    so_far = (Window.partitionBy(*keys, _BUCKET).orderBy(_VISIBLE, _IS_LEFT)
              .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    rows = rows.select("*", *[F.max(_newest(i)).over(so_far).alias(f"{_newest(i)}_seen") for i in range(len(sides))])
    added = []
    for index, side in enumerate(sides):
        newest = F.col(f"{_newest(index)}_seen")
        young = F.unix_timestamp(F.col(left_time)) - F.unix_timestamp(newest[side.time]) <= side.max_age_seconds
        added += [F.when(young, newest[c]).alias(c) for c in side.returned_columns(keys)]
        if side.matched_flag:
            added.append(F.coalesce(young, F.lit(False)).alias(side.matched_flag))
    return rows.where(F.col(_IS_LEFT)).select(*left.columns, *added)


def _newest(index: int) -> str:
    return f"_asof_side{index}"


def _check(left: DataFrame, sides: Sequence[AsOfSide], keys: list[str], left_time: str) -> None:
    if not sides:
        raise ValueError("as-of join: no right side given")
    missing = [c for c in [*keys, left_time] if c not in left.columns]
    if missing:
        raise ValueError(f"as-of join: left side lacks column(s) {missing}")
    taken = set(left.columns)
    for side in sides:
        if side.max_age_seconds <= 0:
            raise ValueError(f"as-of join: max_age_seconds must be positive, got {side.max_age_seconds}")
        missing = [c for c in [*keys, side.time, side.known_time] if c is not None and c not in side.rows.columns]
        if missing:
            raise ValueError(f"as-of join: right side lacks column(s) {missing}")
        added = [*side.returned_columns(keys), *([side.matched_flag] if side.matched_flag else [])]
        clash = sorted(taken & set(added))
        if clash:
            raise ValueError(f"as-of join: right columns {clash} already exist on the left side or another right side")
        taken |= set(added)
