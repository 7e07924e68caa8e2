"""Feature views: declarations, incremental idempotent MERGE, clear errors, registry, past-only daily rates."""
import datetime as dt

import mlflow
import pytest
from chispa import assert_df_equality
from sklearn.dummy import DummyClassifier

from lakeforge.errors import ConfigError, StepError
from lakeforge.features.aggregates import snapshots
from lakeforge.features.store import materialize, models_using, record, registry
from lakeforge.features.views import ViewTable
from lakeforge.tables import TableVersion, read_pinned
from lakeforge.tracking import configure_mlflow, log_tables

from conftest import flights_config

RATES = ViewTable("rates", ("carrier",), 86_399, False, ("rate",))
SCHEMA = "carrier string, event_time timestamp, rate double"


def day(d: int) -> dt.datetime:
    return dt.datetime(2013, 1, d)


def test_materialize_merges_on_keys_and_event_time_and_is_idempotent(spark, tmp_path):
    config = flights_config(tmp_path)
    first = spark.createDataFrame([("UA", day(1), 0.1), ("AA", day(1), 0.2)], SCHEMA)
    v0 = materialize(spark, config, RATES, first)
    v1 = materialize(spark, config, RATES, first)
    assert_df_equality(read_pinned(spark, "rates", v0.path, v1.version)[0], first, ignore_row_order=True)
    second = spark.createDataFrame([("UA", day(1), 0.15), ("UA", day(2), 0.3)], SCHEMA)  # one correction, one new day
    v2 = materialize(spark, config, RATES, second)
    expected = spark.createDataFrame([("UA", day(1), 0.15), ("AA", day(1), 0.2), ("UA", day(2), 0.3)], SCHEMA)
    assert_df_equality(read_pinned(spark, "rates", v2.path)[0], expected, ignore_row_order=True)
    record(spark, config, [v2], TableVersion("dataset", "/nowhere", 7))
    logged = registry(spark, config).select("feature_table", "table_version", "event", "consumer", "rows_inserted",
                                            "rows_updated")
    assert sorted(tuple(r) for r in logged.collect()) == [
        ("rates", v2.version, "materialized", None, 1, 1), ("rates", v2.version, "read_by", "dataset", None, None)]


def test_bad_feature_rows_are_refused_naming_the_column(spark, tmp_path):
    config = flights_config(tmp_path)
    with pytest.raises(StepError, match=r"'rates'.*lack column\(s\) \['event_time'\]"):
        materialize(spark, config, RATES, spark.createDataFrame([("UA", 0.1)], "carrier string, rate double"))
    duplicated = spark.createDataFrame([("UA", day(1), 0.1), ("UA", day(1), 0.2)], SCHEMA)
    with pytest.raises(StepError, match="several rows share"):
        materialize(spark, config, RATES, duplicated)


def test_view_declaration_needs_ttl_with_event_time(tmp_path):
    view = {"source": "weather", "keys": ["origin"], "event_time": "time_hour", "select": {"t": "temp"}}
    with pytest.raises(ConfigError, match=r"features.w: .*event_time and ttl go together"):
        flights_config(tmp_path, **{"features.w": view})
    with pytest.raises(ConfigError, match=r"features.w.ttl: .*expected a duration"):
        flights_config(tmp_path, **{"features.w": {**view, "ttl": "3 hours"}})
    with pytest.raises(ConfigError, match=r"features.w: .*exactly one of select, aggregate, python"):
        flights_config(tmp_path, **{"features.w": {**view, "ttl": "3h", "python": "m:f"}})


def test_daily_rates_use_only_the_previous_days(spark):
    flights = spark.createDataFrame(
        [(day(1), "UA", 1), (day(1), "UA", 0), (day(2), "UA", 1), (day(9), "UA", 0), (day(3), "AA", 1)],
        "event_time timestamp, carrier string, label int")
    metrics = {"flights_7d": "count(*)", "delay_rate_7d": "avg(cast(label AS double))"}
    rates = snapshots(flights, ["carrier"], metrics, 7 * 86400, 86400).where("carrier = 'UA'")
    # Day 2 sees day 1 only, days 3..8 see days 1-2, day 9 sees day 2 (day 1 is 8 days back), days 10..16 see day 9.
    expected = [(day(2), 2, 0.5)] + [(day(d), 3, 2 / 3) for d in range(3, 9)] + [(day(9), 1, 1.0)]
    expected += [(day(d), 1, 0.0) for d in range(10, 17)]
    got = sorted((r.event_time, r.flights_7d, r.delay_rate_7d) for r in rates.collect())
    assert got == expected
    assert dict(rates.dtypes) == {"carrier": "string", "event_time": "timestamp", "flights_7d": "bigint",
                                  "delay_rate_7d": "double"}


def test_models_using_follows_the_registry_to_the_models_trained_on_it(spark, tmp_path):
    config = flights_config(tmp_path)
    rates = materialize(spark, config, RATES, spark.createDataFrame([("UA", day(1), 0.1)], SCHEMA))
    record(spark, config, [rates], TableVersion("flight_features", "/lake/flight_features", 3))
    configure_mlflow(config)
    for dataset_version in (3, 4):  # only the first model was trained on a dataset built from `rates`
        with mlflow.start_run():
            log_tables([TableVersion("flight_features", "/lake/flight_features", dataset_version)], "input")
            mlflow.sklearn.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), name="model",
                                     registered_model_name=config.model.registered_name)
    got = models_using(spark, config, "rates")
    assert got[["model_version", "table_version", "consumer_version"]].values.tolist() == [["1", rates.version, 3]]
