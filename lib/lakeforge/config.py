"""Typed pipeline configuration: YAML files validated into pydantic models.

Every section forbids unknown keys, so a typo fails loudly with the key's dotted path.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lakeforge import storage
from lakeforge.errors import ConfigError
from lakeforge.names import IDENTIFIER, check_identifier
from lakeforge.quality.rules import QualityRule

ColumnType = Literal["int", "bigint", "double", "string", "boolean", "date", "timestamp"]
Period = Literal["day", "week", "month", "quarter", "year"]
SqlExpression = str
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
RESERVED_COLUMNS = ("key", "time", "label")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def duration_seconds(text: str) -> int:
    """``"3h"`` -> 10800: a positive whole number of s, m, h or d."""
    match = _DURATION.match(str(text))
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"expected a duration such as 90s, 30m, 3h or 7d, got {text!r}")
    return int(match.group(1)) * _DURATION_SECONDS[match.group(2)]


def _check_duration(text: str | None) -> str | None:
    if text is not None:
        duration_seconds(text)
    return text


def _check_names(names: dict[str, Any], what: str) -> dict[str, Any]:
    bad = [n for n in names if not IDENTIFIER.match(n)]
    if bad:
        raise ValueError(f"{what} must be identifiers (letters, digits, _), got {bad}")
    return names


def _relative_dir(folder: str) -> str:
    """`folder` if it is a relative path that stays under the storage root, else a ValueError."""
    parts = folder.replace("\\", "/").split("/")
    if storage.is_uri(folder) or Path(folder).is_absolute() or ".." in parts or not folder.strip("/. "):
        raise ValueError(f"must be a folder relative to storage_root, without '..', got {folder!r}")
    return folder


def _no_credentials(uri: str) -> str:
    """`uri` unless it carries credentials (``scheme://user:pw@host``), which would be written into every path."""
    from lakeforge.masking import mask_uri

    if mask_uri(uri) != uri:
        raise ValueError(f"credentials inside the URI are refused ({mask_uri(uri)}): give them to Spark with "
                         f"spark.conf and ${{env:NAME}} (see README, Secrets and safety)")
    return uri


TableName = Annotated[str, AfterValidator(check_identifier)]
RelativeDir = Annotated[str, AfterValidator(_relative_dir)]


class SparkSettings(_Section):
    """How the SparkSession is built; `master` stays unset under spark-submit.

    The jars of `delta_package` and `packages` come from `jars_dir`, else from the folder
    ``lakeforge jars`` fills once (see `lakeforge.spark.jar_files`), else Maven at every start.
    """

    app_name: str = "lakeforge"
    master: str | None = Field(None, description="None: spark-submit's master, else local[*]")
    delta_package: str = "io.delta:delta-spark_4.2_2.13:4.4.0"
    packages: list[str] = Field(default_factory=list, description="more Maven coordinates, e.g. "
                                "org.apache.hadoop:hadoop-aws:3.4.2 for s3a:// storage")
    jars_dir: str | None = Field(None, description="a folder of jars used instead of resolving the packages")
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @property
    def all_packages(self) -> list[str]:
        """Delta's Maven coordinates and the extra `packages`."""
        return [self.delta_package, *self.packages]


class MlflowSettings(_Section):
    """Where runs and models are tracked: these keys, else MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI,
    else sqlite under a local storage root (``<storage_root>/mlflow.db``)."""

    tracking_uri: str | None = Field(None, description="default: MLFLOW_TRACKING_URI, else the sqlite default; "
                                     "user:password@ in it goes to MLFLOW_TRACKING_USERNAME/PASSWORD, never to a log")
    registry_uri: str | None = Field(None, description="default: MLFLOW_REGISTRY_URI, else the tracking URI")
    experiment: str = "lakeforge"
    request_timeout: int = Field(5, ge=1, le=600, description="seconds per HTTP request to a tracking server")
    request_retries: int = Field(2, ge=0, le=10, description="retries of a failed HTTP request (backoff 1s, 2s, ...)")


class LandingSettings(_Section):
    """Where raw files arrive: relative source paths resolve under ``<storage_root>/<dir>`` (or an absolute dir)."""

    dir: str = "landing"

    @field_validator("dir")
    @classmethod
    def _inside_unless_absolute(cls, folder: str) -> str:
        return _no_credentials(folder) if storage.is_uri(folder) or Path(folder).is_absolute() else _relative_dir(folder)


TIMESTAMP_FORMATS = ("epoch_seconds", "epoch_millis")


class ColumnSpec(_Section):
    """A typed source column; timestamps and dates may name a `format`: a Spark datetime pattern
    (``M/d/yyyy H:mm:ss``), ``epoch_seconds`` or ``epoch_millis``. A double column quarantines NaN and
    infinite values unless it sets `allow_nan`."""

    type: ColumnType
    format: str | None = None
    allow_nan: bool = Field(False, description="double columns: keep NaN, Infinity and -Infinity (else quarantined)")

    @model_validator(mode="after")
    def _options_fit_type(self) -> "ColumnSpec":
        if self.format is not None and self.type not in ("timestamp", "date"):
            raise ValueError(f"format is for timestamp and date columns, not {self.type}")
        if self.allow_nan and self.type != "double":
            raise ValueError(f"allow_nan is for double columns, not {self.type}")
        return self


class SourceSettings(_Section):
    """One landing source: files of one format (a glob under the landing dir, or an absolute path or
    URI), reader options, and the typed columns to keep."""

    format: Literal["csv", "json", "parquet", "delta"] = "csv"
    path: Annotated[str, AfterValidator(_no_credentials)]
    options: dict[str, str | int | float | bool] = Field(default_factory=dict, description="passed to Spark's reader")
    columns: dict[str, ColumnSpec]
    null_values: list[str] = Field(default_factory=lambda: ["", "NA"])
    max_rejected_fraction: float = Field(0.01, ge=0, le=1)
    quality: list[QualityRule] = Field(default_factory=list, description="rules, see lakeforge.quality.rules")

    @field_validator("columns", mode="before")
    @classmethod
    def _type_names(cls, columns: Any) -> Any:
        if isinstance(columns, dict):
            return {name: {"type": spec} if isinstance(spec, str) else spec for name, spec in columns.items()}
        return columns

    def column_types(self) -> dict[str, str]:
        """Column name -> type name."""
        return {name: spec.type for name, spec in self.columns.items()}

    @field_validator("columns")
    @classmethod
    def _not_empty(cls, columns: dict[str, str]) -> dict[str, str]:
        if not columns:
            raise ValueError("a source needs at least one column")
        return columns

    @model_validator(mode="after")
    def _rules_name_known_columns(self) -> "SourceSettings":
        for rule in self.quality:
            unknown = [c for c in rule.columns_used if c not in self.columns]
            if unknown:
                raise ValueError(f"quality rule {rule.name} uses unknown column(s) {unknown}")
        names = [rule.name for rule in self.quality]
        if len(names) != len(set(names)):
            raise ValueError(f"quality rules must be distinct, got {names}")
        return self


class QualitySettings(_Section):
    """Run time for freshness (default: now, UTC) and the anomaly check on the metrics history."""

    run_time: datetime | None = None
    history_runs: int = Field(10, ge=2, description="anomaly check: compare with the last N runs")
    anomaly_k: float = Field(3.0, gt=0, description="warn outside mean +/- k * std")
    min_history_runs: int = Field(3, ge=2, description="judge a metric once it has this many past runs")
    report_dir: RelativeDir = "quality_reports"


class SpineSettings(_Section):
    """The rows to predict: a source's bronze rows (optionally filtered), each with a key and an "as of" time."""

    source: str
    where: SqlExpression | None = Field(None, description="SQL filter on the source's rows")
    key: SqlExpression | None = Field(None, description="SQL expression unique per row; None: the bronze row id")
    time: SqlExpression = Field(description="column or SQL expression: when the row is predicted")


class DatasetSettings(_Section):
    """The model-ready rows, one per spine row, with `key`, `time` and `label`, the spine's columns,
    the features joined point in time and the `derived` columns, written to `table`."""

    table: TableName = "dataset"
    spine: SpineSettings
    spine_columns: list[str] | None = Field(
        None, description="the spine's columns the table keeps beside key, time and label (None: all); the "
                          "others stay usable by feature views and derived columns, and are not written")
    derived: dict[str, SqlExpression] = Field(default_factory=dict, description="name -> SQL, in order")

    _names = field_validator("derived")(lambda derived: _check_names(derived, "derived column names"))


class TaskSettings(_Section):
    """What is predicted: `label` is a SQL expression over the spine row: true/false or 0/1 (binary),
    a class (multiclass, stored as text) or a number (regression)."""

    type: Literal["binary_classification", "multiclass_classification", "regression"] = "binary_classification"
    label: SqlExpression
    leakage_columns: list[str] = Field(default_factory=list, description="columns known only after the fact")


class AggregateSettings(_Section):
    """Aggregates of the view's source rows over the preceding `window`, per key.

    Without `every`: as of each spine row's time, over strictly earlier rows. With `every`: as of
    each period start (``1d``: each day at 00:00 UTC), over the rows of the `window` before it.
    """

    window: str
    every: str | None = None
    metrics: dict[str, SqlExpression] = Field(min_length=1, description="feature -> Spark SQL aggregate")

    _durations = field_validator("window", "every")(_check_duration)
    _names = field_validator("metrics")(lambda metrics: _check_names(metrics, "metric names"))

    @model_validator(mode="after")
    def _every_fits_window(self) -> "AggregateSettings":
        if self.every is not None and duration_seconds(self.window) % duration_seconds(self.every):
            raise ValueError(f"window {self.window} must be a whole number of every ({self.every})")
        return self


class FeatureViewSettings(_Section):
    """A feature view: rows computed from a source (`select`, `aggregate`) or by a Python function
    (`python`), stored as a Delta table and joined onto the spine point in time on `keys`.

    A `select` view with an `event_time` matches the newest row at or before the spine time and at
    most `ttl` older (and already known then, with `known_time`); without one it is static, joined
    on the keys alone.
    """

    description: str = ""
    owner: str = ""
    source: str | None = Field(None, description="a source name, or 'spine' (the filtered spine rows, with label)")
    keys: list[str] = Field(default_factory=list, description="entity columns; an aggregate may have none (all rows)")
    event_time: SqlExpression | None = None
    known_time: SqlExpression | None = None
    ttl: str | None = None
    select: dict[str, SqlExpression] | None = None
    aggregate: AggregateSettings | None = None
    python: str | None = Field(None, description="module.path:function(inputs, spark) -> DataFrame")
    inputs: list[str] | None = Field(None, description="python: the sources it reads (default: every source)")

    _ttl = field_validator("ttl")(_check_duration)
    _names = field_validator("select")(lambda select: None if select is None else _check_names(select, "feature names"))

    @model_validator(mode="after")
    def _one_kind(self) -> "FeatureViewSettings":
        kinds = [k for k in ("select", "aggregate", "python") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a feature view has exactly one of select, aggregate, python; got {kinds or 'none'}")
        if self.python is None and self.source is None:
            raise ValueError("source is required (a source name or 'spine')")
        if self.python is not None and ":" not in self.python:
            raise ValueError(f"python must be 'module.path:function', got {self.python!r}")
        if self.aggregate is None and not self.keys:
            raise ValueError("keys: a select or python view needs at least one key column")
        if self.aggregate is not None and self.event_time is None:
            raise ValueError("an aggregate view needs an event_time")
        if self.aggregate is not None and (self.ttl or self.known_time):
            raise ValueError("ttl and known_time are for select and python views; an aggregate's window bounds it")
        if self.aggregate is None and (self.event_time is None) != (self.ttl is None):
            raise ValueError("event_time and ttl go together (leave both out for a static view)")
        if self.known_time is not None and self.event_time is None:
            raise ValueError("known_time needs an event_time")
        if self.inputs is not None and self.python is None:
            raise ValueError("inputs is for python views")
        return self

    @property
    def kind(self) -> Literal["select", "aggregate", "python"]:
        return "select" if self.select is not None else "aggregate" if self.aggregate is not None else "python"


class WindowsSettings(_Section):
    """Half-open ``[start, end)`` ranges of the spine time, and the monitoring period."""

    train: tuple[datetime, datetime]
    evaluate: tuple[datetime, datetime] | None = Field(None, description="None: the hash validation split of train")
    score: tuple[datetime, datetime]
    monitor_every: Period = "month"

    @field_validator("train", "evaluate", "score", mode="before")
    @classmethod
    def _dates_are_midnight(cls, bounds: Any) -> Any:
        if isinstance(bounds, (list, tuple)):
            return [datetime(b.year, b.month, b.day) if isinstance(b, date) and not isinstance(b, datetime) else b
                    for b in bounds]
        return bounds

    @field_validator("train", "evaluate", "score")
    @classmethod
    def _start_before_end(cls, bounds: tuple[datetime, datetime] | None) -> tuple[datetime, datetime] | None:
        if bounds is not None and not bounds[0] < bounds[1]:
            raise ValueError(f"start {bounds[0]} must be before end {bounds[1]}")
        return bounds


class PreprocessingSettings(_Section):
    """The model's fitted preprocessing (the Transform pattern), saved inside the model."""

    numeric_imputation: Literal["none", "mean", "median"] = "none"
    scale_numeric: bool = False
    categorical_encoding: Literal["ordinal", "one_hot"] = "ordinal"
    bucketize: dict[str, int] = Field(default_factory=dict, description="numeric column -> quantile bins")
    text_vectorizer: Literal["hashing", "tfidf"] = "hashing"
    text_dimensions: int = Field(32, ge=2, le=4096)


class SplitSettings(_Section):
    """The validation split inside the training window: a hash of the dataset key and the seed."""

    validation_fraction: float = Field(0.2, gt=0, lt=1)


ParamValue = int | float | str | None


class SearchSettings(_Section):
    """Hyperparameter search (scikit-learn estimators): grid combinations fitted in parallel on the executors.

    Every combination of `grid` (on top of `model.params`) is a trial; with `max_trials`, that many
    combinations drawn with the seed. The best validation `metric` (a metric of the task, in its
    direction) wins (ties: the first trial). Grid names are checked against the estimator's parameters.
    """

    grid: dict[str, list[ParamValue]] = Field(min_length=1, description="estimator parameter -> values to try")
    metric: str | None = Field(None, description="a metric of the task; default: its primary metric, "
                                                 "or auc for binary classification")
    max_trials: int | None = Field(None, ge=1)

    @field_validator("grid")
    @classmethod
    def _values_given(cls, grid: dict[str, list[ParamValue]]) -> dict[str, list[ParamValue]]:
        empty = sorted(name for name, values in grid.items() if not values)
        if empty:
            raise ValueError(f"{empty} need at least one value")
        return grid


class ModelSettings(_Section):
    registered_name: str | None = Field(None, description="default: the project name")
    alias: str = "champion"
    numeric_features: list[str]
    categorical_features: list[str] = Field(default_factory=list)
    text_features: list[str] = Field(default_factory=list)
    preprocessing: PreprocessingSettings = Field(default_factory=PreprocessingSettings)
    estimator: str | None = Field(None, description="dotted path of a scikit-learn compatible class or a pyspark.ml "
                                                    "one; default: HistGradientBoostingClassifier/Regressor")
    params: dict[str, ParamValue] = Field(default_factory=dict, description="the estimator's parameters")
    search: SearchSettings | None = Field(None, description="hyperparameter search (scikit-learn); None: off")
    max_train_rows: int = Field(2_000_000, ge=1, description="scikit-learn: above this, a seeded hash sample")

    @model_validator(mode="after")
    def _bucketize_numeric_only(self) -> "ModelSettings":
        unknown = sorted(set(self.preprocessing.bucketize) - set(self.numeric_features))
        if unknown:
            raise ValueError(f"preprocessing.bucketize: {unknown} are not numeric_features")
        return self



class ScoreSettings(_Section):
    """Batch scoring of `windows.score` into `table`."""

    table: TableName = "predictions"
    arrow_batch_rows: int = Field(100_000, ge=1_000)


class CostMatrix(_Section):
    """Cost of each decision outcome per row; a negative cost is a business value."""

    true_positive: float = 0.0
    false_positive: float = 1.0
    false_negative: float = 5.0
    true_negative: float = 0.0


class UnitCosts(_Section):
    """Regression: cost per unit of under- and over-prediction (e.g. a lost sale vs stock left over)."""

    under: float = Field(ge=0)
    over: float = Field(ge=0)


class ObjectiveSettings(_Section):
    """What a decision costs. Binary: the cost matrix, with the threshold that minimises it subject
    to the constraints; multiclass: `class_costs` (true class -> predicted class -> cost; unlisted
    pairs cost 0 when right, 1 when wrong), which also picks the predicted class; regression:
    `unit_costs` of under- and over-prediction."""

    costs: CostMatrix = Field(default_factory=CostMatrix)
    class_costs: dict[str, dict[str, float]] | None = None
    unit_costs: UnitCosts | None = None
    min_recall: float | None = Field(None, ge=0, le=1)
    max_positive_rate: float | None = Field(None, ge=0, le=1, description="budget: share of rows flagged")
    score_buckets: int = Field(1000, ge=10, le=100_000, description="threshold resolution: 1/score_buckets")


class SliceSettings(_Section):
    """Metric per slice value; slices with `min_rows` rows worse than overall by `max_gap` are flagged."""

    columns: list[str] = Field(default_factory=list, description="dataset columns to slice by")
    min_rows: int = Field(200, ge=1)
    metric: str | None = Field(None, description="a metric of the task (default: recall, accuracy or rmse)")
    max_gap: float = Field(0.2, ge=0)


class GateSettings(_Section):
    """Champion/challenger: promote when the primary metric improves by `min_improvement` (in its
    direction) and nothing is violated."""

    challenger_alias: str = "challenger"
    min_improvement: float = Field(0.0, ge=0)
    refuse_flagged_slices: bool = True


class EvaluationSettings(_Section):
    """How the challenger is judged on `windows.evaluate` (or the validation split of `windows.train`)."""

    primary_metric: str | None = Field(None, description="the gate's metric; default: expected_cost (binary, or "
                                                         "with costs), else log_loss (multiclass), rmse (regression)")
    objective: ObjectiveSettings = Field(default_factory=ObjectiveSettings)
    slices: SliceSettings = Field(default_factory=SliceSettings)
    gate: GateSettings = Field(default_factory=GateSettings)


class CascadeSettings(_Section):
    """Two-stage model: stage A is the task's label; stage B, trained on the rows whose label is
    positive, predicts `stage_b_label` (a SQL expression over the dataset row)."""

    registered_name: str | None = Field(None, description="default: <project>-cascade")
    stage_b_label: SqlExpression | None = None
    threshold_a: float = Field(0.5, ge=0, le=1)
    threshold_b: float = Field(0.5, ge=0, le=1)
    table: TableName = "cascade_predictions"


class ExperimentSettings(_Section):
    """A/B analysis: assignment and outcome tables, the declared split, significance levels."""

    name: str = "threshold-ab"
    assignments_table: TableName = "ab_assignments"
    outcomes_table: TableName = "ab_outcomes"
    results_table: TableName = "ab_results"
    control: str = "A"
    expected_split: dict[str, float] = Field(default_factory=lambda: {"A": 0.5, "B": 0.5})
    alpha: float = Field(0.05, gt=0, lt=1)
    srm_alpha: float = Field(0.001, gt=0, lt=1)
    metrics: dict[str, Literal["proportion", "mean"]] = Field(
        default_factory=lambda: {"correct": "proportion", "cost": "mean"},
        description="outcome column -> two-proportion z-test (0/1 values) or Welch t-test")
    simulate: bool = Field(True, description="first write simulated tables: champion at each variant's threshold")
    simulated_thresholds: dict[str, float] = Field(default_factory=lambda: {"A": 0.5, "B": 0.3})

    @model_validator(mode="after")
    def _control_is_a_variant(self) -> "ExperimentSettings":
        if self.control not in self.expected_split:
            raise ValueError(f"control {self.control!r} is not in expected_split {sorted(self.expected_split)}")
        if self.simulate and set(self.simulated_thresholds) != set(self.expected_split):
            raise ValueError(f"simulated_thresholds {sorted(self.simulated_thresholds)} must name the variants "
                             f"of expected_split {sorted(self.expected_split)}")
        return self


class StepSettings(_Section):
    """One pipeline step: the steps it waits for and Spark conf set while it runs."""

    depends_on: list[str] = Field(default_factory=list)
    spark_conf: dict[str, str | int | float | bool] = Field(default_factory=dict)


class PipelineSettings(_Section):
    """The step DAG; leave `steps` out to run every known step in order."""

    steps: dict[str, StepSettings] | None = None


class DriftThresholds(_Section):
    """Drift when a distance reaches its threshold, or a test's p-value falls below `p_value`."""

    psi: float = Field(0.2, gt=0)
    jensen_shannon: float = Field(0.1, gt=0, le=1)
    wasserstein_normed: float = Field(0.1, gt=0)
    p_value: float = Field(0.05, gt=0, lt=1)


class RetrainTrigger(_Section):
    """When to retrain: the latest window's drifted-feature share, or a live metric of the task worse
    than `worse_than` (in the metric's direction) in `breaches` of the last `lookback` windows."""

    drift_share: float | None = Field(0.5, gt=0, le=1)
    metric: str | None = Field(None, description="a metric of the task, e.g. auc or rmse; None: no metric rule")
    worse_than: float | None = None
    breaches: int = Field(2, ge=1)
    lookback: int = Field(5, ge=1)
    retrain: bool = Field(False, description="run the train step when the trigger fires")

    @model_validator(mode="after")
    def _breaches_fit_lookback(self) -> "RetrainTrigger":
        if self.breaches > self.lookback:
            raise ValueError(f"breaches ({self.breaches}) exceeds lookback ({self.lookback})")
        if (self.metric is None) != (self.worse_than is None):
            raise ValueError("metric and worse_than go together")
        return self


class MonitorSettings(_Section):
    """Drift of features and predictions per window against the training data, live metrics, retrain trigger."""

    drift_table: TableName = "drift_metrics"
    live_metrics_table: TableName = "live_metrics"
    plots_dir: RelativeDir = "monitor"
    bins: int = Field(10, ge=2, le=50, description="quantile bins for PSI and Jensen-Shannon")
    fine_bins: int = Field(100, ge=10, le=1000, description="quantile bins for KS and Wasserstein")
    max_categories: int = Field(30, ge=1, description="categories kept per column; the rest are 'other'")
    stat_test_max_rows: int = Field(1000, ge=1, description="at most this many rows: a test decides, else a distance")
    quantile_accuracy: int = Field(10_000, ge=100)
    thresholds: DriftThresholds = Field(default_factory=DriftThresholds)
    trigger: RetrainTrigger = Field(default_factory=RetrainTrigger)
    plot_features: int = Field(6, ge=1, le=12)



class RetentionSettings(_Section):
    """How long lakeforge's Delta tables keep old versions readable (table properties set at creation).

    Delta refuses time travel beyond ``deleted_file_retention_days``, so it bounds how long a registered
    model's training data can be replayed; ``lakeforge vacuum`` uses it as its default retention.
    """

    log_retention_days: int = Field(365, ge=1)
    deleted_file_retention_days: int = Field(365, ge=1)

class LakeforgeConfig(_Section):
    """The whole pipeline definition."""

    project: str = Field(description="names the MLflow experiment, the registered model, the Spark app")
    storage_root: Annotated[str, AfterValidator(_no_credentials)] = Field(
        min_length=1, description="a local folder (relative to the cwd) or a URI: file:///..., s3a://bucket/lake, ...")
    seed: int = 42
    spark: SparkSettings = Field(default_factory=SparkSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    landing: LandingSettings = Field(default_factory=LandingSettings)
    sources: dict[str, SourceSettings]
    dataset: DatasetSettings
    task: TaskSettings
    features: dict[str, FeatureViewSettings] = Field(default_factory=dict)
    windows: WindowsSettings
    split: SplitSettings = Field(default_factory=SplitSettings)
    model: ModelSettings
    score: ScoreSettings = Field(default_factory=ScoreSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    cascade: CascadeSettings = Field(default_factory=CascadeSettings)
    experiment: ExperimentSettings = Field(default_factory=ExperimentSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    _source_names = field_validator("sources")(lambda sources: _check_names(sources, "source names"))
    _view_names = field_validator("features")(lambda views: _check_names(views, "feature view names"))

    @model_validator(mode="before")
    @classmethod
    def _project_defaults(cls, data: Any) -> Any:
        """Names left out default to the project's: experiment, app, registered models."""
        if not isinstance(data, dict) or not isinstance(data.get("project"), str):
            return data
        project = data["project"]
        data = dict(data)
        for section, key, value in (("mlflow", "experiment", project), ("spark", "app_name", project),
                                    ("model", "registered_name", project),
                                    ("cascade", "registered_name", f"{project}-cascade")):
            if isinstance(data.get(section, {}), dict):
                data[section] = {key: value, **data.get(section, {})}
        return data

    @model_validator(mode="after")
    def _sources_exist(self) -> "LakeforgeConfig":
        spine = self.dataset.spine.source
        if spine not in self.sources:
            raise ValueError(f"dataset.spine.source: '{spine}' is not a source ({', '.join(self.sources)})")
        for name, view in self.features.items():
            named = [view.source] if view.source else list(view.inputs or [])
            unknown = [s for s in named if s not in self.sources and s != "spine"]
            if unknown:
                raise ValueError(f"features.{name}: source {unknown[0]!r} is not a source "
                                 f"({', '.join([*self.sources, 'spine'])})")
        clash = sorted(set(self.features) & set(self.sources))
        if clash:
            raise ValueError(f"features: view names {clash} are also source names; use other names")
        return self

    @model_validator(mode="after")
    def _task_fits(self) -> "LakeforgeConfig":
        """The estimator, its parameters and every metric name suit `task.type`."""
        from lakeforge.modeling.estimator import estimator_problems
        from lakeforge.tasks.catalog import greater_is_better

        task = self.task.type
        search = self.model.search
        problems = estimator_problems(task, self.estimator, self.model.params, search.grid if search else {})
        metrics = {"evaluation.primary_metric": self.evaluation.primary_metric,
                   "evaluation.slices.metric": self.evaluation.slices.metric,
                   "model.search.metric": search.metric if search else None,
                   "monitor.trigger.metric": self.monitor.trigger.metric}
        for key, metric in metrics.items():
            try:
                if metric is not None:
                    greater_is_better(task, metric)
            except ValueError as error:
                problems[key] = str(error)
        objective = self.evaluation.objective
        for key, value, needs in (("class_costs", objective.class_costs, "multiclass_classification"),
                                  ("unit_costs", objective.unit_costs, "regression")):
            if value is not None and task != needs:
                problems[f"evaluation.objective.{key}"] = f"applies to task.type {needs}, not {task}"
        if self.cascade.stage_b_label is not None and task != "binary_classification":
            problems["cascade.stage_b_label"] = f"the cascade's stage A is binary; task.type is {task}"
        if problems:
            raise ValueError("\n  ".join(f"{key}: {message}" for key, message in problems.items()))
        return self

    @property
    def estimator(self) -> str:
        """`model.estimator`, or the task's default."""
        from lakeforge.tasks.catalog import DEFAULT_ESTIMATOR

        return self.model.estimator or DEFAULT_ESTIMATOR[self.task.type]

    @property
    def primary_metric(self) -> str:
        """The gate's metric: `evaluation.primary_metric`, else expected cost where costs are set, else the task's."""
        from lakeforge.tasks.catalog import DEFAULT_PRIMARY_METRIC

        objective = self.evaluation.objective
        if self.evaluation.primary_metric:
            return self.evaluation.primary_metric
        if objective.class_costs or objective.unit_costs:
            return "expected_cost"
        return DEFAULT_PRIMARY_METRIC[self.task.type]

    @model_validator(mode="after")
    def _no_leakage(self) -> "LakeforgeConfig":
        features = self.model.numeric_features + self.model.categorical_features + self.model.text_features
        leaked = sorted(set(features) & set(self.task.leakage_columns) | set(RESERVED_COLUMNS) & set(features))
        if leaked:
            raise ValueError(f"model features {leaked} leak the label (see task.leakage_columns; "
                             f"{', '.join(RESERVED_COLUMNS)} are the dataset's own columns)")
        return self

    @property
    def tracking_uri(self) -> str:
        """`mlflow.tracking_uri`, else MLFLOW_TRACKING_URI, else sqlite in a local storage root."""
        uri = self.mlflow.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if uri:
            return uri
        local = storage.local_path(self.storage_root)
        if local is None:
            raise ConfigError(f"mlflow.tracking_uri: storage_root {self.storage_root} is not a local folder, so the "
                              f"default sqlite store cannot live there; set mlflow.tracking_uri or MLFLOW_TRACKING_URI")
        return f"sqlite:///{os.path.join(local, 'mlflow.db')}"

    @property
    def registry_uri(self) -> str:
        """`mlflow.registry_uri`, else MLFLOW_REGISTRY_URI, else the tracking URI."""
        return self.mlflow.registry_uri or os.environ.get("MLFLOW_REGISTRY_URI") or self.tracking_uri

    def location(self, *parts: str) -> str:
        """A location under `storage_root`: a URI stays a URI, a plain path is made absolute.

        Anything that would resolve outside the storage root (``..``, an absolute part) is a ConfigError:
        the keys naming tables and folders are checked when the config is read, this is the backstop.
        """
        location = storage.join(self.storage_root, *parts)
        if not storage.within(self.storage_root, location):
            raise ConfigError(f"{'/'.join(parts)!r} resolves to {location}, outside storage_root "
                              f"{self.storage_root}; names of tables, runs and folders stay under it")
        return location

    @property
    def landing_dir(self) -> str:
        """Where sources' relative paths resolve: `landing.dir` under the storage root, unless absolute or a URI."""
        if storage.is_uri(self.landing.dir) or Path(self.landing.dir).is_absolute():
            return self.landing.dir
        return self.location(self.landing.dir)

    def source_path(self, name: str) -> str:
        """Where source `name`'s files are: its `path` if absolute or a URI, else under the landing dir."""
        path = self.sources[name].path
        if storage.is_uri(path) or Path(path).is_absolute():
            return path
        return storage.join(self.landing_dir, path)

    def table_path(self, table: str) -> str:
        """Location of the Delta table called `table` (a path or URI, as Spark takes it)."""
        return self.location("delta", table)

    def fingerprint(self) -> str:
        """Stable hash of the resolved configuration."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _is_spark_conf(path: list[str]) -> bool:
    """`spark.conf` and `pipeline.steps.<step>.spark_conf`: mappings keyed by dotted Spark conf names."""
    return path == ["spark", "conf"] or (len(path) == 4 and path[:2] == ["pipeline", "steps"] and path[3] == "spark_conf")


def _set_dotted(data: dict[str, Any], dotted_key: str, value: Any) -> None:
    """Set ``a.b.c`` in `data`; under a Spark conf section the rest is one Spark conf name
    (``spark.conf.spark.sql.shuffle.partitions`` sets ``spark.sql.shuffle.partitions``)."""
    parts = dotted_key.split(".")
    node, walked = data, []
    while len(parts) > 1 and not _is_spark_conf(walked):
        part = parts.pop(0)
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted_key!r}: {part!r} is not a section")
        walked.append(part)
    node[".".join(parts)] = value


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> LakeforgeConfig:
    """Read a YAML config, apply dotted-key `overrides` (e.g. ``{"seed": 7}``) and validate it."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    return parse_config(data, source=str(path))


def parse_config(data: dict[str, Any], source: str = "<config>") -> LakeforgeConfig:
    """Validate a config mapping; errors name each offending key by its dotted path."""
    try:
        return LakeforgeConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            # whole-config checks name their keys themselves
            problems.append(f"  {key}: {message}" if key else f"  {message.removeprefix('Value error, ')}")
        raise ConfigError(f"{source}: invalid configuration\n" + "\n".join(problems)) from None
