"""lakeforge: batch ML jobs on Apache Spark, Delta Lake and MLflow."""

__version__ = "0.1.0"
