"""spark-submit entry point of one pipeline step: ``spark-submit .../lakeforge/jobs/step.py STEP --conf F [...]``.

Same arguments and exit codes as ``lakeforge run STEP`` (monitor: 3 when the retraining trigger
fired, 4 when it fired and the model was retrained; 2 on an error).
"""
import sys

from lakeforge.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
