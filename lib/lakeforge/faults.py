"""Named points where a test can kill the process, to check what a crash there leaves behind.

``LAKEFORGE_KILL_AT=ingest:ledger-committed lakeforge run ingest`` dies with SIGKILL (no cleanup, no
``finally``) the first time the ingest reaches that point. Without the variable a checkpoint does nothing.
"""
from __future__ import annotations

import os
import signal

__all__ = ["KILL_AT", "checkpoint"]

KILL_AT = "LAKEFORGE_KILL_AT"


def checkpoint(name: str) -> None:
    """Kill this process at once if ``$LAKEFORGE_KILL_AT`` names this point."""
    if os.environ.get(KILL_AT) == name:
        os.kill(os.getpid(), signal.SIGKILL)
