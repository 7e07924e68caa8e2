"""Peers side by side in one run: lakeforge against Feast, MLflow's spark_udf and plain writes.

    python -m benchmarks.peers --rows 1m [--only pit,scoring,ingest] [--rounds 2] [--feast-python PATH]

Every figure is printed as a ratio against a baseline measured in the same run, each side timed
alternately or back to back, best of `--rounds` (`benchmarks.timing`, which also records what else
the machine was doing during each best round):

- ``pit``: the point-in-time join of `benchmarks/pit_join_bench.py` (spine of ROWS rows, ROWS/100 keys,
  two feature tables of ROWS/10 rows, TTL 168 h), written once as Parquet, through lakeforge's feature
  views (`point_in_time_join`) in this process and through Feast's Spark offline store
  (`get_historical_features(...).to_spark_df()`, `benchmarks/feast_pit.py`) in Feast's own virtualenv
  (`benchmarks/feast-venv.sh`), same Spark settings, both into a ``noop`` sink. Before anything is
  timed, both retrieve a sample of the spine and must give the same matches (an AssertionError
  otherwise). Target: lakeforge >= 2x Feast.
- ``scoring``: ROWS generated flights ingested, featurized and a model trained (the flights example);
  on the scored months, the score step's path vs ``mlflow.pyfunc.spark_udf`` on the same registered
  model and rows (target >= 1.5x) and vs raw ``mapInPandas`` (target >= 0.9x); and the limit: the same
  model's ``predict_proba`` on the same rows as one pandas frame in one process on one core, no Spark.
- ``ingest``: the same ROWS flights landed as Parquet, JSON lines and CSV; for each, the ingest step
  with every quality rule vs a plain typed read + Delta write of the same files (target <= 1.25x for
  Parquet).

A JSON report goes to benchmarks/results/peers-<time>.json (`--out`); `python -m benchmarks.summary`
turns the reports into the README's table. Runs below 1M rows are marked ``smoke`` (not measurements).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from benchmarks import pit_join_bench
from benchmarks.scale import (PeakMemory, _label, noop_write, ingest_overhead, parse_scale, run_pipeline,
                              scale_config, scoring_overhead)
from benchmarks.summary import render_table
from benchmarks.timing import ROOT_PID, best_of, machine, now
from examples.flights.generate import write_landing
from lakeforge.config import LakeforgeConfig
from lakeforge.features.retrieval import event_time_column, point_in_time_join
from lakeforge.pipeline import session_for

REPO = Path(__file__).resolve().parents[1]
FEAST_SCRIPT = REPO / "benchmarks" / "feast_pit.py"
WORKLOADS = ("pit", "scoring", "ingest")
SMOKE_BELOW = 1_000_000
SAMPLE_ROWS = 20_000  # spine rows compared with Feast before timing (about)
WARM_UP_IDS = 10_000
PIT_TARGET, UDF_TARGET, RAW_TARGET, INGEST_TARGET = 2.0, 1.5, 0.9, 1.25


def default_feast_python() -> Path:
    """``$FEAST_VENV/bin/python``, else the virtualenv `feast-venv.sh` makes by default, beside the clone."""
    return Path(os.environ.get("FEAST_VENV", REPO.parent / "feast-venv")) / "bin" / "python"


def record(workload: str, size: str, lakeforge: dict, peer: dict, ratio: float, ratio_is: str, target: str,
           met: bool | None, **extra: object) -> dict:
    """One row of the summary: both sides (what ran, the figure, its timings and the machine's load)."""
    return {"workload": workload, "size": size, "lakeforge": lakeforge, "peer": peer, "ratio": ratio,
            "ratio_is": ratio_is, "target": target, "met": met, **extra}


# --- point-in-time join --------------------------------------------------------------------------------

def check_same_matches(ours: DataFrame, theirs: DataFrame, tables: dict[str, DataFrame]) -> dict:
    """Assert lakeforge's and Feast's retrievals of the same spine rows agree: same rows, and per table
    the same feature value (or both none). Where they differ, the only excuse accepted is a tie: the
    table holds Feast's value at the very key and event time lakeforge matched (two rows at one time,
    either is a correct match). Returns the sample's counts."""
    values = {name: f"{name}_value" for name in tables}
    joined = ours.select("id", "key", *[event_time_column(n) for n in tables], *values.values()).alias("o") \
        .join(theirs.select("id", *[F.col(v).alias(f"feast_{v}") for v in values.values()]), "id", "full_outer")
    counts = joined.agg(F.count(F.lit(1)).alias("rows"), F.count("o.key").alias("ours"),
                        *[F.count(v).alias(f"ours_{n}") for n, v in values.items()],
                        *[F.count(f"feast_{v}").alias(f"feast_{n}") for n, v in values.items()]).head().asDict()
    theirs_rows = theirs.count()
    if not counts["rows"] == counts["ours"] == theirs_rows:
        raise AssertionError(f"PIT sample: lakeforge returned {counts['ours']} rows, Feast {theirs_rows}, "
                             f"{counts['rows']} ids in all: not the same spine rows")
    ties = 0
    for name, value in values.items():
        differ = joined.where(~F.col(value).eqNullSafe(F.col(f"feast_{value}")))
        explained = differ.join(tables[name].select("key", F.col("event_time").alias(event_time_column(name)),
                                                    F.col(value).alias(f"feast_{value}")),
                                ["key", event_time_column(name), f"feast_{value}"], "left_semi")
        different, tied = differ.count(), explained.count()
        if different != tied:
            shown = differ.join(explained, "id", "left_anti").orderBy("id").limit(5).collect()
            raise AssertionError(f"PIT sample: {different - tied} of {counts['rows']} spine rows get a different "
                                 f"{value} from lakeforge and Feast, e.g. {[r.asDict() for r in shown]}")
        ties += tied
    matched = {n: {"lakeforge": counts[f"ours_{n}"], "feast": counts[f"feast_{n}"]} for n in tables}
    print(f"  sample check passed: {counts['rows']:,} spine rows, matched per table {matched}, ties {ties}", flush=True)
    return {"sample_rows": counts["rows"], "matched": matched, "ties": ties}


def pit_workload(spark: SparkSession, rows: int, work: Path, rounds: int, feast_python: Path) -> list[dict]:
    data, keys = work / "pit", max(rows // 100, 1)
    print(f"point-in-time join: spine {rows:,} rows, {keys:,} keys, 2 x {rows // 10:,} feature rows (Parquet)", flush=True)
    pit_join_bench.generate(spark, data, rows, keys, "parquet")
    sql_conf = {k: str(v) for k, v in pit_join_bench.SPARK_CONF.items() if k.startswith("spark.sql.")}
    previous = {key: spark.conf.get(key, None) for key in sql_conf}
    for key, value in sql_conf.items():
        spark.conf.set(key, value)
    try:
        return _pit(spark, rows, keys, data, work, rounds, feast_python, sql_conf)
    finally:  # the other workloads run with the flights example's settings
        for key, value in previous.items():
            spark.conf.unset(key) if value is None else spark.conf.set(key, value)


def _pit(spark: SparkSession, rows: int, keys: int, data: Path, work: Path, rounds: int, feast_python: Path,
         sql_conf: dict[str, str]) -> list[dict]:
    feast_conf = {"spark.master": spark.sparkContext.master, "spark.driver.memory": spark.conf.get("spark.driver.memory"),
                  **sql_conf, "spark.sql.session.timeZone": spark.conf.get("spark.sql.session.timeZone"),
                  "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"}

    def feast(*extra: str) -> None:
        command = [str(feast_python), str(FEAST_SCRIPT), "--data", str(data), "--work", str(work / "feast_repo"),
                   "--spark-conf", json.dumps(feast_conf), "--tables", ",".join(pit_join_bench.TABLES),
                   "--ttl-hours", str(pit_join_bench.TTL_HOURS), *extra]
        subprocess.run(command, check=True, env={**os.environ, "TZ": "UTC", "PYTHONPATH": str(REPO),
                                                 ROOT_PID: str(os.getpid())})  # this run's processes are not "others"

    spine, tables = pit_join_bench.read_tables(spark, data, "parquet")
    views = {name: (pit_join_bench.declaration(name), rows_) for name, rows_ in tables.items()}
    every = max(rows // SAMPLE_ROWS, 1)
    feast("--sample-every", str(every), "--sample-out", str(data / "feast_sample"))
    ours_sample = point_in_time_join(spine.where(F.col("id") % every == 0), views, spine_time="t")
    check = check_same_matches(ours_sample, spark.read.parquet(str(data / "feast_sample")), tables)
    noop_write(pit_join_bench.lakeforge_join(spine.where(F.col("id") < WARM_UP_IDS), tables))  # warm-up, not timed
    ours = best_of({"lakeforge": lambda: noop_write(pit_join_bench.lakeforge_join(spine, tables))}, rounds)["lakeforge"]
    feast("--rounds", str(rounds), "--warm-up-ids", str(WARM_UP_IDS), "--out", str(data / "feast.json"))
    theirs = json.loads((data / "feast.json").read_text())
    ratio = theirs["best"] / ours["best"]
    print(f"  lakeforge {ours['best']:.1f}s, Feast {theirs['best']:.1f}s: lakeforge {ratio:.2f}x faster "
          f"(target >= {PIT_TARGET}x)", flush=True)
    return [record(
        "point-in-time join",
        f"{rows:,} spine rows, {keys:,} keys, 2 x {rows // 10:,} feature rows, TTL {pit_join_bench.TTL_HOURS} h",
        {"what": "feature views' as-of join", "seconds": ours["best"], "timings": ours},
        {"what": f"Feast {theirs['feast']} Spark offline store, get_historical_features", "seconds": theirs["best"],
         "timings": {k: theirs[k] for k in ("seconds", "best", "load")}, "pyspark": theirs["pyspark"]},
        ratio, "speed-up: peer seconds / lakeforge seconds", f">= {PIT_TARGET}x", ratio >= PIT_TARGET,
        sample_check=check)]


# --- scoring -------------------------------------------------------------------------------------------

def scoring_workload(spark: SparkSession, config: LakeforgeConfig, rows: int, work: Path, rounds: int) -> list[dict]:
    print(f"scoring: {rows:,} generated flights: ingest, features, train (not timed here)", flush=True)
    memory = PeakMemory(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
    run_pipeline(spark, config, rows, memory, steps=("ingest", "features", "train"))
    scoring_dir = work / "scoring"
    scoring_dir.mkdir(parents=True, exist_ok=True)
    result = scoring_overhead(spark, config, rounds, peers=scoring_dir)
    timings, per_s, limit = result["timings"], result["rows_per_s"], result["limit"]
    size = f"{result['rows']:,} rows scored ({rows:,} generated flights)"
    ours = {"what": "score step's path (models.load_model(...).predict)", "rows_per_s": per_s["lakeforge"],
            "timings": timings["lakeforge"]}
    cores = result["cores"]
    ours_per_core = per_s["lakeforge"] / cores
    udf_ratio = per_s["lakeforge"] / per_s["mlflow_spark_udf"]
    limit_ratio = ours_per_core / limit["rows_per_s_per_core"]
    print(f"  rows/s: lakeforge {per_s['lakeforge']:,.0f}, spark_udf {per_s['mlflow_spark_udf']:,.0f} "
          f"({udf_ratio:.2f}x, target >= {UDF_TARGET}x), raw mapInPandas {per_s['raw_map_in_pandas']:,.0f} "
          f"({result['ratio']:.2f}x, target >= {RAW_TARGET}x); per core: lakeforge {ours_per_core:,.0f} vs the "
          f"in-memory limit {limit['rows_per_s_per_core']:,.0f} ({limit_ratio:.2f})", flush=True)
    common = {"arrow_batch_rows": result["arrow_batch_rows"], "model_uri": result["model_uri"], "spark_cores": cores}
    return [
        record("scoring vs MLflow spark_udf", size, ours,
               {"what": "mlflow.pyfunc.spark_udf, same registered model", "rows_per_s": per_s["mlflow_spark_udf"],
                "timings": timings["mlflow_spark_udf"]},
               udf_ratio, "throughput: lakeforge rows/s / peer rows/s", f">= {UDF_TARGET}x", udf_ratio >= UDF_TARGET,
               **common),
        record("scoring vs raw mapInPandas", size, ours,
               {"what": "raw mapInPandas, pickled model", "rows_per_s": per_s["raw_map_in_pandas"],
                "timings": timings["raw_map_in_pandas"]},
               result["ratio"], "throughput: lakeforge rows/s / peer rows/s", f">= {RAW_TARGET}x",
               result["ratio"] >= RAW_TARGET, **common),
        record("scoring vs the in-memory limit", size,
               {**ours, "what": f"score step's path, per Spark core ({cores})", "rows_per_s_per_core": ours_per_core},
               {"what": "predict_proba on one pandas frame, one process, one thread, no Spark",
                "rows_per_s_per_core": limit["rows_per_s_per_core"], "timings": limit["timings"],
                "batch_rows": limit["batch_rows"]},
               limit_ratio, "fraction of the limit: lakeforge rows/s per core / limit rows/s per core", "report",
               None, **common),
    ]


# --- ingest --------------------------------------------------------------------------------------------

def landing_config(base: dict, root: Path, landing: Path, file_format: str) -> LakeforgeConfig:
    """The flights example reading `file_format` landing files from `landing`, its tables under `root`."""
    sources = scale_config(root, base).sources
    overrides = {"landing.dir": str(landing), **{f"sources.{n}.format": file_format for n in sources},
                 **{f"sources.{n}.path": f"{n}/*.{file_format}" for n in sources}}
    return scale_config(root, {**base, **overrides})


def ingest_workload(spark: SparkSession, base: dict, rows: int, work: Path, rounds: int,
                    formats: tuple[str, ...] = ("parquet", "json", "csv")) -> list[dict]:
    records = []
    for file_format in formats:
        print(f"ingest: {rows:,} generated flights landed as {file_format}", flush=True)
        landing = work / f"landing_{file_format}"
        config = landing_config(base, work / f"ingest_{file_format}", landing, file_format)
        write_landing(spark, str(landing), rows, seed=config.seed, file_format=file_format)
        result = ingest_overhead(spark, config, work / f"ingest_{file_format}", rounds)
        target = f"<= {INGEST_TARGET}x" if file_format == "parquet" else "report"
        print(f"  {file_format}: ingest {result['ingest_seconds']:.1f}s vs plain {result['plain_seconds']:.1f}s = "
              f"{result['ratio']:.2f}x ({target})", flush=True)
        records.append(record(
            f"ingest overhead, {file_format} landing", f"{rows:,} generated flights (+ weather, planes)",
            {"what": "ingest step, every quality rule", "seconds": result["ingest_seconds"],
             "timings": result["timings"]["ingest"], "phase_seconds": result["ingest_phase_seconds"]},
            {"what": f"plain typed spark.read.{file_format} + Delta write", "seconds": result["plain_seconds"],
             "timings": result["timings"]["plain"]},
            result["ratio"], "overhead: lakeforge seconds / plain seconds", target,
            result["ratio"] <= INGEST_TARGET if file_format == "parquet" else None,
            shuffle_rules_seconds=result["shuffle_rules_seconds"]))
        shutil.rmtree(landing, ignore_errors=True)
        shutil.rmtree(work / f"ingest_{file_format}", ignore_errors=True)
    return records


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=parse_scale, default=parse_scale("1m"),
                        help="generated flights and PIT spine rows, e.g. 1m, 10m (below 1m: a smoke run)")
    parser.add_argument("--only", default=",".join(WORKLOADS), help=f"comma-separated, of {','.join(WORKLOADS)}")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds per side, the best kept")
    parser.add_argument("--feast-python", type=Path, default=default_feast_python(),
                        help="Python of Feast's virtualenv (default: $FEAST_VENV/bin/python, else ../feast-venv)")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temp folder, removed after)")
    parser.add_argument("--out", type=Path, help="JSON report (default: benchmarks/results/peers-<time>.json)")
    args = parser.parse_args(argv)
    only = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = sorted(set(only) - set(WORKLOADS))
    if unknown:
        parser.error(f"--only: unknown workload(s) {unknown}, choose from {', '.join(WORKLOADS)}")
    if "pit" in only and not args.feast_python.exists():
        parser.error(f"--feast-python: {args.feast_python} does not exist; create it with bash benchmarks/feast-venv.sh")
    work = args.work or Path(tempfile.mkdtemp(prefix="lakeforge-peers-"))
    out = args.out or REPO / "benchmarks" / "results" / f"peers-{datetime.now():%Y%m%d-%H%M%S}.json"
    conf = {**scale_config(work / "flights", {}).spark.conf, "spark.driver.memory": pit_join_bench.SPARK_CONF["spark.driver.memory"]}
    base = {"spark.conf": conf}
    config = scale_config(work / "flights", {**base, "model.alias": "challenger"})  # train's model, no gate needed
    spark = session_for(config)
    report = {"kind": "peers", "when": now(), "rows": args.rows, "size": _label(args.rows),
              "smoke": args.rows < SMOKE_BELOW, "rounds": args.rounds,
              "command": "python -m benchmarks.peers " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": machine(spark=spark.version, master=spark.sparkContext.master), "results": []}
    try:
        for workload in only:
            if workload == "pit":
                report["results"] += pit_workload(spark, args.rows, work, args.rounds, args.feast_python)
            elif workload == "scoring":
                report["results"] += scoring_workload(spark, config, args.rows, work, args.rounds)
            else:
                report["results"] += ingest_workload(spark, base, args.rows, work, args.rounds)
    except BaseException as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"  # the JSON keeps what finished
        raise
    finally:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str))
        spark.stop()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(render_table([report]))
    print(f"\nJSON written to {out}{' (a smoke run: not a measurement)' if report['smoke'] else ''}")
    return report


if __name__ == "__main__":
    main()
