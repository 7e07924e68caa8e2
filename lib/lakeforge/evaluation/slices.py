"""Metrics per slice value (e.g. per region) at a decision threshold, flagging slices worse than overall."""
from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeforge.config import CostMatrix, SliceSettings
from lakeforge.evaluation.objectives import decision_outcome_costs

SLICE_COLUMNS = ["slice", "value", "rows", "recall", "precision", "positive_rate", "expected_cost", "gap", "flagged"]
OVERALL = "__overall__"


def _confusion(group: DataFrame, threshold: float, costs: CostMatrix) -> DataFrame:
    flagged, positive = F.col("score") >= F.lit(threshold), F.col("label") == 1
    return group.agg(
        F.count("*").alias("rows"),
        F.sum((flagged & positive).cast("long")).alias("tp"),
        F.sum(flagged.cast("long")).alias("flagged_rows"),
        F.sum(positive.cast("long")).alias("positives"),
        F.avg(decision_outcome_costs(threshold, costs)).alias("expected_cost"),
    )


def slice_metrics(scored: DataFrame, threshold: float, costs: CostMatrix, settings: SliceSettings) -> pd.DataFrame:
    """One row per (slice column, value) plus the overall row, in one Spark pass.

    `gap` is how much worse the slice's `settings.metric` is than overall (positive = worse); a slice
    with at least `min_rows` rows and a gap above `max_gap` is flagged.
    """
    slice_values = F.explode(F.array(
        F.struct(F.lit(OVERALL).alias("slice"), F.lit(OVERALL).alias("value")),
        *[F.struct(F.lit(c).alias("slice"), F.col(c).cast("string").alias("value")) for c in settings.columns],
    )).alias("s")
    exploded = scored.select("score", "label", slice_values).select("score", "label", "s.slice", "s.value")
    counts = _confusion(exploded.groupBy("slice", "value"), threshold, costs).toPandas()
    counts["recall"] = np.divide(counts["tp"], counts["positives"],
                                 out=np.full(len(counts), np.nan), where=counts["positives"] > 0)
    counts["precision"] = np.divide(counts["tp"], counts["flagged_rows"],
                                    out=np.full(len(counts), np.nan), where=counts["flagged_rows"] > 0)
    counts["positive_rate"] = counts["flagged_rows"] / counts["rows"]
    overall = counts.loc[counts["slice"] == OVERALL, settings.metric].iloc[0]
    sign = 1.0 if settings.metric == "expected_cost" else -1.0
    counts["gap"] = sign * (counts[settings.metric] - overall)
    counts["flagged"] = (counts["rows"] >= settings.min_rows) & (counts["gap"] > settings.max_gap)
    return counts[SLICE_COLUMNS].sort_values(["slice", "value"], ignore_index=True)


def flagged_slices(metrics: pd.DataFrame) -> list[str]:
    """Flagged slices described as ``column=value (metric gap)``."""
    return [f"{row.slice}={row.value} (gap {row.gap:.4f})" for row in metrics[metrics["flagged"]].itertuples()]
