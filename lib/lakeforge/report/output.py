"""Where report files go: beside the tables, through the storage layer (`lakeforge.storage`)."""
from __future__ import annotations

from lakeforge.config import LakeforgeConfig
from lakeforge.storage import storage_for

__all__ = ["write_output"]


def write_output(config: LakeforgeConfig, relative: str, content: str | bytes) -> str:
    """Write `content` to `relative` under the storage root and return its location."""
    data = content.encode() if isinstance(content, str) else content
    return storage_for(config).write_bytes(config.location(relative), data)
