"""Evaluate a table's rules: every row and scan rule in ONE aggregation job, shuffle rules one query each.

Like Deequ's analyzer runner, the aggregate expressions of all rules are built first and run together
in a single ``agg``, so a table is read once however many column rules it has.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeforge.errors import IngestError
from lakeforge.quality.report import show_value
from lakeforge.quality.rules import MetricResult, QualityRule, RuleContext

ADAPTIVE = "spark.sql.adaptive.enabled"


class QualityError(IngestError):
    """A rule with severity ``fail`` failed; the message names the table, rule and metric."""


@contextmanager
def single_job(spark: SparkSession) -> Iterator[None]:
    """Run a global aggregation as one Spark job.

    Adaptive execution submits each query stage (the cache, the shuffle map side) as its own job;
    a global aggregate gains nothing from re-planning, so it is switched off for that one query.
    """
    before = spark.conf.get(ADAPTIVE)
    spark.conf.set(ADAPTIVE, "false")
    try:
        yield
    finally:
        spark.conf.set(ADAPTIVE, before)


def reason_columns(rules: Sequence[QualityRule]) -> list[Column]:
    """For the quarantine reasons array: the rule's name where a row breaks a row rule, else null."""
    return [F.when(rule.violation(), F.lit(rule.name)) for rule in rules if rule.scope == "row"]


def scan_aggregates(rules: Sequence[QualityRule], good: Column) -> list[Column]:
    """Aggregate expressions of every row and scan rule; `good` marks the rows that will be written."""
    return [
        expression.alias(_alias(position, key))
        for position, rule in enumerate(rules) if rule.scope != "shuffle"
        for key, expression in rule.aggregates(good).items()
    ]


def evaluate_scan(rules: Sequence[QualityRule], values: Mapping[str, Any], ctx: RuleContext) -> list[MetricResult]:
    """Turn the one scan's aggregate values into metrics and verdicts."""
    results: list[MetricResult] = []
    for position, rule in enumerate(rules):
        if rule.scope != "shuffle":
            keys = rule.aggregates(F.lit(True)).keys()
            results += rule.evaluate({key: values[_alias(position, key)] for key in keys}, ctx)
    return results


def measure_shuffles(rules: Sequence[QualityRule], good_rows: DataFrame, ctx: RuleContext) -> list[MetricResult]:
    """Rules needing a shuffle (uniqueness, references, consistency): one query each."""
    return [result for rule in rules if rule.scope == "shuffle" for result in rule.measure(good_rows, ctx)]


def measure_table(df: DataFrame, rules: Sequence[QualityRule], ctx: RuleContext) -> list[MetricResult]:
    """All rules on a DataFrame whose rows are all kept: one scan job, then one query per shuffle rule."""
    with single_job(df.sparkSession):
        scan = df.agg(F.count(F.lit(1)).alias("_rows"), *scan_aggregates(rules, F.lit(True))).head()
    ctx = replace(ctx, rows_read=scan["_rows"], rows_good=scan["_rows"])
    return evaluate_scan(rules, scan.asDict(), ctx) + measure_shuffles(rules, df, ctx)


def raise_on_failures(results: Sequence[MetricResult]) -> None:
    """Raise naming every failed rule; the caller has not written anything yet."""
    failed = [r for r in results if r.status == "fail"]
    if failed:
        lines = [f"  table {r.table}: rule {r.rule} failed: {r.metric} = {show_value(r.value)}, expected {r.expected}"
                 for r in failed]
        raise QualityError(f"{len(failed)} quality rule(s) with severity fail failed; nothing was written:\n"
                           + "\n".join(lines))


def _alias(position: int, key: str) -> str:
    return f"_q{position}_{key}"
