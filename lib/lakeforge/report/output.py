"""Where report files go: one function, so the storage layer can take it over."""
from __future__ import annotations

from pathlib import Path

from lakeforge.config import LakeforgeConfig

__all__ = ["write_output"]


def write_output(config: LakeforgeConfig, relative: str, content: str | bytes) -> Path:
    """Write `content` to `relative` under the storage root (atomically: a partial file never shows) and return it."""
    path = Path(config.storage_root) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(content.encode() if isinstance(content, str) else content)
    partial.replace(path)
    return path
