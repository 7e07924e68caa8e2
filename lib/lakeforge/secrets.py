"""How secrets reach Spark without being written down: ``${env:NAME}`` references in Spark conf values,
resolved in memory only, and the split of a Spark conf into what may go on a command line.

``spark.hadoop.fs.s3a.secret.key: ${env:AWS_SECRET_ACCESS_KEY}`` keeps the key out of the YAML; the
config, its hash, its MLflow artifacts and exports hold the reference, and only the SparkSession (and
the storage layer's S3 client) gets the value. Every secret value resolved here is remembered by
`lakeforge.masking`, so no error message or log line lakeforge prints shows it.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping

from lakeforge.errors import ConfigError
from lakeforge.masking import is_secret_key, remember_secret

__all__ = ["ENV_REFERENCE", "command_line_conf", "conf_value", "resolve_conf", "resolve_value"]

ENV_REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def conf_value(value: str | int | float | bool) -> str:
    """A YAML value as Spark conf text (booleans as ``true``/``false``)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def resolve_value(key: str, value: str | int | float | bool, where: str = "spark.conf") -> str:
    """`value` as conf text with each ``${env:NAME}`` replaced by the variable's value; a ConfigError
    naming ``<where>.<key>`` and the variable if it is not set. A secret key's value is remembered for masking."""
    def variable(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"{where}.{key}: environment variable {name} is not set (the value is "
                              f"'${{env:{name}}}'); export it before running lakeforge")
        return os.environ[name]

    text = ENV_REFERENCE.sub(variable, conf_value(value))
    if is_secret_key(key):
        remember_secret(text)
    return text


def resolve_conf(conf: Mapping[str, str | int | float | bool], where: str = "spark.conf") -> dict[str, str]:
    """Every value of `conf` resolved (see `resolve_value`): what a SparkSession is built with."""
    return {key: resolve_value(key, value, where) for key, value in conf.items()}


def command_line_conf(conf: Mapping[str, str | int | float | bool]) -> dict[str, str]:
    """The entries of `conf` that may be written on a command line or into a DAG file: neither a secret key
    nor a ``${env:NAME}`` reference. The job sets the others itself, from the YAML and its environment."""
    return {key: conf_value(value) for key, value in conf.items()
            if not is_secret_key(key) and not ENV_REFERENCE.search(conf_value(value))}
