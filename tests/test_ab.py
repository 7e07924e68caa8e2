"""A/B analysis: statistics against scipy, SRM detection, the analysis and its Delta output on small frames."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F
from scipy import stats

from lakeforge.config import ExperimentSettings
from lakeforge.errors import StepError
from lakeforge.experiments import ab
from lakeforge.experiments.ab import analyze, hashed_variant
from lakeforge.experiments.stats import sample_ratio_mismatch, two_proportion_ztest, welch_ttest

from conftest import flights_config


def test_z_test_p_value_matches_scipy_chi_squared_on_the_2x2_table():
    result = two_proportion_ztest(120, 1000, 150, 1000)
    table = np.array([[120, 880], [150, 850]])
    chi2, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    assert result.p_value == pytest.approx(p_value, rel=1e-9)
    assert result.statistic**2 == pytest.approx(chi2, rel=1e-9)
    assert result.abs_lift == pytest.approx(0.03)
    assert result.rel_lift == pytest.approx(0.25)


def test_proportion_confidence_interval_is_the_wald_interval():
    result = two_proportion_ztest(120, 1000, 150, 1000, alpha=0.05)
    half_width = stats.norm.ppf(0.975) * np.sqrt(0.12 * 0.88 / 1000 + 0.15 * 0.85 / 1000)
    assert (result.abs_ci_low, result.abs_ci_high) == pytest.approx((0.03 - half_width, 0.03 + half_width))
    assert result.rel_ci_low < result.rel_lift < result.rel_ci_high


def test_welch_t_test_matches_scipy():
    rng = np.random.default_rng(3)
    control, treatment = rng.normal(1.0, 1.0, 400), rng.normal(1.2, 2.0, 300)
    result = welch_ttest(control.mean(), control.var(ddof=1), len(control),
                         treatment.mean(), treatment.var(ddof=1), len(treatment))
    expected = stats.ttest_ind(treatment, control, equal_var=False)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-9)
    interval = expected.confidence_interval(0.95)
    assert (result.abs_ci_low, result.abs_ci_high) == pytest.approx((interval.low, interval.high), rel=1e-9)


def test_srm_detected_on_60_40_declared_50_50():
    check = sample_ratio_mismatch({"A": 6000, "B": 4000}, {"A": 0.5, "B": 0.5}, alpha=0.001)
    assert check.mismatch
    assert check.p_value == pytest.approx(stats.chisquare([6000, 4000]).pvalue)


def test_no_srm_on_a_balanced_split():
    assert not sample_ratio_mismatch({"A": 5030, "B": 4970}, {"A": 0.5, "B": 0.5}, alpha=0.001).mismatch


def test_hashed_assignment_follows_the_declared_split(spark):
    units = spark.range(20_000).select(F.col("id").cast("string").alias("unit"))
    variants = units.select(hashed_variant(F.col("unit"), {"A": 0.6, "B": 0.4}, seed=42).alias("variant"))
    counts = {r["variant"]: r["count"] for r in variants.groupBy("variant").count().collect()}
    assert set(counts) == {"A", "B"}
    assert 0.58 < counts["A"] / 20_000 < 0.62


def experiment_frames(spark, units_a: int, units_b: int, rate_a: float, rate_b: float):
    rng = np.random.default_rng(5)
    variant = np.array(["A"] * units_a + ["B"] * units_b)
    converted = np.concatenate([rng.binomial(1, rate_a, units_a), rng.binomial(1, rate_b, units_b)])
    units = [f"u{i}" for i in range(units_a + units_b)]
    assignments = pd.DataFrame({"unit": units, "variant": variant, "model_name": "m",
                                "model_version": np.where(variant == "A", "1", "2")})
    outcomes = pd.DataFrame({"unit": units, "converted": converted, "revenue": converted * 10.0})
    return spark.createDataFrame(assignments), spark.createDataFrame(outcomes), converted, variant


def test_analysis_matches_the_statistics_on_raw_counts(spark):
    assignments, outcomes, converted, variant = experiment_frames(spark, 3000, 2000, 0.10, 0.13)
    settings = ExperimentSettings(metrics={"converted": "proportion", "revenue": "mean"}, simulate=False)
    results = analyze(assignments, outcomes, settings).set_index("metric")
    direct = two_proportion_ztest(converted[variant == "A"].sum(), 3000, converted[variant == "B"].sum(), 2000)
    assert results.loc["converted", "p_value"] == pytest.approx(direct.p_value)
    assert results.loc["converted", "control_model_versions"] == "1"
    assert results.loc["converted", "treatment_model_versions"] == "2"
    revenue = stats.ttest_ind(converted[variant == "B"] * 10.0, converted[variant == "A"] * 10.0, equal_var=False)
    assert results.loc["revenue", "p_value"] == pytest.approx(revenue.pvalue)
    assert results["srm_detected"].all()  # 3000 / 2000 against a declared 50/50


def test_a_unit_in_two_variants_is_refused(spark):
    assignments = spark.createDataFrame([("u1", "A", "m", "1"), ("u1", "B", "m", "1")],
                                        "unit string, variant string, model_name string, model_version string")
    outcomes = spark.createDataFrame([("u1", 1)], "unit string, converted int")
    with pytest.raises(StepError, match="unit 'u1' is assigned to several variants"):
        analyze(assignments, outcomes, ExperimentSettings(metrics={"converted": "proportion"}, simulate=False))


def test_analysis_step_writes_results_tied_to_model_versions_and_replaces_them_on_rerun(spark, tmp_path):
    config = flights_config(tmp_path, **{"experiment.simulate": False,
                                         "experiment.metrics": {"converted": "proportion", "revenue": "mean"}})
    assignments, outcomes, _, _ = experiment_frames(spark, 5000, 5000, 0.10, 0.13)
    assignments.write.format("delta").save(config.table_path("ab_assignments"))
    outcomes.write.format("delta").save(config.table_path("ab_outcomes"))

    first = ab.run(spark, config)
    ab.run(spark, config)
    results = spark.read.format("delta").load(config.table_path("ab_results"))
    assert results.count() == 2 == first.rows_out
    row = results.where("metric = 'converted'").head()
    assert (row["control_model_versions"], row["treatment_model_versions"]) == ("1", "2")
    assert (row["assignments_version"], row["outcomes_version"]) == (0, 0)
    assert row["significant"] and not row["srm_detected"]
    assert row["abs_ci_low"] < row["abs_lift"] < row["abs_ci_high"]
