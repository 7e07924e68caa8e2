"""The pipeline on an S3 API (the `moto` server on loopback): tables through Hadoop's s3a connector
(org.apache.hadoop:hadoop-aws from Maven, fetched once by `lakeforge jars`), run state, quality
reports and landing files through lakeforge's storage layer, MLflow artifacts under the same bucket."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from lakeforge.config import load_config
from lakeforge.dag import RunState
from lakeforge.storage import Storage, join

from conftest import FLIGHTS_CONF, free_port, seed_landing, wait_for

pytestmark = pytest.mark.e2e
HADOOP_AWS = "org.apache.hadoop:hadoop-aws:3.4.2"
# moto takes any keys; these must not be words other tests expect to see: lakeforge masks a secret value
# wherever this process prints or records it afterwards
KEYS = {"AWS_ACCESS_KEY_ID": "moto-test-key-id", "AWS_SECRET_ACCESS_KEY": "moto-test-secret-key",
        "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> str:
    """The moto server's endpoint, with an empty bucket `lake`."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{endpoint}/moto-api/", 60)
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"],
                     region_name=KEYS["AWS_DEFAULT_REGION"]).create_bucket(Bucket="lake")
        yield endpoint
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def s3a_conf(endpoint: str) -> dict[str, str]:
    """Spark conf pointing s3a at `endpoint`; lakeforge's storage layer reads the same keys."""
    hadoop = {"endpoint": endpoint, "path.style.access": "true", "connection.ssl.enabled": "false",
              "endpoint.region": KEYS["AWS_DEFAULT_REGION"], "access.key": KEYS["AWS_ACCESS_KEY_ID"],
              "secret.key": KEYS["AWS_SECRET_ACCESS_KEY"]}
    return {"spark.sql.shuffle.partitions": "2", **{f"spark.hadoop.fs.s3a.{k}": v for k, v in hadoop.items()}}


def test_storage_layer_writes_reads_and_lists_s3a_locations(s3):
    storage = Storage(s3a_conf(s3))
    location = join("s3a://lake/probe", "runs", "r.json")
    assert storage.read_text(location) is None
    storage.write_text(location, '{"ok": true}')
    assert json.loads(storage.read_text(location)) == {"ok": True}
    assert storage.children("s3a://lake/probe") == {"runs": True}
    assert storage.children("s3a://lake/probe/runs") == {"r.json": False}


STEPS = {"ingest": {}, "features": {"depends_on": ["ingest"]}, "train": {"depends_on": ["features"]},
         "score": {"depends_on": ["train"]}}


def test_flights_pipeline_on_s3a(s3, tmp_path):
    """ingest -> features -> train -> score (the challenger: no gate) on January 2013 with storage_root
    s3a://lake/flights; the run state a resumed run would read is in the bucket."""
    lakeforge = str(Path(sys.executable).parent / "lakeforge")
    sets = {"storage_root": "s3a://lake/flights", "spark.packages": [HADOOP_AWS], "spark.conf": s3a_conf(s3),
            "mlflow.tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "windows.train": ["2013-01-01", "2013-01-16"],
            "windows.score": ["2013-01-16", "2013-02-01"], "model.params.max_iter": 30, "model.alias": "challenger",
            "pipeline.steps": STEPS}
    args = [arg for key, value in sets.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
    env = {**os.environ, **KEYS, "MLFLOW_S3_ENDPOINT_URL": s3}
    fetched = subprocess.run([lakeforge, "jars", "--no-class-archive", "--conf", str(FLIGHTS_CONF), *args],
                             capture_output=True, text=True, env=env, timeout=1200)
    assert fetched.returncode == 0, fetched.stdout[-2000:] + fetched.stderr[-3000:]
    config = load_config(FLIGHTS_CONF, sets)
    storage = Storage(config.spark.conf)
    seed_landing(storage, config.landing_dir, [1])
    command = [lakeforge, "run", "all", "--conf", str(FLIGHTS_CONF), "--run-id", "s3", *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    spark_warnings = [line for line in done.stderr.splitlines() if " WARN " in line or " ERROR " in line]
    assert not spark_warnings, spark_warnings[:5]  # the expected ones are quiet (lib/lakeforge/log4j2.properties)
    assert not any(p.name.startswith("s3a") for p in tmp_path.iterdir())  # nothing written to a local "s3a:" folder

    state = RunState.load(config, "s3")  # what a resumed run reads first
    assert state.path == "s3a://lake/flights/runs/s3.json"
    assert all(state.succeeded(step) for step in STEPS)
    assert any(name.startswith("ingest-") for name in storage.children(config.location("quality_reports")))
    assert storage.exists(join(config.table_path("predictions"), "_delta_log"))
