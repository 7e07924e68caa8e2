"""MLflow conventions that need no Spark: `lakeforge ui` serves the configured store on 127.0.0.1."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import mlflow

from lakeforge.config import load_config
from lakeforge.tracking import configure_mlflow

from conftest import FLIGHTS_CONF, free_port, wait_for


def test_ui_serves_the_configured_store_on_loopback(tmp_path):
    config = load_config(FLIGHTS_CONF, {"storage_root": tmp_path.as_uri(), "mlflow.experiment": "ui-check"})
    configure_mlflow(config)
    with mlflow.start_run(run_name="seen-by-the-ui"):
        pass
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "lakeforge"), "ui", "--conf", str(FLIGHTS_CONF),
         "--set", f"storage_root={config.storage_root}", "--port", str(port)],
        stdout=open(tmp_path / "ui.log", "w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        assert wait_for(f"http://127.0.0.1:{port}/health", 120) == b"OK"
        found = json.loads(wait_for(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name"
                                    f"?experiment_name=ui-check", 10))
        assert found["experiment"]["artifact_location"] == f"{tmp_path.as_uri()}/mlartifacts"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
