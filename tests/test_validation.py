"""Validation before any job: SQL expressions analysed against the declared columns, errors naming the key."""
from __future__ import annotations

import pytest

from lakeforge.errors import ConfigError
from lakeforge.validation import validate

from conftest import FLIGHTS_CONF, flights_config

METRIC = "features.carrier_daily_delays.aggregate.metrics.carrier_delay_rate_7d"


def problems(spark, tmp_path, **overrides) -> str:
    with pytest.raises(ConfigError) as error:
        validate(spark, flights_config(tmp_path, **overrides))
    return str(error.value)


def test_the_flights_example_is_valid(spark, tmp_path):
    assert validate(spark, flights_config(tmp_path)) == []


def test_unknown_columns_are_named_with_their_key_and_a_suggestion(spark, tmp_path):
    message = problems(spark, tmp_path, **{
        METRIC: "avg(cast(lable AS double))",
        "dataset.spine.where": "dep_time IS NOT NULL AND arr_dela IS NOT NULL",
        "dataset.derived.plane_age": "year - plane_yaer",
        "features.weather_by_origin.select.temp": "tmep",
    })
    assert "dataset.spine.where: column 'arr_dela' does not exist (did you mean 'arr_delay'?)" in message
    # the spine is needed to check the rest: fix it and the other keys are reported
    message = problems(spark, tmp_path, **{METRIC: "avg(cast(lable AS double))",
                                           "features.weather_by_origin.select.temp": "tmep"})
    assert f"{METRIC}: column 'lable' does not exist (did you mean 'label'?)" in message
    assert "features.weather_by_origin.select.temp: column 'tmep' does not exist (did you mean 'temp'?)" in message
    message = problems(spark, tmp_path, **{"dataset.derived.plane_age": "year - plane_yaer"})
    assert "dataset.derived.plane_age: column 'plane_yaer' does not exist (did you mean 'plane_year'?)" in message


def test_bad_sql_and_non_aggregates_are_refused(spark, tmp_path):
    assert "task.label: " in problems(spark, tmp_path, **{"task.label": "arr_delay >"})
    assert f"{METRIC}: " in problems(spark, tmp_path, **{METRIC: "label + 1"})
    assert "dataset.spine.where: 'year' is not a condition" in problems(spark, tmp_path, **{"dataset.spine.where": "year"})


def test_a_model_column_nothing_provides_is_an_error_and_an_unused_view_a_warning(spark, tmp_path):
    message = problems(spark, tmp_path, **{"model.numeric_features": ["distance", "wind_chill"]})
    assert "model.numeric_features: column 'wind_chill' is provided by nothing" in message
    warnings = validate(spark, flights_config(tmp_path, **{"model.text_features": [],
                                                            "model.categorical_features": ["carrier"],
                                                            "model.numeric_features": ["distance", "temp"]}))
    assert warnings == [
        "features.plane_attributes: no model column uses this view's features (plane_year, plane_seats, plane_engines, "
        "plane_engine, plane_description)",
        "features.carrier_daily_delays: no model column uses this view's features (carrier_flights_7d, carrier_delay_rate_7d)",
        "features.route_daily_delays: no model column uses this view's features (route_flights_7d, route_delay_rate_7d)"]


def test_view_keys_must_be_spine_and_source_columns(spark, tmp_path):
    message = problems(spark, tmp_path, **{"features.weather_by_origin.keys": ["airport"]})
    assert "features.weather_by_origin.keys: ['airport'] are not columns of the spine" in message
    assert "features.weather_by_origin.keys: ['airport'] are not columns of source 'weather'" in message


def test_unknown_sources_and_views_are_refused_by_the_schema(tmp_path):
    with pytest.raises(ConfigError, match=r"dataset.spine.source: 'trips' is not a source"):
        flights_config(tmp_path, **{"dataset.spine.source": "trips"})
    with pytest.raises(ConfigError, match=r"features.w: source 'trips' is not a source"):
        flights_config(tmp_path, **{"features.w": {"source": "trips", "keys": ["k"], "select": {"a": "a"}}})


def test_a_column_of_the_label_expression_may_not_be_a_feature(spark, tmp_path):
    message = problems(spark, tmp_path, **{"task.leakage_columns": [],
                                           "model.numeric_features": ["distance", "arr_delay"]})
    assert "model.numeric_features: column 'arr_delay' is used by task.label ('arr_delay > 15')" in message


def test_lakeforge_validate_prints_the_problems_and_exits_2(spark, tmp_path, capsys):
    from lakeforge.cli import main

    base = ["validate", "--conf", str(FLIGHTS_CONF), "--set", f"storage_root={tmp_path}"]
    assert main(base) == 0
    assert "pipeline.yaml: valid (3 sources, 4 feature views)" in capsys.readouterr().out
    assert main([*base, "--set", "dataset.derived.plane_age=year - plane_yaer"]) == 2
    assert ("dataset.derived.plane_age: column 'plane_yaer' does not exist (did you mean 'plane_year'?)"
            in capsys.readouterr().err)


def test_spine_columns_the_dataset_drops_are_not_model_or_slice_columns(spark, tmp_path):
    message = problems(spark, tmp_path, **{"dataset.spine_columns": ["carrier", "origin", "dest", "distnace"]})
    assert "dataset.spine_columns: ['distnace'] are not columns of the spine" in message
    # dropped columns still feed derived columns (day_of_week uses year, month, day) but not the model or slices
    message = problems(spark, tmp_path, **{"dataset.spine_columns": ["carrier", "origin", "dest", "month"]})
    assert "model.numeric_features: column 'distance' is provided by nothing: no spine column the dataset keeps" in message
    assert "  dataset.derived." not in message
    message = problems(spark, tmp_path, **{"dataset.spine_columns": ["carrier", "origin", "dest", "distance"]})
    assert "evaluation.slices.columns: column 'month' is not in the dataset" in message
