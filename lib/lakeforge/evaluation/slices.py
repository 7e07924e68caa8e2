"""The task's metrics per slice value (e.g. per region), flagging slices worse than overall."""
from __future__ import annotations

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakeforge.config import SliceSettings

SLICE_COLUMNS = ["slice", "value", "rows"]
OVERALL = "__overall__"


def slice_metrics(scored: DataFrame, aggregates: dict[str, Column], settings: SliceSettings, metric: str,
                  greater_is_better: bool) -> pd.DataFrame:
    """One row per (slice column, value) plus the overall row with every aggregate, in one Spark pass.

    `gap` is how much worse the slice's `metric` is than overall (positive = worse, in the metric's
    direction); a slice with at least `min_rows` rows and a gap above `max_gap` is flagged.
    """
    slice_values = F.explode(F.array(
        F.struct(F.lit(OVERALL).alias("slice"), F.lit(OVERALL).alias("value")),
        *[F.struct(F.lit(c).alias("slice"), F.col(c).cast("string").alias("value")) for c in settings.columns],
    )).alias("s")
    exploded = scored.select("*", slice_values).select("*", "s.slice", "s.value").drop("s")
    counts = (exploded.groupBy("slice", "value")
              .agg(F.count("*").alias("rows"), *[a.alias(name) for name, a in aggregates.items()]).toPandas())
    overall = counts.loc[counts["slice"] == OVERALL, metric].iloc[0]
    counts["gap"] = (overall - counts[metric]) if greater_is_better else (counts[metric] - overall)
    counts["flagged"] = (counts["rows"] >= settings.min_rows) & (counts["gap"] > settings.max_gap)
    return counts[[*SLICE_COLUMNS, *aggregates, "gap", "flagged"]].sort_values(["slice", "value"], ignore_index=True)


def flagged_slices(metrics: pd.DataFrame) -> list[str]:
    """Flagged slices described as ``column=value (metric gap)``."""
    return [f"{row.slice}={row.value} (gap {row.gap:.4f})" for row in metrics[metrics["flagged"]].itertuples()]
