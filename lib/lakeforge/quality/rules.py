"""Declarative quality rules, as written under ``sources.<name>.quality`` in the pipeline YAML.

Three scopes, by what evaluating them costs:

* ``row`` rules (not_null, range, allowed_values, regex) test every row; a failing row goes to the
  quarantine table with the rule's name. Their counts are aggregates of the one scan.
* ``scan`` rules (completeness, freshness, row_count) are aggregates of the same single scan.
* ``shuffle`` rules (unique, references, consistent) need a shuffle and run one query each.

Type castability is not a rule here: every column of a source is cast to its configured type and
unparsable values are quarantined by ingest itself.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


class _SparkFunctions:
    """``pyspark.sql.functions``, imported when a rule is evaluated: the config loads without pyspark."""

    def __getattr__(self, name: str) -> Any:
        from pyspark.sql import functions

        return getattr(functions, name)


F = _SparkFunctions()

Severity = Literal["warn", "fail"]
Status = Literal["pass", "warn", "fail"]


@dataclass(frozen=True)
class MetricResult:
    """One measured value of a rule on a table, with the verdict and the threshold it was held to."""

    table: str
    rule: str
    metric: str
    value: float | None
    status: Status
    expected: str = ""
    note: str = ""


@dataclass(frozen=True)
class RuleContext:
    """What rules are judged against besides the batch itself; `run_time` is naive UTC."""

    table: str
    run_time: datetime
    rows_read: int
    rows_good: int
    previous_rows: int | None = None  # rows of the table's newest batch before this one
    reference: Callable[[str], DataFrame] | None = None  # a source's rows of this run (else its table)
    reference_table: Callable[[str], DataFrame] | None = None  # a source's whole table, with this run's batch
    committed: Callable[[], DataFrame] | None = None  # this table's rows that this batch does not replace


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    scope: ClassVar[Literal["row", "scan", "shuffle"]]
    severity: Severity = "fail"

    @property
    def columns_used(self) -> list[str]:
        return [self.column] if hasattr(self, "column") else []

    @property
    def name(self) -> str:
        return f"{self.rule}({', '.join(self.columns_used)})"

    def result(self, ctx: RuleContext, metric: str, value: float | None, ok: bool, expected: str) -> MetricResult:
        return MetricResult(ctx.table, self.name, metric, value, "pass" if ok else self.severity, expected)


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


class _RowRule(_Rule):
    """A rule each row must pass; `max_ratio` is the share of rows that may fail before `severity`."""

    scope: ClassVar = "row"
    column: str
    max_ratio: float = Field(0.0, ge=0, le=1)

    def violation(self) -> Column:
        """True where a row breaks the rule (never null)."""
        return F.coalesce(self._violates(F.col(self.column)), F.lit(False))

    def _violates(self, value: Column) -> Column:
        raise NotImplementedError

    def aggregates(self, good: Column) -> dict[str, Column]:
        return {"violations": F.count_if(self.violation())}

    def evaluate(self, values: dict[str, Any], ctx: RuleContext) -> list[MetricResult]:
        ratio = _ratio(values["violations"], ctx.rows_read)
        return [
            self.result(ctx, "violations", values["violations"], ratio <= self.max_ratio, f"<= {self.max_ratio:.2%} of rows"),
        ]


class NotNull(_RowRule):
    rule: Literal["not_null"]

    def _violates(self, value: Column) -> Column:
        return value.isNull()


class InRange(_RowRule):
    """Non-null values lie within [min, max] (either bound may be left out); reports min and max too."""

    rule: Literal["range"]
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _has_bound(self) -> "InRange":
        if self.min is None and self.max is None:
            raise ValueError("a range rule needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self

    def _violates(self, value: Column) -> Column:
        below = value < self.min if self.min is not None else F.lit(False)
        above = value > self.max if self.max is not None else F.lit(False)
        return value.isNotNull() & (below | above)

    def aggregates(self, good: Column) -> dict[str, Column]:
        return {**super().aggregates(good), "min": F.min(self.column), "max": F.max(self.column)}

    def evaluate(self, values: dict[str, Any], ctx: RuleContext) -> list[MetricResult]:
        low, high = _number(values["min"]), _number(values["max"])
        extremes = []
        if self.min is not None:
            extremes.append(self.result(ctx, "min", low, low is None or low >= self.min, f">= {self.min}"))
        if self.max is not None:
            extremes.append(self.result(ctx, "max", high, high is None or high <= self.max, f"<= {self.max}"))
        return [*super().evaluate(values, ctx), *extremes]


class AllowedValues(_RowRule):
    rule: Literal["allowed_values"]
    values: list[str | int | float] = Field(min_length=1)

    def _violates(self, value: Column) -> Column:
        return value.isNotNull() & ~value.isin(self.values)


class Matches(_RowRule):
    """Non-null values match the Java regular expression `pattern` (use ^...$ to match whole values)."""

    rule: Literal["regex"]
    pattern: str

    def _violates(self, value: Column) -> Column:
        return value.isNotNull() & ~value.cast("string").rlike(self.pattern)


class Completeness(_Rule):
    """Share of non-null values of `column` among the rows written is at least `min_ratio`."""

    scope: ClassVar = "scan"
    rule: Literal["completeness"]
    column: str
    min_ratio: float = Field(ge=0, le=1)

    def aggregates(self, good: Column) -> dict[str, Column]:
        return {"non_null": F.count(F.when(good, F.col(self.column)))}

    def evaluate(self, values: dict[str, Any], ctx: RuleContext) -> list[MetricResult]:
        ratio = _ratio(values["non_null"], ctx.rows_good) if ctx.rows_good else 1.0
        return [self.result(ctx, "completeness", ratio, ratio >= self.min_ratio, f">= {self.min_ratio}")]


class Freshness(_Rule):
    """The newest `column` timestamp of the rows written is at most `max_age_hours` before the run time."""

    scope: ClassVar = "scan"
    rule: Literal["freshness"]
    column: str
    max_age_hours: float = Field(gt=0)

    def aggregates(self, good: Column) -> dict[str, Column]:
        return {"latest": F.max(F.when(good, F.unix_seconds(F.col(self.column).cast("timestamp"))))}

    def evaluate(self, values: dict[str, Any], ctx: RuleContext) -> list[MetricResult]:
        latest, now = values["latest"], ctx.run_time.replace(tzinfo=timezone.utc).timestamp()
        age = None if latest is None else (now - latest) / 3600
        ok = age is not None and age <= self.max_age_hours
        return [self.result(ctx, "age_hours", age, ok, f"<= {self.max_age_hours} h before {ctx.run_time:%Y-%m-%d %H:%M}")]


class RowCount(_Rule):
    """Rows written, relative to the rows of the table's newest earlier batch, lie in [min_ratio, max_ratio]."""

    scope: ClassVar = "scan"
    rule: Literal["row_count"]
    min_ratio: float = Field(0.0, ge=0)
    max_ratio: float | None = Field(None, gt=0)

    def aggregates(self, good: Column) -> dict[str, Column]:
        return {}

    def evaluate(self, values: dict[str, Any], ctx: RuleContext) -> list[MetricResult]:
        expected = f"in [{self.min_ratio}, {self.max_ratio or 'inf'}] x previous batch"
        if not ctx.previous_rows:
            return [self.result(ctx, "row_count_ratio", None, True, expected + " (no previous batch)")]
        ratio = ctx.rows_good / ctx.previous_rows
        ok = ratio >= self.min_ratio and (self.max_ratio is None or ratio <= self.max_ratio)
        return [self.result(ctx, "row_count_ratio", ratio, ok, expected)]


class Unique(_Rule):
    """No two rows written share a value of the key `columns`: within the batch, or with `across: table`
    within the whole table as it will be (its committed rows and the batch's)."""

    scope: ClassVar = "shuffle"
    rule: Literal["unique"]
    columns: list[str] = Field(min_length=1)
    across: Literal["batch", "table"] = "batch"

    @property
    def columns_used(self) -> list[str]:
        return self.columns

    @property
    def name(self) -> str:
        return f"unique({', '.join(self.columns)}{'; across table' if self.across == 'table' else ''})"

    def measure(self, good_rows: DataFrame, ctx: RuleContext) -> list[MetricResult]:
        """Rows whose key is shared, exactly; the key's 64-bit hash is grouped first, so a batch
        without duplicates (the usual case) costs one shuffle of 8 bytes a row."""
        if self.across == "table" and ctx.committed is not None:
            good_rows = good_rows.select(*self.columns).unionByName(ctx.committed().select(*self.columns))
        key_hash = F.xxhash64(*self.columns)
        shared = good_rows.groupBy(key_hash.alias("_key_hash")).count().where(F.col("count") > 1)
        if shared.isEmpty():  # equal keys have equal hashes: no shared hash, no duplicate
            return [self.result(ctx, "duplicate_rows", 0, True, "0")]
        candidates = good_rows.join(shared.select("_key_hash"), key_hash == F.col("_key_hash"), "left_semi")
        duplicated = (
            candidates.groupBy(*self.columns).count().where(F.col("count") > 1)
            .agg(F.coalesce(F.sum("count"), F.lit(0)).alias("rows")).head()["rows"]
        )
        return [self.result(ctx, "duplicate_rows", duplicated, duplicated == 0, "0")]


class References(_Rule):
    """Non-null `column` values exist in `to_column` (default: same name) of source `to_source`: in its
    batch of this run (else its table), or with `across: table` in its whole table with this run's batch.

    At most `max_ratio` of those rows may point nowhere.
    """

    scope: ClassVar = "shuffle"
    rule: Literal["references"]
    column: str
    to_source: str
    to_column: str | None = None
    max_ratio: float = Field(0.0, ge=0, le=1)
    across: Literal["batch", "table"] = "batch"

    @property
    def name(self) -> str:
        across = "; across table" if self.across == "table" else ""
        return f"references({self.column} -> {self.to_source}.{self.to_column or self.column}{across})"

    def measure(self, good_rows: DataFrame, ctx: RuleContext) -> list[MetricResult]:
        reference = ctx.reference_table if self.across == "table" else ctx.reference
        if reference is None:
            raise ValueError(f"rule {self.name} needs the rows of source '{self.to_source}'")
        known = (
            reference(self.to_source).select(F.col(self.to_column or self.column).alias(self.column))
            .distinct().withColumn("_known", F.lit(True))
        )
        counts = (
            good_rows.where(F.col(self.column).isNotNull()).select(self.column).join(known, self.column, "left")
            .agg(F.count(F.lit(1)).alias("rows"), F.count_if(F.col("_known").isNull()).alias("orphans")).head()
        )
        ratio = _ratio(counts["orphans"], counts["rows"])
        return [self.result(ctx, "orphan_ratio", ratio, ratio <= self.max_ratio, f"<= {self.max_ratio}")]


class Consistent(_Rule):
    """Rows sharing the `key` columns agree on `column` (e.g. the same features never get two labels)."""

    scope: ClassVar = "shuffle"
    rule: Literal["consistent"]
    key: list[str] = Field(min_length=1)
    column: str

    @property
    def columns_used(self) -> list[str]:
        return [*self.key, self.column]

    @property
    def name(self) -> str:
        return f"consistent({', '.join(self.key)} -> {self.column})"

    def measure(self, good_rows: DataFrame, ctx: RuleContext) -> list[MetricResult]:
        conflicts = (
            good_rows.groupBy(*self.key).agg(F.count_distinct(self.column).alias("values"))
            .where(F.col("values") > 1).count()
        )
        return [self.result(ctx, "conflicting_keys", conflicts, conflicts == 0, "0")]


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


QualityRule = Annotated[
    NotNull | InRange | AllowedValues | Matches | Completeness | Freshness | RowCount | Unique | References | Consistent,
    Field(discriminator="rule"),
]
