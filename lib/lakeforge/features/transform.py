"""The Transform pattern: the model's preprocessing, configured in YAML and fitted once in training.

`build_preprocessor` turns `model.*_features` and `model.preprocessing` into a scikit-learn
ColumnTransformer: categoricals (ordinal or one-hot), numerics (optional imputation and scaling),
quantile buckets, and text (hashing or TF-IDF). It is the first step of the model Pipeline, so it is
fitted with the model, saved inside the MLflow model and applied unchanged when scoring. Output
columns come in that order, categoricals first (gradient boosting treats ordinal codes as
categories by their position).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, KBinsDiscretizer, OneHotEncoder, OrdinalEncoder, StandardScaler

from lakeforge.config import ModelSettings, PreprocessingSettings


def blank_missing_text(texts: pd.Series) -> pd.Series:
    """Missing text becomes the empty string, so vectorizers see no words instead of failing."""
    return pd.Series(texts).fillna("").astype(str)


def _categorical(settings: PreprocessingSettings) -> OrdinalEncoder | OneHotEncoder:
    if settings.categorical_encoding == "one_hot":
        return OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    return OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan)


def _numeric(settings: PreprocessingSettings) -> Pipeline | str:
    steps = []
    if settings.numeric_imputation != "none":
        steps.append(SimpleImputer(strategy=settings.numeric_imputation))
    if settings.scale_numeric:
        steps.append(StandardScaler())
    return make_pipeline(*steps) if steps else "passthrough"


def _text(settings: PreprocessingSettings) -> Pipeline:
    if settings.text_vectorizer == "tfidf":
        vectorizer = TfidfVectorizer(max_features=settings.text_dimensions)
    else:
        vectorizer = HashingVectorizer(n_features=settings.text_dimensions, alternate_sign=False)
    return make_pipeline(FunctionTransformer(blank_missing_text), vectorizer)


def build_preprocessor(settings: ModelSettings) -> ColumnTransformer:
    """Preprocessing for the model's input columns, as configured (see module docstring)."""
    prep = settings.preprocessing
    plain_numeric = [c for c in settings.numeric_features if c not in prep.bucketize]
    parts = [("categorical", _categorical(prep), settings.categorical_features),
             ("numeric", _numeric(prep), plain_numeric)]
    parts += [(f"bucketized_{column}",
               make_pipeline(SimpleImputer(strategy="median"), KBinsDiscretizer(bins, encode="ordinal")), [column])
              for column, bins in prep.bucketize.items()]
    parts += [(f"text_{column}", _text(prep), column) for column in settings.text_features]
    return ColumnTransformer(parts, sparse_threshold=0, verbose_feature_names_out=False)


def categorical_positions(settings: ModelSettings) -> list[int] | None:
    """Output positions a gradient boosting model should treat as categories (ordinal codes only)."""
    if settings.preprocessing.categorical_encoding != "ordinal" or not settings.categorical_features:
        return None
    return list(range(len(settings.categorical_features)))
