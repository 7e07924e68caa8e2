"""`lakeforge runs`, `init`, `config show` / `config schema`, and the secret masking they share."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from lakeforge import cli
from lakeforge.cli import main
from lakeforge.config import LakeforgeConfig, load_config
from lakeforge.masking import MASK, is_secret_key, mask_secrets, mask_uri
from lakeforge.pipeline import ALL_STEPS, STEPS

from conftest import FLIGHTS_CONF


@pytest.mark.parametrize("key", ["password", "db_password", "spark.hadoop.fs.s3a.secret.key", "fs.s3a.access.key",
                                 "AWS_SECRET_ACCESS_KEY", "api_token", "client_secret", "credentials", "api-key"])
def test_secret_keys(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["keys", "key", "path", "table", "tracking_uri", "monitor", "max_categories"])
def test_ordinary_keys(key):
    assert not is_secret_key(key)


def test_credentials_inside_uris_are_masked():
    assert mask_uri("s3a://AKIA:verysecret@bucket/lake") == f"s3a://{MASK}@bucket/lake"
    assert mask_uri("https://host/x?sig=abc&sv=1&token=t0k") == f"https://host/x?sig={MASK}&sv=1&token={MASK}"
    assert mask_uri("sqlite:////tmp/lake/mlflow.db") == "sqlite:////tmp/lake/mlflow.db"
    nested = {"a": [{"password": "p"}, "postgresql://u:p@db/x"], "secret": None, "n": 3}
    assert mask_secrets(nested) == {"a": [{"password": MASK}, f"postgresql://{MASK}@db/x"], "secret": None, "n": 3}


def test_config_show_prints_the_resolved_config_with_secrets_masked(capsys, tmp_path):
    overrides = ["--set", f"storage_root={tmp_path}", "--set", "mlflow.tracking_uri=http://alice:hunter2@mlflow:5000",
                 "--set", 'spark.conf={"spark.hadoop.fs.s3a.secret.key": "hunter2", "spark.sql.shuffle.partitions": 4}']
    assert main(["config", "show", "--conf", str(FLIGHTS_CONF), *overrides]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out
    shown = yaml.safe_load(out)
    assert shown["mlflow"]["tracking_uri"] == f"http://{MASK}@mlflow:5000"
    assert shown["spark"]["conf"] == {"spark.hadoop.fs.s3a.secret.key": MASK, "spark.sql.shuffle.partitions": 4}
    resolved = load_config(FLIGHTS_CONF, {"storage_root": str(tmp_path)}).model_dump(mode="json")
    assert shown["model"] == resolved["model"] and shown["monitor"] == resolved["monitor"]  # defaults filled in


def test_config_schema_is_the_json_schema_of_the_pipeline_yaml(capsys):
    assert main(["config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema == json.loads(json.dumps(LakeforgeConfig.model_json_schema()))
    assert {"project", "storage_root", "sources", "dataset", "task", "windows", "model"} <= set(schema["required"])
    assert schema["additionalProperties"] is False  # editors flag unknown keys, as the loader does


def test_the_cli_knows_the_pipeline_steps_in_order():
    assert cli.STEP_NAMES == list(ALL_STEPS)


@pytest.fixture
def landing(tmp_path):
    """A landing folder: orders/ with two CSV files, a JSON-lines file and a parquet file."""
    folder = tmp_path / "landing"
    (folder / "orders").mkdir(parents=True)
    for day in (1, 2):
        pd.DataFrame({"order_id": [10 * day + i for i in range(40)], "customer": [f"c{i % 7}" for i in range(40)],
                      "amount": [12.5 + i for i in range(40)], "returned": ["true", "false"] * 20,
                      "ordered_at": [f"2024-03-0{day}T{i % 24:02d}:15:00" for i in range(40)]}
                     ).to_csv(folder / "orders" / f"2024-03-0{day}.csv", index=False)
    pd.DataFrame({"customer": ["c1", "c2"], "since": ["2020-01-01", "2021-06-30"], "vip": [True, False]}
                 ).to_json(folder / "customers.json", orient="records", lines=True)
    pd.DataFrame({"sku": ["a", "b"], "price": [1.5, 2.0]}).to_parquet(folder / "products.parquet")
    return folder


def test_init_writes_a_starter_that_validates_and_ingests(spark, landing, tmp_path, capsys):
    out, root = tmp_path / "shop" / "pipeline.yaml", tmp_path / "lake"
    assert main(["init", "shop", "--from", str(landing), "--out", str(out), "--storage-root", str(root)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    text = out.read_text()
    assert text.count("# TODO") == 4
    config = load_config(out)
    assert {n: (s.format, s.path) for n, s in config.sources.items()} == {
        "customers": ("json", "customers.json"), "orders": ("csv", "orders/*.csv"),
        "products": ("parquet", "products.parquet")}
    assert config.sources["orders"].column_types() == {"order_id": "bigint", "customer": "string", "amount": "double",
                                                       "returned": "boolean", "ordered_at": "timestamp"}
    assert config.sources["customers"].column_types() == {"customer": "string", "since": "timestamp", "vip": "boolean"}
    assert config.sources["products"].column_types() == {"sku": "string", "price": "double"}
    assert (config.dataset.spine.source, config.dataset.spine.time, config.task.label) == ("orders", "ordered_at", "returned")
    assert config.model.numeric_features == ["order_id", "amount"]

    assert main(["validate", "--conf", str(out)]) == 0
    assert "valid (3 sources" in capsys.readouterr().out
    assert main(["run", "ingest", "--conf", str(out), "--no-report"]) == 0
    counts = {t: spark.read.format("delta").load(config.table_path(f"bronze_{t}")).count() for t in config.sources}
    assert counts == {"customers": 2, "orders": 80, "products": 2}
    assert main(["init", "shop", "--from", str(landing), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_init_refuses_a_folder_without_data_files(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["init", "x", "--from", str(tmp_path / "empty"), "--out", str(tmp_path / "x.yaml")]) == 2
    assert "lakeforge: error: init: no data files" in capsys.readouterr().err


@pytest.mark.e2e
def test_runs_lists_runs_and_shows_one(flights_pipeline, capsys):
    config, _, run_id = flights_pipeline
    conf = ["--conf", str(FLIGHTS_CONF), "--set", f"storage_root={config.storage_root}"]
    assert main(["runs", *conf]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split() == ["run", "started", "(UTC)", "done", "failed", "seconds"]
    row = next(line.split() for line in listing if line.startswith(run_id))
    assert row[3:5] == ["6", "0"] and float(row[5]) > 0
    assert main(["runs", run_id, *conf]) == 0
    shown = capsys.readouterr().out
    steps = [line.split()[0:2] for line in shown.splitlines()[3:9]]
    assert steps == [[s, "succeeded"] for s in STEPS]
    assert f"report: {config.location('reports', run_id + '.html')}" in shown
    assert {line.split()[1] for line in shown.splitlines() if line.startswith("mlflow:")} >= {*STEPS, "pipeline"}
    assert main(["runs", "no-such-run", *conf]) == 2
    assert "lakeforge: error: no run 'no-such-run'" in capsys.readouterr().err


def test_a_column_whose_type_differs_between_files_is_text(tmp_path):
    from lakeforge.starter import infer_source

    (tmp_path / "a.csv").write_text("id,code\n1,7\n2,8\n")
    (tmp_path / "b.csv").write_text("id,code\n3,X7\n4,NA\n")
    source = infer_source("batches", [tmp_path / "a.csv", tmp_path / "b.csv"], tmp_path)
    assert source.columns == {"id": "bigint", "code": "string"}
