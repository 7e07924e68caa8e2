"""Shared timing for the benchmarks: alternating best-of-N rounds, and what else the machine did meanwhile.

Standard library only, so the Feast subprocess (`benchmarks/feast_pit.py`, in Feast's own virtualenv
without lakeforge) times its side with the same code.

`Load` records, around one measurement, the load averages before and after and the CPU time the whole
machine spent (``/proc/stat``) split into this process tree (this process, its JVM, the JVM's Python
workers, any subprocess; for a subprocess such as Feast's, the tree of the benchmark that started it,
``BENCHMARK_ROOT_PID``) and everything else, with the busiest other commands: a figure taken while
others were running says so in its JSON.
"""
from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from datetime import datetime, timezone

TICKS = os.sysconf("SC_CLK_TCK")
ROOT_PID = "BENCHMARK_ROOT_PID"  # set by a benchmark for its subprocess: the whole tree from that pid is "ours"


def timed(action: Callable[[], object]) -> float:
    """Wall seconds `action()` took."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _loadavg() -> list[float]:
    try:
        with open("/proc/loadavg") as file:
            return [float(x) for x in file.read().split()[:3]]
    except OSError:
        return []


def _busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat") as file:
        fields = [int(x) for x in file.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / TICKS


def _processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command, CPU seconds used so far) for every readable process."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                text = file.read()
        except OSError:
            continue
        command = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        found[int(entry)] = (int(fields[1]), command, (int(fields[11]) + int(fields[12])) / TICKS)
    return found


def _tree(processes: dict[int, tuple[int, str, float]], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in processes.items():
        children.setdefault(parent, []).append(pid)
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += children.get(pid, [])
    return tree


class Load:
    """Context manager: what the machine did while the block ran (see module docstring)."""

    def __init__(self, top: int = 3):
        self.top = top
        self.result: dict = {}

    def __enter__(self) -> "Load":
        self._start = (time.perf_counter(), _loadavg(), _busy_seconds(), _processes())
        return self

    def __exit__(self, *exc) -> None:
        started, load_before, busy_before, before = self._start
        wall = time.perf_counter() - started
        after, busy = _processes(), _busy_seconds() - busy_before
        root = int(os.environ.get(ROOT_PID, os.getpid()))
        ours = _tree(after, root) | (_tree(before, root) & after.keys())
        used = {pid: cpu - (before[pid][2] if pid in before and before[pid][1] == command else 0.0)
                for pid, (_, command, cpu) in after.items()}
        ours_cpu = sum(used[pid] for pid in ours if pid in used)
        others = sorted(((cpu, pid) for pid, cpu in used.items() if pid not in ours and cpu > 0.01), reverse=True)
        self.result = {
            "wall_seconds": round(wall, 2), "loadavg_before": load_before, "loadavg_after": _loadavg(),
            "busy_core_seconds": round(busy, 1), "ours_core_seconds": round(ours_cpu, 1),
            "others_core_seconds": round(max(busy - ours_cpu, 0.0), 1),
            "others_top": [f"{after[pid][1]} (pid {pid}): {cpu:.1f} core-s" for cpu, pid in others[:self.top]],
        }


def describe_load(load: dict) -> str:
    """One line: how busy the rest of the machine was during a measurement."""
    if not load:
        return "not recorded"
    cores = load["others_core_seconds"] / load["wall_seconds"] if load.get("wall_seconds") else 0.0
    top = "; ".join(load["others_top"]) or "nothing notable"
    return (f"others used {cores:.2f} cores on average (loadavg {load['loadavg_before'][:1]} -> "
            f"{load['loadavg_after'][:1]}); busiest others: {top}")


def best_of(actions: dict[str, Callable[[], object]], rounds: int = 2, log: Callable[[str], None] = print) -> dict:
    """Run each action `rounds` times, alternating (a, b, a, b...); per action: every round's seconds,
    the best, and the machine's load during the best round."""
    runs: dict[str, list[tuple[float, dict]]] = {name: [] for name in actions}
    for round_ in range(rounds):
        for name, action in actions.items():
            with Load() as load:
                seconds = timed(action)
            runs[name].append((seconds, load.result))
            log(f"  round {round_ + 1} {name}: {seconds:.1f}s ({describe_load(load.result)})")
    results = {}
    for name, rounds_run in runs.items():
        best, load = min(rounds_run, key=lambda run: run[0])
        results[name] = {"seconds": [round(s, 3) for s, _ in rounds_run], "best": best, "load": load}
    return results


def machine(**extra: object) -> dict:
    """What the figures were measured on."""
    model = ""
    try:
        with open("/proc/cpuinfo") as file:
            model = next((line.split(":", 1)[1].strip() for line in file if line.startswith("model name")), "")
        with open("/proc/meminfo") as file:
            memory = int(file.readline().split()[1]) / 2**20
    except OSError:
        memory = 0.0
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gib": round(memory, 1),
            "kernel": platform.release(), "python": platform.python_version(), **extra}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
