"""Command line: ``lakeforge run STEP|all --conf conf/flights.yaml [--set key=value ...]``."""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import mlflow
import yaml

from lakeforge.config import load_config, parse_config
from lakeforge.errors import LakeforgeError
from lakeforge.pipeline import STEPS, run_steps, session_for


def _override(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, yaml.safe_load(value)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="lakeforge", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run one pipeline step, or all of them in order")
    run.add_argument("step", choices=[*STEPS, "all"])
    run.add_argument("--conf", default="conf/flights.yaml", help="pipeline YAML (default: %(default)s)")
    run.add_argument("--set", dest="overrides", action="append", type=_override, default=[],
                     metavar="KEY=VALUE", help="override a config key, e.g. --set storage_root=/tmp/lake")
    run.add_argument("--batch-id", help="ingest: batch id to write or replace (default: from the files)")
    check = commands.add_parser("check", help="start Spark with Delta (fetching its jars) and print versions")
    check.add_argument("--conf", default="conf/flights.yaml", help="pipeline YAML (default: %(default)s)")
    return root


def check(conf: str) -> None:
    """Start a session from `conf` and prove Delta works by writing and reading a table."""
    config = load_config(conf) if Path(conf).exists() else parse_config({"storage_root": tempfile.mkdtemp(),
                                                                          "sources": {}, "model": {"numeric_features": []}})
    spark = session_for(config)
    probe = str(Path(tempfile.mkdtemp()) / "probe")
    spark.range(3).write.format("delta").save(probe)
    rows = spark.read.format("delta").load(probe).count()
    print(f"spark {spark.version} ({spark.sparkContext.master}), delta jars {config.spark.delta_package}, "
          f"mlflow {mlflow.__version__}, probe table rows {rows}: ok")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "check":
            check(args.conf)
            return 0
        config = load_config(args.conf, dict(args.overrides))
        steps = list(STEPS) if args.step == "all" else [args.step]
        run_steps(steps, config, batch_id=args.batch_id)
    except LakeforgeError as exc:
        print(f"lakeforge: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
