"""Command line: ``lakeforge run STEP|all --conf pipeline.yaml [--set key=value ...]``, and commands to
query the tables, list runs, start a pipeline and show its config.

Spark, MLflow and the steps are imported by the commands that need them: ``lakeforge query``,
``runs``, ``init`` and ``config`` start no JVM and import no pyspark.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import NoReturn

import yaml

from lakeforge.config import LakeforgeConfig, SparkSettings, load_config
from lakeforge.errors import ConfigError, LakeforgeError
from lakeforge.jobs import OVERRIDES_ENV
from lakeforge.masking import mask_text, mask_uri

# lakeforge.pipeline.ALL_STEPS, in order (not imported: commands that need no Spark do not load it)
STEP_NAMES = ["ingest", "features", "train", "evaluate", "score", "monitor", "cascade", "ab_analysis"]


def _override(text: str) -> str:
    key, sep, _ = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return text


DEFAULT_CONF = "pipeline.yaml"


TRACEBACK_ENV = "LAKEFORGE_TRACEBACK"  # 1: an error prints its traceback too


def parse_overrides(texts: list[str]) -> dict[str, object]:
    """``["a.b=1", "c=[1, 2]"]`` -> ``{"a.b": 1, "c": [1, 2]}`` (values are YAML); a ConfigError naming
    the override whose value is not YAML."""
    parsed = {}
    for text in texts:
        key, _, value = text.partition("=")
        try:
            parsed[key] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
            raise ConfigError(f"--set {key}=...: the value is not valid YAML ({mask_text(problem)}); quote it, "
                              f"e.g. --set '{key}=\"...\"'") from None
    return parsed


def overrides_of(args: argparse.Namespace) -> list[str]:
    """The overrides of a command: those in `OVERRIDES_ENV`, then its ``--set`` ones."""
    text = os.environ.get(OVERRIDES_ENV)
    try:
        inherited = json.loads(text) if text else []
    except json.JSONDecodeError:
        raise ConfigError(f"{OVERRIDES_ENV} is not a JSON list of key=value texts") from None
    return [*inherited, *getattr(args, "overrides", [])]


def config_of(args: argparse.Namespace) -> LakeforgeConfig:
    """The command's config: ``--conf`` with its overrides (see `overrides_of`)."""
    return load_config(args.conf, parse_overrides(overrides_of(args)))


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="lakeforge", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    run = _with_config(commands.add_parser("run", help="run one pipeline step, or all of them in order"))
    run.add_argument("step", choices=[*STEP_NAMES, "all"],
                     help="a step, or all: the steps of pipeline.steps (default: the six of the README)")
    run.add_argument("--batch-id", help="ingest: the new batch's id (default: from the files' names and content)")
    run.add_argument("--replace-batch", action="store_true",
                     help="ingest: files changed since they were ingested replace the batches holding them")
    run.add_argument("--run-id", help="resume this run: steps it already finished are skipped")
    run.add_argument("--submit", metavar="MASTER",
                     help="run each step as its own spark-submit against MASTER (e.g. spark://127.0.0.1:7077)")
    run.add_argument("--no-report", dest="report", action="store_false",
                     help="do not write the run's HTML report (spark-submit jobs of a run leave it to the run)")
    _with_config(commands.add_parser("validate", help="check the pipeline YAML and every SQL expression in it "
                                                      "against the declared columns, without running a job"))
    airflow = commands.add_parser("airflow-dag", help="print an Airflow DAG (one SparkSubmitOperator per step)")
    airflow.add_argument("--conf", default=DEFAULT_CONF, help="pipeline YAML (default: %(default)s)")
    airflow.add_argument("--dag-id", default="lakeforge")
    airflow.add_argument("--schedule", default="@daily")
    check = commands.add_parser("check", help="start Spark with Delta and print versions")
    check.add_argument("--conf", default=DEFAULT_CONF, help="pipeline YAML (default: %(default)s)")
    jars = _with_config(commands.add_parser(
        "jars", help="resolve Delta's jars (and spark.packages) from Maven once, into the local jar folder later "
                     "sessions start from, and record the classes a session loads (a JDK class-data archive)"))
    jars.add_argument("--refresh", action="store_true", help="resolve again even if the folder holds jars")
    jars.add_argument("--no-class-archive", action="store_true",
                      help="do not record the class-data archive (recording takes about a minute, once)")
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
    query = _with_config(commands.add_parser(
        "query", help="SQL (DuckDB) over the pipeline's Delta tables, read with delta-rs: no JVM"))
    query.add_argument("sql", help="e.g. \"SELECT decision, count(*) FROM predictions GROUP BY 1\"; "
                                   "name@v3 reads version 3 of a table")
    query.add_argument("--format", choices=["table", "csv", "json"], default="table")
    query.add_argument("--max-rows", type=int, default=40, help="table format: rows shown (default: %(default)s)")
    runs = _with_config(commands.add_parser("runs", help="recent pipeline runs, or one run's steps"))
    runs.add_argument("run_id", nargs="?", help="show this run's steps, report and MLflow runs")
    runs.add_argument("--limit", type=int, default=20, help="runs listed (default: %(default)s)")
    init = commands.add_parser("init", help="write a starter pipeline YAML from the sample files of a landing folder")
    init.add_argument("name", help="project name")
    init.add_argument("--from", dest="folder", required=True, type=Path,
                      help="landing folder: one source per sub-folder (or loose file) of csv/json/parquet files")
    init.add_argument("--out", type=Path, help="YAML to write (default: NAME/pipeline.yaml)")
    init.add_argument("--storage-root", type=Path, help="the pipeline's storage root (default: NAME/lakehouse)")
    config = commands.add_parser("config", help="show the resolved config (secrets masked) or its JSON schema")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    _with_config(config_commands.add_parser("show", help="the resolved config as YAML, defaults filled in, "
                                                         "secrets masked"))
    config_commands.add_parser("schema", help="JSON schema of the pipeline YAML (for editors)")
    return root


def _with_config(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
    command.add_argument("--conf", default=DEFAULT_CONF, help="pipeline YAML (default: %(default)s)")
    command.add_argument("--set", dest="overrides", action="append", type=_override, default=[],
                         metavar="KEY=VALUE", help="override a config key, e.g. --set storage_root=/tmp/lake")
    return command


def reproduce(args: argparse.Namespace) -> int:
    """``replay`` (exit 1 when the replay differs) and ``vacuum`` (prints the protected versions)."""
    from lakeforge.pipeline import session_for
    from lakeforge.reproducibility.replay import replay
    from lakeforge.reproducibility.retention import vacuum
    from lakeforge.tracking import configure_mlflow

    config = config_of(args)
    spark = session_for(config)
    configure_mlflow(config)
    if args.command == "replay":
        report = replay(spark, args.run_id, args.tolerance, args.sample_rows, current=config)
        print(report.describe())
        return 0 if report.reproduced else 1
    for plan in vacuum(spark, config, args.tables or None, args.retention_hours, args.force):
        print(f"vacuumed {plan.describe()}{'' if plan.safe else ' (FORCED: protected versions lost files)'}")
    return 0


def spark_settings(args: argparse.Namespace) -> SparkSettings:
    """The Spark settings of the command's config (see `config_of`) if the file exists, else the defaults."""
    return config_of(args).spark if Path(args.conf).exists() else SparkSettings()


def check(args: argparse.Namespace) -> None:
    """Start a session (with the config's Spark settings if it exists) and prove Delta works by writing and reading a table."""
    import mlflow

    from lakeforge.spark import get_spark

    settings = spark_settings(args)
    scratch = Path(tempfile.mkdtemp())
    spark = get_spark(settings, str(scratch / "warehouse"))
    probe = str(scratch / "probe")
    spark.range(3).write.format("delta").save(probe)
    rows = spark.read.format("delta").load(probe).count()
    print(f"spark {spark.version} ({spark.sparkContext.master}), delta jars {settings.delta_package}, "
          f"mlflow {mlflow.__version__}, probe table rows {rows}: ok")


def query(args: argparse.Namespace) -> None:
    """Print the result of ``args.sql``: an aligned table (at most ``--max-rows`` rows), CSV or JSON lines."""
    import duckdb

    from lakeforge.lakehouse import QueryError, relation

    result = relation(args.sql, config_of(args))
    try:
        if args.format == "table":
            result.show(max_rows=args.max_rows)
        elif args.format == "csv":
            print(result.df().to_csv(index=False), end="")
        else:
            print(result.df().to_json(orient="records", lines=True, date_format="iso"), end="")
    except duckdb.Error as exc:
        raise QueryError(f"query: {exc}") from None


def runs(args: argparse.Namespace) -> None:
    """List recent runs, or show one run's steps, report and MLflow runs."""
    from lakeforge.runs import format_table, list_runs, load_run, mlflow_runs, report_path, step_rows

    config = config_of(args)
    if args.run_id is None:
        rows = [("run", "started (UTC)", "done", "failed", "seconds")]
        rows += [(r.run_id, r.started.strftime("%Y-%m-%d %H:%M:%S") if r.started else "-", str(r.done),
                  str(r.failed), f"{r.seconds:.0f}") for r in list_runs(config, args.limit)]
        print(format_table(rows) if len(rows) > 1 else f"no runs yet in {config.location('runs')}")
        return
    state = load_run(config, args.run_id)
    print(f"run {state.run_id} ({state.path})\n{format_table(step_rows(state))}")
    report = report_path(config, args.run_id)
    print(f"report: {report or 'none written for this run'}")
    for run in mlflow_runs(config, args.run_id):
        role = run.data.tags.get("lakeforge.step") or run.data.tags.get("lakeforge.role", "?")
        print(f"mlflow: {role} run {run.info.run_id} ({run.info.status}) "
              f"{mask_uri(config.tracking_uri)}")


def config_command(args: argparse.Namespace) -> None:
    """``config show`` (resolved, secrets masked) or ``config schema`` (JSON schema)."""
    from lakeforge.masking import mask_secrets

    if args.config_command == "schema":
        print(json.dumps(LakeforgeConfig.model_json_schema(), indent=2))
        return
    resolved = config_of(args).model_dump(mode="json")
    print(yaml.safe_dump(mask_secrets(resolved), sort_keys=False, width=120), end="")


def init(args: argparse.Namespace) -> None:
    from lakeforge.starter import write_starter

    out = args.out or Path(args.name) / "pipeline.yaml"
    written = write_starter(args.name, args.folder, out, args.storage_root or Path(args.name) / "lakehouse")
    print(f"wrote {written}; check it with: lakeforge validate --conf {written}")


def run_pipeline(args: argparse.Namespace) -> int:
    """``lakeforge run``: the exit code is the monitor's signal (3/4 = retrain) when it ran, else 0."""
    from lakeforge.ingest import BatchChoice
    from lakeforge.pipeline import SparkSubmit, run_steps

    config = config_of(args)
    steps = None if args.step == "all" else [args.step]
    batch = BatchChoice(args.batch_id, args.replace_batch)
    executor = None
    if args.submit:
        executor = SparkSubmit(config, args.conf, overrides_of(args), args.submit, batch)
    results = run_steps(steps, config, batch=batch, run_id=args.run_id, executor=executor,
                        report=args.report)
    return max((int(r.details.get("exit_code", 0)) for r in results), default=0)


def ui(config: LakeforgeConfig, port: int) -> NoReturn:
    """Replace this process by ``mlflow ui`` on `config`'s tracking and registry stores, on 127.0.0.1.

    The store URIs (a database URI may hold a password) go in mlflow's environment variables, not its argv.
    """
    if config.tracking_uri.startswith(("http://", "https://", "databricks")):
        raise ConfigError(f"mlflow.tracking_uri {mask_uri(config.tracking_uri)} is a tracking server already: open it")
    mlflow_cli = str(Path(sys.executable).parent / "mlflow")
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": config.tracking_uri, "MLFLOW_REGISTRY_STORE_URI": config.registry_uri}
    os.execve(mlflow_cli, [mlflow_cli, "ui", "--host", "127.0.0.1", "--port", str(port)], env)


def report_error(exc: BaseException) -> int:
    """Print `exc` as one ``lakeforge: error: ...`` line (secrets masked; the traceback too with
    LAKEFORGE_TRACEBACK=1) and return exit code 2. An error lakeforge did not anticipate is named by its type."""
    if os.environ.get(TRACEBACK_ENV) == "1":
        print(mask_text("".join(traceback.format_exception(exc))), file=sys.stderr)
    if isinstance(exc, LakeforgeError):
        message = str(exc)
    else:
        lines = str(exc).strip().splitlines()
        message = (f"{type(exc).__name__}: {lines[0] if lines else ''} (unexpected: rerun with "
                   f"{TRACEBACK_ENV}=1 for the traceback and report it)")
    print(f"lakeforge: error: {mask_text(message)}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "check":
            check(args)
        elif args.command == "jars":
            from lakeforge.class_archive import record
            from lakeforge.spark import fetch_jars

            settings = spark_settings(args)
            print(f"jars of {', '.join(settings.all_packages)} in {fetch_jars(settings, args.refresh)}")
            if not args.no_class_archive:
                archive = record(settings)
                print(f"class-data archive (faster JVM starts): {archive}" if archive else
                      "no class-data archive could be recorded; sessions start without one")
        elif args.command == "ui":
            ui(config_of(args), args.port)
        elif args.command == "validate":
            from lakeforge.pipeline import session_for
            from lakeforge.validation import validate

            config = config_of(args)
            for warning in validate(session_for(config), config, source=args.conf):
                print(f"warning: {warning}")
            print(f"{args.conf}: valid ({len(config.sources)} sources, {len(config.features)} feature views)")
        elif args.command == "airflow-dag":
            from lakeforge.scheduling import airflow_dag_source

            print(airflow_dag_source(config_of(args), args.conf, args.dag_id, args.schedule), end="")
        elif args.command in ("replay", "vacuum"):
            return reproduce(args)
        elif args.command == "query":
            query(args)
        elif args.command == "runs":
            runs(args)
        elif args.command == "init":
            init(args)
        elif args.command == "config":
            config_command(args)
        else:
            return run_pipeline(args)
    except Exception as exc:  # every failure is one line naming the culprit, exit 2
        return report_error(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
