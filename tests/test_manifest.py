"""The run manifest: every table read with its version, config, code, seeds, runtime, packages and Spark conf."""
from __future__ import annotations

from importlib import metadata

import mlflow
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakeforge.config import RetentionSettings
from lakeforge.reproducibility.manifest import installed_packages, load_manifest
from lakeforge.tables import pinned_versions, read_pinned
from lakeforge.tracking import configure_mlflow, git_state, step_run

from conftest import flights_config


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    config = flights_config(tmp_path_factory.mktemp("manifest"), **{"mlflow.experiment": "manifest"})
    configure_mlflow(config)
    return config


def newest_in_history(spark, path: str) -> int:
    return spark.sql(f"DESCRIBE HISTORY delta.`{path}`").agg(F.max("version")).head()[0]


def two_tables(spark, config, prefix: str) -> tuple[str, str]:
    """Table `a` overwritten twice (v0, v1), table `b` written then appended to (v0, v1)."""
    a, b = config.table_path(f"{prefix}_a"), config.table_path(f"{prefix}_b")
    for rows in (3, 5):
        spark.range(rows).write.format("delta").mode("overwrite").save(a)
    spark.range(2).write.format("delta").save(b)
    spark.range(2, 4).write.format("delta").mode("append").save(b)
    return a, b


def test_manifest_lists_every_input_with_the_version_read(spark, config):
    a, b = two_tables(spark, config, "inputs")
    with step_run(config, "probe") as run:
        read_pinned(spark, "a", a)
        read_pinned(spark, "b", b, version=0)
        read_pinned(spark, "a", a)
    manifest = load_manifest(run.info.run_id)
    assert manifest["step"] == "probe"
    assert manifest["inputs"] == [{"name": "a", "path": a, "version": newest_in_history(spark, a)},
                                  {"name": "b", "path": b, "version": 0}]
    logged = mlflow.get_run(run.info.run_id)
    assert logged.data.tags["lakeforge.inputs"] == f"a@v{newest_in_history(spark, a)},b@v0"
    sources = sorted((mlflow.data.get_source(d).path, mlflow.data.get_source(d).delta_table_version)
                     for d in logged.inputs.dataset_inputs)
    assert sources == [(a, newest_in_history(spark, a)), (b, 0)]


def test_manifest_records_config_code_seed_runtime_and_packages(spark, config):
    with step_run(config, "probe") as run:
        pass
    manifest = load_manifest(run.info.run_id)
    assert manifest["config"] == config.model_dump(mode="json")
    assert manifest["config_hash"] == config.fingerprint()
    assert manifest["git"] == git_state()
    assert manifest["seeds"] == {"seed": config.seed}
    assert manifest["versions"]["spark"] == spark.version
    assert manifest["versions"]["delta"] == config.spark.delta_package.rsplit(":", 1)[1]
    assert manifest["versions"]["sklearn"] == metadata.version("scikit-learn")
    assert f"pyspark=={metadata.version('pyspark')}" in manifest["packages"]
    assert f"mlflow=={metadata.version('mlflow')}" in manifest["packages"]
    assert manifest["spark_conf"]["spark.sql.session.timeZone"] == "UTC"
    assert manifest["spark_conf"]["spark.sql.shuffle.partitions"] == spark.conf.get("spark.sql.shuffle.partitions")
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert tags["lakeforge.version.sklearn"] == metadata.version("scikit-learn")
    assert tags["lakeforge.packages_hash"] == manifest["packages_hash"]


def test_pinned_versions_replace_newest_for_reads_without_a_version(spark, config):
    a, b = two_tables(spark, config, "pins")
    with pinned_versions({"a": 0}):
        pinned, version = read_pinned(spark, "a", a)
        explicit, _ = read_pinned(spark, "a", a, version=1)
        _, unpinned = read_pinned(spark, "b", b)
    assert version.version == 0 and unpinned.version == newest_in_history(spark, b)
    assert_df_equality(pinned, spark.range(3), ignore_row_order=True, ignore_nullable=True)
    assert_df_equality(explicit, spark.range(5), ignore_row_order=True, ignore_nullable=True)
    assert read_pinned(spark, "a", a)[1].version == newest_in_history(spark, a)


def test_tables_created_in_a_step_keep_old_versions_for_the_configured_retention(spark, config):
    config = config.model_copy(update={"retention": RetentionSettings(log_retention_days=400,
                                                                      deleted_file_retention_days=200)})
    inside, outside = config.table_path("inside"), config.table_path("outside")
    with step_run(config, "probe"):
        spark.range(1).write.format("delta").save(inside)
    spark.range(1).write.format("delta").save(outside)

    def properties(path: str) -> dict[str, str]:
        return {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES delta.`{path}`").collect()}

    assert properties(inside)["delta.logRetentionDuration"] == "interval 400 days"
    assert properties(inside)["delta.deletedFileRetentionDuration"] == "interval 200 days"
    assert "delta.logRetentionDuration" not in properties(outside)


def test_the_package_lock_follows_installs_into_a_folder_on_the_path(tmp_path, monkeypatch):
    """The lock is kept between steps, but a distribution installed or removed since is seen at once."""
    def install(name: str) -> None:
        info = tmp_path / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")

    install("lakeforge-probe-a")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "lakeforge-probe-a==1.0" in installed_packages()
    assert "lakeforge-probe-b==1.0" not in installed_packages()
    install("lakeforge-probe-b")
    assert {"lakeforge-probe-a==1.0", "lakeforge-probe-b==1.0"} <= set(installed_packages())
    monkeypatch.undo()
    assert not {p for p in installed_packages() if p.startswith("lakeforge-probe-")}


def test_a_failed_step_logs_no_manifest(spark, config):
    with pytest.raises(RuntimeError, match="boom"):
        with step_run(config, "probe") as run:
            raise RuntimeError("boom")
    assert mlflow.get_run(run.info.run_id).info.status == "FAILED"
    with pytest.raises(mlflow.exceptions.MlflowException):
        load_manifest(run.info.run_id)
