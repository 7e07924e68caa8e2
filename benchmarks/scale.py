"""Scale benchmark: the whole pipeline on generated data at several sizes, with growth ratios.

For each scale (flights rows), synthetic landing files are generated (`examples/flights/generate.py`) under a
fresh storage root and every pipeline step runs in this process on one SparkSession. Per step:
seconds, flights/s, rows in/out and the peak resident memory of the driver (Python process + its
JVM, sampled every 0.2 s; in local mode the JVM also runs the executor tasks). Then, on the largest
scale's files and in the same run, two overhead ratios:

- ingest: our ingest step (typing, all quality rules, quarantine, metrics, MLflow run) vs a plain
  ``spark.read.csv(...).write.format("delta")`` of the same files with the same column types, timed
  back to back, best of two each; and, as its floor, the shuffle rules (unique, references,
  consistent) alone on the ingested tables, which any exact check of those rules pays;
- scoring: our scoring path (`models.load_model(...).predict`, as the score step) vs raw ``mapInPandas`` with the pickled
  scikit-learn model, both on the scored months and both ending in a ``noop`` write.

Growth ratio = seconds at a scale / seconds at the previous scale, next to the rows ratio
(target: <= 11x per 10x rows for every distributed step). A table is printed and JSON written.

    python -m benchmarks run --scale 1m,10m
"""
from __future__ import annotations

import json
import os
import pickle
import platform
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


def run_pipeline(spark: SparkSession, config: LakeforgeConfig, scale: int, memory: PeakMemory) -> list[StepTiming]:
    """Generate `scale` flights under the config's landing folder, then run every step, timed."""
    with memory.measuring():
        started = time.perf_counter()
        write_landing(spark, config.landing_dir, rows=scale, seed=config.seed)
        timings = [StepTiming(scale, "generate", time.perf_counter() - started, 0, scale, memory.peak / 2**20)]
    print(f"  generate: {timings[0].seconds:.1f}s", flush=True)
    executor, steps, run_id = InProcess(config, spark), declared_steps(config, list(STEPS)), new_run_id()
    for step in STEPS:
        with memory.measuring():
            started = time.perf_counter()
            result = executor.run(step, steps[step], run_id)
            seconds = time.perf_counter() - started
        timings.append(StepTiming(scale, step, seconds, result.rows_in, result.rows_out, memory.peak / 2**20))
        print(f"  {step}: {seconds:.1f}s, rows in {result.rows_in:,}, out {result.rows_out:,}, "
              f"peak driver {memory.peak / 2**30:.2f} GiB", flush=True)
    return timings


def _timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def ingest_overhead(spark: SparkSession, config: LakeforgeConfig, work: Path) -> dict:
    """The ingest step vs a plain typed CSV -> Delta write of the same landing files, back to back.

    Each is timed twice, alternating, and the best kept. The ingest step re-ingests the batch the
    pipeline ingested (same files, so the same batch id): it replaces that batch, as a scheduled
    re-run would.
    """
    def plain() -> None:
        for name, source in config.sources.items():
            raw = spark.read.option("header", True).option("nullValue", "NA").csv(config.source_path(name))
            typed = raw.select(*[F.col(c).cast(t) for c, t in source.columns.items()])  # header names, not positions
            typed.write.format("delta").mode("overwrite").save(str(work / f"plain_{name}"))

    executor, step = InProcess(config, spark), declared_steps(config, list(STEPS))["ingest"]
    phases = []
    ingest = lambda: phases.append(executor.run("ingest", step, new_run_id()).details["phase_seconds"])
    rounds = [(_timed(plain), _timed(ingest)) for _ in range(2)]
    best = min(range(len(rounds)), key=lambda r: rounds[r][1])  # the fastest ingest round
    plain_seconds, ingest_seconds = min(p for p, _ in rounds), rounds[best][1]
    shuffle_seconds = min(_timed(lambda: shuffle_rules(spark, config)) for _ in range(2))
    return {"ingest_seconds": ingest_seconds, "plain_seconds": plain_seconds, "ratio": ingest_seconds / plain_seconds,
            "rounds": rounds, "ingest_phase_seconds": phases[best], "shuffle_rules_seconds": shuffle_seconds}


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


def scoring_overhead(spark: SparkSession, config: LakeforgeConfig) -> dict:
    """Our scoring path vs raw mapInPandas on the scored months, each timed twice (best kept)."""
    settings, key = config.model, KEY
    mlflow.set_tracking_uri(config.tracking_uri)
    scoring = load_model(f"models:/{settings.registered_name}@{settings.alias}", settings, config.task.type)
    if not isinstance(scoring, SklearnModel):
        raise SystemExit("the scoring overhead compares against raw mapInPandas: it needs a scikit-learn model.estimator")
    features, _ = read_pinned(spark, config.dataset.table, config.table_path(config.dataset.table))
    batch = in_window(features, config.windows.score)
    typed = model_input(batch, settings, key).cache()  # the baseline gets its input ready-made
    rows = typed.count()
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(config.score.arrow_batch_rows))
    ours = lambda: scoring.predict(batch, key).write.format("noop").mode("overwrite").save()
    raw = lambda: raw_map_in_pandas(typed, scoring.model.pipeline, key, feature_columns(settings)).write.format("noop").mode("overwrite").save()
    ours_seconds = min(_timed(ours) for _ in range(2))
    raw_seconds = min(_timed(raw) for _ in range(2))
    typed.unpersist()
    return {"rows": rows, "ours_rows_per_s": rows / ours_seconds, "raw_rows_per_s": rows / raw_seconds,
            "ratio": raw_seconds / ours_seconds, "arrow_batch_rows": config.score.arrow_batch_rows}


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
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "spark": spark.version,
                    "master": spark.sparkContext.master},
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
