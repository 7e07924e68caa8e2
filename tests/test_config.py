from datetime import datetime
from pathlib import Path

import pytest
import yaml

from lakeforge.config import load_config, parse_config
from lakeforge.errors import ConfigError

from conftest import FLIGHTS_CONF


def flights_dict() -> dict:
    return yaml.safe_load(FLIGHTS_CONF.read_text())


def test_shipped_config_is_valid():
    config = load_config(FLIGHTS_CONF)
    assert config.sources["flights"].columns["arr_delay"].type == "double"
    assert config.windows.train == (datetime(2013, 1, 1), datetime(2013, 7, 1))
    assert config.model.registered_name == config.mlflow.experiment == config.project == "lakeforge-flights"
    assert config.cascade.registered_name == "lakeforge-flights-cascade"
    assert config.tracking_uri.startswith("sqlite:///") and config.tracking_uri.endswith("lakehouse/mlflow.db")


def test_unknown_key_is_named():
    data = flights_dict()
    data["model"]["paramz"] = {}
    with pytest.raises(ConfigError, match=r"model\.paramz: unknown key"):
        parse_config(data)


def test_bad_value_is_named():
    data = flights_dict()
    data["split"]["validation_fraction"] = 1.5
    with pytest.raises(ConfigError, match=r"split\.validation_fraction: Input should be less than 1"):
        parse_config(data)


def test_bad_column_type_is_named():
    data = flights_dict()
    data["sources"]["weather"]["columns"]["temp"] = "float64"
    with pytest.raises(ConfigError, match=r"sources\.weather\.columns\.temp"):
        parse_config(data)


def test_bad_windows_and_durations_are_named():
    data = flights_dict()
    data["windows"]["score"] = ["2014-01-01", "2013-07-01"]
    data["features"]["weather_by_origin"]["ttl"] = "3 hours"
    data["features"]["carrier_daily_delays"]["aggregate"]["every"] = "5d"
    with pytest.raises(ConfigError) as error:
        parse_config(data)
    assert "windows.score: Value error, start 2014-01-01 00:00:00 must be before end 2013-07-01 00:00:00" in str(error.value)
    assert "features.weather_by_origin.ttl: Value error, expected a duration such as" in str(error.value)
    assert "features.carrier_daily_delays.aggregate: Value error, window 7d must be a whole number of every (5d)" in str(error.value)


def test_timestamp_formats_and_names_are_checked():
    data = flights_dict()
    data["sources"]["flights"]["columns"]["dep_time"] = {"type": "int", "format": "epoch_seconds"}
    with pytest.raises(ConfigError, match="sources.flights.columns.dep_time: Value error, format is for timestamp"):
        parse_config(data)
    data = flights_dict()
    data["sources"]["bad/name"] = data["sources"]["planes"]
    with pytest.raises(ConfigError, match=r"sources: Value error, source names must be identifiers .*\['bad/name'\]"):
        parse_config(data)


def test_leaking_feature_is_refused():
    data = flights_dict()
    data["model"]["numeric_features"] += ["dep_delay", "label"]
    with pytest.raises(ConfigError, match=r"\['dep_delay', 'label'\].*leak"):
        parse_config(data)


def test_overrides_use_dotted_keys(tmp_path: Path):
    config = load_config(FLIGHTS_CONF, {"storage_root": str(tmp_path), "model.params.max_iter": 7, "seed": 3})
    assert config.model.params["max_iter"] == 7 and config.seed == 3
    assert config.table_path("x") == str(tmp_path / "delta" / "x")
    assert config.fingerprint() != load_config(FLIGHTS_CONF, {"storage_root": str(tmp_path)}).fingerprint()


def test_an_override_under_spark_conf_names_one_spark_setting(tmp_path: Path):
    config = load_config(FLIGHTS_CONF, {"storage_root": str(tmp_path), "spark.conf.spark.sql.shuffle.partitions": 3,
                                        "spark.conf.spark.driver.extraJavaOptions": "-Xss4m"})
    assert config.spark.conf["spark.sql.shuffle.partitions"] == 3
    assert config.spark.conf["spark.driver.extraJavaOptions"] == "-Xss4m"
    assert config.spark.conf["spark.driver.memory"] == "4g"  # the YAML's other entries stay
    step = load_config(FLIGHTS_CONF, {"storage_root": str(tmp_path), "pipeline.steps": {"ingest": {}},
                                      "pipeline.steps.ingest.spark_conf.spark.sql.shuffle.partitions": 5})
    assert step.pipeline.steps["ingest"].spark_conf == {"spark.sql.shuffle.partitions": 5}


def test_missing_file_and_bad_yaml(tmp_path: Path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("storage_root: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: invalid YAML"):
        load_config(broken)
