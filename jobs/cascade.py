"""spark-submit entry point for the two-stage cascade: spark-submit jobs/cascade.py --conf pipeline.yaml"""
import sys

from lakeforge import cascade
from lakeforge.standalone import run_job

sys.exit(run_job(cascade.run, "cascade", sys.argv[1:]))
