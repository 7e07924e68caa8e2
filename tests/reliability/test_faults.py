"""Bad input and broken surroundings end in one ``lakeforge: error: ...`` line (exit 2) naming the culprit,
with no table changed: names that would escape the storage root, a read-only storage root, YAML errors in
``--set``, refused estimator values, a tracking server that does not answer, a replay of vacuumed data,
and killed steps' MLflow runs. Real Spark, Delta and MLflow; one tiny ingested pipeline shared by the module."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import mlflow
import pytest
from delta.tables import DeltaTable

from lakeforge.cli import main
from lakeforge.config import load_config
from lakeforge.errors import ConfigError
from lakeforge.tables import read_pinned
from lakeforge.tracking import configure_mlflow, pipeline_run, step_run

from conftest import REPO, free_port
from tiny import table_versions, tiny_pipeline

# Runs in a new process: starts an MLflow step run (inside pipeline run argv[2] unless "-") and dies with SIGKILL.
KILLED_STEP = f"""
import os, sys
from contextlib import nullcontext
sys.path.insert(0, {str(REPO / 'tests')!r})
from lakeforge.config import load_config
from lakeforge.tracking import pipeline_run, step_run
config = load_config(sys.argv[1])
with (nullcontext() if sys.argv[2] == "-" else pipeline_run(config, sys.argv[2])), step_run(config, "features"):
    os.kill(os.getpid(), 9)
"""


@pytest.fixture(scope="module")
def ingested(spark, tmp_path_factory):
    """The tiny pipeline after one ingest: (its YAML, its storage root)."""
    folder = tmp_path_factory.mktemp("faults")
    conf = tiny_pipeline(folder)
    assert main(["run", "ingest", "--conf", str(conf), "--no-report"]) == 0
    return conf, folder / "lake"


def fails(capsys, argv: list[str]) -> str:
    """Run the CLI, check it exits 2 with a ``lakeforge: error:`` message and no traceback, and return the message."""
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "lakeforge: error: " in err and "Traceback" not in err, err
    return err[err.index("lakeforge: error: "):]


SOURCE = "{path: 'x/*.csv', columns: {a: int}}"


@pytest.mark.parametrize("argv, culprit", [
    (["--run-id", "../../x"], "run id '../../x'"),
    (["--set", "quality.report_dir=../x"], "quality.report_dir"),
    (["--set", "monitor.plots_dir=/tmp/lakeforge-plots"], "monitor.plots_dir"),
    (["--set", f"sources={{'../x': {SOURCE}}}"], "source names must be identifiers"),
    (["--set", "score.table=/abs/path"], "score.table"),
    (["--set", "dataset.table=../../x"], "dataset.table"),
    (["--set", "features={'../v': {source: trips, keys: [trip], select: {d: distance}}}"], "feature view names"),
    (["--set", "storage_root=s3a://AKIA:secret@bucket/lake"], "storage_root"),
])
def test_a_name_that_would_escape_the_storage_root_is_refused(spark, ingested, capsys, argv, culprit):
    conf, root = ingested
    around = lambda: [sorted(os.listdir(folder)) for folder in (root.parent, root.parent.parent)]  # noqa: E731
    before, outside = table_versions(spark, root), around()
    error = fails(capsys, ["run", "features", "--conf", str(conf), *argv])
    assert culprit in error and "secret@" not in error
    assert table_versions(spark, root) == before and around() == outside


def test_a_location_outside_the_storage_root_is_refused_whatever_asks_for_it(ingested):
    config = load_config(ingested[0])
    with pytest.raises(ConfigError, match="outside storage_root"):
        config.location("..", "elsewhere")
    with pytest.raises(ConfigError, match="outside storage_root"):
        config.table_path("/etc")


@pytest.fixture
def read_only(ingested):
    """The storage root made read-only (immutable for root, who ignores permissions), then writable again."""
    root = ingested[1]
    if os.geteuid() != 0:
        root.chmod(0o555)
        try:
            yield root
        finally:
            root.chmod(0o755)
        return
    if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(root)]).returncode:
        pytest.skip("cannot make a folder read-only here (root without chattr)")
    try:
        yield root
    finally:
        subprocess.run(["chattr", "-i", str(root)], check=True)


def test_a_read_only_storage_root_is_named_before_any_work(spark, ingested, read_only, capsys):
    conf, root = ingested
    before = table_versions(spark, root)
    error = fails(capsys, ["run", "features", "--conf", str(conf)])
    assert f"storage_root {root} is not writable" in error
    assert table_versions(spark, root) == before


@pytest.mark.parametrize("override, message", [
    ("windows.train=[2024-01-01", "--set windows.train=...: the value is not valid YAML"),
    ("model.params.max_iter=-3", "model.params: The 'max_iter' parameter of HistGradientBoostingClassifier must be an int"),
], ids=["invalid-yaml-in-set", "estimator-value-it-refuses"])
def test_a_bad_override_names_the_key_and_changes_nothing(spark, ingested, capsys, override, message):
    conf, root = ingested
    before = table_versions(spark, root)
    error = fails(capsys, ["run", "features", "--conf", str(conf), "--set", override])
    assert message in error
    assert table_versions(spark, root) == before


def test_a_tracking_server_that_does_not_answer_fails_within_30_seconds(spark, ingested, capsys):
    conf, root = ingested
    before, uri = table_versions(spark, root), f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    error = fails(capsys, ["replay", "some-run", "--conf", str(conf), "--set", f"mlflow.tracking_uri={uri}"])
    assert time.monotonic() - started < 30
    assert f"mlflow.tracking_uri {uri}: the tracking store does not answer" in error
    assert table_versions(spark, root) == before


def test_replaying_vacuumed_data_names_the_table_and_version(spark, ingested, capsys):
    conf, root = ingested
    config = load_config(conf)
    path = config.table_path("scratch")
    spark.range(3).write.format("delta").save(path)
    with step_run(config, "train") as run:  # a run that read scratch v0, as train reads its dataset
        read_pinned(spark, "scratch", path)
    spark.range(5).write.format("delta").mode("overwrite").save(path)
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        DeltaTable.forPath(spark, path).vacuum(0)
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")
    before = table_versions(spark, root)
    error = fails(capsys, ["replay", run.info.run_id, "--conf", str(conf)])
    assert re.search(rf"table scratch version 0 \({re.escape(path)}\) lost (\d+) of its \1 data files to a vacuum", error)
    assert table_versions(spark, root) == before


def killed_runs(config) -> dict[str, list[str]]:
    """Statuses of the module's ``features`` step runs started by the killed processes (not by this one), by pipeline run."""
    experiment = configure_mlflow(config)
    runs = mlflow.MlflowClient().search_runs([experiment], "tags.`lakeforge.step` = 'features'")
    found: dict[str, list[str]] = {}
    for run in runs:
        if run.data.tags["lakeforge.pid"] != str(os.getpid()):
            found.setdefault(run.data.tags.get("lakeforge.run_id", "-"), []).append(run.info.status)
    return found


def test_a_killed_steps_run_is_failed_when_its_run_is_resumed_or_the_step_runs_again(spark, ingested):
    conf, _ = ingested
    config = load_config(conf)
    def kill_a_step(pipeline: str) -> None:
        killed = subprocess.run([sys.executable, "-c", KILLED_STEP, str(conf), pipeline], capture_output=True, text=True,
                                timeout=300)
        assert killed.returncode == -9, killed.stderr[-2000:]

    kill_a_step("killed-run")
    assert killed_runs(config) == {"killed-run": ["RUNNING"]}
    with pipeline_run(config, "killed-run"):  # resuming the run fails its killed step run
        pass
    assert killed_runs(config) == {"killed-run": ["FAILED"]}
    kill_a_step("-")
    assert killed_runs(config) == {"killed-run": ["FAILED"], "-": ["RUNNING"]}
    with step_run(config, "features"):  # running the step again fails the killed one
        pass
    assert killed_runs(config) == {"killed-run": ["FAILED"], "-": ["FAILED"]}
