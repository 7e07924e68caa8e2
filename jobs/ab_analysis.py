"""spark-submit entry point for the A/B analysis: spark-submit jobs/ab_analysis.py --conf pipeline.yaml"""
import sys

from lakeforge.experiments import ab
from lakeforge.standalone import run_job

sys.exit(run_job(ab.run, "ab_analysis", sys.argv[1:]))
