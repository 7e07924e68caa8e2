"""Scale benchmark: the whole pipeline on generated data at several sizes, with growth ratios.

For each scale (flights rows), synthetic landing files are generated (`examples/flights/generate.py`) under a
fresh storage root and every pipeline step runs in this process on one SparkSession. Per step:
seconds, flights/s, rows in/out and the peak resident memory of the driver (Python process + its
JVM, sampled every 0.2 s; in local mode the JVM also runs the executor tasks). Then, on the largest
scale's files and in the same run, two overhead ratios:

- ingest: our ingest step (typing, all quality rules, quarantine, metrics, MLflow run), each round a
  first ingest into fresh tables, vs a plain typed read of the same landing files (``spark.read.csv``,
  ``.json`` or ``.parquet``, as the sources declare, cast to the same column types) written to new
  Delta tables, alternately, best of two each; and, as its floor, the shuffle rules (unique,
  references, consistent) alone on the ingested tables, which any exact check of those rules pays;
- scoring: our scoring path (`models.load_model(...).predict`, as the score step) vs raw ``mapInPandas`` with the pickled
  scikit-learn model, both on the scored months and both ending in a ``noop`` write (`benchmarks/peers.py`
  adds MLflow's ``spark_udf`` and the in-memory limit).

Growth ratio = seconds at a scale / seconds at the previous scale, next to the rows ratio
(target: <= 11x per 10x rows for every distributed step). A table is printed and JSON written.

    python -m benchmarks run --scale 1m,10m
"""
from __future__ import annotations

import itertools
import json
import os
import pickle
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import cloudpickle
import mlflow
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from benchmarks.timing import best_of, machine
from lakeforge.config import LakeforgeConfig, load_config
from lakeforge.features.dataset import KEY
from lakeforge.windows import in_window
from lakeforge.dag import declared_steps, new_run_id
from examples.flights.generate import write_landing
from lakeforge.ingest import bronze_table
from lakeforge.quality.rules import RuleContext
from lakeforge.quality.runner import measure_shuffles
from lakeforge.pipeline import STEPS, InProcess, session_for
from lakeforge.models import SklearnModel, load_model
from lakeforge.tables import read_pinned
from lakeforge.tracking import configure_mlflow
from lakeforge.train import feature_columns, model_input

CONF = Path(__file__).resolve().parents[1] / "examples" / "flights" / "pipeline.yaml"
PAGE = os.sysconf("SC_PAGE_SIZE")


def parse_scale(text: str) -> int:
    """``"1m"`` -> 1_000_000, ``"300k"`` -> 300_000, ``"2500"`` -> 2500."""
    units = {"k": 1_000, "m": 1_000_000}
    text = text.strip().lower()
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


class PeakMemory:
    """Samples the resident memory of the driver (this process + the JVM) in a background thread."""

    def __init__(self, jvm_pid: int, interval: float = 0.2):
        self.pids, self.interval, self.peak = [os.getpid(), jvm_pid], interval, 0
        self._stop = threading.Event()

    @contextmanager
    def measuring(self) -> Iterator["PeakMemory"]:
        self.peak, self._stop = 0, threading.Event()
        sampler = threading.Thread(target=self._sample, daemon=True)
        sampler.start()
        try:
            yield self
        finally:
            self._stop.set()
            sampler.join()

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, sum(_rss_bytes(pid) for pid in self.pids))
            if self._stop.wait(self.interval):
                return


@dataclass
class StepTiming:
    scale: int
    step: str
    seconds: float
    rows_in: int
    rows_out: int
    peak_driver_mib: float

    @property
    def flights_per_second(self) -> float:
        return self.scale / self.seconds


def scale_config(root: Path, overrides: dict[str, object]) -> LakeforgeConfig:
    return load_config(CONF, {"storage_root": str(root), **overrides})


def run_pipeline(spark: SparkSession, config: LakeforgeConfig, scale: int, memory: PeakMemory,
                 steps: tuple[str, ...] = tuple(STEPS)) -> list[StepTiming]:
    """Generate `scale` flights under the config's landing folder, then run `steps` (default: all), timed."""
    with memory.measuring():
        started = time.perf_counter()
        write_landing(spark, config.landing_dir, rows=scale, seed=config.seed)
        timings = [StepTiming(scale, "generate", time.perf_counter() - started, 0, scale, memory.peak / 2**20)]
    print(f"  generate: {timings[0].seconds:.1f}s", flush=True)
    executor, declared, run_id = InProcess(config, spark), declared_steps(config, list(STEPS)), new_run_id()
    for step in steps:
        with memory.measuring():
            started = time.perf_counter()
            result = executor.run(step, declared[step], run_id)
            seconds = time.perf_counter() - started
        timings.append(StepTiming(scale, step, seconds, result.rows_in, result.rows_out, memory.peak / 2**20))
        print(f"  {step}: {seconds:.1f}s, rows in {result.rows_in:,}, out {result.rows_out:,}, "
              f"peak driver {memory.peak / 2**30:.2f} GiB", flush=True)
    return timings


def fresh_root(config: LakeforgeConfig, root: Path) -> LakeforgeConfig:
    """`config` writing its tables under `root`, reading the same landing files and using the same MLflow store."""
    return config.model_copy(update={
        "storage_root": str(root), "landing": config.landing.model_copy(update={"dir": config.landing_dir}),
        "mlflow": config.mlflow.model_copy(update={"tracking_uri": config.tracking_uri,
                                                   "registry_uri": config.registry_uri})})


def plain_write(spark: SparkSession, config: LakeforgeConfig, target: Path) -> None:
    """The baseline: each source's landing files read as plainly as their format allows, cast to the
    declared column types (by name) and written to a new Delta table under `target`."""
    for name, source in config.sources.items():
        path, types = config.source_path(name), source.column_types()
        if source.format == "csv":
            raw = spark.read.option("header", True).option("nullValue", "NA").csv(path)
        elif source.format == "json":  # every field as its text, as CSV's header read gives it
            raw = spark.read.schema(", ".join(f"`{c}` string" for c in types)).json(path)
        else:
            raw = spark.read.format(source.format).load(path)
        typed = raw.select(*[F.col(f"`{c}`").cast(t).alias(c) for c, t in types.items()])
        typed.write.format("delta").mode("overwrite").save(str(target / f"plain_{name}"))


def ingest_overhead(spark: SparkSession, config: LakeforgeConfig, work: Path, rounds: int = 2) -> dict:
    """The ingest step vs `plain_write` of the same landing files, alternately, best of `rounds` each.

    Every round writes new tables: the ingest step runs as a first ingest under a fresh storage root
    (`fresh_root`; same landing files, same MLflow store, created before timing), the plain write to a
    new folder. Then the shuffle rules alone on the last round's bronze tables (best of two).
    """
    configure_mlflow(config)  # the MLflow store and experiment exist before any round is timed
    numbers, phases, last = itertools.count(), [], {}

    def plain() -> None:
        plain_write(spark, config, work / f"plain_{next(numbers)}")

    def ingest() -> None:
        last["config"] = fresh_root(config, work / f"ingest_{next(numbers)}")
        result = InProcess(last["config"], spark).run("ingest", declared_steps(config, ["ingest"])["ingest"], new_run_id())
        if "phase_seconds" not in result.details:
            raise SystemExit(f"ingest overhead: the timed ingest read nothing ({result.details})")
        phases.append(result.details["phase_seconds"])

    timings = best_of({"plain": plain, "ingest": ingest}, rounds)
    best = timings["ingest"]["seconds"].index(min(timings["ingest"]["seconds"]))
    shuffles = best_of({"shuffle_rules": lambda: shuffle_rules(spark, last["config"])}, 2)["shuffle_rules"]
    plain_seconds, ingest_seconds = timings["plain"]["best"], timings["ingest"]["best"]
    return {"format": sorted({s.format for s in config.sources.values()}), "ingest_seconds": ingest_seconds,
            "plain_seconds": plain_seconds, "ratio": ingest_seconds / plain_seconds, "timings": timings,
            "ingest_phase_seconds": phases[best], "shuffle_rules_seconds": shuffles["best"]}


def shuffle_rules(spark: SparkSession, config: LakeforgeConfig) -> None:
    """Every source's shuffle rules (unique, references, consistent) on its ingested bronze table."""
    def bronze(source: str) -> DataFrame:
        return read_pinned(spark, bronze_table(source), config.table_path(bronze_table(source)))[0]

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    for name, source in config.sources.items():
        measure_shuffles(source.quality, bronze(name), RuleContext(bronze_table(name), now, 0, 0, None, bronze))


def raw_map_in_pandas(rows: DataFrame, model: object, key: str, columns: list[str]) -> DataFrame:
    """The baseline: the pickled model broadcast and applied to Arrow batches, nothing else."""
    broadcast = rows.sparkSession.sparkContext.broadcast(cloudpickle.dumps(model))

    def predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        fitted = pickle.loads(broadcast.value)
        for batch in batches:
            yield pd.DataFrame({key: batch[key], "score": fitted.predict_proba(batch[columns])[:, 1]})

    return rows.mapInPandas(predict, f"{key} string, score double")


def noop_write(frame: DataFrame) -> None:
    frame.write.format("noop").mode("overwrite").save()


def in_memory_limit(rows: DataFrame, model: object, columns: list[str], batch_rows: int, work: Path,
                    rounds: int = 2) -> dict:
    """The model's ``predict_proba`` on `rows` held as one pandas frame in this process, one core, no Spark.

    The rows are written to Parquet and read back whole (not timed); then ``predict_proba`` runs over
    the frame in slices of `batch_rows` (the Arrow batch size the Spark paths use) with every native
    thread pool limited to one thread, best of `rounds`: rows/s per core, the most one core can score.
    """
    from threadpoolctl import threadpool_limits

    rows.select(*columns).write.mode("overwrite").parquet(str(work / "limit_rows"))
    frame = pd.read_parquet(work / "limit_rows")

    def predict() -> None:
        with threadpool_limits(limits=1):
            for start in range(0, len(frame), batch_rows):
                model.predict_proba(frame.iloc[start:start + batch_rows])

    timing = best_of({"in_memory": predict}, rounds)["in_memory"]
    shutil.rmtree(work / "limit_rows", ignore_errors=True)
    return {"rows": len(frame), "batch_rows": batch_rows, "rows_per_s_per_core": len(frame) / timing["best"],
            "timings": timing}


def same_scores(scoring: SklearnModel, batch: DataFrame, typed: DataFrame, udf, key: str, columns: list[str],
                sample: int = 500) -> None:
    """Assert our path, raw mapInPandas and spark_udf give the same score to the same `sample` rows."""
    keys = [row[0] for row in typed.select(key).orderBy(key).limit(sample).collect()]
    outputs = {"lakeforge": scoring.predict(batch.where(F.col(key).isin(keys)), key),
               "raw_map_in_pandas": raw_map_in_pandas(typed.where(F.col(key).isin(keys)), scoring.model.pipeline, key,
                                                      columns),
               "mlflow_spark_udf": typed.where(F.col(key).isin(keys)).select(key, udf(F.struct(*columns)).alias("score"))}
    scores = {name: frame.select(key, "score").toPandas().set_index(key)["score"].sort_index()
              for name, frame in outputs.items()}
    for name, series in scores.items():
        difference = (series - scores["lakeforge"]).abs()
        if list(series.index) != sorted(map(str, keys)) or not (difference.notna().all() and difference.max() <= 1e-9):
            raise AssertionError(f"scoring: {name} does not give the score step's scores on {len(keys)} rows")


def scoring_overhead(spark: SparkSession, config: LakeforgeConfig, rounds: int = 2, peers: Path | None = None) -> dict:
    """Our scoring path vs raw mapInPandas on the scored months, alternately, best of `rounds` each.

    With `peers` (a scratch folder), also MLflow's ``spark_udf`` on the same registered model and rows,
    and `in_memory_limit`. Both baselines get their input ready-made (typed and cached); ours reads the
    dataset table and types it, as the score step does.
    """
    settings, key, columns = config.model, KEY, feature_columns(config.model)
    mlflow.set_tracking_uri(config.tracking_uri)
    model_uri = f"models:/{settings.registered_name}@{settings.alias}"
    scoring = load_model(model_uri, settings, config.task.type)
    if not isinstance(scoring, SklearnModel):
        raise SystemExit("the scoring overhead compares against raw mapInPandas: it needs a scikit-learn model.estimator")
    features, _ = read_pinned(spark, config.dataset.table, config.table_path(config.dataset.table))
    batch = in_window(features, config.windows.score)
    typed = model_input(batch, settings, key).cache()  # the baselines get their input ready-made
    rows = typed.count()
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(config.score.arrow_batch_rows))
    actions = {"lakeforge": lambda: noop_write(scoring.predict(batch, key)),
               "raw_map_in_pandas": lambda: noop_write(raw_map_in_pandas(typed, scoring.model.pipeline, key, columns))}
    if peers is not None:
        udf = mlflow.pyfunc.spark_udf(spark, model_uri, result_type="double", env_manager="local")
        actions["mlflow_spark_udf"] = lambda: noop_write(typed.select(key, udf(F.struct(*columns)).alias("score")))
    if peers is not None:  # the three paths score alike before any is timed
        same_scores(scoring, batch, typed, udf, key, columns)
    timings = best_of(actions, rounds)
    per_second = {name: rows / timing["best"] for name, timing in timings.items()}
    result = {"rows": rows, "arrow_batch_rows": config.score.arrow_batch_rows, "model_uri": model_uri,
              "cores": spark.sparkContext.defaultParallelism, "timings": timings, "rows_per_s": per_second,
              "ours_rows_per_s": per_second["lakeforge"], "raw_rows_per_s": per_second["raw_map_in_pandas"],
              "ratio": per_second["lakeforge"] / per_second["raw_map_in_pandas"]}
    if peers is not None:
        result["limit"] = in_memory_limit(typed, scoring.model.pipeline, columns, config.score.arrow_batch_rows,
                                          peers, rounds)
    typed.unpersist()
    return result


def growth_table(timings: list[StepTiming], scales: list[int]) -> str:
    header = f"{'step':<10}" + "".join(f"{_label(s) + ' s':>11}{'flights/s':>12}{'peak MiB':>10}" for s in scales)
    header += "".join(f"{'x' + _label(b) + '/' + _label(a):>16}" for a, b in zip(scales, scales[1:]))
    lines = [header, "-" * len(header)]
    for step in dict.fromkeys(t.step for t in timings):
        by_scale = {t.scale: t for t in timings if t.step == step}
        line = f"{step:<10}"
        for scale in scales:
            t = by_scale.get(scale)
            line += f"{t.seconds:>11.1f}{t.flights_per_second:>12,.0f}{t.peak_driver_mib:>10,.0f}" if t else " " * 33
        for a, b in zip(scales, scales[1:]):
            ratio = by_scale[b].seconds / by_scale[a].seconds if a in by_scale and b in by_scale else float("nan")
            line += f"{ratio:>15.2f}x"
        lines.append(line)
    return "\n".join(lines)


def _label(rows: int) -> str:
    return f"{rows // 1_000_000}m" if rows % 1_000_000 == 0 else f"{rows // 1000}k" if rows % 1000 == 0 else str(rows)


def run(scales: list[int], work: Path, out: Path, overrides: dict[str, object], keep: bool = False) -> dict:
    """Run the pipeline at each scale, then the overhead ratios on the largest; print and write JSON."""
    scales = sorted(scales)
    configs = {scale: scale_config(work / f"scale_{_label(scale)}", overrides) for scale in scales}
    spark = session_for(configs[scales[0]])
    memory = PeakMemory(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
    timings: list[StepTiming] = []
    for scale in scales:
        print(f"scale {_label(scale)} ({scale:,} flights) under {configs[scale].storage_root}", flush=True)
        timings += run_pipeline(spark, configs[scale], scale, memory)
    largest = configs[scales[-1]]
    overheads = {"ingest": ingest_overhead(spark, largest, work),
                 "scoring": scoring_overhead(spark, largest)}
    report = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "scales": scales,
        "machine": machine(spark=spark.version, master=spark.sparkContext.master),
        "steps": [asdict(t) | {"flights_per_second": t.flights_per_second} for t in timings],
        "overheads": overheads,
    }
    print()
    print(growth_table(timings, scales))
    ingest, scoring = overheads["ingest"], overheads["scoring"]
    print(f"\ningest overhead at {_label(scales[-1])}: ingest step {ingest['ingest_seconds']:.1f}s vs plain CSV->Delta "
          f"{ingest['plain_seconds']:.1f}s = {ingest['ratio']:.2f}x (target <= 1.25x); the shuffle rules alone: "
          f"{ingest['shuffle_rules_seconds']:.1f}s = {ingest['shuffle_rules_seconds'] / ingest['plain_seconds']:.2f}x plain")
    print(f"  ingest phases (best round): " + ", ".join(f"{k} {v:.1f}s" for k, v in ingest["ingest_phase_seconds"].items()))
    print(f"scoring at {_label(scales[-1])} ({scoring['rows']:,} rows, Arrow batches of {scoring['arrow_batch_rows']:,}): "
          f"ours {scoring['ours_rows_per_s']:,.0f} rows/s vs raw mapInPandas {scoring['raw_rows_per_s']:,.0f} rows/s "
          f"= {scoring['ratio']:.2f}x of raw (target >= 0.9x)")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"JSON written to {out}")
    spark.stop()
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return report
