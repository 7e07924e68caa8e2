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
    assert config.sources["flights"].columns["arr_delay"] == "double"
    assert config.model.train_months == [1, 2, 3, 4, 5, 6]
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


def test_bad_month_is_named():
    data = flights_dict()
    data["score"]["months"] = [7, 13]
    with pytest.raises(ConfigError, match=r"score\.months: .*between 1 and 12"):
        parse_config(data)


def test_leaking_feature_is_refused():
    data = flights_dict()
    data["model"]["numeric_features"].append("dep_delay")
    with pytest.raises(ConfigError, match=r"dep_delay.*leak"):
        parse_config(data)


def test_overrides_use_dotted_keys(tmp_path: Path):
    config = load_config(FLIGHTS_CONF, {"storage_root": str(tmp_path), "model.params.max_iter": 7, "seed": 3})
    assert config.model.params["max_iter"] == 7 and config.seed == 3
    assert config.table_path("x") == str(tmp_path / "delta" / "x")
    assert config.fingerprint() != load_config(FLIGHTS_CONF, {"storage_root": str(tmp_path)}).fingerprint()


def test_missing_file_and_bad_yaml(tmp_path: Path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("storage_root: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: invalid YAML"):
        load_config(broken)
