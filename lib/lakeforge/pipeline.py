"""Run pipeline steps in DAG order, in this process or one spark-submit per step.

Progress is printed per step (name, elapsed, rows in/out) with a summary table at the end. Run
state is recorded by run id (see `lakeforge.dag`), so a failed run resumes at the failed step. The
steps' MLflow runs nest under one parent run per lakeforge run (see `lakeforge.tracking.pipeline_run`).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TextIO

import pyspark
from pyspark.errors import PySparkException
from pyspark.sql import SparkSession

from lakeforge import cascade, ingest, score, train
from lakeforge.features import step as features_step
from lakeforge.evaluation import step as evaluate_step
from lakeforge.drift import monitor
from lakeforge.experiments import ab
from lakeforge.config import LakeforgeConfig, StepSettings
from lakeforge.dag import RunState, new_run_id, plan_steps
from lakeforge.errors import StepError
from lakeforge.ingest import BatchChoice
from lakeforge.jobs import OVERRIDES_ENV, STEP_JOB
from lakeforge.masking import mask_text
from lakeforge.names import check_run_id
from lakeforge.progress import progress
from lakeforge.report import write_run_report
from lakeforge.results import StepResult
from lakeforge.secrets import command_line_conf, resolve_value
from lakeforge.spark import JVM_CONF, archive_conf, get_spark, jar_files
from lakeforge.storage import storage_for
from lakeforge.tracking import PARENT_RUN_ENV, parent_run_id, pipeline_run
from lakeforge.validation import validate

STEPS: dict[str, Callable[..., StepResult]] = {  # `run all` without pipeline.steps: these, in this order
    "ingest": ingest.run,
    "features": features_step.run,
    "train": train.run,
    "evaluate": evaluate_step.run,
    "score": score.run,
    "monitor": monitor.run,
}
OPTIONAL_STEPS: dict[str, Callable[..., StepResult]] = {  # run when named, or when declared in pipeline.steps
    "cascade": cascade.run,
    "ab_analysis": ab.run,
}
ALL_STEPS = {**STEPS, **OPTIONAL_STEPS}


def session_for(config: LakeforgeConfig) -> SparkSession:
    return get_spark(config.spark, config.location("warehouse"))


class StepExecutor(Protocol):
    def run(self, step: str, settings: StepSettings, run_id: str) -> StepResult: ...


class InProcess:
    """Runs steps in this process on one SparkSession, with each step's Spark conf set around it."""

    def __init__(self, config: LakeforgeConfig, spark: SparkSession | None = None, batch: BatchChoice = BatchChoice()):
        self.config, self.spark, self.batch = config, spark, batch

    def session(self) -> SparkSession:
        self.spark = self.spark or session_for(self.config)
        return self.spark

    def run(self, step: str, settings: StepSettings, run_id: str) -> StepResult:
        spark = self.session()
        previous = {key: spark.conf.get(key, None) for key in settings.spark_conf}
        try:
            for key, value in settings.spark_conf.items():
                spark.conf.set(key, resolve_value(key, value, f"pipeline.steps.{step}.spark_conf"))
        except PySparkException as exc:
            raise StepError(f"pipeline.steps.{step}.spark_conf: cannot be set in a running session "
                            f"({exc}); run with --submit to pass it to spark-submit") from None
        try:
            with progress(spark, step):
                if step == "ingest":
                    return STEPS[step](spark, self.config, self.batch)
                return ALL_STEPS[step](spark, self.config)
        finally:
            for key, value in previous.items():
                spark.conf.unset(key) if value is None else spark.conf.set(key, value)


def spark_submit() -> str:
    """``$SPARK_HOME/bin/spark-submit``, else the one inside the installed pyspark package."""
    home = os.environ.get("SPARK_HOME") or os.path.dirname(pyspark.__file__)
    return os.path.join(home, "bin", "spark-submit")


class SparkSubmit:
    """Runs each step as ``spark-submit lakeforge/jobs/step.py STEP`` (client mode) against `master`.

    The command line holds no secret (it is visible to every user of the machine, e.g. in ``ps``): Spark
    conf entries naming a secret or holding ``${env:NAME}`` are left out (the job sets them from the YAML
    and its environment), and the ``--set`` overrides go to the job in `OVERRIDES_ENV`.
    """

    def __init__(self, config: LakeforgeConfig, conf_path: str, overrides: list[str], master: str,
                 batch: BatchChoice = BatchChoice(), out: TextIO = sys.stdout):
        self.config, self.conf_path, self.overrides = config, conf_path, overrides
        self.master, self.batch, self.out = master, batch, out

    def command(self, step: str, settings: StepSettings, run_id: str) -> list[str]:
        jars = jar_files(self.config.spark)  # the driver runs here (client mode): it maps the local class archive
        spark_conf = {"spark.pyspark.python": sys.executable, **JVM_CONF, **archive_conf(self.config.spark, jars),
                      **self.config.spark.conf, **settings.spark_conf}
        command = [spark_submit(), "--master", self.master]
        command += ["--jars", ",".join(jars)] if jars else ["--packages", ",".join(self.config.spark.all_packages)]
        for key, value in command_line_conf(spark_conf).items():
            command += ["--conf", f"{key}={value}"]
        command += [STEP_JOB, step, "--conf", self.conf_path, "--run-id", run_id, "--no-report"]
        if step == "ingest":
            command += self.batch.arguments()
        return command

    def run(self, step: str, settings: StepSettings, run_id: str) -> StepResult:
        env = {**os.environ, "PYSPARK_PYTHON": sys.executable, PARENT_RUN_ENV: parent_run_id() or "",
               OVERRIDES_ENV: json.dumps(self.overrides)}
        with tempfile.NamedTemporaryFile("w+", prefix=f"lakeforge-{step}-", suffix=".log", delete=False) as log:
            child = subprocess.Popen(self.command(step, settings, run_id), stdout=subprocess.PIPE, stderr=log,
                                     text=True, env=env)
            for line in child.stdout:
                if line.startswith("[lakeforge]") or line.startswith("lakeforge:"):
                    print(f"    {line.rstrip()}", file=self.out, flush=True)
            child.wait()
        state = RunState.load(self.config, run_id)
        if not state.succeeded(step):  # a step that succeeded may still exit non-zero as a signal (monitor: 3, 4)
            tail = Path(log.name).read_text().splitlines()[-15:]
            raise StepError(f"spark-submit of step '{step}' exited with {child.returncode} without recording "
                            f"success in {state.path}; log {log.name}:\n" + "\n".join(tail))
        record = state.steps[step]
        return StepResult(step, record.rows_in, record.rows_out, dict(record.details))


def run_steps(
    steps: list[str] | None, config: LakeforgeConfig, spark: SparkSession | None = None,
    batch: BatchChoice = BatchChoice(), out: TextIO = sys.stdout, run_id: str | None = None,
    executor: StepExecutor | None = None, report: bool = True,
) -> list[StepResult]:
    """Run `steps` (None: the whole DAG) in DAG order under `run_id`, skipping steps it already finished.

    With `report`, the run's HTML report is (re)written once a step ran (see `lakeforge.report`) and
    logged to the run's parent MLflow run.
    """
    declared, chosen = plan_steps(config, list(STEPS), list(OPTIONAL_STEPS), steps)
    run_id = check_run_id(run_id or new_run_id())
    storage_for(config).check_writable(config.location())
    state = RunState.load(config, run_id)
    executor = executor or InProcess(config, spark, batch)
    if isinstance(executor, InProcess):  # spark-submit jobs validate in their own process
        for warning in validate(executor.session(), config):
            print(f"[lakeforge] warning: {warning}", file=out, flush=True)
    print(f"[lakeforge] run {run_id}: {' -> '.join(chosen)}", file=out, flush=True)
    with pipeline_run(config, run_id) as parent:
        results = []
        for position, step in enumerate(chosen, start=1):
            if state.succeeded(step):
                record = state.steps[step]
                print(f"[lakeforge] step {position}/{len(chosen)} {step}: already done in run {run_id}, skipped",
                      file=out, flush=True)
                results.append(StepResult(step, record.rows_in, record.rows_out, {"skipped": True}))
                continue
            print(f"[lakeforge] step {position}/{len(chosen)} {step} ...", file=out, flush=True)
            started = time.perf_counter()
            try:
                result = executor.run(step, declared[step], run_id)
            except Exception as exc:
                state.record(step, "failed", seconds=time.perf_counter() - started, error=mask_text(str(exc)))
                print(f"[lakeforge] {step} FAILED; resume with: lakeforge run all --run-id {run_id}",
                      file=out, flush=True)
                if report:
                    try:
                        print(f"[lakeforge] report: {write_run_report(config, run_id, parent)}", file=out, flush=True)
                    except Exception as report_error:  # the step's error is the one to raise
                        print(f"[lakeforge] report not written: {mask_text(str(report_error))}", file=out, flush=True)
                raise
            result.seconds = time.perf_counter() - started
            state.record(step, "succeeded", result)
            details = ", ".join(f"{k}: {v}" for k, v in result.details.items())
            print(f"[lakeforge] {step} done in {result.seconds:.1f}s: rows in {result.rows_in}, "
                  f"rows out {result.rows_out}; {details}", file=out, flush=True)
            results.append(result)
        print(summary_table(results), file=out, flush=True)
        if report and not all(r.details.get("skipped") for r in results):
            print(f"[lakeforge] report: {write_run_report(config, run_id, parent)}", file=out, flush=True)
    return results


def summary_table(results: list[StepResult]) -> str:
    rows = [("step", "seconds", "rows in", "rows out")]
    rows += [(r.step, "skipped" if r.details.get("skipped") else f"{r.seconds:.1f}", str(r.rows_in), str(r.rows_out))
             for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
