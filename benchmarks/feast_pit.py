"""Feast's side of the point-in-time join comparison, run by `benchmarks/peers.py` in Feast's own
virtualenv (`benchmarks/feast-venv.sh`): it imports feast and pyspark, never lakeforge.

The spine and feature tables are the Parquet files `benchmarks/pit_join_bench.generate` wrote under
`--data` (``spine``: id, key, t; each feature table: key, event_time, ``<table>_value``). A local file
registry under `--work` declares one entity (``key``) and one feature view per table (TTL
`--ttl-hours`) on a `SparkSource` over that table's files; `get_historical_features` with the spine as
entity rows (``t`` as ``event_timestamp``), then ``to_spark_df()``.

- ``--sample-every K --sample-out PATH``: the spine rows with ``id % K == 0``, retrieved and written as
  Parquet (id, one column per feature), for peers.py to compare with lakeforge's before any timing.
- ``--rounds N --out FILE``: one warm-up retrieval on the first `--warm-up-ids` spine ids (not timed), then
  N timed retrievals of the whole spine into Spark's ``noop`` sink; JSON to FILE (seconds of each round,
  the best, the machine's load during it, versions).

    FEAST_PYTHON benchmarks/feast_pit.py --data DIR --work DIR --spark-conf JSON --tables ft_a,ft_b
        --ttl-hours 168 (--sample-every 500 --sample-out DIR | --rounds 2 --warm-up-ids 10000 --out FILE)
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks.timing: standard library only

import feast  # noqa: E402
import pyspark  # noqa: E402
from feast import Entity, FeatureStore, FeatureView, Field, RepoConfig  # noqa: E402
from feast.infra.offline_stores.contrib.spark_offline_store.spark import SparkOfflineStoreConfig  # noqa: E402
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource  # noqa: E402
from feast.types import Float64  # noqa: E402
from feast.value_type import ValueType  # noqa: E402
from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from benchmarks.timing import best_of, machine, now  # noqa: E402


def feature_store(data: Path, work: Path, tables: list[str], ttl_hours: int, spark_conf: dict[str, str]) -> FeatureStore:
    """A Feast repo (local registry, Spark offline store) over the generated Parquet files; applied."""
    work.mkdir(parents=True, exist_ok=True)
    config = RepoConfig(project="lakeforge_peers", provider="local", registry=str(work / "registry.db"),
                        offline_store=SparkOfflineStoreConfig(spark_conf=spark_conf),
                        online_store={"type": "sqlite", "path": str(work / "online.db")},
                        entity_key_serialization_version=3, repo_path=work)
    store = FeatureStore(config=config)
    key = Entity(name="key", join_keys=["key"], value_type=ValueType.INT64)
    views = [FeatureView(name=name, entities=[key], ttl=timedelta(hours=ttl_hours),
                         schema=[Field(name=f"{name}_value", dtype=Float64)],
                         source=SparkSource(name=f"{name}_source", path=str(data / name), file_format="parquet",
                                            timestamp_field="event_time"))
             for name in tables]
    store.apply([key, *views])
    return store


def retrieve(store: FeatureStore, spine: DataFrame, tables: list[str]) -> DataFrame:
    """Every spine row's id with each table's feature as of its ``t`` (Feast's point-in-time join); the
    same columns as lakeforge's side (`pit_join_bench.lakeforge_join`)."""
    entity_rows = spine.withColumnRenamed("t", "event_timestamp")
    job = store.get_historical_features(entity_df=entity_rows, features=[f"{n}:{n}_value" for n in tables])
    return job.to_spark_df().select("id", *[f"{n}_value" for n in tables])


def to_noop(frame: DataFrame) -> None:
    frame.write.format("noop").mode("overwrite").save()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="where pit_join_bench.generate wrote Parquet")
    parser.add_argument("--work", type=Path, required=True, help="Feast's registry and online store")
    parser.add_argument("--spark-conf", type=json.loads, default={}, help="JSON: the Spark conf, as lakeforge's side")
    parser.add_argument("--tables", default="ft_a,ft_b")
    parser.add_argument("--ttl-hours", type=int, default=168)
    parser.add_argument("--sample-every", type=int, default=0)
    parser.add_argument("--sample-out", type=Path)
    parser.add_argument("--rounds", type=int, default=0)
    parser.add_argument("--warm-up-ids", type=int, default=10_000, help="spine ids < this: the untimed warm-up")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=RuntimeWarning, message=".*spark offline store.*")
    tables = args.tables.split(",")
    conf = {k: str(v) for k, v in args.spark_conf.items()}
    builder = SparkSession.builder.appName("feast-pit")
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()  # Feast's offline store takes this active session
    spark.sparkContext.setLogLevel("ERROR")
    store = feature_store(args.data, args.work, tables, args.ttl_hours, conf)
    spine = spark.read.parquet(str(args.data / "spine"))
    if args.sample_every:
        sample = spine.where(F.col("id") % args.sample_every == 0)
        retrieve(store, sample, tables).write.mode("overwrite").parquet(str(args.sample_out))
        print(f"[feast] sample of the spine (id % {args.sample_every} == 0) retrieved to {args.sample_out}", flush=True)
    if args.rounds:
        to_noop(retrieve(store, spine.where(F.col("id") < args.warm_up_ids), tables))  # warm-up, not timed
        timing = best_of({"feast": lambda: to_noop(retrieve(store, spine, tables))}, args.rounds,
                         log=lambda line: print(f"[feast] {line}", flush=True))["feast"]
        report = {"when": now(), "feast": feast.__version__, "pyspark": pyspark.__version__,
                  "machine": machine(master=spark.sparkContext.master), **timing}
        args.out.write_text(json.dumps(report, indent=2))
    spark.stop()


if __name__ == "__main__":
    main()
