"""Retention guard: VACUUM keeps the table versions registered models were trained on, unless forced."""
from __future__ import annotations

import mlflow
import pytest
from chispa import assert_df_equality
from sklearn.linear_model import LogisticRegression

from lakeforge.cli import main
from lakeforge.reproducibility.retention import RetentionError, plan_vacuum, vacuum
from lakeforge.tables import read_pinned
from lakeforge.tracking import configure_mlflow, step_run

from conftest import FLIGHTS_CONF, flights_config


@pytest.fixture
def short_retention_allowed(spark):
    """Let Delta vacuum with less than the table's deleted-file retention (the guard is under test)."""
    key = "spark.databricks.delta.retentionDurationCheck.enabled"
    spark.conf.set(key, "false")
    yield
    spark.conf.unset(key)


@pytest.fixture
def lake(spark, tmp_path, short_retention_allowed):
    """`trained_on` v0 is what a registered model read, then was overwritten twice; `scratch` v0 only an unregistered run read."""
    config = flights_config(tmp_path, **{"mlflow.experiment": "retention"})
    configure_mlflow(config)
    trained_on, scratch = config.table_path("trained_on"), config.table_path("scratch")
    with step_run(config, "ingest"):
        for start in (0, 100, 200):
            spark.range(start, start + 10).write.format("delta").mode("overwrite").save(trained_on)
        for start in (0, 100):
            spark.range(start, start + 10).write.format("delta").mode("overwrite").save(scratch)
    with step_run(config, "train"):
        rows = read_pinned(spark, "trained_on", trained_on, version=0)[0].toPandas()
        model = LogisticRegression().fit(rows[["id"]], rows["id"] % 2)
        mlflow.sklearn.log_model(model, name="model", registered_model_name="retention-test")
    with step_run(config, "explore"):
        read_pinned(spark, "scratch", scratch, version=0)
    return config, trained_on, scratch


def version_0(spark, path: str):
    return spark.read.format("delta").option("versionAsOf", 0).load(path)


def test_vacuum_refuses_a_retention_that_cuts_into_a_protected_version(spark, lake):
    config, trained_on, _ = lake
    with pytest.raises(RetentionError, match=r"trained_on: protected versions v0 \(retention-test v1\)"):
        vacuum(spark, config, ["trained_on"], retention_hours=0)
    assert_df_equality(version_0(spark, trained_on), spark.range(10), ignore_row_order=True, ignore_nullable=True)


def test_vacuum_with_a_covering_retention_keeps_the_protected_version_readable(spark, lake):
    config, trained_on, scratch = lake
    plans = {plan.table: plan for plan in plan_vacuum(spark, config, retention_hours=0)}
    assert [p.version for p in plans["trained_on"].protected] == [0] and plans["scratch"].protected == []
    needed = plans["trained_on"].required_hours
    assert needed is not None and needed >= 1
    vacuum(spark, config, ["trained_on"], retention_hours=needed)
    vacuum(spark, config, ["scratch"], retention_hours=0)
    assert_df_equality(version_0(spark, trained_on), spark.range(10), ignore_row_order=True, ignore_nullable=True)
    with pytest.raises(Exception, match="(?i)not.?found|does not exist|FILE_NOT_EXIST"):
        version_0(spark, scratch).collect()


def test_forced_vacuum_deletes_protected_files_and_the_cli_refuses_without_force(spark, lake, capsys):
    config, trained_on, _ = lake
    cli = ["vacuum", "trained_on", "--retention-hours", "0", "--conf", str(FLIGHTS_CONF),
           "--set", f"storage_root={config.storage_root}", "--set", "mlflow.experiment=retention"]
    assert main(cli) == 2
    assert "v0 (retention-test v1)" in capsys.readouterr().err
    assert main([*cli, "--force"]) == 0
    assert "FORCED" in capsys.readouterr().out
    with pytest.raises(Exception, match="(?i)not.?found|does not exist|FILE_NOT_EXIST"):
        version_0(spark, trained_on).collect()
