"""The pipeline's tables without a JVM: delta-rs opens them, DuckDB runs SQL over their Arrow datasets.

Table names are the pipeline's (``bronze_<source>``, the dataset table, feature views, ``predictions``,
``drift_metrics``, ...); ``name@v3`` reads version 3 of a table (Delta time travel)::

    from lakeforge import query, read_table
    read_table("predictions", config="pipeline.yaml").head()
    query("SELECT decision, count(*) FROM predictions@v1 GROUP BY decision", config="pipeline.yaml")
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from lakeforge.config import LakeforgeConfig, load_config
from lakeforge.errors import LakeforgeError
from lakeforge.storage import join, storage_for

if TYPE_CHECKING:  # pandas is imported by the calls that return DataFrames: `lakeforge query` starts faster
    import pandas as pd

__all__ = ["QueryError", "as_config", "connect", "existing_tables", "open_table", "query", "read_table", "relation"]

DEFAULT_CONF = "pipeline.yaml"
_TABLE_REF = re.compile(r"(?<![\w.\"'])([A-Za-z_]\w*)(?:@v(\d+))?(?![\w\"'])")


class QueryError(LakeforgeError):
    """A table that does not exist (or not at that version), or SQL DuckDB refuses."""


def as_config(config: LakeforgeConfig | str | Path) -> LakeforgeConfig:
    """`config` itself, or the pipeline YAML at that path loaded."""
    return config if isinstance(config, LakeforgeConfig) else load_config(config)


def existing_tables(config: LakeforgeConfig) -> list[str]:
    """Names of the Delta tables written under ``<storage_root>/delta/``, sorted."""
    storage, root = storage_for(config), config.location("delta")
    return sorted(name for name, is_dir in storage.children(root).items()
                  if is_dir and storage.exists(join(root, name, "_delta_log")))


def open_table(config: LakeforgeConfig, name: str, version: int | None = None) -> DeltaTable:
    """Table `name` (at `version`, default the newest) with delta-rs; errors name the table and what exists."""
    path = config.table_path(name)
    if not storage_for(config).exists(join(path, "_delta_log")):
        known = ", ".join(existing_tables(config)) or "none yet: run the pipeline first"
        raise QueryError(f"no table '{name}' under {config.location('delta')} (tables: {known})")
    try:
        return DeltaTable(path, version=version)
    except DeltaError as exc:
        newest = DeltaTable(path).version()
        raise QueryError(f"table '{name}': cannot read version {version} (versions 0..{newest}): {exc}") from None


def read_table(name: str, version: int | None = None, config: LakeforgeConfig | str | Path = DEFAULT_CONF,
               columns: list[str] | None = None) -> pd.DataFrame:
    """Table `name` of the pipeline (at `version`, default the newest) as a pandas DataFrame."""
    table = open_table(as_config(config), name, version)
    return table.to_pyarrow_dataset().to_table(columns=columns).to_pandas()


def connect(sql: str, config: LakeforgeConfig | str | Path = DEFAULT_CONF) -> tuple[duckdb.DuckDBPyConnection, str]:
    """A DuckDB connection with every table `sql` names registered as a view, and `sql` with ``name@vN`` rewritten."""
    config = as_config(config)
    tables = set(existing_tables(config))
    connection = duckdb.connect()
    registered: dict[tuple[str, int | None], str] = {}

    def register(match: re.Match[str]) -> str:
        name, version = match.group(1), match.group(2)
        if version is None and name not in tables:
            return match.group(0)  # a column, keyword or function, left to DuckDB
        key = (name, None if version is None else int(version))
        if key not in registered:
            view = name if version is None else f"{name}__v{version}"
            connection.register(view, open_table(config, *key).to_pyarrow_dataset())
            registered[key] = view
        return registered[key]

    return connection, _TABLE_REF.sub(register, sql)


def relation(sql: str, config: LakeforgeConfig | str | Path = DEFAULT_CONF,
             params: list[object] | None = None) -> duckdb.DuckDBPyRelation:
    """DuckDB `sql` (``?`` placeholders bound to `params`) over the pipeline's tables, not yet fetched."""
    config = as_config(config)
    connection, rewritten = connect(sql, config)
    try:
        result = connection.sql(rewritten, params=params)
    except duckdb.CatalogException as exc:
        first_line = str(exc).splitlines()[0]  # not DuckDB's guesses among its own catalog
        raise QueryError(f"query: {first_line} (tables: {', '.join(existing_tables(config)) or 'none yet'})") from None
    except duckdb.Error as exc:
        raise QueryError(f"query: {exc}") from None
    if result is None:
        raise QueryError("query: the statement returns no rows (run SELECT statements)")
    return result


def query(sql: str, config: LakeforgeConfig | str | Path = DEFAULT_CONF, params: list[object] | None = None) -> pd.DataFrame:
    """Run DuckDB `sql` (``?`` placeholders bound to `params`) over the pipeline's tables (``name`` or ``name@vN``)."""
    try:
        return relation(sql, config, params).df()
    except duckdb.Error as exc:
        raise QueryError(f"query: {exc}") from None
