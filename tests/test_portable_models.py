"""The registered models load and predict with only their logged requirements: in a clean virtualenv
this module creates (no lakeforge, no pyspark), and behind ``mlflow models serve`` on 127.0.0.1 run from
that virtualenv. Both must give the scores the pipeline wrote to its predictions tables."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from lakeforge.train import model_input
from lakeforge.tracking import configure_mlflow

from conftest import REPO, free_port, wait_for

pytestmark = pytest.mark.e2e

# Run inside the clean virtualenv: argv = model URI, input pickle, output pickle.
PREDICT = """
import importlib.util, sys
import mlflow, pandas as pd
missing = [name for name in ("lakeforge", "pyspark") if importlib.util.find_spec(name) is not None]
assert not missing, f"importable in the clean environment: {missing}"
model = mlflow.pyfunc.load_model(sys.argv[1])
model.predict(pd.read_pickle(sys.argv[2])).to_pickle(sys.argv[3])
"""


def model_uris(config, spark) -> dict[str, str]:
    """The champion and the cascade version that wrote `cascade_predictions`."""
    cascade_version = spark.read.format("delta").load(config.table_path(config.cascade.table)) \
        .select("model_version").distinct().collect()
    assert len(cascade_version) == 1
    return {"champion": f"models:/{config.model.registered_name}@{config.model.alias}",
            "cascade": f"models:/{config.cascade.registered_name}/{cascade_version[0][0]}"}


@pytest.fixture(scope="module")
def store(spark, flights_cascade):
    config = flights_cascade
    configure_mlflow(config)
    return config, model_uris(config, spark)


@pytest.fixture(scope="module")
def clean_env(store, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A new virtualenv with the union of the models' logged requirements.txt files, nothing else
    (transitive versions from constraints.txt); and an environment that finds the tracking store."""
    config, uris = store
    requirements = [mlflow.pyfunc.get_model_dependencies(uri) for uri in uris.values()]
    venv = tmp_path_factory.mktemp("clean") / "venv"
    uv = str(Path(sys.executable).parent / "uv")  # installs in seconds what pip takes a minute for
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    install = [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
               "-c", str(REPO / "constraints.txt"), *(arg for path in requirements for arg in ("-r", path))]
    done = subprocess.run(install, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    env = {name: value for name, value in os.environ.items() if not name.startswith(("PYTHON", "SPARK", "PYSPARK"))}
    path = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"  # as `activate` does: the server execs the venv's uvicorn
    return venv, {**env, "PATH": path, "MLFLOW_TRACKING_URI": config.tracking_uri}


def scored_rows(spark, config, table: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A predictions table's rows (sorted by key) and the model inputs of the same rows, in the same order."""
    written = spark.read.format("delta").load(config.table_path(table)).toPandas().sort_values("key", ignore_index=True)
    dataset = spark.read.format("delta").load(config.table_path(config.dataset.table))
    rows = dataset.where(F.col("key").isin(list(written["key"])))
    inputs = model_input(rows, config.model, "key").toPandas().sort_values("key", ignore_index=True)
    assert list(inputs["key"]) == list(written["key"])
    return written, inputs


def predict_in(venv: Path, env: dict[str, str], uri: str, inputs: pd.DataFrame, folder: Path) -> pd.DataFrame:
    inputs.to_pickle(folder / "inputs.pkl")
    done = subprocess.run([str(venv / "bin" / "python"), "-c", PREDICT, uri, "inputs.pkl", "outputs.pkl"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return pd.read_pickle(folder / "outputs.pkl")


def assert_same_outputs(predicted: pd.DataFrame, written: pd.DataFrame, columns: list[str]) -> None:
    assert len(predicted) == len(written) > 1000
    for column in columns:
        np.testing.assert_allclose(predicted[column].astype("float64"), written[column].astype("float64"),
                                   rtol=1e-12, equal_nan=True, err_msg=column)


def test_the_champion_predicts_in_a_clean_environment_like_the_predictions_table(spark, store, clean_env, tmp_path):
    (config, uris), (venv, env) = store, clean_env
    written, inputs = scored_rows(spark, config, "predictions")
    predicted = predict_in(venv, env, uris["champion"], inputs, tmp_path)
    assert list(predicted.columns) == ["score"]
    assert_same_outputs(predicted, written, ["score"])


def test_the_cascade_predicts_in_a_clean_environment_like_its_predictions_table(spark, store, clean_env, tmp_path):
    (config, uris), (venv, env) = store, clean_env
    written, inputs = scored_rows(spark, config, config.cascade.table)
    predicted = predict_in(venv, env, uris["cascade"], inputs, tmp_path)
    assert_same_outputs(predicted, written, ["stage_a_score", "stage_b_score", "outcome"])
    assert set(predicted["outcome"]) == {0, 1, 2}


def test_mlflow_models_serve_answers_with_the_predictions_tables_scores(spark, store, clean_env, tmp_path):
    (config, uris), (venv, env) = store, clean_env
    written, inputs = scored_rows(spark, config, "predictions")
    port = free_port()
    with open(tmp_path / "serve.log", "w") as log:
        server = subprocess.Popen([str(venv / "bin" / "mlflow"), "models", "serve", "-m", uris["champion"],
                                   "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
                                  cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{port}/ping", 180, server)
        split = inputs.to_dict(orient="split", index=False)  # Python's json keeps every float's digits
        body = json.dumps({"dataframe_split": split})
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body.encode(),
                                         headers={"Content-Type": "application/json"})
        answer = json.loads(urllib.request.urlopen(request, timeout=120).read())
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert_same_outputs(pd.DataFrame(answer["predictions"]), written, ["score"])
