"""The `ab_analysis` step: per-variant metrics, lifts with confidence intervals, significance tests
and a sample-ratio-mismatch check, from an assignment table (unit, variant, model_name,
model_version) and an outcome table (unit, one column per metric), written to Delta.

With `experiment.simulate`, the step first writes a simulated experiment on the rows of
`windows.score`: each row is hashed to a variant and decided by the champion model at that
variant's threshold; the outcomes are whether the decision was correct and its cost.
"""
from __future__ import annotations

from itertools import accumulate

import mlflow
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeforge.config import ExperimentSettings, LakeforgeConfig
from lakeforge.errors import StepError
from lakeforge.features.dataset import KEY, LABEL
from lakeforge.evaluation.objectives import decision_outcome_costs
from lakeforge.experiments.stats import Comparison, sample_ratio_mismatch, two_proportion_ztest, welch_ttest
from lakeforge.models import load_registered
from lakeforge.results import StepResult
from lakeforge.tables import TableVersion, latest_version, read_pinned
from lakeforge.tracking import log_tables, step_run
from lakeforge.windows import in_window

UNIT, VARIANT = "unit", "variant"
ASSIGNMENT_COLUMNS = [UNIT, VARIANT, "model_name", "model_version"]
_HASH_BUCKETS = 10_000


def hashed_variant(unit: Column, split: dict[str, float], seed: int) -> Column:
    """Variant of each unit, drawn by hashing it: variant v gets about split[v] / sum(split) of the units."""
    draw = F.pmod(F.xxhash64(unit.cast("string"), F.lit(seed)), F.lit(_HASH_BUCKETS)) / _HASH_BUCKETS
    variants, total = list(split), sum(split.values())
    choice = F.when(F.lit(False), F.lit(None))
    for variant, upper in zip(variants[:-1], accumulate(split[v] / total for v in variants)):
        choice = choice.when(draw < upper, F.lit(variant))
    return choice.otherwise(F.lit(variants[-1]))


def simulate_threshold_experiment(spark: SparkSession, config: LakeforgeConfig) -> tuple[DataFrame, DataFrame]:
    """Assignments and outcomes of the champion deciding at each variant's threshold (`windows.score`)."""
    settings, key, experiment = config.model, KEY, config.experiment
    if config.task.type != "binary_classification":
        raise StepError(f"ab_analysis: experiment.simulate decides at thresholds, which needs task.type "
                        f"binary_classification (not {config.task.type}); set experiment.simulate: false and "
                        f"write {experiment.assignments_table} and {experiment.outcomes_table} from your experiment")
    try:
        champion = mlflow.MlflowClient().get_model_version_by_alias(settings.registered_name, settings.alias)
    except mlflow.exceptions.MlflowException:
        raise StepError(f"ab_analysis: no '{settings.alias}' of '{settings.registered_name}' to simulate with; "
                        "run train and evaluate first") from None
    model = load_registered(champion, settings, config.task.type)
    features, _ = read_pinned(spark, config.dataset.table, config.table_path(config.dataset.table))
    batch = in_window(features, config.windows.score)
    labels = batch.select(F.col(key).cast("string").alias(key), F.col(LABEL).cast("int").alias("label"))
    scored = model.predict(batch, key).join(labels, key)
    thresholds = F.create_map(*[F.lit(x) for pair in experiment.simulated_thresholds.items() for x in pair])
    decided = (scored.withColumn(VARIANT, hashed_variant(F.col(key), experiment.expected_split, config.seed))
               .withColumn("threshold", thresholds[F.col(VARIANT)]))
    assignments = decided.select(F.col(key).alias(UNIT), VARIANT, F.lit(champion.name).alias("model_name"),
                                 F.lit(str(champion.version)).alias("model_version"))
    outcomes = decided.select(
        F.col(key).alias(UNIT),
        ((F.col("score") >= F.col("threshold")) == (F.col("label") == 1)).cast("int").alias("correct"),
        decision_outcome_costs(F.col("threshold"), config.evaluation.objective.costs).alias("cost"),
    )
    return assignments, outcomes


def variant_summary(assignments: DataFrame, outcomes: DataFrame, settings: ExperimentSettings) -> pd.DataFrame:
    """Units, model versions and per-metric sum / mean / variance per variant, aggregated in Spark."""
    missing = [c for c in ASSIGNMENT_COLUMNS if c not in assignments.columns]
    missing += [c for c in [UNIT, *settings.metrics] if c not in outcomes.columns]
    if missing:
        raise StepError(f"ab_analysis: columns {missing} missing from {settings.assignments_table} / "
                        f"{settings.outcomes_table}")
    duplicated = assignments.groupBy(UNIT).agg(F.countDistinct(VARIANT).alias("n")).where("n > 1").limit(1).collect()
    if duplicated:
        raise StepError(f"ab_analysis: unit {duplicated[0][UNIT]!r} is assigned to several variants "
                        f"in {settings.assignments_table}")
    joined = assignments.join(outcomes, UNIT, "left")
    aggregates = [F.countDistinct(UNIT).alias("units"),
                  F.array_join(F.array_sort(F.collect_set("model_version")), ",").alias("model_versions")]
    for metric, kind in settings.metrics.items():
        value = F.coalesce(F.col(metric).cast("double"), F.lit(0.0)) if kind == "proportion" else F.col(metric)
        aggregates += [F.sum(value).alias(f"{metric}__sum"), F.count(value).alias(f"{metric}__n"),
                       F.avg(value).alias(f"{metric}__mean"), F.var_samp(value).alias(f"{metric}__var")]
    return joined.groupBy(VARIANT).agg(*aggregates).toPandas().set_index(VARIANT)


def compare(summary: pd.DataFrame, metric: str, kind: str, control: str, treatment: str, alpha: float) -> Comparison:
    """The treatment-vs-control test of `metric`: z-test for proportions, Welch t-test for means."""
    c, t = summary.loc[control], summary.loc[treatment]
    if kind == "proportion":
        return two_proportion_ztest(int(c[f"{metric}__sum"]), int(c[f"{metric}__n"]),
                                    int(t[f"{metric}__sum"]), int(t[f"{metric}__n"]), alpha)
    return welch_ttest(c[f"{metric}__mean"], c[f"{metric}__var"], int(c[f"{metric}__n"]),
                       t[f"{metric}__mean"], t[f"{metric}__var"], int(t[f"{metric}__n"]), alpha)


def analyze(assignments: DataFrame, outcomes: DataFrame, settings: ExperimentSettings) -> pd.DataFrame:
    """One row per (metric, treatment variant): values, lifts with CIs, test, p-value, SRM verdict."""
    summary = variant_summary(assignments, outcomes, settings)
    if settings.control not in summary.index:
        raise StepError(f"ab_analysis: control variant {settings.control!r} has no units in {settings.assignments_table}")
    srm = sample_ratio_mismatch(summary["units"].astype(int).to_dict(), settings.expected_split, settings.srm_alpha)
    rows = []
    for metric, kind in settings.metrics.items():
        for treatment in [v for v in summary.index if v != settings.control]:
            result = compare(summary, metric, kind, settings.control, treatment, settings.alpha)
            rows.append({"experiment": settings.name, "metric": metric, "control": settings.control,
                         "treatment": treatment,
                         "control_model_versions": summary.loc[settings.control, "model_versions"],
                         "treatment_model_versions": summary.loc[treatment, "model_versions"],
                         "control_units": int(summary.loc[settings.control, "units"]),
                         "treatment_units": int(summary.loc[treatment, "units"]),
                         **result.as_dict(), "significant": result.p_value < settings.alpha,
                         "srm_chi2": srm.chi2, "srm_p_value": srm.p_value, "srm_detected": srm.mismatch})
    return pd.DataFrame(rows)


def run(spark: SparkSession, config: LakeforgeConfig) -> StepResult:
    """Analyse the experiment (simulating it first if configured) and replace its rows in the results table."""
    experiment = config.experiment
    with step_run(config, "ab_analysis") as active:
        if experiment.simulate:
            for table, frame in zip([experiment.assignments_table, experiment.outcomes_table],
                                    simulate_threshold_experiment(spark, config)):
                frame.write.format("delta").mode("overwrite").save(config.table_path(table))
        assignments, assignments_version = read_pinned(spark, experiment.assignments_table,
                                                       config.table_path(experiment.assignments_table))
        outcomes, outcomes_version = read_pinned(spark, experiment.outcomes_table,
                                                 config.table_path(experiment.outcomes_table))
        results = analyze(assignments, outcomes, experiment)
        path = config.table_path(experiment.results_table)
        (spark.createDataFrame(results)
         .withColumn("assignments_version", F.lit(assignments_version.version))
         .withColumn("outcomes_version", F.lit(outcomes_version.version))
         .withColumn("analysis_run_id", F.lit(active.info.run_id))
         .withColumn("analyzed_at", F.current_timestamp())
         .write.format("delta").mode("overwrite").option("replaceWhere", f"experiment = '{experiment.name}'")
         .save(path))
        output = TableVersion(experiment.results_table, path, latest_version(spark, path))
        log_tables([assignments_version, outcomes_version], "input")
        log_tables([output], "output")
        mlflow.log_metrics({f"{r.metric}.{r.treatment}.p_value": r.p_value for r in results.itertuples()}
                           | {"srm_p_value": float(results["srm_p_value"].iloc[0])})
        mlflow.set_tag("lakeforge.experiment.srm_detected", str(bool(results["srm_detected"].iloc[0])).lower())
        if results["srm_detected"].iloc[0]:
            print(f"[lakeforge] ab_analysis: sample ratio mismatch (p={results['srm_p_value'].iloc[0]:.2g}); "
                  "the lifts are not trustworthy", flush=True)
    units = int(results["control_units"].iloc[0] + results.drop_duplicates("treatment")["treatment_units"].sum())
    return StepResult("ab_analysis", rows_in=units, rows_out=len(results),
                      details={"experiment": experiment.name, "table": f"{output.name} v{output.version}",
                               "srm_detected": bool(results["srm_detected"].iloc[0])})
