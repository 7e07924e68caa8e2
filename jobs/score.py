"""spark-submit entry point for the 'score' step: spark-submit jobs/score.py --conf pipeline.yaml"""
import sys

from lakeforge.cli import main

sys.exit(main(["run", "score", *sys.argv[1:]]))
