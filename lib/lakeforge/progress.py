"""Progress of a running step: which Spark stages run and how many of their tasks are done.

On a terminal one live line is redrawn; elsewhere (logs, spark-submit's piped output) a plain
``[lakeforge]`` line is printed every `log_every` seconds. Nothing is shown for the first `after` seconds.
"""
from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from pyspark.sql import SparkSession

__all__ = ["describe_activity", "progress"]

_SOURCE_DIRS = re.compile(r"(?<= at )\S*/")  # 'collect at /x/lakeforge/train.py:65' -> 'collect at train.py:65'


def describe_activity(spark: SparkSession) -> str:
    """What Spark is doing now: each active stage's name and tasks done/total, or that the driver works alone."""
    tracker = spark.sparkContext.statusTracker()
    stages = [info for info in (tracker.getStageInfo(s) for s in sorted(tracker.getActiveStageIds())) if info]
    if not stages:
        return "driver work (no Spark stage running)"
    return "; ".join(f"stage {s.stageId} '{_SOURCE_DIRS.sub('', s.name)}' {s.numCompletedTasks}/{s.numTasks} tasks"
                     f"{f' ({s.numActiveTasks} running)' if s.numActiveTasks else ''}" for s in stages)


@contextmanager
def progress(spark: SparkSession, step: str, out: TextIO | None = None, after: float = 3.0,
             log_every: float = 15.0, redraw_every: float = 0.5) -> Iterator[None]:
    """Report `step`'s progress on `out` (default stdout) while the block runs."""
    out = out or sys.stdout
    live = out.isatty()
    started, stop = time.monotonic(), threading.Event()
    width = 0

    def report() -> None:
        nonlocal width
        if stop.wait(after):
            return
        while True:
            line = f"[lakeforge] {step} {time.monotonic() - started:.0f}s: {describe_activity(spark)}"
            if live:
                line = line[:160]
                out.write("\r" + line.ljust(width))
                width = len(line)
            else:
                out.write(line + "\n")
            out.flush()
            if stop.wait(redraw_every if live else log_every):
                return

    worker = threading.Thread(target=report, name=f"lakeforge-progress-{step}", daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join()
        if live and width:
            out.write("\r" + " " * width + "\r")
            out.flush()
