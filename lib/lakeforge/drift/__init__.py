"""Data drift monitoring: binned distribution statistics on Spark, live metrics, retraining trigger."""
