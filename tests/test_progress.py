"""Progress of long steps: Spark's active stages as a live terminal line, or as plain log lines."""
from __future__ import annotations

import io
import os
import re
import time

from lakeforge.progress import describe_activity, progress


def slow_job(spark) -> int:
    """A job of 4 tasks of about half a second each (2 cores: about a second)."""
    return spark.sparkContext.parallelize(range(4), 4).map(lambda x: time.sleep(0.5) or x).count()


def test_plain_lines_name_the_running_stage_and_its_tasks(spark):
    out = io.StringIO()
    with progress(spark, "demo", out=out, after=0.2, log_every=0.2):
        assert slow_job(spark) == 4
        time.sleep(0.5)  # driver work after the job
    lines = out.getvalue().splitlines()
    assert lines and all(line.startswith("[lakeforge] demo ") for line in lines)
    assert any(re.search(r"stage \d+ 'count at test_progress.py:\d+' \d/4 tasks", line) for line in lines), lines
    assert "driver work (no Spark stage running)" in lines[-1]
    assert "\r" not in out.getvalue()
    assert describe_activity(spark) == "driver work (no Spark stage running)"


def test_a_terminal_gets_one_redrawn_line_cleared_at_the_end(spark):
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal:
        with progress(spark, "demo", out=terminal, after=0.1, redraw_every=0.1):
            slow_job(spark)
    os.set_blocking(leader, False)
    chunks = []
    while True:  # a pty hands its buffer out in pieces
        try:
            chunks.append(os.read(leader, 1 << 16))
        except OSError:  # nothing left (EAGAIN), or the terminal side is closed and drained (EIO)
            break
    shown = b"".join(chunks).decode()
    os.close(leader)
    assert "\n" not in shown and shown.count("\r[lakeforge] demo ") >= 3
    assert "/4 tasks" in shown
    assert shown.endswith("\r") and shown.rsplit("\r", 2)[-2].strip() == ""  # the last draw blanks the line


def test_quick_steps_show_nothing(spark):
    out = io.StringIO()
    with progress(spark, "demo", out=out, after=5):
        spark.range(3).count()
    assert out.getvalue() == ""
