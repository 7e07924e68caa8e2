"""Distributed hyperparameter search: trials are rows of a Spark DataFrame, fitted in parallel on the executors.

`grid_trials` turns `model.search` into parameter sets; `run_trials` puts one trial in each Spark
partition and lets `mapInPandas` call `evaluate(params, data)` on the executors, where `data` is
broadcast once; `best_trial` picks the winner on the driver. Nothing here knows the model: the
train step passes the function that fits one trial and returns its validation metrics.
"""
from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
from pyspark.sql import SparkSession

from lakeforge.config import ParamValue, SearchSettings

Params = dict[str, ParamValue]
TRIAL_SCHEMA = "trial int, params string, metrics map<string, double>"


def grid_trials(search: SearchSettings, seed: int) -> list[Params]:
    """Every combination of the grid (parameters sorted by name); at most `max_trials`, drawn with `seed`."""
    names = sorted(search.grid)
    trials = [dict(zip(names, values)) for values in itertools.product(*(search.grid[n] for n in names))]
    if search.max_trials is not None and len(trials) > search.max_trials:
        kept = sorted(random.Random(seed).sample(range(len(trials)), search.max_trials))
        trials = [trials[i] for i in kept]
    return trials


def run_trials(spark: SparkSession, trials: list[Params], data: Any,
               evaluate: Callable[[Params, Any], dict[str, float]]) -> pd.DataFrame:
    """`evaluate(params, data)` of every trial, one Spark task per trial: columns trial, params (JSON), metrics."""
    shared = spark.sparkContext.broadcast(data)

    def fit(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for trial, params in zip(batch["trial"], batch["params"]):
                yield pd.DataFrame({"trial": [trial], "params": [params],
                                    "metrics": [evaluate(json.loads(params), shared.value)]})

    rows = [(i, json.dumps(params, sort_keys=True)) for i, params in enumerate(trials)]
    frame = spark.createDataFrame(spark.sparkContext.parallelize(rows, len(rows)), "trial int, params string")
    try:
        results = frame.mapInPandas(fit, TRIAL_SCHEMA).toPandas()
    finally:
        shared.destroy()
    return results.sort_values("trial", ignore_index=True)


def best_trial(results: pd.DataFrame, metric: str, greater_is_better: bool) -> int:
    """The trial with the best `metric` in its direction; ties go to the first trial."""
    values = results["metrics"].map(lambda metrics: metrics[metric])
    ranked = results.assign(value=values).sort_values(["value", "trial"], ascending=[not greater_is_better, True])
    return int(ranked["trial"].iloc[0])


def trials_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per trial with a column per parameter and per metric, for logging."""
    params = pd.DataFrame([json.loads(p) for p in results["params"]])
    metrics = pd.DataFrame(list(results["metrics"]))
    return pd.concat([results[["trial"]], params, metrics], axis=1)
