"""Files written beside the tables (run state, quality reports, plots, landing files), on the tables' filesystem.

A location is a string: a plain path (local, relative to the working directory) or a URI that Spark
and Hadoop read too (``file:///...``, ``s3a://bucket/lake``, ``gs://...``, ``hdfs://...``). Locations
are joined as strings and never resolved by ``pathlib``, so ``s3a://bucket/lake`` stays a bucket.

Files go through ``pyarrow.fs``, not Hadoop's FileSystem through Spark's JVM: run state must be
readable without a SparkSession (``lakeforge run --submit`` reads what each spark-submit recorded,
and a resumed run reads it before Spark starts), and pyarrow is already a dependency (Spark's Arrow
transfer). For ``s3a://`` it takes the endpoint, keys and region from the same Hadoop properties as
Spark (``spark.hadoop.fs.s3a.*`` in ``spark.conf``, ``${env:NAME}`` references resolved), else AWS's
default credential chain, as s3a does.
"""
from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pyarrow import fs

from lakeforge.errors import LakeforgeError
from lakeforge.secrets import resolve_conf

if TYPE_CHECKING:
    from lakeforge.config import LakeforgeConfig

__all__ = ["Storage", "is_uri", "join", "local_path", "storage_for", "within"]

_S3_SCHEMES = ("s3a", "s3n", "s3")
_HADOOP_PREFIX = "spark.hadoop."


def is_uri(location: str) -> bool:
    """True for ``scheme://...`` and ``file:/...``; False for a plain path."""
    return "://" in location or location.startswith("file:")


def join(root: str, *parts: str) -> str:
    """`root` with `parts` appended: a URI stays a URI, a plain path becomes absolute (from the cwd)."""
    if is_uri(root):
        return posixpath.join(root.rstrip("/"), *(part.strip("/") for part in parts))
    return os.path.join(os.path.abspath(root), *parts)


def within(root: str, location: str) -> bool:
    """True if `location` (as `join` builds it) is `root` or under it once ``.`` and ``..`` are resolved."""
    def normal(text: str) -> str:
        if is_uri(text):
            scheme, _, rest = text.partition(":")
            return f"{scheme}:{posixpath.normpath(rest)}"
        return os.path.normpath(os.path.abspath(text))

    top, place = normal(root), normal(location)
    return place == top or place.startswith(top.rstrip("/") + "/")


def local_path(location: str) -> str | None:
    """The local filesystem path of a plain path or ``file:`` URI, else None (a remote location)."""
    if not is_uri(location):
        return os.path.abspath(location)
    if location.startswith("file:"):
        return fs.FileSystem.from_uri(location)[1]
    return None


class Storage:
    """Reads and writes small files at locations, with the Hadoop s3a settings of `spark_conf`."""

    def __init__(self, spark_conf: Mapping[str, object] | None = None):
        self._hadoop = {key[len(_HADOOP_PREFIX):]: value for key, value in (spark_conf or {}).items()
                        if key.startswith(_HADOOP_PREFIX)}

    def _resolve(self, location: str) -> tuple[fs.FileSystem, str]:
        scheme, _, rest = location.partition("://")
        if not is_uri(location):
            return fs.LocalFileSystem(), os.path.abspath(location)
        if scheme in _S3_SCHEMES:
            return self._s3(), rest
        return fs.FileSystem.from_uri(location)

    def _s3(self) -> fs.S3FileSystem:
        conf, options = resolve_conf(self._hadoop, where="spark.conf.spark.hadoop"), {}
        endpoint = conf.get("fs.s3a.endpoint")
        if endpoint:
            scheme, sep, host = endpoint.partition("://")
            secure = conf.get("fs.s3a.connection.ssl.enabled", "true").lower() == "true"
            options["endpoint_override"] = host if sep else endpoint
            options["scheme"] = scheme if sep else "https" if secure else "http"
        if "fs.s3a.access.key" in conf:
            options.update(access_key=conf["fs.s3a.access.key"], secret_key=conf.get("fs.s3a.secret.key"))
        region = conf.get("fs.s3a.endpoint.region") or conf.get("fs.s3a.region")
        if region:
            options["region"] = region
        return fs.S3FileSystem(**options)

    def exists(self, location: str) -> bool:
        filesystem, path = self._resolve(location)
        return filesystem.get_file_info(path).type != fs.FileType.NotFound

    def read_text(self, location: str) -> str | None:
        """The file's text, or None if there is no such file."""
        filesystem, path = self._resolve(location)
        if filesystem.get_file_info(path).type != fs.FileType.File:
            return None
        with filesystem.open_input_stream(path) as stream:
            return stream.read().decode("utf-8")

    def open_input(self, location: str):
        """A binary input stream on the file (a context manager)."""
        filesystem, path = self._resolve(location)
        return filesystem.open_input_stream(path)

    def delete(self, location: str) -> None:
        """Delete the file, if it exists."""
        filesystem, path = self._resolve(location)
        if filesystem.get_file_info(path).type == fs.FileType.File:
            filesystem.delete_file(path)

    def write_bytes(self, location: str, data: bytes) -> str:
        """Write `data` to a temporary file beside `location`, then move it there; return `location`."""
        filesystem, path = self._resolve(location)
        filesystem.create_dir(posixpath.dirname(path), recursive=True)
        partial = f"{path}.partial"
        with filesystem.open_output_stream(partial) as stream:
            stream.write(data)
        filesystem.move(partial, path)
        return location

    def write_text(self, location: str, text: str) -> str:
        return self.write_bytes(location, text.encode("utf-8"))

    def check_writable(self, location: str, key: str = "storage_root") -> None:
        """Write and delete a probe file under `location`; a LakeforgeError naming `key` if that fails."""
        probe = posixpath.join(location, ".lakeforge-write-probe") if is_uri(location) else \
            os.path.join(location, ".lakeforge-write-probe")
        try:
            self.write_bytes(probe, b"")
            self.delete(probe)
        except OSError as exc:
            raise LakeforgeError(f"{key} {location} is not writable ({exc}); give this user write access "
                                 f"to it or choose another {key}") from None

    def children(self, location: str) -> dict[str, bool]:
        """Entries directly under `location` (none if it does not exist): name -> is a directory."""
        filesystem, path = self._resolve(location)
        entries = filesystem.get_file_info(fs.FileSelector(path, allow_not_found=True))
        return {entry.base_name: entry.type == fs.FileType.Directory for entry in entries}


def storage_for(config: LakeforgeConfig) -> Storage:
    """The storage of `config`'s locations, with its Spark conf's Hadoop settings."""
    return Storage(config.spark.conf)
