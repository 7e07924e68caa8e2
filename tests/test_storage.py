"""Storage locations are strings handed to Spark as they are; files beside the tables go through one storage layer."""
from __future__ import annotations

import os

import pytest

from lakeforge.config import load_config
from lakeforge.errors import ConfigError
from lakeforge.storage import Storage, join, local_path
from lakeforge.tracking import configure_mlflow

from conftest import FLIGHTS_CONF


def test_an_object_store_root_stays_a_uri(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(FLIGHTS_CONF, {"storage_root": "s3a://bucket/lake/"})
    assert config.table_path("predictions") == "s3a://bucket/lake/delta/predictions"
    assert config.landing_dir == "s3a://bucket/lake/landing"
    assert config.source_path("flights") == "s3a://bucket/lake/landing/flights/*.csv"
    assert config.location("runs", "r1.json") == "s3a://bucket/lake/runs/r1.json"
    assert not (tmp_path / "s3a:").exists()


def test_a_plain_relative_root_is_a_folder_of_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(FLIGHTS_CONF, {"storage_root": "lake", "landing.dir": "/data/in"})
    assert config.table_path("t") == str(tmp_path / "lake" / "delta" / "t")
    assert config.source_path("flights") == "/data/in/flights/*.csv"
    file_uri = load_config(FLIGHTS_CONF, {"storage_root": f"file://{tmp_path}/lake"})
    assert file_uri.table_path("t") == f"file://{tmp_path}/lake/delta/t"
    assert local_path(file_uri.storage_root) == str(tmp_path / "lake")


def test_tracking_uri_comes_from_the_config_then_the_environment_then_sqlite(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    default = load_config(FLIGHTS_CONF, {"storage_root": f"file://{tmp_path}"})
    assert default.tracking_uri == default.registry_uri == f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite:////tmp/registry.db")
    assert (default.tracking_uri, default.registry_uri) == ("http://127.0.0.1:5000", "sqlite:////tmp/registry.db")
    configured = load_config(FLIGHTS_CONF, {"storage_root": str(tmp_path), "mlflow.tracking_uri": "sqlite:///a.db",
                                            "mlflow.registry_uri": "sqlite:///b.db"})
    assert (configured.tracking_uri, configured.registry_uri) == ("sqlite:///a.db", "sqlite:///b.db")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI")
    configure_mlflow(default)  # MLflow exports the URIs it is given; the next config must not inherit them
    assert load_config(FLIGHTS_CONF, {"storage_root": str(tmp_path / "other")}).tracking_uri == (
        f"sqlite:///{tmp_path / 'other' / 'mlflow.db'}")
    with pytest.raises(ConfigError, match="mlflow.tracking_uri: storage_root s3a://bucket/lake is not a local"):
        _ = load_config(FLIGHTS_CONF, {"storage_root": "s3a://bucket/lake"}).tracking_uri


@pytest.mark.parametrize("uri", [False, True])
def test_files_round_trip_and_list_under_a_path_or_file_uri(tmp_path, uri):
    root = f"file://{tmp_path}" if uri else str(tmp_path)
    storage = Storage()
    report = join(root, "reports", "a.md")
    assert storage.read_text(report) is None and storage.children(join(root, "reports")) == {}
    assert storage.write_text(report, "# ok\n") == report
    storage.write_bytes(join(root, "reports", "sub", "b.png"), b"\x89PNG")
    assert storage.read_text(report) == "# ok\n" and storage.exists(report)
    assert storage.children(join(root, "reports")) == {"a.md": False, "sub": True}
    assert (tmp_path / "reports" / "sub" / "b.png").read_bytes() == b"\x89PNG"
    assert sorted(os.listdir(tmp_path / "reports")) == ["a.md", "sub"]  # no temporary file left

