"""A class-data archive (the JDK's CDS) for lakeforge's local driver JVMs: the classes a Delta session
loads, recorded once by ``lakeforge jars`` beside the jars, then mapped at every start instead of being
loaded and verified again (`lakeforge check` on two cores, idle: 21.4 s without it, 14.5 s with it).

The archive belongs to one Java runtime, pyspark installation and jar list: its name carries their digest,
so after any of them changes no archive matches and sessions start as before until ``lakeforge jars``
records a new one. Sessions lakeforge starts in-process (``lakeforge run``, notebooks, tests) and the
drivers of ``lakeforge run --submit`` (client mode, on this machine) map it; executors do not.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pyspark

from lakeforge.config import SparkSettings

__all__ = ["archive_path", "java_options", "record"]


def _java() -> Path | None:
    """The java binary pyspark launches: ``$JAVA_HOME/bin/java``, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    return Path(found).resolve() if found and Path(found).exists() else None


def archive_path(settings: SparkSettings, jars: list[str]) -> Path | None:
    """Where the archive for this Java runtime, pyspark and `jars` lives (in the jar folder); None without java."""
    from lakeforge.spark import jars_folder

    java = _java()
    if java is None:
        return None
    stat = java.stat()
    # the JVM's class path: the JVM maps the archive only while these jars are the files it recorded, so a
    # reinstall at the same path (a recreated virtualenv, a jar folder filled again) needs an archive of its own
    spark_jars = Path(pyspark.__file__).parent / "jars"
    files = [f"{path} {Path(path).stat().st_mtime_ns}" for path in (spark_jars, *jars)]
    identity = "\n".join([str(java), str(stat.st_size), str(stat.st_mtime_ns), pyspark.__version__, *files])
    return jars_folder(settings) / f"classes-{hashlib.sha256(identity.encode()).hexdigest()[:12]}.jsa"


def java_options(settings: SparkSettings, jars: list[str]) -> str:
    """Driver JVM options that map the recorded archive, or "" when there is none."""
    archive = archive_path(settings, jars) if jars else None
    if archive is None or not archive.exists():
        return ""
    return f"-XX:SharedArchiveFile={archive} -Xlog:cds=off -Xlog:cds+dynamic=off"


def record(settings: SparkSettings) -> Path | None:
    """Record the archive (unless it exists) in a child process whose JVM writes it when it exits; returns
    its path, or None when it could not be recorded (sessions then start without it)."""
    from lakeforge.spark import jar_files

    jars = jar_files(settings)
    target = archive_path(settings, jars) if jars else None
    if target is None or target.exists():
        return target
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    try:
        dumped = subprocess.run([sys.executable, "-m", "lakeforge.class_archive", settings.model_dump_json(),
                                 str(partial)], capture_output=True, text=True, timeout=600)
        # an incomplete archive would crash every JVM that maps it (SIGBUS): use it only if a JVM starts with it
        if dumped.returncode != 0 or not partial.exists() or subprocess.run(
                [str(_java()), f"-XX:SharedArchiveFile={partial}", "-Xlog:disable", "-version"],
                capture_output=True, timeout=120).returncode != 0:
            return None
        partial.replace(target)
        return target
    finally:
        partial.unlink(missing_ok=True)


def _dump(settings: SparkSettings, partial: str) -> None:
    """Start a session whose JVM archives its classes at exit, write and read a Delta table, and end the JVM."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    from lakeforge.spark import build_conf

    scratch = Path(tempfile.mkdtemp())
    builder = SparkSession.builder.appName("lakeforge-class-archive")
    for key, value in build_conf(settings, str(scratch / "warehouse")).items():
        if key == "spark.driver.extraJavaOptions":
            value += f" -XX:ArchiveClassesAtExit={partial}"
        builder = builder.config(key, value)
    spark = builder.master("local[1]").getOrCreate()
    table = str(scratch / "probe")
    spark.range(100).selectExpr("id", "id % 7 AS k").write.format("delta").save(table)
    spark.read.format("delta").load(table).groupBy("k").count().collect()
    gateway = SparkContext._gateway
    spark.stop()
    gateway.proc.stdin.close()  # the JVM exits on end of input, writing the archive first
    exit_code = gateway.proc.wait(timeout=300)
    shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(exit_code)


if __name__ == "__main__":
    _dump(SparkSettings.model_validate_json(sys.argv[1]), sys.argv[2])
