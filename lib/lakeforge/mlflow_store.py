"""How lakeforge reaches MLflow: store URIs without credentials, and requests that give up in seconds.

``http://user:password@host`` in `mlflow.tracking_uri` (or MLFLOW_TRACKING_URI) is split before MLflow
sees it: the user and password go to MLflow's own ``MLFLOW_TRACKING_USERNAME`` /
``MLFLOW_TRACKING_PASSWORD`` (basic auth on every request) and MLflow gets ``http://host``, so the URI it
prints ("View run at ...") and stores holds no password. `mlflow.request_timeout` and
`mlflow.request_retries` bound each request through ``MLFLOW_HTTP_REQUEST_TIMEOUT`` /
``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` (backoff 1 s, 2 s, ...), so a server that does not answer fails
in seconds rather than after MLflow's default of minutes.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

from lakeforge.errors import LakeforgeError
from lakeforge.masking import mask_text, mask_uri, remember_secret

if TYPE_CHECKING:
    import mlflow

    from lakeforge.config import LakeforgeConfig

__all__ = ["CREDENTIAL_VARIABLES", "client", "connect", "reachable", "without_credentials"]

CREDENTIAL_VARIABLES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
_exported: dict[str, str] = {}  # the credential variables set here, to clear when the next store has none


def without_credentials(uri: str) -> tuple[str, str | None, str | None]:
    """``http://u:p@host/x`` -> (``http://host/x``, ``u``, ``p``); a URI without credentials is returned as it is."""
    parts = urlsplit(uri)
    if "://" not in uri or "@" not in parts.netloc:
        return uri, None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=host)), unquote(user), unquote(password) if password else None


def _export_credentials(user: str | None, password: str | None) -> None:
    """Put the URI's credentials into MLflow's variables; clear the ones set for an earlier store."""
    for name, value in zip(CREDENTIAL_VARIABLES, (user, password)):
        if value:
            os.environ[name] = _exported[name] = value
        elif name in _exported and os.environ.get(name) == _exported.pop(name):
            del os.environ[name]
    if password:
        remember_secret(password)


def connect(config: "LakeforgeConfig") -> tuple[str, str]:
    """The tracking and registry URIs to hand MLflow, credentials moved to MLflow's variables and the
    request timeout and retries set from `config.mlflow`."""
    settings = config.mlflow
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(settings.request_timeout)
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(settings.request_retries)
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "1"
    tracking, user, password = without_credentials(config.tracking_uri)
    registry, registry_user, registry_password = without_credentials(config.registry_uri)
    _export_credentials(user or registry_user, password or registry_password)
    return tracking, registry


def client(config: "LakeforgeConfig") -> "mlflow.MlflowClient":
    """An MLflow client on `config`'s stores (see `connect`)."""
    import mlflow

    tracking, registry = connect(config)
    return mlflow.MlflowClient(tracking, registry)


@contextmanager
def reachable(config: "LakeforgeConfig") -> Iterator[None]:
    """Turn any failure inside the block (the first request to the store) into a LakeforgeError naming the store."""
    try:
        yield
    except LakeforgeError:
        raise
    except Exception as exc:  # MLflow wraps connection, HTTP and database errors alike
        detail = mask_text(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise LakeforgeError(
            f"mlflow.tracking_uri {mask_uri(config.tracking_uri)}: the tracking store does not answer ({detail[:300]}); "
            f"start it or fix mlflow.tracking_uri / MLFLOW_TRACKING_URI (each request waits "
            f"mlflow.request_timeout={config.mlflow.request_timeout}s, retried mlflow.request_retries="
            f"{config.mlflow.request_retries} times)") from None
