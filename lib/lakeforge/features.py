"""Flight features: weather as of the scheduled departure hour at the origin, plane attributes.

Only what is known before departure is used: schedule, route, carrier, the latest weather
observation at or before the scheduled hour, and the plane's static attributes.
"""
from __future__ import annotations

import mlflow
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeforge.asof import asof_join
from lakeforge.config import LakeforgeConfig, TargetSettings
from lakeforge.errors import StepError
from lakeforge.ingest import bronze_table
from lakeforge.results import StepResult
from lakeforge.tables import TableVersion, last_commit_metrics, latest_version, read_pinned
from lakeforge.tracking import log_tables, step_run

WEATHER_COLUMNS = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib"]


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


def weather_as_of_departure(flights: DataFrame, weather: DataFrame, max_staleness_hours: int) -> DataFrame:
    """Join the latest weather at the origin at or before each flight's scheduled hour."""
    observations = weather.select(
        "origin", F.col("time_hour").alias("weather_time"), *WEATHER_COLUMNS
    ).where(F.col("weather_time").isNotNull())
    return asof_join(
        flights,
        observations,
        left_id="flight_id",
        keys=["origin"],
        left_time="time_hour",
        right_time="weather_time",
        max_age_seconds=max_staleness_hours * 3600,
        matched_flag="weather_found",
    )


def build_flight_features(
    flights: DataFrame, weather: DataFrame, planes: DataFrame, target: TargetSettings, max_staleness_hours: int
) -> DataFrame:
    """The feature table: one row per flight that took place, keyed by `flight_id`."""
    labelled = labelled_flights(flights, target)
    with_weather = weather_as_of_departure(labelled, weather, max_staleness_hours)
    plane_attributes = planes.select(
        "tailnum",
        F.col("year").alias("plane_year"),
        F.col("seats").alias("plane_seats"),
        F.col("engines").alias("plane_engines"),
        F.col("engine").alias("plane_engine"),
    ).dropDuplicates(["tailnum"])
    return (
        with_weather.join(plane_attributes, on="tailnum", how="left")
        .select(
            "flight_id",
            "year",
            "month",
            "day",
            F.dayofweek(F.make_date("year", "month", "day")).alias("day_of_week"),
            F.col("time_hour").alias("sched_departure"),
            F.col("hour").alias("sched_dep_hour"),
            (F.col("sched_arr_time") / 100).cast("int").alias("sched_arr_hour"),
            "carrier",
            "origin",
            "dest",
            "distance",
            *WEATHER_COLUMNS,
            "weather_found",
            (F.col("year") - F.col("plane_year")).alias("plane_age"),
            "plane_seats",
            "plane_engines",
            "plane_engine",
            target.name,
        )
    )


def run(spark: SparkSession, config: LakeforgeConfig) -> StepResult:
    """Build the flight feature table from pinned versions of the bronze tables."""
    for needed in ("flights", "weather", "planes"):
        if needed not in config.sources:
            raise StepError(f"features step: source '{needed}' is missing from the config's sources")
    with step_run(config, "features"):
        inputs = {name: read_pinned(spark, bronze_table(name), config.table_path(bronze_table(name)))
                  for name in ("flights", "weather", "planes")}
        features = build_flight_features(
            inputs["flights"][0], inputs["weather"][0], inputs["planes"][0],
            config.target, config.features.weather_max_staleness_hours,
        )
        path = config.table_path(config.features.table)
        features.write.format("delta").mode("overwrite").option("overwriteSchema", True).partitionBy("month").save(path)
        output = TableVersion(config.features.table, path, latest_version(spark, path))
        rows_out = int(last_commit_metrics(spark, path).get("numOutputRows", 0))
        log_tables([version for _, version in inputs.values()], "input")
        log_tables([output], "output")
        mlflow.log_metric("rows_written", rows_out)
    rows_in = int(inputs["flights"][0].count())
    return StepResult("features", rows_in=rows_in, rows_out=rows_out,
                      details={"table": f"{output.name} v{output.version}"})
