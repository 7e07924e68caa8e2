"""A short human report of one run's quality metrics: a console table and a markdown file."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from lakeforge.quality.rules import MetricResult
from lakeforge.storage import Storage, join

HEADER = ("status", "table", "rule", "metric", "value", "expected", "note")


def show_value(value: Any) -> str:
    return "-" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)


def _rows(results: Sequence[MetricResult]) -> list[tuple[str, ...]]:
    order = {"fail": 0, "warn": 1, "pass": 2}
    ranked = sorted(results, key=lambda r: (order[r.status], r.table))
    return [(r.status.upper(), r.table, r.rule, r.metric, show_value(r.value), r.expected, r.note) for r in ranked]


def summary(results: Sequence[MetricResult]) -> str:
    counts = {status: sum(r.status == status for r in results) for status in ("pass", "warn", "fail")}
    return f"{counts['pass']} passed, {counts['warn']} warned, {counts['fail']} failed"


def console_table(results: Sequence[MetricResult]) -> str:
    """Fixed-width table, failures first."""
    rows = [HEADER, *_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return f"quality: {summary(results)}\n" + "\n".join(lines)


def markdown(results: Sequence[MetricResult], title: str) -> str:
    escape = str.maketrans({"|": "\\|"})
    lines = [f"# {title}", "", summary(results), "", "| " + " | ".join(HEADER) + " |",
             "|" + " --- |" * len(HEADER)]
    lines += ["| " + " | ".join(cell.translate(escape) for cell in row) + " |" for row in _rows(results)]
    return "\n".join(lines) + "\n"


def write_markdown(results: Sequence[MetricResult], storage: Storage, folder: str, step: str,
                   run_time: datetime) -> tuple[str, str]:
    """Write ``<folder>/<step>-<time written>.md`` (a path or URI); return its location and text."""
    text = markdown(results, f"Quality report: {step} run at {run_time:%Y-%m-%d %H:%M:%S} UTC")
    return storage.write_text(join(folder, f"{step}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}.md"), text), text
