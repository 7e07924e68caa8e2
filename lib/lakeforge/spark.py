"""SparkSession factory with Delta Lake configured, and the local jar folder that keeps its start quiet.

Locally (plain ``python``) the session is embedded (``local[*]``) and Delta's jars (with any
``spark.packages``) come from a local folder: ``spark.jars_dir``, else the folder ``lakeforge jars``
filled once at set-up; only without either are they resolved from Maven (with Ivy's report) at every
start. Under ``spark-submit`` the master and the jars come from the command line (``--master``,
``--jars``/``--packages``) and nothing here overrides them. In-process sessions log with
`LOG4J_CONFIG`: warnings, without the expected ones that come with stack traces.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from py4j.java_gateway import JavaClass
from pyspark import SparkConf
from pyspark.errors import PySparkRuntimeError
from pyspark.sql import SparkSession

from lakeforge import class_archive
from lakeforge.config import SparkSettings
from lakeforge.errors import SparkSetupError
from lakeforge.secrets import resolve_conf

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
    # Delta's VACUUM lists and diffs a table's files in this many tasks (Spark's default, 10000, made a
    # vacuum of a ten-file table take 97 s on two cores); set it higher in spark.conf for very large tables.
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "32",
    "spark.ui.showConsoleProgress": "false",
    "spark.ui.enabled": "false",
}

LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")

_HOW_TO_PROVIDE_JARS = (
    "Provide Delta Lake's jars in one of these ways:\n"
    "  - spark-submit --packages {package} ...   (resolved from Maven Central)\n"
    "  - spark-submit --jars /path/to/delta-spark.jar,/path/to/delta-storage.jar ...\n"
    "  - set spark.jars_dir in the YAML config to a folder holding those jars\n"
    "  - fetch them once into lakeforge's jar folder: lakeforge jars [--conf pipeline.yaml]"
)


def _launched_by_spark_submit() -> bool:
    return "PYSPARK_GATEWAY_PORT" in os.environ


def jars_folder(settings: SparkSettings) -> Path:
    """`spark.jars_dir`, else the default folder for this list of packages (under LAKEFORGE_JARS_HOME,
    default ``~/.cache/lakeforge/jars``)."""
    if settings.jars_dir is not None:
        return Path(settings.jars_dir)
    home = os.environ.get("LAKEFORGE_JARS_HOME") or Path.home() / ".cache" / "lakeforge" / "jars"
    return Path(home) / hashlib.sha256(",".join(settings.all_packages).encode()).hexdigest()[:12]


def jar_files(settings: SparkSettings) -> list[str]:
    """The local jars to put on the classpath; empty when the packages must be resolved from Maven."""
    jars = sorted(str(jar) for jar in jars_folder(settings).glob("*.jar"))
    if settings.jars_dir is not None and not jars:
        raise SparkSetupError(f"spark.jars_dir {settings.jars_dir} holds no .jar files")
    return jars


def fetch_jars(settings: SparkSettings, refresh: bool = False) -> Path:
    """Resolve the packages from Maven once (Ivy, in a throwaway session) and copy their jars into
    `jars_folder`, unless it holds jars already (or `refresh`); later sessions start from there."""
    folder = jars_folder(settings)
    if jar_files(settings) and not refresh:
        return folder
    session = (SparkSession.builder.master("local[1]").appName("lakeforge-jars")
               .config("spark.jars.packages", ",".join(settings.all_packages))
               .config("spark.ui.enabled", "false").getOrCreate())
    try:
        resolved = [jar for jar in session.sparkContext.getConf().get("spark.jars", "").split(",") if jar]
    finally:
        session.stop()
    if not resolved:
        raise SparkSetupError(f"no jars were resolved for {', '.join(settings.all_packages)}")
    staging = Path(tempfile.mkdtemp(prefix=".jars-", dir=folder.parent if folder.parent.exists() else None))
    for jar in resolved:
        shutil.copy2(urlparse(jar).path if jar.startswith("file:") else jar, staging)
    folder.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
    shutil.move(staging, folder)
    return folder


def archive_conf(settings: SparkSettings, jars: list[str]) -> dict[str, str]:
    """Driver options mapping the class-data archive `lakeforge jars` recorded for `jars` (none: empty); as
    ``spark.driver.defaultJavaOptions``, which Spark puts before the ``extraJavaOptions`` users may set."""
    options = class_archive.java_options(settings, jars)
    return {"spark.driver.defaultJavaOptions": options} if options else {}


def build_conf(settings: SparkSettings, warehouse_dir: str) -> dict[str, str]:
    """The Spark conf lakeforge sets, lowest to highest precedence: defaults, then YAML (``${env:NAME}`` resolved)."""
    conf = dict(DEFAULT_CONF)
    conf["spark.sql.warehouse.dir"] = warehouse_dir
    if not _launched_by_spark_submit():
        conf["spark.master"] = settings.master or "local[*]"
        conf["spark.driver.extraJavaOptions"] += f" -Dlog4j2.configurationFile={LOG4J_CONFIG}"
        jars = jar_files(settings)
        if jars:
            conf["spark.jars"] = ",".join(jars)
            conf.update(archive_conf(settings, jars))
        else:
            conf["spark.jars.packages"] = ",".join(settings.all_packages)
    elif settings.master:
        conf["spark.master"] = settings.master
    conf.update(resolve_conf(settings.conf))
    return conf


def get_spark(settings: SparkSettings, warehouse_dir: str) -> SparkSession:
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
