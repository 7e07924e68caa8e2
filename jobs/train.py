"""spark-submit entry point for the 'train' step: spark-submit jobs/train.py --conf pipeline.yaml"""
import sys

from lakeforge.cli import main

sys.exit(main(["run", "train", *sys.argv[1:]]))
