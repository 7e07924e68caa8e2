"""SparkSession factory with Delta Lake configured.

Locally (plain ``python``) the session is embedded (``local[*]``) and Delta's jars are resolved
from Maven through ``spark.jars.packages``. Under ``spark-submit`` the master and the jars come
from the command line (``--master``, ``--packages``) and nothing here overrides them.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from py4j.java_gateway import JavaClass
from pyspark import SparkConf
from pyspark.errors import PySparkRuntimeError
from pyspark.sql import SparkSession

from lakeforge.config import SparkSettings
from lakeforge.errors import SparkSetupError

# Spark compiles each stage to one Java method; a wide row (ingest types and checks every column)
# can exceed the JVM's 8000-byte limit for JIT compilation and then runs interpreted, 3x slower.
JVM_CONF: dict[str, str] = {
    "spark.driver.extraJavaOptions": "-XX:-DontCompileHugeMethods",
    "spark.executor.extraJavaOptions": "-XX:-DontCompileHugeMethods",
}
DEFAULT_CONF: dict[str, str] = {
    **JVM_CONF,
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.ui.showConsoleProgress": "false",
    "spark.ui.enabled": "false",
}

_HOW_TO_PROVIDE_JARS = (
    "Provide Delta Lake's jars in one of these ways:\n"
    "  - spark-submit --packages {package} ...   (resolved from Maven Central)\n"
    "  - spark-submit --jars /path/to/delta-spark.jar,/path/to/delta-storage.jar ...\n"
    "  - set spark.jars_dir in the YAML config to a folder holding those jars\n"
    "  - pre-fetch them: mvn dependency:get -Dartifact={package}"
)


def _launched_by_spark_submit() -> bool:
    return "PYSPARK_GATEWAY_PORT" in os.environ


def conf_value(value: str | int | float | bool) -> str:
    """A YAML value as Spark conf text (booleans as ``true``/``false``)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def build_conf(settings: SparkSettings, warehouse_dir: Path) -> dict[str, str]:
    """The Spark conf lakeforge sets, lowest to highest precedence: defaults, then YAML."""
    conf = dict(DEFAULT_CONF)
    conf["spark.sql.warehouse.dir"] = str(warehouse_dir.resolve())
    if not _launched_by_spark_submit():
        conf["spark.master"] = settings.master or "local[*]"
        if settings.jars_dir is not None:
            jars = sorted(Path(settings.jars_dir).glob("*.jar"))
            if not jars:
                raise SparkSetupError(f"spark.jars_dir {settings.jars_dir} holds no .jar files")
            conf["spark.jars"] = ",".join(str(j) for j in jars)
        else:
            conf["spark.jars.packages"] = settings.delta_package
    elif settings.master:
        conf["spark.master"] = settings.master
    conf.update({key: conf_value(value) for key, value in settings.conf.items()})
    return conf


def get_spark(settings: SparkSettings, warehouse_dir: Path) -> SparkSession:
    """Return the active SparkSession, creating it with Delta configured if there is none."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if not _launched_by_spark_submit():  # Python workers must run this interpreter (its venv has pandas etc.)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(settings.app_name)
    submitted = SparkConf()
    for key, value in build_conf(settings, warehouse_dir).items():
        if not (_launched_by_spark_submit() and submitted.contains(key)):
            builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except PySparkRuntimeError as exc:
        raise SparkSetupError(
            f"Spark could not start ({exc.getErrorClass()}); if the log above shows "
            f"'unresolved dependency', Delta's jars could not be fetched.\n"
            + _HOW_TO_PROVIDE_JARS.format(package=settings.delta_package)
        ) from exc
    spark.sparkContext.setLogLevel("WARN")
    _require_delta(spark, settings.delta_package)
    return spark


def _require_delta(spark: SparkSession, package: str) -> None:
    delta_table = spark.sparkContext._jvm.io.delta.tables.DeltaTable
    if not isinstance(delta_table, JavaClass):
        raise SparkSetupError(
            "Delta Lake classes are not on the Spark classpath.\n"
            + _HOW_TO_PROVIDE_JARS.format(package=package)
        )
