"""Threshold-free metrics of scored rows (columns `score` in [0, 1] and `label` in {0, 1}), computed in Spark."""
from __future__ import annotations

from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

_EPSILON = 1e-15


def probability_metrics(scored: DataFrame) -> dict[str, float]:
    """Rows, base rate, ROC AUC, log loss and Brier score of `scored`."""
    clipped = F.least(F.greatest(F.col("score"), F.lit(_EPSILON)), F.lit(1 - _EPSILON))
    row = scored.agg(
        F.count("*").alias("rows"),
        F.avg("label").alias("base_rate"),
        F.avg(-(F.col("label") * F.log(clipped) + (1 - F.col("label")) * F.log(1 - clipped))).alias("log_loss"),
        F.avg((F.col("score") - F.col("label")) ** 2).alias("brier"),
    ).head()
    auc = BinaryClassificationEvaluator(rawPredictionCol="score", labelCol="label").evaluate(
        scored.withColumn("label", F.col("label").cast("double")))
    return {"rows": float(row["rows"]), "base_rate": float(row["base_rate"]), "auc": float(auc),
            "log_loss": float(row["log_loss"]), "brier": float(row["brier"])}
