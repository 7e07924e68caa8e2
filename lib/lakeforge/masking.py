"""Mask secrets in configuration before it is shown: values of secret-looking keys, and credentials inside URIs."""
from __future__ import annotations

import re
from typing import Any

__all__ = ["MASK", "is_secret_key", "mask_secrets", "mask_uri"]

MASK = "****"
_SECRET_KEY = re.compile(r"secret|password|passwd|token|access[._-]?key|secret[._-]?key|credential|api[._-]?key",
                         re.IGNORECASE)
_URI_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
_QUERY_SECRET = re.compile(r"(?P<name>[?&;][^=&;#\s]*(?:secret|password|token|key|credential|sig)[^=&;#\s]*=)"
                           r"(?P<value>[^&;#\s]+)", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    """True for a key naming a secret, e.g. ``password``, ``fs.s3a.secret.key``, ``spark.hadoop.fs.s3a.access.key``."""
    return bool(_SECRET_KEY.search(key))


def mask_uri(text: str) -> str:
    """``s3a://user:pw@host/x?token=t`` -> ``s3a://****@host/x?token=****``; other text unchanged."""
    text = _URI_CREDENTIALS.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m['name']}{MASK}", text)


def mask_secrets(value: Any, key: str = "") -> Any:
    """A copy of nested dicts/lists with the values of secret keys and credentials in URIs masked."""
    if isinstance(value, dict):
        return {k: mask_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_secrets(v, key) for v in value]
    if key and is_secret_key(key) and value is not None:
        return MASK
    return mask_uri(value) if isinstance(value, str) else value
