"""The `spark_ml` trainer: a pyspark.ml Pipeline fitted on the Spark DataFrame, for data beyond one machine.

Its stages follow `model.preprocessing` like the scikit-learn Transform (`features.transform`):

- categoricals: StringIndexer (handleInvalid="keep": missing and unseen values get their own index),
  then OneHotEncoder for `one_hot`; gradient boosting uses the indices as categories;
- numerics: Imputer (median, or mean for `numeric_imputation: mean`; Spark ML classifiers take no
  missing values, so `none` imputes the median too), then StandardScaler for `scale_numeric`;
- `bucketize`: QuantileDiscretizer (handleInvalid="keep");
- text: missing text becomes "", Tokenizer (lower case, split on white space), then HashingTF of
  `text_dimensions` for `hashing` or CountVectorizer (vocabulary `text_dimensions`) + IDF for `tfidf`;
- VectorAssembler (handleInvalid="keep") and `model.spark_ml.classifier`: GBTClassifier or
  LogisticRegression with `model.spark_ml.params`.

Inputs are `train.model_input` rows (categoricals and text as strings, numerics as doubles).
"""
from __future__ import annotations

from pyspark.ml import Estimator, Pipeline, PipelineModel, Transformer
from pyspark.ml.classification import GBTClassifier, LogisticRegression
from pyspark.ml.feature import (IDF, CountVectorizer, HashingTF, Imputer, OneHotEncoder, QuantileDiscretizer,
                                SQLTransformer, StandardScaler, StringIndexer, StringIndexerModel, Tokenizer,
                                VectorAssembler)
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeforge.config import ModelSettings, SparkMlSettings
from lakeforge.errors import StepError
from lakeforge.evaluation.metrics import probability_metrics

FEATURES = "_lf_features"
SCORE = "score"
CLASSIFIERS = {"gbt": GBTClassifier, "logistic_regression": LogisticRegression}
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


def build_classifier(settings: SparkMlSettings, label: str, seed: int) -> GBTClassifier | LogisticRegression:
    """The configured classifier with `settings.params`; an unknown parameter is a StepError naming it."""
    classifier = CLASSIFIERS[settings.classifier](featuresCol=FEATURES, labelCol=label)
    if classifier.hasParam("seed"):
        classifier.setSeed(seed)
    unknown = sorted(name for name in settings.params if not classifier.hasParam(name))
    if unknown:
        raise StepError(f"model.spark_ml.params: {unknown} are not {type(classifier).__name__} parameters")
    return classifier.copy({classifier.getParam(name): value for name, value in settings.params.items()})


def fit(rows: DataFrame, settings: ModelSettings, label: str, seed: int) -> PipelineModel:
    """Fit preprocessing and classifier on `rows` (model input plus `label`) in Spark.

    Gradient boosting gets `maxBins` wide enough for the largest indexed category unless it is configured.
    """
    preprocessing = Pipeline(stages=preprocessing_stages(settings)).fit(rows)
    classifier = build_classifier(settings.spark_ml, label, seed)
    if isinstance(classifier, GBTClassifier) and not classifier.isSet("maxBins"):
        widest = max((len(labels) + 1 for stage in preprocessing.stages if isinstance(stage, StringIndexerModel)
                      for labels in stage.labelsArray), default=0)
        classifier.setMaxBins(max(_MIN_BINS, widest))
    prepared = preprocessing.transform(rows).select(FEATURES, F.col(label).cast("double").alias(label)).persist()
    try:
        fitted = classifier.fit(prepared)
    finally:
        prepared.unpersist()
    return PipelineModel(stages=[*preprocessing.stages, fitted])


def with_scores(rows: DataFrame, model: PipelineModel) -> DataFrame:
    """`rows` plus column `score`: the model's positive-class probability."""
    return model.transform(rows).select(*rows.columns, vector_to_array("probability")[1].alias(SCORE))


def classification_metrics(scored: DataFrame, threshold: float = 0.5) -> dict[str, float]:
    """`train.classification_metrics` computed in Spark from columns `score` and `label`."""
    base = probability_metrics(scored)
    flagged, positive = F.col(SCORE) >= threshold, F.col("label") == 1
    counts = scored.agg(F.count_if(flagged & positive).alias("tp"), F.count_if(flagged).alias("flagged"),
                        F.count_if(positive).alias("positives")).head()
    precision = counts["tp"] / counts["flagged"] if counts["flagged"] else 0.0
    recall = counts["tp"] / counts["positives"] if counts["positives"] else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"auc": base["auc"], "log_loss": base["log_loss"], "precision": precision, "recall": recall,
            "f1": f1, "positive_rate": base["base_rate"]}
