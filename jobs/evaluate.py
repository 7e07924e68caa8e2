"""spark-submit entry point for the 'evaluate' step: spark-submit jobs/evaluate.py --conf pipeline.yaml"""
import sys

from lakeforge.cli import main

sys.exit(main(["run", "evaluate", *sys.argv[1:]]))
