"""The one redaction rule for everything lakeforge writes or prints: config dumps, MLflow artifacts and
tags, manifests, run state, errors, stdout, spark-submit and Airflow exports.

Three things are masked as ``****``:

- the value of a key naming a secret (`is_secret_key`): ``password``, ``token``, ``secret``,
  ``*.access.key``, ``*.secret.key``, ``*.account.key``, ``sas``, ``credential``, ``private.key``, ...;
  a value made only of ``${env:NAME}`` references is shown as it is (it names a variable, not a secret);
- credentials inside URIs (``scheme://user:pw@host``) and secret-looking query parameters (``?token=``);
- in free text (`mask_text`), every secret value resolved in this process (`remember_secret`), so an
  error message that echoes one does not print it.
"""
from __future__ import annotations

import re
from typing import Any

__all__ = ["MASK", "is_secret_key", "mask_secrets", "mask_text", "mask_uri", "remember_secret", "restore_masked"]

MASK = "****"
_SECRET_KEY = re.compile(r"secret|password|passwd|token|credential|access[._-]?key|account[._-]?key|api[._-]?key"
                         r"|private[._-]?key|(?:^|[._-])sas(?:$|[._-])", re.IGNORECASE)
_NOT_SECRET_KEY = re.compile(r"(?:provider|provider[._-]type|binding)$", re.IGNORECASE)  # class names, not values
_ONLY_ENV_REFERENCES = re.compile(r"^(?:\$\{env:[A-Za-z_][A-Za-z0-9_]*\})+$")
_URI_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
_QUERY_SECRET = re.compile(r"(?P<name>[?&;][^=&;#\s]*(?:secret|password|token|key|credential|sig)[^=&;#\s]*=)"
                           r"(?P<value>[^&;#\s]+)", re.IGNORECASE)
_MIN_REMEMBERED = 4  # shorter values would mask ordinary words
_remembered: set[str] = set()


def is_secret_key(key: str) -> bool:
    """True for a key naming a secret, e.g. ``password``, ``spark.hadoop.fs.s3a.secret.key``,
    ``fs.azure.account.key.acct.dfs.core.windows.net``, ``fs.azure.sas.token``; False for
    ``fs.s3a.aws.credentials.provider`` (a class name)."""
    return bool(_SECRET_KEY.search(key)) and not _NOT_SECRET_KEY.search(key)


def remember_secret(value: object) -> None:
    """Mask `value` wherever `mask_text` later finds it (a secret resolved in memory, e.g. from ``${env:NAME}``)."""
    text = str(value)
    if len(text) >= _MIN_REMEMBERED:
        _remembered.add(text)


def mask_uri(text: str) -> str:
    """``s3a://user:pw@host/x?token=t`` -> ``s3a://****@host/x?token=****``; other text unchanged."""
    text = _URI_CREDENTIALS.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m['name']}{MASK}", text)


def mask_text(text: str) -> str:
    """Free text (an error, a log line) with credentials in URIs and every remembered secret masked."""
    for secret in sorted(_remembered, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return mask_uri(text)


def mask_secrets(value: Any, key: str = "") -> Any:
    """A copy of nested dicts/lists with the values of secret keys and credentials in URIs masked."""
    if isinstance(value, dict):
        return {k: mask_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_secrets(v, key) for v in value]
    if isinstance(value, str) and _ONLY_ENV_REFERENCES.match(value):
        return value
    if key and is_secret_key(key) and value is not None:
        return MASK
    return mask_text(value) if isinstance(value, str) else value


def restore_masked(recorded: Any, current: Any, key: str = "") -> Any:
    """`recorded` (a masked dump, e.g. a manifest's config) with each masked value replaced by `current`'s
    value at the same place where that masks to the same text: secrets come from today's config, the rest
    stays as recorded."""
    if isinstance(recorded, dict) and isinstance(current, dict):
        return {k: restore_masked(v, current.get(k), str(k)) for k, v in recorded.items()}
    if isinstance(recorded, list) and isinstance(current, list) and len(recorded) == len(current):
        return [restore_masked(r, c, key) for r, c in zip(recorded, current)]
    if isinstance(recorded, str) and MASK in recorded and current is not None and mask_secrets(current, key) == recorded:
        return current
    return recorded
