"""Flight features: the feature tables computed from bronze, and the training/scoring dataset.

Only what is known before departure is used: schedule, route, carrier, the origin's latest weather
at or before the scheduled hour, the plane's static attributes (including a free-text description)
and each carrier's and route's delay rate over the 7 days before the departure day.
"""
from __future__ import annotations

from collections.abc import Callable

import mlflow
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeforge.config import FeatureTableSettings, LakeforgeConfig, TargetSettings
from lakeforge.errors import StepError
from lakeforge.features.retrieval import point_in_time_join
from lakeforge.features.store import materialize, read_feature_tables, record
from lakeforge.ingest import bronze_table
from lakeforge.results import StepResult
from lakeforge.tables import TableVersion, last_commit_metrics, latest_version, read_pinned
from lakeforge.tracking import log_tables, step_run

WEATHER_COLUMNS = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib"]
ROLLING_DAYS = 7


def flight_id(df: DataFrame) -> F.Column:
    """A readable unique key: date, carrier, flight number, origin and scheduled departure."""
    return F.format_string(
        "%04d%02d%02d-%s%d-%s-%04d",
        "year", "month", "day", "carrier", "flight", "origin", "sched_dep_time",
    )


def labelled_flights(flights: DataFrame, target: TargetSettings) -> DataFrame:
    """Flights that took place (not cancelled, arrival known) with the binary label."""
    return (
        flights.where(F.col("dep_time").isNotNull() & F.col(target.column).isNotNull())
        .withColumn("flight_id", flight_id(flights))
        .withColumn(target.name, (F.col(target.column) > target.threshold).cast("int"))
    )


def weather_rows(weather: DataFrame) -> DataFrame:
    """Feature table `weather_by_origin`: one row per origin and observation hour."""
    return weather.select("origin", F.col("time_hour").alias("weather_time"), *WEATHER_COLUMNS).where(
        F.col("weather_time").isNotNull())


def plane_rows(planes: DataFrame) -> DataFrame:
    """Feature table `plane_attributes`: static attributes and a free-text description per plane."""
    return planes.select(
        "tailnum",
        F.col("year").alias("plane_year"),
        F.col("seats").alias("plane_seats"),
        F.col("engines").alias("plane_engines"),
        F.col("engine").alias("plane_engine"),
        F.lower(F.concat_ws(" ", "manufacturer", "model", "engine", "type")).alias("plane_description"),
    ).dropDuplicates(["tailnum"])


def past_delay_rates(labelled: DataFrame, keys: list[str], prefix: str, label: str, days: int = ROLLING_DAYS) -> DataFrame:
    """Per `keys` and day D (event time: D at 00:00), flights and delay rate over days D-`days`..D-1.

    Each day's totals are copied forward to the `days` following days and summed there, so day D
    only ever sees earlier days: no window, one aggregation.
    """
    daily = labelled.groupBy(*keys, F.make_date("year", "month", "day").alias("_day")).agg(
        F.count(F.lit(1)).alias("_flights"), F.sum(label).alias("_delayed"))
    forward = daily.withColumn("_ahead", F.explode(F.sequence(F.lit(1), F.lit(days))))
    return (
        forward.groupBy(*keys, F.date_add("_day", F.col("_ahead")).alias("_for_day"))
        .agg(F.sum("_flights").alias("_flights"), F.sum("_delayed").alias("_delayed"))
        .select(*keys, F.col("_for_day").cast("timestamp").alias("day_start"),
                F.col("_flights").alias(f"{prefix}_flights_{days}d"),
                (F.col("_delayed") / F.col("_flights")).alias(f"{prefix}_delay_rate_{days}d"))
    )


FeatureTableBuilder = Callable[[dict[str, DataFrame], DataFrame, TargetSettings], DataFrame]

FEATURE_TABLES: dict[str, FeatureTableBuilder] = {
    "weather_by_origin": lambda bronze, labelled, target: weather_rows(bronze["weather"]),
    "plane_attributes": lambda bronze, labelled, target: plane_rows(bronze["planes"]),
    "carrier_daily_delays": lambda bronze, labelled, target: past_delay_rates(labelled, ["carrier"], "carrier", target.name),
    "route_daily_delays": lambda bronze, labelled, target: past_delay_rates(labelled, ["origin", "dest"], "route", target.name),
}


def build_flight_features(
    labelled: DataFrame, tables: dict[str, tuple[FeatureTableSettings, DataFrame]], target: TargetSettings
) -> DataFrame:
    """The dataset: one row per flight that took place, keyed by `flight_id`, features as of departure.

    `tables` maps each of `FEATURE_TABLES` to its declaration and (pinned) rows.
    """
    spine = labelled.withColumn("sched_departure", F.col("time_hour"))
    joined = point_in_time_join(spine, tables, spine_time="sched_departure")
    features = [c for settings, _ in tables.values() for c in settings.features]
    return joined.select(
        "flight_id",
        "year",
        "month",
        "day",
        F.dayofweek(F.make_date("year", "month", "day")).alias("day_of_week"),
        "sched_departure",
        F.col("hour").alias("sched_dep_hour"),
        (F.col("sched_arr_time") / 100).cast("int").alias("sched_arr_hour"),
        "carrier",
        "origin",
        "dest",
        "distance",
        *features,
        *[f"{name}_found" for name in tables],
        (F.col("year") - F.col("plane_year")).alias("plane_age"),
        target.name,
    )


def run(spark: SparkSession, config: LakeforgeConfig) -> StepResult:
    """Materialize the feature tables from pinned bronze, then build the dataset from pinned feature tables."""
    for needed in ("flights", "weather", "planes"):
        if needed not in config.sources:
            raise StepError(f"features step: source '{needed}' is missing from the config's sources")
    with step_run(config, "features"):
        inputs = {name: read_pinned(spark, bronze_table(name), config.table_path(bronze_table(name)))
                  for name in ("flights", "weather", "planes")}
        bronze = {name: frame for name, (frame, _) in inputs.items()}
        labelled = labelled_flights(bronze["flights"], config.target)
        written = [materialize(spark, config, name, build(bronze, labelled, config.target))
                   for name, build in FEATURE_TABLES.items()]
        pinned = read_feature_tables(spark, config, list(FEATURE_TABLES), {t.name: t.version for t in written})
        features = build_flight_features(
            labelled, {name: (settings, rows) for name, (settings, rows, _) in pinned.items()}, config.target)
        path = config.table_path(config.features.table)
        features.write.format("delta").mode("overwrite").option("overwriteSchema", True).partitionBy("month").save(path)
        output = TableVersion(config.features.table, path, latest_version(spark, path))
        rows_out = int(last_commit_metrics(spark, path).get("numOutputRows", 0))
        record(spark, config, written, output)
        log_tables([version for _, version in inputs.values()] + written, "input")
        log_tables([*written, output], "output")
        mlflow.log_metric("rows_written", rows_out)
    rows_in = int(inputs["flights"][0].count())
    return StepResult("features", rows_in=rows_in, rows_out=rows_out,
                      details={"table": f"{output.name} v{output.version}"})
