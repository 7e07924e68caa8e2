"""lakeforge: batch ML jobs on Apache Spark, Delta Lake and MLflow.

``read_table`` and ``query`` read the pipeline's tables without a JVM (see `lakeforge.lakehouse`).
"""
from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "query", "read_table"]


def __getattr__(name: str) -> Any:
    """``read_table`` and ``query`` on first use, so Spark jobs importing lakeforge do not load DuckDB."""
    if name in ("query", "read_table"):
        from lakeforge import lakehouse

        return getattr(lakehouse, name)
    raise AttributeError(f"module 'lakeforge' has no attribute {name!r}")
