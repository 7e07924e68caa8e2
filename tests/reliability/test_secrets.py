"""Secrets never leave memory: a run with a secret in the YAML, one in the environment (``${env:NAME}``) and
a tracking URI with a password, then a grep of everything it wrote or printed. Real Spark, Delta and an
MLflow tracking server."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from lakeforge.cli import main
from lakeforge.config import StepSettings, load_config
from lakeforge.errors import ConfigError
from lakeforge.jobs import OVERRIDES_ENV
from lakeforge.masking import MASK, is_secret_key, mask_secrets, mask_text, remember_secret, restore_masked
from lakeforge.mlflow_store import CREDENTIAL_VARIABLES
from lakeforge.pipeline import SparkSubmit
from lakeforge.scheduling import airflow_dag_source
from lakeforge.spark import build_conf

from conftest import free_port, wait_for
from tiny import tiny_pipeline

ENV_SECRET = "envSecretValue-7f3a91"        # reaches Spark through ${env:LF_TEST_S3_SECRET}
YAML_SECRET = "yamlAccessKey-2c84d0"        # written in the YAML itself
PASSWORD = "trackingPassw0rd-5e17"          # inside the tracking URI, given with --set
SECRETS = (ENV_SECRET, YAML_SECRET, PASSWORD)
SECRET_CONF = {"spark.hadoop.fs.s3a.secret.key": "${env:LF_TEST_S3_SECRET}",
               "spark.hadoop.fs.s3a.access.key": YAML_SECRET,
               "spark.hadoop.fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"}


@pytest.fixture
def tracking_server(tmp_path):
    """A real ``mlflow server`` on loopback (its stores under tmp_path/server): its URL."""
    port, store = free_port(), tmp_path / "server"
    store.mkdir()
    server = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
                               "--port", str(port), "--backend-store-uri", f"sqlite:///{store}/mlflow.db",
                               "--artifacts-destination", str(store / "artifacts"), "--workers", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/health", 120, server)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def leaks(texts: dict[str, str]) -> list[tuple[str, str]]:
    return [(where, secret) for where, text in texts.items() for secret in SECRETS if secret in text]


def test_no_secret_in_anything_a_run_writes_or_prints(spark, tmp_path, tracking_server, capsys, monkeypatch):
    monkeypatch.setenv("LF_TEST_S3_SECRET", ENV_SECRET)
    for name in CREDENTIAL_VARIABLES:  # set by the run; put back as they were afterwards
        monkeypatch.delenv(name, raising=False)
    conf_path = tiny_pipeline(tmp_path, spark={"conf": {"spark.sql.shuffle.partitions": 2, **SECRET_CONF}})
    host = tracking_server.removeprefix("http://")
    overrides = [f"mlflow.tracking_uri=http://alice:{PASSWORD}@{host}"]
    sets = [arg for item in overrides for arg in ("--set", item)]

    assert main(["run", "ingest", "--conf", str(conf_path), "--run-id", "secret-run", *sets]) == 0
    assert main(["config", "show", "--conf", str(conf_path), *sets]) == 0
    printed = capsys.readouterr()
    config = load_config(conf_path, {"mlflow.tracking_uri": f"http://alice:{PASSWORD}@{host}"})
    dag = airflow_dag_source(config, str(conf_path))
    submit = SparkSubmit(config, str(conf_path), overrides, "local[1]")
    argv = " ".join(submit.command("ingest", StepSettings(), "secret-run"))

    written = {str(p): p.read_bytes().decode("utf-8", "replace") for p in tmp_path.rglob("*")
               if p.is_file() and p.name != "pipeline.yaml"}
    assert leaks({"stdout": printed.out, "stderr": printed.err, "airflow dag": dag, "spark-submit argv": argv,
                  **written}) == []

    # ... and the run happened, on the server, with the secrets masked or referenced, not dropped
    assert f"View run ingest at: {tracking_server}/#/experiments/" in printed.out
    client = mlflow.MlflowClient(tracking_server)
    run = client.search_runs([client.get_experiment_by_name("tiny").experiment_id], "tags.`lakeforge.step` = 'ingest'")[0]
    spark_conf = json.loads(Path(client.download_artifacts(run.info.run_id, "config.json", str(tmp_path / "dl")))
                            .read_text())["spark"]["conf"]
    assert spark_conf["spark.hadoop.fs.s3a.access.key"] == MASK
    assert spark_conf["spark.hadoop.fs.s3a.secret.key"] == "${env:LF_TEST_S3_SECRET}"
    assert spark_conf["spark.hadoop.fs.s3a.aws.credentials.provider"].endswith("SimpleAWSCredentialsProvider")
    assert f"tracking_uri: http://****@{host}" in printed.out  # config show
    # the secrets reach Spark and the spark-submit job in memory / through the environment only
    built = build_conf(config.spark, str(tmp_path / "warehouse"))
    assert built["spark.hadoop.fs.s3a.secret.key"] == ENV_SECRET and built["spark.hadoop.fs.s3a.access.key"] == YAML_SECRET
    assert "spark.hadoop.fs.s3a.aws.credentials.provider=" in argv and "--set" not in argv
    assert OVERRIDES_ENV not in argv and "s3a.secret.key" not in dag and "lakeforge_run_id" in dag


def test_an_unset_environment_variable_names_the_key_and_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("LF_TEST_UNSET", raising=False)
    config = load_config(tiny_pipeline(tmp_path), {"spark.conf": {"spark.hadoop.fs.s3a.secret.key": "${env:LF_TEST_UNSET}"}})
    with pytest.raises(ConfigError, match=r"spark\.conf\.spark\.hadoop\.fs\.s3a\.secret\.key: environment variable "
                                          r"LF_TEST_UNSET is not set"):
        build_conf(config.spark, str(tmp_path / "warehouse"))


@pytest.mark.parametrize("key", ["password", "spark.hadoop.fs.s3a.secret.key", "spark.hadoop.fs.s3a.access.key",
                                 "fs.azure.account.key.acct.dfs.core.windows.net", "fs.azure.sas.fixed.token",
                                 "spark.hadoop.fs.azure.sas.container.acct", "api_key", "fs.gs.auth.service.account.private.key",
                                 "spark.hadoop.fs.s3a.session.token"])
def test_secret_keys_are_recognised(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["spark.hadoop.fs.s3a.aws.credentials.provider", "spark.hadoop.fs.s3a.endpoint",
                                 "spark.sql.shuffle.partitions", "dataset.spine.key", "keys", "monkey"])
def test_ordinary_keys_are_not_masked(key):
    assert not is_secret_key(key)


def test_masking_keeps_references_and_restores_secrets_from_todays_config():
    recorded = mask_secrets({"conf": {"a.secret.key": "s3cr3t-value", "b.secret.key": "${env:B}"},
                             "uri": "http://u:pw-1234@host/x?token=abcd&n=1"})
    assert recorded == {"conf": {"a.secret.key": MASK, "b.secret.key": "${env:B}"},
                        "uri": f"http://{MASK}@host/x?token={MASK}&n=1"}
    current = {"conf": {"a.secret.key": "rotated", "b.secret.key": "${env:B}"}, "uri": "http://u:new@host/x?token=t&n=1"}
    assert restore_masked(recorded, current) == current
    remember_secret("s3cr3t-value")  # as resolving it for Spark does
    assert mask_text("Spark said: s3cr3t-value is wrong, see http://u:pw-1234@host") == \
        f"Spark said: {MASK} is wrong, see http://{MASK}@host"
