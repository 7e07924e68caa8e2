"""The pipeline DAG: ordering, validation, and resuming a failed run by run id."""
from __future__ import annotations

import io

import mlflow
import pytest

from lakeforge.config import StepSettings
from lakeforge.dag import RunState, plan_steps, step_order
from lakeforge.errors import ConfigError, StepError
from lakeforge.pipeline import run_steps
from lakeforge.tables import latest_version
from lakeforge.tracking import configure_mlflow

from conftest import flights_config, months_of_2013

KNOWN = ["ingest", "features", "train", "score"]


def steps(**depends: list[str]) -> dict[str, StepSettings]:
    return {name: StepSettings(depends_on=deps) for name, deps in depends.items()}


def test_order_follows_dependencies_not_declaration():
    declared = steps(score=["train"], train=["features"], ingest=[], features=["ingest"])
    assert step_order(declared, KNOWN) == ["ingest", "features", "train", "score"]


def test_cascade_and_ab_analysis_run_when_named_or_declared_not_in_a_default_run_all(tmp_path):
    defaults, optional = ["ingest", "features", "train"], ["cascade", "ab_analysis"]
    default = flights_config(tmp_path)
    assert plan_steps(default, defaults, optional)[1] == defaults
    assert plan_steps(default, defaults, optional, ["cascade"])[1] == ["cascade"]
    declared = flights_config(tmp_path, **{"pipeline.steps": {
        "ingest": {}, "features": {"depends_on": ["ingest"]}, "cascade": {"depends_on": ["features"]}}})
    assert plan_steps(declared, defaults, optional)[1] == ["ingest", "features", "cascade"]
    with pytest.raises(ConfigError, match=r"step\(s\) train are not in the pipeline"):
        plan_steps(declared, defaults, optional, ["train"])


def test_cycles_unknown_steps_and_dependencies_are_named():
    with pytest.raises(ConfigError, match="dependency cycle among features, ingest"):
        step_order(steps(ingest=["features"], features=["ingest"]), KNOWN)
    with pytest.raises(ConfigError, match=r"pipeline.steps.deploy: unknown step"):
        step_order(steps(deploy=[]), KNOWN)
    with pytest.raises(ConfigError, match=r"pipeline.steps.train.depends_on: 'features' is not a declared step"):
        step_order(steps(train=["features"]), KNOWN)


def test_failed_run_resumes_at_the_failed_step_and_a_finished_run_changes_nothing(spark, tmp_path):
    """The run state lives under the storage root, here a file:/// URI, and is read back from there."""
    small = {"model.params.max_iter": 10}
    root = tmp_path.as_uri()
    broken = flights_config(root, months=[1], **small, **{"windows.train": months_of_2013(6, 6)})  # no June landed
    wanted = ["ingest", "features", "train"]
    with pytest.raises(StepError, match=r"windows.train \[2013-06-01, 2013-07-01\) matches no rows"):
        run_steps(wanted, broken, spark=spark, run_id="r1", out=io.StringIO())
    state = RunState.load(broken, "r1")
    assert state.path == f"{root}/runs/r1.json" and (tmp_path / "runs" / "r1.json").is_file()
    assert [state.steps[s].status for s in wanted] == ["succeeded", "succeeded", "failed"]
    versions = {t: latest_version(spark, broken.table_path(t)) for t in ["bronze_flights", "flight_features"]}

    fixed = flights_config(root, **small, **{"windows.train": months_of_2013(1, 1)})
    log = io.StringIO()
    results = run_steps(wanted, fixed, spark=spark, run_id="r1", out=log)
    assert "ingest: already done in run r1, skipped" in log.getvalue()
    assert [bool(r.details.get("skipped")) for r in results] == [True, True, False]
    assert {t: latest_version(spark, fixed.table_path(t)) for t in versions} == versions

    configure_mlflow(fixed)
    runs_before = len(mlflow.search_runs(output_format="list"))
    again = run_steps(wanted, fixed, spark=spark, run_id="r1", out=io.StringIO())
    assert all(r.details.get("skipped") for r in again)
    assert len(mlflow.search_runs(output_format="list")) == runs_before
    assert {t: latest_version(spark, fixed.table_path(t)) for t in versions} == versions
