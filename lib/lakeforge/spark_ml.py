"""pyspark.ml estimators: a Pipeline fitted on the Spark DataFrame, for data beyond one machine.

Its stages follow `model.preprocessing` like the scikit-learn Transform (`features.transform`):

- categoricals: StringIndexer (handleInvalid="keep": missing and unseen values get their own index),
  then OneHotEncoder for `one_hot`; gradient boosting uses the indices as categories;
- numerics: Imputer (median, or mean for `numeric_imputation: mean`; Spark ML classifiers take no
  missing values, so `none` imputes the median too), then StandardScaler for `scale_numeric`;
- `bucketize`: QuantileDiscretizer (handleInvalid="keep");
- text: missing text becomes "", Tokenizer (lower case, split on white space), then HashingTF of
  `text_dimensions` for `hashing` or CountVectorizer (vocabulary `text_dimensions`) + IDF for `tfidf`;
- VectorAssembler (handleInvalid="keep") and `model.estimator` (any pyspark.ml classifier or
  regressor, e.g. GBTClassifier, RandomForestRegressor, LinearRegression) with `model.params`.

Inputs are `train.model_input` rows (categoricals and text as strings, numerics as doubles).
"""
from __future__ import annotations

import contextlib
import importlib
import io
import sys

import mlflow
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from pyspark.ml import Estimator, Pipeline, PipelineModel, Transformer
from pyspark.ml.functions import vector_to_array
from pyspark.ml.feature import (IDF, CountVectorizer, HashingTF, Imputer, IndexToString, OneHotEncoder, QuantileDiscretizer,
                                SQLTransformer, StandardScaler, StringIndexer, StringIndexerModel, Tokenizer,
                                VectorAssembler)
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeforge.config import LakeforgeConfig, ModelSettings
from lakeforge.modeling.estimator import estimator_class
from lakeforge.tasks import task_for
from lakeforge.tasks.base import LABEL, Task

FEATURES = "_lf_features"
INDEXED_LABEL = "_lf_label"
CLASS = "_lf_class"
_MIN_BINS = 32


def _renamed(columns: list[str], suffix: str) -> list[str]:
    """Names of intermediate columns, prefixed so they cannot clash with input columns."""
    return [f"_lf_{c}_{suffix}" for c in columns]


def preprocessing_stages(settings: ModelSettings) -> list[Estimator | Transformer]:
    """Stages turning the model's input columns into one vector column, `FEATURES` (see module docstring)."""
    prep = settings.preprocessing
    stages: list[Estimator | Transformer] = []
    vectors: list[str] = []
    categorical = settings.categorical_features
    if categorical:
        indexed = _renamed(categorical, "index")
        stages.append(StringIndexer(inputCols=categorical, outputCols=indexed, handleInvalid="keep"))
        if prep.categorical_encoding == "one_hot":
            stages.append(OneHotEncoder(inputCols=indexed, outputCols=_renamed(categorical, "onehot"),
                                        handleInvalid="keep"))
            vectors += _renamed(categorical, "onehot")
        else:
            vectors += indexed
    numeric = [c for c in settings.numeric_features if c not in prep.bucketize]
    if numeric:
        strategy = "mean" if prep.numeric_imputation == "mean" else "median"
        stages.append(Imputer(inputCols=numeric, outputCols=_renamed(numeric, "imputed"), strategy=strategy))
        if prep.scale_numeric:
            stages += [VectorAssembler(inputCols=_renamed(numeric, "imputed"), outputCol="_lf_numeric"),
                       StandardScaler(inputCol="_lf_numeric", outputCol="_lf_numeric_scaled", withMean=True)]
            vectors.append("_lf_numeric_scaled")
        else:
            vectors += _renamed(numeric, "imputed")
    if prep.bucketize:
        bucketized = list(prep.bucketize)
        stages.append(QuantileDiscretizer(inputCols=bucketized, outputCols=_renamed(bucketized, "bucket"),
                                          numBucketsArray=list(prep.bucketize.values()), handleInvalid="keep"))
        vectors += _renamed(bucketized, "bucket")
    for column in settings.text_features:
        text, tokens, vector = (f"_lf_{column}_{suffix}" for suffix in ("text", "tokens", "vector"))
        stages += [SQLTransformer(statement=f"SELECT *, coalesce(`{column}`, '') AS `{text}` FROM __THIS__"),
                   Tokenizer(inputCol=text, outputCol=tokens)]
        if prep.text_vectorizer == "tfidf":
            counts = f"{vector}_counts"
            stages += [CountVectorizer(inputCol=tokens, outputCol=counts, vocabSize=prep.text_dimensions),
                       IDF(inputCol=counts, outputCol=vector)]
        else:
            stages.append(HashingTF(inputCol=tokens, outputCol=vector, numFeatures=prep.text_dimensions))
        vectors.append(vector)
    stages.append(VectorAssembler(inputCols=vectors, outputCol=FEATURES, handleInvalid="keep"))
    return stages


def build_estimator(config: LakeforgeConfig, label: str) -> Estimator:
    """`model.estimator` (a pyspark.ml class) with `model.params`, the seed where it takes one."""
    estimator = estimator_class(config.estimator)(featuresCol=FEATURES, labelCol=label)
    if estimator.hasParam("seed"):
        estimator.setSeed(config.seed)
    return estimator.copy({estimator.getParam(name): value for name, value in config.model.params.items()})


def fit(rows: DataFrame, config: LakeforgeConfig) -> PipelineModel:
    """Fit preprocessing and the estimator on `rows` (model input plus `label`) in Spark.

    Class names are indexed (alphabetically) and predictions mapped back to them (`IndexToString`);
    tree ensembles get `maxBins` wide enough for the largest indexed category unless configured.
    """
    task = task_for(config.task.type)
    preprocessing = Pipeline(stages=preprocessing_stages(config.model)).fit(rows)
    source, label, decoding = rows, LABEL, []
    if task.label_type == "string":  # class names: indexed for Spark ML, predictions mapped back
        indexer = StringIndexer(inputCol=LABEL, outputCol=INDEXED_LABEL, stringOrderType="alphabetAsc").fit(rows)
        source, label = indexer.transform(rows), INDEXED_LABEL
        decoding = [IndexToString(inputCol="prediction", outputCol=CLASS, labels=indexer.labels)]
    estimator = build_estimator(config, label)
    if estimator.hasParam("maxBins") and not estimator.isSet("maxBins"):
        widest = max((len(labels) + 1 for stage in preprocessing.stages if isinstance(stage, StringIndexerModel)
                      for labels in stage.labelsArray), default=0)
        estimator.setMaxBins(max(_MIN_BINS, widest))
    prepared = preprocessing.transform(source).select(FEATURES, F.col(label).cast("double").alias(label)).persist()
    try:
        fitted = estimator.fit(prepared)
    finally:
        prepared.unpersist()
    return PipelineModel(stages=[*preprocessing.stages, fitted, *decoding])


def with_outputs(rows: DataFrame, model: PipelineModel, task: Task) -> DataFrame:
    """`rows` plus the task's output columns, from Spark ML's `prediction` and `probability`."""
    transformed = model.transform(rows)
    probability = vector_to_array("probability")
    if task.type == "regression":
        outputs = [F.col("prediction")]
    elif task.type == "binary_classification":
        outputs = [probability[1].alias("score")]
    else:
        classes = F.array(*[F.lit(c) for c in model.stages[-1].getLabels()])
        outputs = [F.col(CLASS).alias("prediction"), F.map_from_arrays(classes, probability).alias("probabilities")]
    return transformed.select(*[c for c in rows.columns if c not in task.output_columns()], *outputs)


def log_model(model: PipelineModel, registered_name: str, signature: ModelSignature) -> ModelInfo:
    """Log `model` as the run's ``model`` (mlflow.spark) and register it under `registered_name`."""
    _without_spark_connect_ml()
    return mlflow.spark.log_model(
        model, "model", registered_model_name=registered_name, signature=signature,
        pip_requirements=mlflow.spark.get_default_pip_requirements(),  # inferring them would start another Spark
    )


def _without_spark_connect_ml() -> None:
    """Keep ``pyspark.ml.connect`` from ending the process. mlflow imports it to tell Spark Connect models
    apart; without Spark Connect's dependencies (grpc) and under a ``__main__`` without a file (``python -c``,
    a pytest-xdist worker) its import calls ``sys.exit(0)``. Imported here instead, a failure leaves it
    unimportable (mlflow then takes the model for a classic one, as it is)."""
    if "pyspark.ml.connect" in sys.modules:
        return
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # its "Skipping doctests: ..." line
            importlib.import_module("pyspark.ml.connect")
    except (ImportError, SystemExit):
        sys.modules["pyspark.ml.connect"] = None  # later imports raise ImportError
