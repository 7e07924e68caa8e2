"""The monitor step: drift of features, predictions and labels per window against the champion's training data, live metrics, retraining.

Reference: the rows of `windows.train` in the dataset table at the version the champion's training
run read (its `lakeforge.input.<table>.version` tag); for the predictions, the champion's scores on
those rows. Current: each period (`windows.monitor_every`, labelled by its start, e.g. ``2013-07``)
of `windows.score` in the newest dataset table and the champion's rows of the predictions table.
Skew: the training rows re-read at the dataset version the scoring run used, against the training
version.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict

import mlflow
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakeforge import train
from lakeforge.config import LakeforgeConfig, MonitorSettings
from lakeforge.drift.binning import BucketCounts, ColumnBins, bucket_counts, fit_bins
from lakeforge.drift.compare import DriftMeasure, compare_column, drifted_share
from lakeforge.drift.plots import HistogramPanel, drift_figure, png_bytes
from lakeforge.drift.statistics import shares
from lakeforge.drift.trigger import EXIT_OK, EXIT_RETRAIN_NEEDED, EXIT_RETRAINED, TriggerDecision, evaluate_trigger
from lakeforge.errors import StepError
from lakeforge.features.dataset import KEY, LABEL
from lakeforge.tasks import task_for
from lakeforge.tasks.catalog import HEADLINE_METRIC
from lakeforge.train import decision_of
from lakeforge.models import load_model
from lakeforge.results import StepResult
from lakeforge.tables import TableVersion, latest_version, read_pinned
from lakeforge.storage import storage_for
from lakeforge.tracking import log_bytes, log_tables, step_run, table_versions_of_run
from lakeforge.windows import describe, in_window, no_rows, period_label

WINDOW = "_window"
SKEW_WINDOW = "training rows"
NUMERIC_TYPES = {"double", "float", "long", "integer"}

DRIFT_SCHEMA = T.StructType([
    T.StructField("monitor_run_id", T.StringType()), T.StructField("computed_at", T.TimestampType()),
    T.StructField("model_name", T.StringType()), T.StructField("model_version", T.StringType()),
    T.StructField("reference", T.StringType()), T.StructField("window", T.StringType()),
    T.StructField("kind", T.StringType()), T.StructField("feature", T.StringType()),
    T.StructField("method", T.StringType()), T.StructField("value", T.DoubleType()),
    T.StructField("threshold", T.DoubleType()), T.StructField("drifted", T.BooleanType()),
    T.StructField("decisive", T.BooleanType()), T.StructField("reference_rows", T.LongType()),
    T.StructField("current_rows", T.LongType()),
])


def champion(config: LakeforgeConfig) -> ModelVersion:
    name, alias = config.model.registered_name, config.model.alias
    try:
        return mlflow.MlflowClient().get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException as exc:
        raise StepError(f"monitor: no model '{name}' with alias '{alias}'; train and promote one first "
                        f"({exc.message})") from None


def model_columns(model_uri: str, text_features: list[str]) -> tuple[list[str], list[str]]:
    """The model's input columns from its signature: numeric ones, and categorical (string, not text) ones."""
    inputs = mlflow.models.get_model_info(model_uri).signature.inputs
    numeric = [c.name for c in inputs.inputs if c.type.to_numpy().kind in "fiu"]
    categorical = [c.name for c in inputs.inputs if c.type.to_numpy().kind not in "fiu" and c.name not in text_features]
    return numeric, categorical


def compare_all(
    bins: list[ColumnBins], reference: dict[str, BucketCounts], current: dict[str, BucketCounts],
    settings: MonitorSettings,
) -> list[DriftMeasure]:
    return [m for b in bins
            for m in compare_column(b, reference[b.name], current[b.name], settings.thresholds,
                                    settings.stat_test_max_rows)]


def _fit(df: DataFrame, numeric: list[str], categorical: list[str], settings: MonitorSettings) -> list[ColumnBins]:
    return fit_bins(df, numeric, categorical, settings.bins, settings.fine_bins, settings.max_categories,
                    settings.quantile_accuracy)


def append_rows(spark: SparkSession, rows: DataFrame, path: str, name: str) -> TableVersion:
    rows.write.format("delta").mode("append").option("mergeSchema", True).save(path)
    return TableVersion(name, path, latest_version(spark, path))


def _plot(
    bins: dict[str, ColumnBins], reference: dict[str, BucketCounts],
    current: dict[str, dict[str, BucketCounts]], drift: list[tuple[str, str, DriftMeasure]],
    share: dict[str, float], live: tuple[str, dict[str, float]], output: str, settings: MonitorSettings, title: str,
) -> bytes:
    """PNG of histograms of the prediction and the most drifted features (by PSI) in the latest window."""
    latest = max(share)
    psi = {(kind, window, m.feature): m.value for kind, window, m in drift if m.method == "psi"}
    ranked = sorted((f for k, w, f in psi if k == "feature" and w == latest), key=lambda f: -psi["feature", latest, f])
    shown = ranked[:settings.plot_features - 1]
    panels = []
    for feature in [output, *shown]:
        kind = "prediction" if feature == output else "feature"
        column = bins[feature]
        panels.append(HistogramPanel(
            feature if kind == "feature" else f"prediction ({output})", column.coarse_labels(),
            shares(reference[feature].coarse(column)), shares(current[latest][feature].coarse(column)),
            f"PSI {psi[kind, latest, feature]:.3f} ({latest})"))
    over_time = {f: {w: v for (k, w, name), v in psi.items() if k == "feature" and name == f} for f in shown}
    return png_bytes(drift_figure(panels, over_time, share, *live, title))


def run(spark: SparkSession, config: LakeforgeConfig) -> StepResult:
    """Measure drift of features, predictions and labels and the task's live metrics per window, store
    them, plot them and evaluate the retrain trigger."""
    settings, key = config.monitor, KEY
    task = task_for(config.task.type, config.evaluation.objective)
    output = task.drift_output
    table = config.dataset.table
    with step_run(config, "monitor") as active:
        model = champion(config)
        model_uri = f"models:/{model.name}/{model.version}"
        numeric, categorical = model_columns(model_uri, config.model.text_features)
        train_run_id = model.tags.get("train_run_id") or model.run_id
        trained_version = table_versions_of_run(mlflow.get_run(train_run_id)).get(table)
        if trained_version is None:
            raise StepError(f"monitor: training run {train_run_id} of {model_uri} logged no version of '{table}'")
        path = config.table_path(table)
        trained_on, reference_version = read_pinned(spark, table, path, trained_version)
        reference = in_window(trained_on, config.windows.train)
        newest, current_version = read_pinned(spark, table, path)
        features = in_window(newest, config.windows.score).withColumn(WINDOW, period_label(config.windows.monitor_every))
        predictions, predictions_version = read_pinned(spark, config.score.table, config.table_path(config.score.table))
        served = (predictions.where((F.col("model_name") == model.name) & (F.col("model_version") == str(model.version)))
                  .join(features.select(key, WINDOW, LABEL), key))

        feature_bins = _fit(reference, numeric, categorical, settings)
        reference_outputs = load_model(model_uri, config.model, task.type).predict(reference, key)
        output_bins = _fit(reference_outputs, *([output], []) if task.drift_output_numeric else ([], [output]), settings)
        labelled_reference = reference.where(F.col(LABEL).isNotNull())
        label_bins = _fit(labelled_reference, *([LABEL], []) if task.numeric_label else ([], [LABEL]), settings)
        reference_counts = (bucket_counts(reference, feature_bins).get(None, {})
                            | bucket_counts(reference_outputs, output_bins).get(None, {})
                            | bucket_counts(labelled_reference, label_bins).get(None, {}))
        if not reference_counts:
            raise no_rows("monitor", "train", config.windows.train, f"{table} v{trained_version}")
        window_features = bucket_counts(features, feature_bins, WINDOW)
        window_outputs = bucket_counts(served, output_bins, WINDOW)
        window_labels = bucket_counts(features.where(F.col(LABEL).isNotNull()), label_bins, WINDOW)

        drift: list[tuple[str, str, DriftMeasure]] = []
        current: dict[str, dict[str, BucketCounts]] = {}
        for window in sorted(window_features):
            current[window] = window_features[window] | window_outputs.get(window, {}) | window_labels.get(window, {})
            drift += [("feature", window, m) for m in compare_all(feature_bins, reference_counts, current[window], settings)]
            for kind, bins, counted in (("prediction", output_bins, window_outputs), ("label", label_bins, window_labels)):
                if window in counted:
                    drift += [(kind, window, m) for m in compare_all(bins, reference_counts, current[window], settings)]
        if not current:
            raise no_rows("monitor", "score", config.windows.score, f"{table} v{current_version.version}")
        serving_versions = [r[0] for r in served.select("features_version").distinct().collect() if r[0] is not None]
        skew_versions = sorted(set(serving_versions) - {trained_version})
        if skew_versions:  # the features as scoring computed them, for the rows the model was trained on
            served_features, _ = read_pinned(spark, table, path, skew_versions[-1])
            skew_counts = bucket_counts(in_window(served_features, config.windows.train), feature_bins)[None]
            drift += [("skew", SKEW_WINDOW, m) for m in compare_all(feature_bins, reference_counts, skew_counts, settings)]

        decision = decision_of(model.tags, task)
        live = task.window_metrics(served.where(F.col(LABEL).isNotNull()), WINDOW, **decision)
        share = {w: drifted_share([m for k, win, m in drift if k == "feature" and win == w]) for w in current}
        trigger = settings.trigger
        watched = trigger.metric or HEADLINE_METRIC[task.type]
        history = {r[WINDOW]: r[watched] for r in live if not math.isnan(r.get(watched, math.nan))}
        verdict = evaluate_trigger(trigger, share, history, task.greater_is_better(watched))

        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        reference_name = f"{table} v{reference_version.version} train {describe(config.windows.train)}"
        common = {"monitor_run_id": active.info.run_id, "computed_at": now,
                  "model_name": model.name, "model_version": str(model.version)}
        drift_rows = [{**common, "reference": reference_name, "window": window, "kind": kind, **asdict(m)}
                      for kind, window, m in drift]
        drift_frame = spark.createDataFrame([tuple(r[f] for f in DRIFT_SCHEMA.fieldNames()) for r in drift_rows],
                                            DRIFT_SCHEMA)
        outputs = [append_rows(spark, drift_frame, config.table_path(settings.drift_table), settings.drift_table)]
        if live:
            live_frame = spark.createDataFrame(pd.DataFrame([{**common, "window": r.pop(WINDOW), **r} for r in
                                                             [dict(row) for row in live]]))
            outputs.append(append_rows(spark, live_frame, config.table_path(settings.live_metrics_table),
                                       settings.live_metrics_table))

        png = _plot({b.name: b for b in feature_bins + output_bins}, reference_counts, current, drift, share,
                    (watched, history), output, settings, f"{model_uri} vs {reference_name}")
        plot_name = f"drift-{active.info.run_id}.png"
        plot = storage_for(config).write_bytes(config.location(settings.plots_dir, plot_name), png)
        log_bytes(png, "monitor", plot_name)
        log_tables([reference_version, current_version, predictions_version], "input")
        log_tables(outputs, "output")
        for step, window in enumerate(sorted(current)):
            mlflow.log_metric("drifted_feature_share", share[window], step=step)
            if window in history:
                mlflow.log_metric(f"live_{watched}", history[window], step=step)
        mlflow.set_tags({"lakeforge.monitor.trigger": "fired" if verdict.fired else "quiet",
                         "lakeforge.monitor.reasons": "; ".join(verdict.reasons)})
    exit_code = _retrain(spark, config, verdict)
    latest = max(current)
    drifted = sorted(m.feature for k, w, m in drift if k == "feature" and w == latest and m.decisive and m.drifted)
    window_rows = sum(c[feature_bins[0].name].rows for c in current.values()) if feature_bins else 0
    return StepResult("monitor", rows_in=window_rows, rows_out=len(drift_rows) + len(live),
                      details={"latest_window": latest, "drifted": ",".join(drifted) or "none",
                               f"live_{watched}": round(history[latest], 4) if latest in history else None,
                               "trigger": "; ".join(verdict.reasons) or "quiet", "exit_code": exit_code,
                               "plot": plot})


def _retrain(spark: SparkSession, config: LakeforgeConfig, decision: TriggerDecision) -> int:
    """Exit code for the scheduler; with `trigger.retrain`, train on the training window extended to the
    end of the score window (the monitored rows)."""
    if not decision.fired:
        return EXIT_OK
    if not config.monitor.trigger.retrain:
        return EXIT_RETRAIN_NEEDED
    start, end = min(config.windows.train[0], config.windows.score[0]), max(config.windows.train[1], config.windows.score[1])
    windows = config.windows.model_copy(update={"train": (start, end)})
    train.run(spark, config.model_copy(update={"windows": windows}))
    return EXIT_RETRAINED
