"""spark-submit entry point for the 'ingest' step: spark-submit jobs/ingest.py --conf pipeline.yaml"""
import sys

from lakeforge.cli import main

sys.exit(main(["run", "ingest", *sys.argv[1:]]))
