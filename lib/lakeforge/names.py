"""Names that become paths: table, source and feature view names are identifiers, run ids a safe pattern.

A name never carries ``/``, ``..`` or a scheme, so ``<storage_root>/delta/<table>`` and
``<storage_root>/runs/<run_id>.json`` stay under the storage root. This module imports nothing heavy:
a scheduler's DAG file imports `run_id_for` to turn its own run ids into lakeforge ones.
"""
from __future__ import annotations

import hashlib
import re

from lakeforge.errors import ConfigError

__all__ = ["IDENTIFIER", "RUN_ID", "check_identifier", "check_run_id", "run_id_for"]

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_RUN_ID_HELP = "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128 characters"


def check_identifier(name: str, what: str = "table names") -> str:
    """`name` if it is an identifier (letters, digits, _), else a ValueError (pydantic names the key)."""
    if not IDENTIFIER.match(name):
        raise ValueError(f"{what} must be identifiers (letters, digits, _), got {name!r}")
    return name


def check_run_id(run_id: str) -> str:
    """`run_id` if it matches `RUN_ID`, else a ConfigError naming it."""
    if not RUN_ID.match(run_id) or ".." in run_id:
        raise ConfigError(f"run id {run_id!r}: a run id is {_RUN_ID_HELP} (see --run-id)")
    return run_id


def run_id_for(text: str) -> str:
    """A valid run id for any text, e.g. Airflow's ``manual__2026-01-01T00:00:00+00:00``: characters outside
    the pattern become ``-`` and, when any did, a hash of `text` is appended so distinct texts stay distinct."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", text).replace("..", "-").lstrip("._-")[:100]
    if cleaned == text and RUN_ID.match(text):
        return text
    return f"{cleaned or 'run'}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
