"""Continuous evaluation: once labels arrive, the model's metrics per window, computed on Spark."""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

LOG_LOSS_CLIP = 1e-15


def live_metrics(scored: DataFrame, window: str, label: str, score: str = "score",
                 prediction: str = "prediction") -> DataFrame:
    """Per `window`: rows, positives, AUC (ties count one half), log loss, precision, recall, mean score.

    AUC is exact: scores are grouped, and each positive counts the negatives scored below it.
    Metrics that are undefined for a window (AUC with one class only) are null.
    """
    y = F.col(label).cast("double")
    p = F.least(F.greatest(F.col(score), F.lit(LOG_LOSS_CLIP)), F.lit(1 - LOG_LOSS_CLIP))
    hit = (F.col(prediction) == 1) & (y == 1)
    totals = scored.groupBy(window).agg(
        F.count("*").alias("rows"),
        F.sum(y).cast("long").alias("positives"),
        F.avg(-(y * F.log(p) + (1 - y) * F.log(1 - p))).alias("log_loss"),
        F.try_divide(F.sum(hit.cast("double")), F.sum((F.col(prediction) == 1).cast("double"))).alias("precision"),
        F.try_divide(F.sum(hit.cast("double")), F.sum(y)).alias("recall"),
        F.avg(y).alias("positive_rate"),
        F.avg(score).alias("mean_score"),
    )
    by_score = scored.groupBy(window, score).agg(F.sum(y).alias("pos"), F.sum(1 - y).alias("neg"))
    below = Window.partitionBy(window).orderBy(score).rowsBetween(Window.unboundedPreceding, -1)
    auc = (by_score.withColumn("neg_below", F.coalesce(F.sum("neg").over(below), F.lit(0.0)))
           .groupBy(window).agg(F.try_divide(F.sum(F.col("pos") * (F.col("neg_below") + F.col("neg") / 2)),
                                              F.sum("pos") * F.sum("neg")).alias("auc")))
    return totals.join(auc, window).orderBy(window)
