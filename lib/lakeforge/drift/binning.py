"""Bucket columns by the reference's quantiles (numerics) or top categories, and count on Spark.

A numeric column gets fine buckets at the reference's quantiles, plus a bucket below the
reference minimum and one above its maximum (so out-of-range values show up as drift); the
coarse buckets used by PSI and Jensen-Shannon group the fine ones at the coarse quantiles. A
categorical column keeps its `max_categories` most frequent reference values and puts every
other value, seen or unseen in the reference, in an "other" bucket. Missing values (null, NaN)
always have their own bucket, the last one. Only quantiles and per-bucket aggregates reach the
driver.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pyspark.ml.feature import Bucketizer
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakeforge.errors import StepError

ColumnKind = Literal["numeric", "categorical"]
OTHER = "<other>"
MISSING = "<missing>"


@dataclass(frozen=True)
class ColumnBins:
    """How one column is bucketed; bucket `n_buckets` (the last) holds missing values."""

    name: str
    kind: ColumnKind
    edges: tuple[float, ...] = ()        # numeric: fine bucket i covers [edges[i-1], edges[i])
    coarse_edges: tuple[float, ...] = ()  # numeric: a subset of `edges`
    categories: tuple[str, ...] = ()     # categorical: bucket i is categories[i], then OTHER
    std: float = 0.0
    distinct: int = 0

    @property
    def n_buckets(self) -> int:
        """Buckets holding values (missing values come after them)."""
        return len(self.edges) + 1 if self.kind == "numeric" else len(self.categories) + 1

    def coarse_index(self) -> np.ndarray:
        """Coarse bucket of each fine bucket, missing last (identity for categoricals)."""
        if self.kind == "categorical":
            return np.arange(self.n_buckets + 1)
        lower_edges = np.array([-np.inf, *self.edges])
        coarse = np.searchsorted(np.array(self.coarse_edges), lower_edges, side="right")
        return np.append(coarse, len(self.coarse_edges) + 1)

    def coarse_labels(self) -> list[str]:
        if self.kind == "categorical":
            return [*self.categories, OTHER, MISSING]
        bounds = [-np.inf, *self.coarse_edges, np.inf]
        return [f"[{low:.4g}, {high:.4g})" for low, high in zip(bounds[:-1], bounds[1:])] + [MISSING]


@dataclass(frozen=True)
class BucketCounts:
    """Rows per fine bucket (missing last) and, for numerics, the mean value in each bucket."""

    counts: np.ndarray
    means: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.counts.sum())

    def coarse(self, bins: ColumnBins) -> np.ndarray:
        return np.bincount(bins.coarse_index(), weights=self.counts, minlength=len(bins.coarse_labels()))


def _numeric(column: str) -> Column:
    value = F.col(column).cast("double")
    return F.when(~F.isnan(value), value)


def _quantile_grid(bins: int, fine_bins: int) -> tuple[list[float], list[int]]:
    """Probabilities for both bucketings, and the positions of the coarse ones in that list."""
    grid = sorted({i / fine_bins for i in range(1, fine_bins)} | {i / bins for i in range(1, bins)})
    coarse = [grid.index(p) for p in (i / bins for i in range(1, bins))]
    return grid, coarse


def fit_bins(
    reference: DataFrame, numeric: list[str], categorical: list[str],
    bins: int = 10, fine_bins: int = 100, max_categories: int = 30, accuracy: int = 10_000,
) -> list[ColumnBins]:
    """Bucket definitions from the reference: one aggregation for the numerics, one for categories."""
    missing = [c for c in [*numeric, *categorical] if c not in reference.columns]
    if missing:
        raise StepError(f"drift: columns {missing} are not in the reference data")
    grid, coarse_positions = _quantile_grid(bins, fine_bins)
    result: list[ColumnBins] = []
    if numeric:
        aggregates = []
        for i, column in enumerate(numeric):
            value = _numeric(column)
            aggregates += [F.percentile_approx(value, grid, accuracy).alias(f"q{i}"), F.min(value).alias(f"min{i}"),
                           F.max(value).alias(f"max{i}"), F.stddev_samp(value).alias(f"std{i}"),
                           F.approx_count_distinct(value).alias(f"distinct{i}")]
        profile = reference.agg(*aggregates).head()
        for i, column in enumerate(numeric):
            low, high = profile[f"min{i}"], profile[f"max{i}"]
            if low is None:
                result.append(ColumnBins(column, "numeric"))
                continue
            quantiles = list(profile[f"q{i}"])
            above_max = math.nextafter(high, math.inf)
            edges = sorted({low, *quantiles, above_max})
            coarse = sorted({low, *(quantiles[p] for p in coarse_positions), above_max})
            result.append(ColumnBins(column, "numeric", tuple(edges), tuple(coarse),
                                     std=profile[f"std{i}"] or 0.0, distinct=profile[f"distinct{i}"]))
    if categorical:
        cells = F.inline(F.array(*[F.struct(F.lit(c).alias("feature"), F.col(c).cast("string").alias("category"))
                                   for c in categorical]))
        by_frequency = Window.partitionBy("feature").orderBy(F.desc("rows"), "category")
        top = (reference.select(cells).where(F.col("category").isNotNull())
               .groupBy("feature", "category").agg(F.count("*").alias("rows"))
               .withColumn("rank", F.row_number().over(by_frequency))
               .withColumn("distinct", F.count("*").over(Window.partitionBy("feature")))
               .where(F.col("rank") <= max_categories).collect())
        for column in categorical:
            kept = sorted((r for r in top if r["feature"] == column), key=lambda r: r["rank"])
            result.append(ColumnBins(column, "categorical", categories=tuple(r["category"] for r in kept),
                                     distinct=kept[0]["distinct"] if kept else 0))
    return result


def _bucket(bins: ColumnBins, bucketized: str) -> Column:
    """Bucket index of a column: Bucketizer's output for numerics, category position otherwise."""
    if bins.kind == "numeric":
        return F.col(bucketized).cast("int")
    value = F.col(bins.name).cast("string")
    position = F.array_position(F.array(*[F.lit(c) for c in bins.categories]), value) if bins.categories else F.lit(0)
    return (F.when(value.isNull(), bins.n_buckets)
            .when(position == 0, len(bins.categories))
            .otherwise(position - 1).cast("int"))


def bucket_counts(
    df: DataFrame, bins: list[ColumnBins], window: str | None = None
) -> dict[object, dict[str, BucketCounts]]:
    """Rows and value sums per (window, column, bucket) in one aggregation; keyed by window value."""
    numeric = [b for b in bins if b.kind == "numeric"]
    names = {b.name: f"__bucket_{i}" for i, b in enumerate(numeric)}
    window_column = F.col(window) if window else F.lit(None)
    prepared = df.select(window_column.alias("__window"), *[F.col(b.name) for b in bins],
                         *[F.coalesce(_numeric(b.name), F.lit(math.nan)).alias(f"__value_{i}")
                           for i, b in enumerate(numeric)])
    if numeric:
        prepared = Bucketizer(
            splitsArray=[[-math.inf, *b.edges, math.inf] for b in numeric], handleInvalid="keep",
            inputCols=[f"__value_{i}" for i in range(len(numeric))], outputCols=list(names.values()),
        ).transform(prepared)
    cells = F.inline(F.array(*[
        F.struct(F.lit(b.name).alias("feature"), _bucket(b, names.get(b.name, "")).alias("bucket"),
                 (_numeric(b.name) if b.kind == "numeric" else F.lit(None).cast("double")).alias("value"))
        for b in bins]))
    aggregated = (prepared.select("__window", cells).groupBy("__window", "feature", "bucket")
                  .agg(F.count("*").alias("rows"), F.sum("value").alias("value_sum")).collect())
    by_name = {b.name: b for b in bins}
    counts: dict[object, dict[str, BucketCounts]] = {}
    for row in aggregated:
        per_window = counts.setdefault(row["__window"], {})
        size = by_name[row["feature"]].n_buckets + 1
        entry = per_window.setdefault(row["feature"], BucketCounts(np.zeros(size), np.full(size, np.nan)))
        entry.counts[row["bucket"]] = row["rows"]
        if row["value_sum"] is not None:
            entry.means[row["bucket"]] = row["value_sum"] / row["rows"]
    for per_window in counts.values():
        for b in bins:
            per_window.setdefault(b.name, BucketCounts(np.zeros(b.n_buckets + 1), np.full(b.n_buckets + 1, np.nan)))
    return counts
