"""Each rule kind passes and fails on hand-made frames; anomaly checks on a metrics history."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pydantic import TypeAdapter
from pyspark.sql import functions as F

from lakeforge.config import parse_config
from lakeforge.errors import ConfigError
from lakeforge.quality.metrics import append_metrics, flag_anomalies, mlflow_key
from lakeforge.quality.report import console_table, markdown
from lakeforge.quality.rules import MetricResult, QualityRule, RuleContext
from lakeforge.quality.runner import measure_table

RUN_TIME = datetime(2013, 12, 31, 12, 0)
RULE = TypeAdapter(QualityRule)

# rule, schema, passing rows, failing rows, (metric, value on the failing rows)
CASES = [
    ({"rule": "not_null", "column": "x"}, "x string", [("a",), ("b",)], [("a",), (None,)], ("violations", 1)),
    ({"rule": "range", "column": "x", "min": 0, "max": 10}, "x double", [(0.0,), (10.0,), (None,)],
     [(5.0,), (10.5,), (-1.0,)], ("violations", 2)),
    ({"rule": "allowed_values", "column": "x", "values": ["EWR", "JFK"]}, "x string", [("EWR",), (None,)],
     [("EWR",), ("LAX",)], ("violations", 1)),
    ({"rule": "regex", "column": "x", "pattern": "^N[0-9]+$"}, "x string", [("N1",), ("N22",)],
     [("N1",), ("XN9",)], ("violations", 1)),
    ({"rule": "completeness", "column": "x", "min_ratio": 0.5}, "x string", [("a",), (None,)],
     [("a",), (None,), (None,), (None,)], ("completeness", 0.25)),
    ({"rule": "freshness", "column": "x", "max_age_hours": 24}, "x timestamp",
     [(RUN_TIME - timedelta(hours=30),), (RUN_TIME - timedelta(hours=23),)],
     [(RUN_TIME - timedelta(hours=25),)], ("age_hours", 25.0)),
    ({"rule": "row_count", "min_ratio": 0.5, "max_ratio": 2.0}, "x int", [(1,), (2,)],
     [(1,), (2,), (3,), (4,), (5,)], ("row_count_ratio", 2.5)),
    ({"rule": "unique", "columns": ["x", "y"]}, "x string, y int", [("a", 1), ("a", 2), ("b", 1)],
     [("a", 1), ("a", 1), ("b", 1)], ("duplicate_rows", 2)),
    ({"rule": "references", "column": "x", "to_source": "dim", "to_column": "k"}, "x string",
     [("a",), ("b",), (None,)], [("a",), ("c",)], ("orphan_ratio", 0.5)),
    ({"rule": "consistent", "key": ["x"], "column": "y"}, "x string, y int", [("a", 1), ("a", 1), ("b", 0)],
     [("a", 1), ("a", 0), ("b", 0), ("b", 0)], ("conflicting_keys", 1)),
]


def measure(spark, rule, schema, rows):
    dim = spark.createDataFrame([("a",), ("b",)], "k string")
    ctx = RuleContext("t", RUN_TIME, 0, 0, previous_rows=2, reference=lambda source: {"dim": dim}[source])
    return measure_table(spark.createDataFrame(rows, schema), [rule], ctx)


@pytest.mark.parametrize("spec, schema, passing, failing, expected", CASES, ids=[c[0]["rule"] for c in CASES])
def test_rule_passes_on_good_rows_and_fails_on_bad_ones(spark, spec, schema, passing, failing, expected):
    rule = RULE.validate_python(spec)
    assert {r.status for r in measure(spark, rule, schema, passing)} == {"pass"}
    results = {r.metric: r for r in measure(spark, rule, schema, failing)}
    metric, value = expected
    assert results[metric].value == pytest.approx(value)
    assert results[metric].status == "fail" and results[metric].rule == rule.name and results[metric].table == "t"


def test_unique_counts_exactly_when_different_keys_share_a_hash(spark):
    rows = [("a", None), (None, "a"), (None, None), (None, None)]
    df = spark.createDataFrame(rows, "x string, y string")
    assert df.limit(2).select(F.xxhash64("x", "y")).distinct().count() == 1  # xxhash64 skips nulls: a collision
    rule = RULE.validate_python({"rule": "unique", "columns": ["x", "y"]})
    assert [(r.metric, r.value, r.status) for r in measure(spark, rule, "x string, y string", rows)] == [
        ("duplicate_rows", 2, "fail")]  # the two (null, null) rows, not the colliding pair


def test_warn_severity_warns_instead_of_failing_and_range_reports_extremes(spark):
    rule = RULE.validate_python({"rule": "range", "column": "x", "min": 0, "max": 10, "severity": "warn"})
    results = {r.metric: (r.value, r.status) for r in measure(spark, rule, "x double", [(3.0,), (12.0,)])}
    assert results == {"violations": (1, "warn"), "min": (3.0, "pass"), "max": (12.0, "warn")}


def test_violation_ratio_below_max_ratio_passes(spark):
    rule = RULE.validate_python({"rule": "not_null", "column": "x", "max_ratio": 0.5})
    assert [(r.value, r.status) for r in measure(spark, rule, "x int", [(1,), (None,)])] == [(1, "pass")]


def test_bad_rules_are_refused_with_their_path():
    base = {"storage_root": "/tmp/x", "model": {"numeric_features": []},
            "sources": {"planes": {"path": "*.csv", "columns": {"tailnum": "string"}}}}
    for rule, message in [({"rule": "not_null", "column": "seats"}, r"unknown column\(s\) \['seats'\]"),
                          ({"rule": "range", "column": "tailnum"}, "needs min, max or both"),
                          ({"rule": "median", "column": "tailnum"}, r"sources\.planes\.quality\.0")]:
        base["sources"]["planes"]["quality"] = [rule]
        with pytest.raises(ConfigError, match=message):
            parse_config(base)


def rows_read(value: float) -> MetricResult:
    return MetricResult("bronze_planes", "ingest", "rows_read", value, "pass")


def test_metric_outside_mean_k_std_of_recent_runs_warns(spark, tmp_path):
    path = str(tmp_path / "quality_metrics")
    for run, value in enumerate([500.0, 100.0, 102.0, 98.0, 100.0]):
        append_metrics(spark, path, [rows_read(value)], {"bronze_planes": run}, {}, RUN_TIME + timedelta(days=run))
    judged = {v: r for v in (101.0, 110.0) for r in flag_anomalies(spark, path, [rows_read(v)], 4, 3.0, 3)}
    assert judged[101.0].status == "pass" and judged[101.0].note == ""
    assert judged[110.0].status == "warn" and "anomaly: outside 100 +/- 3.0*1.41" in judged[110.0].note
    assert flag_anomalies(spark, path, [rows_read(110.0)], 4, 3.0, 5)[0].status == "pass"


def test_report_lists_failures_first_and_keys_suit_mlflow():
    results = [MetricResult("t", "range(x)", "max", 12.0, "pass", "<= 10"),
               MetricResult("t", "unique(id)", "duplicate_rows", 2, "fail", "0")]
    table = console_table(results).splitlines()
    assert table[0] == "quality: 1 passed, 0 warned, 1 failed"
    assert table[3].startswith("FAIL") and table[4].startswith("PASS")
    assert "| FAIL | t | unique(id) | duplicate_rows | 2 | 0 |  |" in markdown(results, "r")
    assert mlflow_key("quality.t.references(x -> dim.k).orphan_ratio") == "quality.t.references_x_-_dim.k.orphan_ratio"
