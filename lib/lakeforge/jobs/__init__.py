"""spark-submit entry points shipped inside the package, so they work from an installed wheel.

``spark-submit $(python -c 'import lakeforge.jobs as j; print(j.STEP_JOB)') STEP --conf pipeline.yaml``
runs one pipeline step (``lakeforge run STEP``); this module imports nothing heavy, so a scheduler
(e.g. an Airflow DAG file) can import it to find the entry point.
"""
from pathlib import Path

__all__ = ["OVERRIDES_ENV", "STEP_JOB"]

STEP_JOB = str(Path(__file__).with_name("step.py"))
# --set overrides handed to a job in its environment, not its argv (a JSON list of key=value texts);
# every lakeforge command applies them before its own --set ones
OVERRIDES_ENV = "LAKEFORGE_OVERRIDES"
