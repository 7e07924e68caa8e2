"""spark-submit entry point for the 'features' step: spark-submit jobs/features.py --conf pipeline.yaml"""
import sys

from lakeforge.cli import main

sys.exit(main(["run", "features", *sys.argv[1:]]))
