"""The hand-coded flights features step that the flights example's YAML replaced (commit 816d13e),
kept as the baseline of `benchmarks/features_bench.py`: the same feature tables computed by hand,
MERGEd with the same store, joined with the same point-in-time join and written the same way.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeforge.config import LakeforgeConfig
from lakeforge.features.store import materialize, record
from lakeforge.features.retrieval import point_in_time_join
from lakeforge.features.views import ViewTable
from lakeforge.ingest import bronze_table
from lakeforge.tables import TableVersion, latest_version, read_pinned
from lakeforge.tracking import log_tables, step_run

WEATHER_COLUMNS = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib"]
PLANE_COLUMNS = ["plane_year", "plane_seats", "plane_engines", "plane_engine", "plane_description"]
TABLES = {
    "legacy_weather_by_origin": ViewTable("legacy_weather_by_origin", ("origin",), 3 * 3600, False, tuple(WEATHER_COLUMNS)),
    "legacy_plane_attributes": ViewTable("legacy_plane_attributes", ("tailnum",), None, False, tuple(PLANE_COLUMNS)),
    "legacy_carrier_daily_delays": ViewTable("legacy_carrier_daily_delays", ("carrier",), 24 * 3600, False,
                                             ("carrier_flights_7d", "carrier_delay_rate_7d")),
    "legacy_route_daily_delays": ViewTable("legacy_route_daily_delays", ("origin", "dest"), 24 * 3600, False,
                                           ("route_flights_7d", "route_delay_rate_7d")),
}


def labelled_flights(flights: DataFrame) -> DataFrame:
    return (flights.where(F.col("dep_time").isNotNull() & F.col("arr_delay").isNotNull())
            .withColumn("flight_id", F.format_string("%04d%02d%02d-%s%d-%s-%04d", "year", "month", "day", "carrier",
                                                     "flight", "origin", "sched_dep_time"))
            .withColumn("delayed", (F.col("arr_delay") > 15).cast("int")))


def weather_rows(weather: DataFrame) -> DataFrame:
    return weather.select("origin", F.col("time_hour").alias("event_time"), *WEATHER_COLUMNS).where(
        F.col("event_time").isNotNull())


def plane_rows(planes: DataFrame) -> DataFrame:
    return planes.select(
        "tailnum", F.col("year").alias("plane_year"), F.col("seats").alias("plane_seats"),
        F.col("engines").alias("plane_engines"), F.col("engine").alias("plane_engine"),
        F.lower(F.concat_ws(" ", "manufacturer", "model", "engine", "type")).alias("plane_description"),
    ).dropDuplicates(["tailnum"])


def past_delay_rates(labelled: DataFrame, keys: list[str], prefix: str, days: int = 7) -> DataFrame:
    daily = labelled.groupBy(*keys, F.make_date("year", "month", "day").alias("_day")).agg(
        F.count(F.lit(1)).alias("_flights"), F.sum("delayed").alias("_delayed"))
    forward = daily.withColumn("_ahead", F.explode(F.sequence(F.lit(1), F.lit(days))))
    return (forward.groupBy(*keys, F.date_add("_day", F.col("_ahead")).alias("_for_day"))
            .agg(F.sum("_flights").alias("_flights"), F.sum("_delayed").alias("_delayed"))
            .select(*keys, F.col("_for_day").cast("timestamp").alias("event_time"),
                    F.col("_flights").alias(f"{prefix}_flights_{days}d"),
                    (F.col("_delayed") / F.col("_flights")).alias(f"{prefix}_delay_rate_{days}d")))


def run(spark: SparkSession, config: LakeforgeConfig, table: str = "legacy_flight_features") -> int:
    """The old features step on the config's bronze tables; returns the rows written to `table`."""
    with step_run(config, "features-legacy"):
        bronze = {name: read_pinned(spark, bronze_table(name), config.table_path(bronze_table(name)))[0]
                  for name in ("flights", "weather", "planes")}
        labelled = labelled_flights(bronze["flights"])
        rows = {"legacy_weather_by_origin": weather_rows(bronze["weather"]),
                "legacy_plane_attributes": plane_rows(bronze["planes"]),
                "legacy_carrier_daily_delays": past_delay_rates(labelled, ["carrier"], "carrier"),
                "legacy_route_daily_delays": past_delay_rates(labelled, ["origin", "dest"], "route")}
        written = [materialize(spark, config, TABLES[name], frame) for name, frame in rows.items()]
        pinned = {t.name: (TABLES[t.name], read_pinned(spark, t.name, t.path, t.version)[0]) for t in written}
        spine = labelled.withColumn("sched_departure", F.col("time_hour"))
        joined = point_in_time_join(spine, pinned, spine_time="sched_departure")
        features = joined.select(
            "flight_id", "year", "month", "day", F.dayofweek(F.make_date("year", "month", "day")).alias("day_of_week"),
            "sched_departure", F.col("hour").alias("sched_dep_hour"),
            (F.col("sched_arr_time") / 100).cast("int").alias("sched_arr_hour"), "carrier", "origin", "dest",
            "distance", *[c for t in TABLES.values() for c in t.features], *[f"{name}_found" for name in TABLES],
            (F.col("year") - F.col("plane_year")).alias("plane_age"), "delayed")
        path = config.table_path(table)
        features.write.format("delta").mode("overwrite").option("overwriteSchema", True).partitionBy("month").save(path)
        output = TableVersion(table, path, latest_version(spark, path))
        record(spark, config, written, output)
        log_tables([*written, output], "output")
    return read_pinned(spark, table, path, output.version)[0].count()
