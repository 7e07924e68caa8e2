"""Run pipeline steps in order, printing progress per step and a summary table at the end."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from pyspark.sql import SparkSession

from lakeforge import features, ingest, score, train
from lakeforge.config import LakeforgeConfig
from lakeforge.results import StepResult
from lakeforge.spark import get_spark

STEPS: dict[str, Callable[..., StepResult]] = {
    "ingest": ingest.run,
    "features": features.run,
    "train": train.run,
    "score": score.run,
}


def session_for(config: LakeforgeConfig) -> SparkSession:
    return get_spark(config.spark, config.storage_root / "warehouse")


def run_steps(
    steps: list[str], config: LakeforgeConfig, spark: SparkSession | None = None,
    batch_id: str | None = None, out: TextIO = sys.stdout,
) -> list[StepResult]:
    """Run `steps` in order with one SparkSession; stop at the first failure."""
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"unknown step(s) {unknown}; choose from {list(STEPS)}")
    spark = spark or session_for(config)
    results = []
    for position, step in enumerate(steps, start=1):
        print(f"[lakeforge] step {position}/{len(steps)} {step} ...", file=out, flush=True)
        started = time.perf_counter()
        result = STEPS[step](spark, config, batch_id) if step == "ingest" else STEPS[step](spark, config)
        result.seconds = time.perf_counter() - started
        details = ", ".join(f"{k}: {v}" for k, v in result.details.items())
        print(f"[lakeforge] {step} done in {result.seconds:.1f}s: rows in {result.rows_in}, "
              f"rows out {result.rows_out}; {details}", file=out, flush=True)
        results.append(result)
    print(summary_table(results), file=out, flush=True)
    return results


def summary_table(results: list[StepResult]) -> str:
    rows = [("step", "seconds", "rows in", "rows out")]
    rows += [(r.step, f"{r.seconds:.1f}", str(r.rows_in), str(r.rows_out)) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
