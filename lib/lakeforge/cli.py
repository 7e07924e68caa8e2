"""Command line: ``lakeforge run STEP|all --conf conf/flights.yaml [--set key=value ...]``."""
from __future__ import annotations

import argparse
import sys

import yaml

from lakeforge.config import load_config
from lakeforge.errors import LakeforgeError
from lakeforge.pipeline import STEPS, run_steps


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
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = load_config(args.conf, dict(args.overrides))
        steps = list(STEPS) if args.step == "all" else [args.step]
        run_steps(steps, config, batch_id=args.batch_id)
    except LakeforgeError as exc:
        print(f"lakeforge: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
