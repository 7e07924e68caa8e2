"""The pipeline as spark-submit jobs on a real standalone cluster, tracked by a real MLflow server, run by
lakeforge built as a wheel and installed into a fresh virtualenv (no source checkout on the path).

The cluster runs ingest -> features -> train -> score (the challenger: no gate). Every step is submitted the
same way, one driver per step, so evaluate and monitor (tested in-process) would add 95 s of the suite's
critical path and no new path through `--submit`."""
from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from lakeforge.spark import JVM_CONF
from lakeforge.storage import Storage

from conftest import FLIGHTS_CONF, QUICK_JIT, REPO, free_port, months_of_2013, seed_landing, wait_for

pytestmark = pytest.mark.cluster
STEPS = {"ingest": {}, "features": {"depends_on": ["ingest"]}, "train": {"depends_on": ["features"]},
         "score": {"depends_on": ["train"]}}
SMALL = [f"windows.train={months_of_2013(1, 1)}", f"windows.score={months_of_2013(2, 2)}", "model.params.max_iter=50",
         "model.alias=challenger", f"pipeline.steps={json.dumps(STEPS)}"]
# Each step is a fresh driver and executor JVM working on small data: the client compiler alone (C1) warms them
# up at a fraction of the CPU (the 2-core machine runs both); results do not depend on the JIT tier. Set as the
# steps' Java options: SPARK_SUBMIT_OPTS (see conftest) does not reach the executors the cluster's worker starts.
QUICK_JIT_STEPS = [f"spark.conf.{key}={options} {QUICK_JIT}" for key, options in JVM_CONF.items()]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without PYTHONPATH (which may point at a source checkout), plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **extra}


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    """A fresh virtualenv with lakeforge's wheel installed; its dependencies come from this environment's
    site-packages (a .pth line: this environment's own lakeforge install is not activated there)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(REPO / "lib", source / "lib", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    quiet = {"check": True, "capture_output": True, "env": clean_env(), "timeout": 300}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                    str(work / "dist"), str(source)], **quiet)
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], **quiet)
    venv_site = next((venv / "lib").glob("python3*/site-packages"))
    (venv_site / "_lakeforge_test_deps.pth").write_text(site.getsitepackages()[0] + "\n")
    wheel = next((work / "dist").glob("lakeforge-*.whl"))
    subprocess.run([str(venv / "bin" / "pip"), "install", "--no-deps", "--no-index", str(wheel)], **quiet)
    return venv


def test_the_wheel_ships_the_spark_submit_entry_point(wheel_venv, tmp_path):
    python = str(wheel_venv / "bin" / "python")
    probe = "import lakeforge.jobs as j, os; print(j.STEP_JOB, os.path.isfile(j.STEP_JOB))"
    where = subprocess.run([python, "-c", probe], capture_output=True, text=True, env=clean_env(), cwd=tmp_path,
                           check=True).stdout.split()
    assert where[0].startswith(str(wheel_venv)) and where[0].endswith("lakeforge/jobs/step.py") and where[1] == "True"
    dag = subprocess.run([str(wheel_venv / "bin" / "lakeforge"), "airflow-dag", "--conf", str(FLIGHTS_CONF)],
                         capture_output=True, text=True, env=clean_env(), cwd=tmp_path, check=True).stdout
    assert "from lakeforge.jobs import STEP_JOB" in dag and "application=STEP_JOB" in dag


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    env = {**clean_env(), "LAKEFORGE_CLUSTER_DIR": str(tmp_path_factory.mktemp("cluster")),
           "LAKEFORGE_MASTER_PORT": str(free_port()), "LAKEFORGE_MASTER_UI_PORT": str(free_port()),
           "PYSPARK_PYTHON": sys.executable, "LAKEFORGE_WORKERS": "1", "LAKEFORGE_WORKER_CORES": "2"}
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


def test_pipeline_on_standalone_cluster_with_tracking_server(spark, wheel_venv, cluster, tracking_server, tmp_path):
    master, master_ui = cluster
    seed_landing(Storage(), str(tmp_path / "landing"), [1, 2])
    overrides = [f"storage_root={tmp_path}", f"mlflow.tracking_uri={tracking_server}", *SMALL, *QUICK_JIT_STEPS]
    command = [str(wheel_venv / "bin" / "lakeforge"), "run", "all", "--submit", master,
               "--conf", str(FLIGHTS_CONF), "--run-id", "cluster-run"]
    for override in overrides:
        command += ["--set", override]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=1500, cwd=tmp_path, env=clean_env())
    print(f"cluster pipeline wall time: {time.perf_counter() - started:.1f}s\n{done.stdout}")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    for table in ["bronze_flights", "flight_features", "predictions"]:
        assert spark.read.format("delta").load(str(tmp_path / "delta" / table)).count() > 0
    client = mlflow.MlflowClient(tracking_uri=tracking_server, registry_uri=tracking_server)  # not an earlier test's
    experiment = client.get_experiment_by_name("lakeforge-flights")
    runs = client.search_runs([experiment.experiment_id])
    step_runs = [r for r in runs if "lakeforge.step" in r.data.tags]
    assert sorted((r.data.tags["lakeforge.step"], r.info.status) for r in step_runs) == sorted(
        (step, "FINISHED") for step in STEPS)
    parent = [r for r in runs if r.data.tags.get("lakeforge.role") == "pipeline"]
    assert [(p.data.tags["lakeforge.run_id"], p.info.status) for p in parent] == [("cluster-run", "FINISHED")]
    assert {(r.data.tags.get("mlflow.parentRunId"), r.data.tags["lakeforge.run_id"]) for r in step_runs} == {
        (parent[0].info.run_id, "cluster-run")}
    challenger = client.get_model_version_by_alias("lakeforge-flights", "challenger")
    scored = spark.read.format("delta").load(str(tmp_path / "delta" / "predictions"))
    models = scored.select("model_name", "model_version").distinct().collect()
    assert [tuple(row) for row in models] == [("lakeforge-flights", challenger.version)]

    apps = json.loads(wait_for(f"{master_ui}/json/", 10))
    app_names = [a["name"] for a in apps["completedapps"]]
    assert len(app_names) == len(STEPS), app_names
