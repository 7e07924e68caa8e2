"""The whole pipeline as spark-submit jobs on a real standalone cluster, tracked by a real MLflow server."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest

from conftest import FLIGHTS_CONF, REPO, months_of_2013, seed_landing

pytestmark = pytest.mark.cluster
SMALL = [f"windows.train={months_of_2013(1, 1)}", f"windows.score={months_of_2013(2, 2)}", "model.params.max_iter=50"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: int) -> bytes:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return urllib.request.urlopen(url, timeout=5).read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    env = {**os.environ, "LAKEFORGE_CLUSTER_DIR": str(tmp_path_factory.mktemp("cluster")),
           "LAKEFORGE_MASTER_PORT": str(free_port()), "LAKEFORGE_MASTER_UI_PORT": str(free_port()),
           "PYSPARK_PYTHON": sys.executable}
    script = str(REPO / "scripts" / "local-cluster")
    try:
        subprocess.run([script, "up"], env=env, check=True, timeout=300)
        yield f"spark://127.0.0.1:{env['LAKEFORGE_MASTER_PORT']}", f"http://127.0.0.1:{env['LAKEFORGE_MASTER_UI_PORT']}"
    finally:
        subprocess.run([script, "down"], env=env, timeout=120)


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts")],
        stdout=open(root / "server.log", "w"), stderr=subprocess.STDOUT,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/health", 300)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_pipeline_on_standalone_cluster_with_tracking_server(spark, cluster, tracking_server, tmp_path):
    master, master_ui = cluster
    seed_landing(tmp_path / "landing", [1, 2])
    overrides = [f"storage_root={tmp_path}", f"mlflow.tracking_uri={tracking_server}", *SMALL]
    command = [str(Path(sys.executable).parent / "lakeforge"), "run", "all", "--submit", master,
               "--conf", str(FLIGHTS_CONF), "--run-id", "cluster-run"]
    for override in overrides:
        command += ["--set", override]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=1500, cwd=tmp_path)
    print(f"cluster pipeline wall time: {time.perf_counter() - started:.1f}s\n{done.stdout}")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    for table in ["bronze_flights", "flight_features", "predictions"]:
        assert spark.read.format("delta").load(str(tmp_path / "delta" / table)).count() > 0
    client = mlflow.MlflowClient(tracking_uri=tracking_server)
    experiment = client.get_experiment_by_name("lakeforge-flights")
    runs = client.search_runs([experiment.experiment_id])
    finished = {r.data.tags["lakeforge.step"] for r in runs if r.info.status == "FINISHED"}
    assert {"ingest", "features", "train", "score"} <= finished
    assert client.get_model_version_by_alias("lakeforge-flights", "champion").version is not None

    apps = json.loads(wait_for(f"{master_ui}/json/", 10))
    app_names = [a["name"] for a in apps["completedapps"]]
    assert len(app_names) >= 4, app_names
