"""A quiet start: Spark takes Delta's jars from a local folder filled once, not from Maven at every start."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakeforge.class_archive import archive_path
from lakeforge.config import SparkSettings
from lakeforge.errors import SparkSetupError
from lakeforge.spark import build_conf, jar_files, jars_folder


def test_jars_come_from_the_folder_lakeforge_jars_fills_else_from_maven(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEFORGE_JARS_HOME", str(tmp_path))
    settings = SparkSettings(packages=["org.example:extra:1.0"])
    assert jar_files(settings) == [] and build_conf(settings, "w")["spark.jars.packages"] == (
        "io.delta:delta-spark_4.2_2.13:4.4.0,org.example:extra:1.0")
    folder = jars_folder(settings)
    assert folder.parent == tmp_path and folder != jars_folder(SparkSettings())  # one folder per package list
    folder.mkdir()
    (folder / "delta.jar").write_bytes(b"")
    conf = build_conf(settings, "w")
    assert conf["spark.jars"] == str(folder / "delta.jar") and "spark.jars.packages" not in conf
    assert "spark.driver.defaultJavaOptions" not in conf  # no archive recorded for these jars
    archive = archive_path(settings, [str(folder / "delta.jar")])
    (tmp_path / "other.jar").write_bytes(b"")
    assert archive.parent == folder and archive != archive_path(settings, [str(tmp_path / "other.jar")])
    os.utime(folder / "delta.jar", ns=(0, 0))  # the same path, other bytes (a folder filled again): another archive
    assert archive_path(settings, [str(folder / "delta.jar")]) != archive
    archive = archive_path(settings, [str(folder / "delta.jar")])
    archive.write_bytes(b"")
    assert f"-XX:SharedArchiveFile={archive} " in build_conf(settings, "w")["spark.driver.defaultJavaOptions"]
    with pytest.raises(SparkSetupError, match="spark.jars_dir .* holds no .jar files"):
        jar_files(SparkSettings(jars_dir=str(tmp_path / "empty")))


def test_lakeforge_jars_fills_an_empty_folder_from_maven(tmp_path):
    lakeforge = str(Path(sys.executable).parent / "lakeforge")
    env = {**os.environ, "LAKEFORGE_JARS_HOME": str(tmp_path / "jars")}
    fetched = subprocess.run([lakeforge, "jars", "--no-class-archive"], capture_output=True, text=True, timeout=900,
                             cwd=tmp_path, env=env)
    assert fetched.returncode == 0, fetched.stderr[-2000:]
    assert any("delta-spark" in jar.name for jar in (tmp_path / "jars").glob("*/*.jar"))
    assert not list((tmp_path / "jars").glob("*/classes-*.jsa")) and "class-data archive" not in fetched.stdout


def test_after_lakeforge_jars_spark_starts_without_a_resolution_report(tmp_path):
    """`lakeforge check` after `lakeforge jars` (as ./run setup does, in the default jar folder): no Ivy report,
    no stack trace, and the driver JVM takes classes from the class-data archive `lakeforge jars` recorded."""
    lakeforge = str(Path(sys.executable).parent / "lakeforge")
    env = {key: value for key, value in os.environ.items() if key not in ("LAKEFORGE_JARS_HOME", "JAVA_TOOL_OPTIONS")}
    fetched = subprocess.run([lakeforge, "jars"], capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env)
    assert fetched.returncode == 0, fetched.stderr[-2000:]
    archive = archive_path(SparkSettings(), jar_files(SparkSettings()))
    assert archive.exists() and f"class-data archive (faster JVM starts): {archive}" in fetched.stdout
    loads = tmp_path / "class-load.log"  # where each class came from: "source: shared objects file (top)"
    env["JAVA_TOOL_OPTIONS"] = f"-Xlog:class+load=info:file={loads}"
    checked = subprocess.run([lakeforge, "check"], capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert checked.returncode == 0, checked.stderr[-2000:]
    console = checked.stdout + checked.stderr
    assert "probe table rows 3: ok" in console
    assert ":: resolving dependencies ::" not in console and "\tat " not in console, console
    assert "[warning]" not in console, console  # nothing from the JVM about the archive
    from_archive = [line for line in loads.read_text().splitlines() if "shared objects file (top)" in line]
    assert any("org.apache.spark.sql.delta." in line for line in from_archive), len(from_archive)
    assert any("org.apache.spark.SparkContext " in line for line in from_archive), len(from_archive)
