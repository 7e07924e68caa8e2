"""Command line: ``lakeforge run STEP|all --conf pipeline.yaml [--set key=value ...]``."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

import mlflow
import yaml

from lakeforge.config import LakeforgeConfig, SparkSettings, load_config
from lakeforge.errors import ConfigError, LakeforgeError
from lakeforge.scheduling import airflow_dag_source
from lakeforge.spark import fetch_jars, get_spark
from lakeforge.reproducibility.replay import replay
from lakeforge.reproducibility.retention import vacuum
from lakeforge.tracking import configure_mlflow
from lakeforge.pipeline import ALL_STEPS, SparkSubmit, run_steps, session_for
from lakeforge.validation import validate


def _override(text: str) -> str:
    key, sep, _ = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return text


DEFAULT_CONF = "pipeline.yaml"


def parse_overrides(texts: list[str]) -> dict[str, object]:
    """``["a.b=1", "c=[1, 2]"]`` -> ``{"a.b": 1, "c": [1, 2]}`` (values are YAML)."""
    pairs = (text.partition("=") for text in texts)
    return {key: yaml.safe_load(value) for key, _, value in pairs}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="lakeforge", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    run = _with_config(commands.add_parser("run", help="run one pipeline step, or all of them in order"))
    run.add_argument("step", choices=[*ALL_STEPS, "all"],
                     help="a step, or all: the steps of pipeline.steps (default: the six of the README)")
    run.add_argument("--batch-id", help="ingest: batch id to write or replace (default: from the files)")
    run.add_argument("--run-id", help="resume this run: steps it already finished are skipped")
    run.add_argument("--submit", metavar="MASTER",
                     help="run each step as its own spark-submit against MASTER (e.g. spark://127.0.0.1:7077)")
    _with_config(commands.add_parser("validate", help="check the pipeline YAML and every SQL expression in it "
                                                      "against the declared columns, without running a job"))
    airflow = commands.add_parser("airflow-dag", help="print an Airflow DAG (one SparkSubmitOperator per step)")
    airflow.add_argument("--conf", default=DEFAULT_CONF, help="pipeline YAML (default: %(default)s)")
    airflow.add_argument("--dag-id", default="lakeforge")
    airflow.add_argument("--schedule", default="@daily")
    check = commands.add_parser("check", help="start Spark with Delta and print versions")
    check.add_argument("--conf", default=DEFAULT_CONF, help="pipeline YAML (default: %(default)s)")
    jars = _with_config(commands.add_parser("jars", help="resolve Delta's jars (and spark.packages) from Maven once, "
                                                         "into the local jar folder later sessions start from"))
    jars.add_argument("--refresh", action="store_true", help="resolve again even if the folder holds jars")
    ui = _with_config(commands.add_parser("ui", help="the MLflow UI on the configured tracking store, on 127.0.0.1"))
    ui.add_argument("--port", type=int, default=5000)
    replay = _with_config(commands.add_parser("replay", help="re-run a run from its manifest; exit 1 if results differ"))
    replay.add_argument("run_id", help="MLflow run id of the run to replay")
    replay.add_argument("--tolerance", type=float, default=0.0,
                        help="allowed |difference| of metrics and predictions (default: identical)")
    replay.add_argument("--sample-rows", type=int, default=1000, help="rows whose predictions are compared")
    vacuum = _with_config(commands.add_parser(
        "vacuum", help="Delta VACUUM that refuses to delete versions registered models were trained on"))
    vacuum.add_argument("tables", nargs="*", help="table names (default: every table under storage_root)")
    vacuum.add_argument("--retention-hours", type=float, help="default: retention.deleted_file_retention_days")
    vacuum.add_argument("--force", action="store_true", help="vacuum even if protected versions lose their files")
    return root


def _with_config(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
    command.add_argument("--conf", default=DEFAULT_CONF, help="pipeline YAML (default: %(default)s)")
    command.add_argument("--set", dest="overrides", action="append", type=_override, default=[],
                         metavar="KEY=VALUE", help="override a config key, e.g. --set storage_root=/tmp/lake")
    return command


def reproduce(args: argparse.Namespace) -> int:
    """``replay`` (exit 1 when the replay differs) and ``vacuum`` (prints the protected versions)."""
    config = load_config(args.conf, parse_overrides(args.overrides))
    spark = session_for(config)
    configure_mlflow(config)
    if args.command == "replay":
        report = replay(spark, args.run_id, args.tolerance, args.sample_rows)
        print(report.describe())
        return 0 if report.reproduced else 1
    for plan in vacuum(spark, config, args.tables or None, args.retention_hours, args.force):
        print(f"vacuumed {plan.describe()}{'' if plan.safe else ' (FORCED: protected versions lost files)'}")
    return 0


def spark_settings(conf: str, overrides: list[str] | None = None) -> SparkSettings:
    """`conf`'s Spark settings (with `overrides`) if the file exists, else the defaults."""
    return load_config(conf, parse_overrides(overrides or [])).spark if Path(conf).exists() else SparkSettings()


def check(conf: str) -> None:
    """Start a session (with `conf`'s Spark settings if it exists) and prove Delta works by writing and reading a table."""
    settings = spark_settings(conf)
    scratch = Path(tempfile.mkdtemp())
    spark = get_spark(settings, str(scratch / "warehouse"))
    probe = str(scratch / "probe")
    spark.range(3).write.format("delta").save(probe)
    rows = spark.read.format("delta").load(probe).count()
    print(f"spark {spark.version} ({spark.sparkContext.master}), delta jars {settings.delta_package}, "
          f"mlflow {mlflow.__version__}, probe table rows {rows}: ok")


def ui(config: LakeforgeConfig, port: int) -> NoReturn:
    """Replace this process by ``mlflow ui`` on `config`'s tracking and registry stores, on 127.0.0.1."""
    if config.tracking_uri.startswith(("http://", "https://", "databricks")):
        raise ConfigError(f"mlflow.tracking_uri {config.tracking_uri} is a tracking server already: open it")
    mlflow_cli = str(Path(sys.executable).parent / "mlflow")
    os.execv(mlflow_cli, [mlflow_cli, "ui", "--backend-store-uri", config.tracking_uri, "--registry-store-uri",
                          config.registry_uri, "--host", "127.0.0.1", "--port", str(port)])


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "check":
            check(args.conf)
            return 0
        if args.command == "jars":
            settings = spark_settings(args.conf, args.overrides)
            print(f"jars of {', '.join(settings.all_packages)} in {fetch_jars(settings, args.refresh)}")
            return 0
        if args.command == "ui":
            ui(load_config(args.conf, parse_overrides(args.overrides)), args.port)
        if args.command == "validate":
            config = load_config(args.conf, parse_overrides(args.overrides))
            for warning in validate(session_for(config), config, source=args.conf):
                print(f"warning: {warning}")
            print(f"{args.conf}: valid ({len(config.sources)} sources, {len(config.features)} feature views)")
            return 0
        if args.command == "airflow-dag":
            print(airflow_dag_source(load_config(args.conf), args.conf, args.dag_id, args.schedule), end="")
            return 0
        if args.command in ("replay", "vacuum"):
            return reproduce(args)
        config = load_config(args.conf, parse_overrides(args.overrides))
        steps = None if args.step == "all" else [args.step]
        executor = None
        if args.submit:
            executor = SparkSubmit(config, args.conf, args.overrides, args.submit, args.batch_id)
        results = run_steps(steps, config, batch_id=args.batch_id, run_id=args.run_id, executor=executor)
    except LakeforgeError as exc:
        print(f"lakeforge: error: {exc}", file=sys.stderr)
        return 2
    return max((int(r.details.get("exit_code", 0)) for r in results), default=0)  # monitor: 3/4 = retrain


if __name__ == "__main__":
    sys.exit(main())
