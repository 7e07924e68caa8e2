"""The Transform pattern: preprocessing fitted once in training, saved in the MLflow model, reused in scoring."""
import random
from collections.abc import Iterator

import mlflow
import numpy as np
import pandas as pd
import pytest
from chispa import assert_df_equality

from lakeforge.config import ModelSettings
from lakeforge.modeling.logging import log_tabular_model
from lakeforge.modeling.portable import TabularModel
from lakeforge.models import predict_outputs
from lakeforge.tasks import task_for
from lakeforge.tracking import configure_mlflow
from lakeforge.train import build_pipeline, feature_columns, model_input, to_training_frame

from conftest import flights_config

DESCRIPTIONS = ["boeing 737-824 turbo-fan fixed wing multi engine", "embraer emb-145xr turbo-fan fixed wing multi engine",
                "airbus a320-232 turbo-fan fixed wing multi engine", None]
PREPROCESSING = {
    "ordinal+hashing": {},
    "one_hot+tfidf+imputed+scaled+bucketized": {"numeric_imputation": "median", "scale_numeric": True,
                                                "categorical_encoding": "one_hot", "bucketize": {"distance": 4},
                                                "text_vectorizer": "tfidf", "text_dimensions": 16},
}


def settings(text_features=("plane_description",), **preprocessing) -> ModelSettings:
    return ModelSettings(numeric_features=["distance", "temp"], categorical_features=["carrier"],
                         text_features=list(text_features), preprocessing=preprocessing, params={"max_iter": 20})


@pytest.fixture(scope="module")
def flights(spark):
    rng = random.Random(3)
    descriptions = [rng.choice(DESCRIPTIONS) for _ in range(80)]  # the label follows the text: embraer is late
    rows = [(f"f{i:03d}", rng.choice(["UA", "AA", "B6", None]), float(rng.randrange(100, 2500)),
             rng.choice([None, round(rng.uniform(10, 90), 1)]), text, int("embraer" in (text or "")))
            for i, text in enumerate(descriptions)]
    return spark.createDataFrame(rows, "flight_id string, carrier string, distance double, temp double, "
                                       "plane_description string, delayed int")


def fitted(flights, model_settings):
    frame = to_training_frame(model_input(flights, model_settings, "flight_id", "delayed"), "flight_id")
    pipeline = build_pipeline(model_settings, "sklearn.ensemble.HistGradientBoostingClassifier", seed=1)
    return pipeline.fit(frame[feature_columns(model_settings)], frame["delayed"]), frame


def vectors_in_scoring_path(flights, preprocessor, model_settings) -> pd.DataFrame:
    """The scoring path's mechanics (model_input, Arrow batches, mapInPandas) applied to the preprocessor."""
    columns = feature_columns(model_settings)

    def transform(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield pd.DataFrame({"flight_id": batch["flight_id"], "vector": list(preprocessor.transform(batch[columns]))})

    scored = model_input(flights, model_settings, "flight_id").mapInPandas(transform, "flight_id string, vector array<double>")
    return scored.toPandas().sort_values("flight_id").reset_index(drop=True)


@pytest.mark.parametrize("preprocessing", PREPROCESSING.values(), ids=PREPROCESSING.keys())
def test_training_and_scoring_paths_give_identical_vectors_and_scores(spark, flights, tmp_path, preprocessing):
    model_settings = settings(**preprocessing)
    model, frame = fitted(flights, model_settings)
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "7")  # many small batches
    try:
        served = vectors_in_scoring_path(flights, model[:-1], model_settings)
        configure_mlflow(flights_config(tmp_path))
        columns = feature_columns(model_settings)
        with mlflow.start_run():
            info = log_tabular_model(TabularModel(model, "binary_classification", columns), frame[columns].head(5), None)
        loaded = mlflow.pyfunc.load_model(info.model_uri).unwrap_python_model()
        scores = predict_outputs(flights, loaded, "flight_id", model_settings, task_for("binary_classification"))
        assert_df_equality(scores, spark.createDataFrame(pd.DataFrame({
            "flight_id": frame["flight_id"], "score": model.predict_proba(frame[feature_columns(model_settings)])[:, 1]})),
            ignore_row_order=True, ignore_nullable=True)
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    trained = model[:-1].transform(frame[feature_columns(model_settings)])
    assert list(served["flight_id"]) == list(frame["flight_id"])
    np.testing.assert_array_equal(np.stack(served["vector"]), trained)


def test_the_text_column_changes_the_model_input(flights):
    with_text, frame = fitted(flights, settings(text_dimensions=16))
    without_text, _ = fitted(flights, settings(text_features=()))
    columns = feature_columns(settings())
    row = frame[columns].head(1)
    boeing, embraer = row.assign(plane_description=DESCRIPTIONS[0]), row.assign(plane_description=DESCRIPTIONS[1])
    a, b = with_text[:-1].transform(boeing), with_text[:-1].transform(embraer)
    assert a.shape[1] == without_text[:-1].transform(row).shape[1] + 16
    np.testing.assert_array_equal(a[:, :-16], b[:, :-16])  # the same flight apart from its text ...
    assert not np.array_equal(a[:, -16:], b[:, -16:])      # ... gets a different text vector
    assert not np.array_equal(with_text.predict_proba(frame[columns]),
                              with_text.predict_proba(frame[columns].assign(plane_description=None)))
