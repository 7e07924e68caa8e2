"""spark-submit entry point for the 'monitor' step: spark-submit jobs/monitor.py --conf pipeline.yaml

Exit code 0: no drift trigger; 3: the retraining trigger fired; 4: it fired and the model was retrained;
2: an error. See lakeforge.drift.trigger.
"""
import sys

from lakeforge.cli import main

sys.exit(main(["run", "monitor", *sys.argv[1:]]))
