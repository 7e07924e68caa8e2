"""Feature tables: YAML declarations, incremental idempotent MERGE, clear errors, registry, past-only rolling rates."""
import datetime as dt

import mlflow
import pytest
from chispa import assert_df_equality
from sklearn.dummy import DummyClassifier

from lakeforge.errors import ConfigError, StepError
from lakeforge.features.flights import past_delay_rates
from lakeforge.features.store import materialize, models_using, record, registry
from lakeforge.tables import TableVersion, read_pinned
from lakeforge.tracking import configure_mlflow, log_tables

from conftest import flights_config

RATES = {
    "owner": "ops", "keys": ["carrier"], "event_time": "day_start", "ttl_hours": 24,
    "features": {"rate": {"type": "double", "description": "delay rate"}},
}
SCHEMA = "carrier string, day_start timestamp, rate double"


def day(d: int) -> dt.datetime:
    return dt.datetime(2013, 1, d)


def config_with_rates(tmp_path, **rates):
    return flights_config(tmp_path, **{"feature_store.tables": {"rates": {**RATES, **rates}}})


def test_materialize_merges_on_keys_and_event_time_and_is_idempotent(spark, tmp_path):
    config = config_with_rates(tmp_path)
    first = spark.createDataFrame([("UA", day(1), 0.1), ("AA", day(1), 0.2)], SCHEMA)
    v0 = materialize(spark, config, "rates", first)
    v1 = materialize(spark, config, "rates", first)
    assert_df_equality(read_pinned(spark, "rates", v0.path, v1.version)[0], first, ignore_row_order=True)
    second = spark.createDataFrame([("UA", day(1), 0.15), ("UA", day(2), 0.3)], SCHEMA)  # one correction, one new day
    v2 = materialize(spark, config, "rates", second)
    expected = spark.createDataFrame([("UA", day(1), 0.15), ("AA", day(1), 0.2), ("UA", day(2), 0.3)], SCHEMA)
    assert_df_equality(read_pinned(spark, "rates", v2.path)[0], expected, ignore_row_order=True)
    record(spark, config, [v2], TableVersion("dataset", "/nowhere", 7))
    logged = registry(spark, config).select("feature_table", "table_version", "event", "consumer", "rows_inserted",
                                            "rows_updated")
    assert sorted(tuple(r) for r in logged.collect()) == [
        ("rates", v2.version, "materialized", None, 1, 1), ("rates", v2.version, "read_by", "dataset", None, None)]


def test_bad_feature_rows_are_refused_naming_the_column(spark, tmp_path):
    config = config_with_rates(tmp_path)
    with pytest.raises(StepError, match=r"'rates'.*rate is string, declared double"):
        materialize(spark, config, "rates", spark.createDataFrame([("UA", day(1), "x")], "carrier string, day_start timestamp, rate string"))
    with pytest.raises(StepError, match=r"'rates'.*lack declared column\(s\) \['day_start'\]"):
        materialize(spark, config, "rates", spark.createDataFrame([("UA", 0.1)], "carrier string, rate double"))
    duplicated = spark.createDataFrame([("UA", day(1), 0.1), ("UA", day(1), 0.2)], SCHEMA)
    with pytest.raises(StepError, match="several rows share"):
        materialize(spark, config, "rates", duplicated)
    with pytest.raises(StepError, match="'weather' is not declared"):
        materialize(spark, config, "weather", duplicated)


def test_declaration_needs_ttl_with_event_time(tmp_path):
    with pytest.raises(ConfigError, match=r"feature_store.tables.rates: .*event_time and ttl_hours go together"):
        config_with_rates(tmp_path, ttl_hours=None)


def test_rolling_rates_use_only_the_previous_days(spark):
    flights = spark.createDataFrame(
        [(2013, 1, 1, "UA", 1), (2013, 1, 1, "UA", 0), (2013, 1, 2, "UA", 1), (2013, 1, 9, "UA", 0), (2013, 1, 3, "AA", 1)],
        "year int, month int, day int, carrier string, delayed int")
    rates = past_delay_rates(flights, ["carrier"], "carrier", "delayed", days=7).where("carrier = 'UA'")
    # Day 2 sees day 1 only, days 3..8 see days 1-2, day 9 sees day 2 (day 1 is 8 days back), days 10..16 see day 9.
    expected = [(day(2), 2, 0.5)] + [(day(d), 3, 2 / 3) for d in range(3, 9)] + [(day(9), 1, 1.0)]
    expected += [(day(d), 1, 0.0) for d in range(10, 17)]
    got = sorted((r.day_start, r.carrier_flights_7d, r.carrier_delay_rate_7d) for r in rates.collect())
    assert got == expected


def test_models_using_follows_the_registry_to_the_models_trained_on_it(spark, tmp_path):
    config = config_with_rates(tmp_path)
    rates = materialize(spark, config, "rates", spark.createDataFrame([("UA", day(1), 0.1)], SCHEMA))
    record(spark, config, [rates], TableVersion("flight_features", "/lake/flight_features", 3))
    configure_mlflow(config)
    for dataset_version in (3, 4):  # only the first model was trained on a dataset built from `rates`
        with mlflow.start_run():
            log_tables([TableVersion("flight_features", "/lake/flight_features", dataset_version)], "input")
            mlflow.sklearn.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), name="model",
                                     registered_model_name=config.model.registered_name)
    got = models_using(spark, config, "rates")
    assert got[["model_version", "table_version", "consumer_version"]].values.tolist() == [["1", rates.version, 3]]
