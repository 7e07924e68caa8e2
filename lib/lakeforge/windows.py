"""Time windows on the dataset's `time`: half-open ``[start, end)`` ranges and monitoring periods.

A window is named by its config key (``windows.train``); a window that matches no rows is an error
naming it. Periods are labelled by their start so that two years never merge: ``2013-07-01`` (day),
``2016-W03`` (ISO week), ``2013-07`` (month), ``2013-Q3`` (quarter), ``1996`` (year).
"""
from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakeforge.config import LakeforgeConfig, Period
from lakeforge.errors import StepError
from lakeforge.features.dataset import TIME

__all__ = ["describe", "in_window", "no_rows", "period_label", "window_bounds"]


def window_bounds(config: LakeforgeConfig, name: str) -> tuple[datetime, datetime]:
    """The bounds of ``windows.<name>`` (train, evaluate, score)."""
    bounds = getattr(config.windows, name)
    if bounds is None:
        raise StepError(f"windows.{name} is not set")
    return bounds


def describe(bounds: tuple[datetime, datetime]) -> str:
    start, end = (b.isoformat(sep=" ").removesuffix(" 00:00:00") for b in bounds)
    return f"[{start}, {end})"


def in_window(rows: DataFrame, bounds: tuple[datetime, datetime], column: str = TIME) -> DataFrame:
    """Rows whose `column` lies in ``[start, end)``."""
    start, end = bounds
    return rows.where((F.col(column) >= F.lit(start)) & (F.col(column) < F.lit(end)))


def no_rows(step: str, name: str, bounds: tuple[datetime, datetime], table: str) -> StepError:
    """The error for a window that matched nothing."""
    return StepError(f"{step}: windows.{name} {describe(bounds)} matches no rows of {table}")


def period_label(every: Period, column: str = TIME) -> Column:
    """The label of the period holding each row's `column`, e.g. ``2013-07`` for a month."""
    time = F.col(column)
    if every == "day":
        return F.date_format(time, "yyyy-MM-dd")
    if every == "week":
        return F.format_string("%04d-W%02d", F.expr(f"extract(YEAROFWEEK FROM `{column}`)"), F.weekofyear(time))
    if every == "month":
        return F.date_format(time, "yyyy-MM")
    if every == "quarter":
        return F.format_string("%04d-Q%d", F.year(time), F.quarter(time))
    return F.date_format(time, "yyyy")
