"""The Airflow DAG generator: tasks and dependencies mirror the pipeline YAML.

Airflow itself is not installed in the test environment (see README, Scheduling), so the
generated file is checked by parsing it, and the committed example must equal the generator's output.
"""
from __future__ import annotations

import ast
from pathlib import Path

import lakeforge

from lakeforge.config import load_config
from lakeforge.jobs import STEP_JOB
from lakeforge.dag import declared_steps
from lakeforge.pipeline import STEPS
from lakeforge.scheduling import airflow_dag_source

from conftest import FLIGHTS_CONF, REPO, flights_config


def tasks_and_edges(source: str) -> tuple[dict[str, dict], set[tuple[str, str]]]:
    tree = ast.parse(source)
    tasks, variables = {}, {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "SparkSubmitOperator":
            keywords = {k.arg: k.value for k in node.value.keywords}
            task_id = ast.literal_eval(keywords["task_id"])
            variables[node.targets[0].id] = task_id
            tasks[task_id] = {"conf": ast.literal_eval(keywords["conf"]), "job": keywords["application"].id,
                              "args": ast.literal_eval(keywords["application_args"].elts[0])}
    edges = {(variables[n.left.id], variables[n.right.id]) for n in ast.walk(tree)
             if isinstance(n, ast.BinOp) and isinstance(n.op, ast.RShift)}
    return tasks, edges


def test_committed_example_is_the_generators_output():
    expected = airflow_dag_source(load_config(FLIGHTS_CONF), "examples/flights/pipeline.yaml")
    committed = (REPO / "deploy" / "airflow" / "lakeforge_dag.py").read_text()
    assert committed == expected, "regenerate: lakeforge airflow-dag --conf examples/flights/pipeline.yaml > deploy/airflow/lakeforge_dag.py"


def test_tasks_and_dependencies_match_the_pipeline_yaml(tmp_path):
    config = flights_config(tmp_path, **{"pipeline.steps": {
        "ingest": {}, "features": {"depends_on": ["ingest"]},
        "train": {"depends_on": ["features"], "spark_conf": {"spark.sql.shuffle.partitions": 4}},
        "score": {"depends_on": ["train", "features"]}}})
    tasks, edges = tasks_and_edges(airflow_dag_source(config, "examples/flights/pipeline.yaml"))
    declared = declared_steps(config, list(STEPS))
    assert set(tasks) == set(declared) == {"ingest", "features", "train", "score"}
    assert edges == {(dep, step) for step, spec in declared.items() for dep in spec.depends_on}
    assert tasks["train"]["conf"]["spark.sql.shuffle.partitions"] == "4"
    assert tasks["score"]["conf"]["spark.sql.shuffle.partitions"] == "2"
    assert all(task["job"] == "STEP_JOB" and task["args"] == name for name, task in tasks.items())
    assert Path(STEP_JOB).is_file() and Path(STEP_JOB).parent == Path(lakeforge.__file__).parent / "jobs"


def test_cascade_and_ab_analysis_are_tasks_only_when_declared(tmp_path):
    default_tasks, _ = tasks_and_edges(airflow_dag_source(flights_config(tmp_path), "p.yaml"))
    assert list(default_tasks) == ["ingest", "features", "train", "evaluate", "score", "monitor"]
    config = flights_config(tmp_path, **{"pipeline.steps": {
        "ingest": {}, "features": {"depends_on": ["ingest"]}, "train": {"depends_on": ["features"]},
        "cascade": {"depends_on": ["train"]}, "ab_analysis": {"depends_on": ["train"]}}})
    tasks, edges = tasks_and_edges(airflow_dag_source(config, "p.yaml"))
    assert list(tasks) == ["ingest", "features", "train", "cascade", "ab_analysis"]
    assert {("train", "cascade"), ("train", "ab_analysis")} <= edges
