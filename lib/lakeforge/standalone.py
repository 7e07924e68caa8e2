"""Run a step that is not in the pipeline DAG (``cascade``, ``ab_analysis``) as its own job.

``spark-submit jobs/ab_analysis.py --conf pipeline.yaml [--set key=value ...]``
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from pyspark.sql import SparkSession

from lakeforge.cli import parse_overrides
from lakeforge.config import LakeforgeConfig, load_config
from lakeforge.errors import LakeforgeError
from lakeforge.pipeline import session_for
from lakeforge.results import StepResult


def run_job(step: Callable[[SparkSession, LakeforgeConfig], StepResult], name: str, argv: list[str]) -> int:
    """Parse ``--conf``/``--set``, run `step` on a session built from the config; 2 on a LakeforgeError."""
    parser = argparse.ArgumentParser(prog=name, description=__doc__)
    parser.add_argument("--conf", default="pipeline.yaml", help="pipeline YAML (default: %(default)s)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.conf, parse_overrides(args.overrides))
        result = step(session_for(config), config)
    except LakeforgeError as exc:
        print(f"lakeforge: error: {exc}", file=sys.stderr)
        return 2
    details = ", ".join(f"{k}: {v}" for k, v in result.details.items())
    print(f"[lakeforge] {name} done: rows in {result.rows_in}, rows out {result.rows_out}; {details}", flush=True)
    return 0
