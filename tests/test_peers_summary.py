"""The README's peers table is generated from benchmark JSON (`benchmarks/summary.py`): no Spark here."""
import json

import pytest

from benchmarks.peers import record
from benchmarks.summary import BEGIN, END, block, main, render_table, rewrite_readme

LOAD = {"wall_seconds": 10.0, "loadavg_before": [0.1, 0.1, 0.1], "loadavg_after": [1.9, 0.5, 0.2],
        "busy_core_seconds": 19.0, "ours_core_seconds": 18.0, "others_core_seconds": 1.0,
        "others_top": ["java (pid 7): 0.8 core-s"]}
MACHINE = {"cpus": 2, "cpu_model": "AMD EPYC", "memory_gib": 23.5, "spark": "4.2.0", "master": "local[*]"}


def timings(best: float) -> dict:
    return {"seconds": [best + 1, best], "best": best, "load": LOAD}


def report(when: str, rows: int, pit_seconds: float, smoke: bool = False) -> dict:
    return {"kind": "peers", "when": when, "rows": rows, "smoke": smoke, "machine": MACHINE, "results": [
        record("point-in-time join", f"{rows:,} spine rows", {"what": "as-of join", "seconds": 10.0, "timings": timings(10.0)},
               {"what": "Feast 0.67.0", "seconds": pit_seconds, "timings": timings(pit_seconds)},
               pit_seconds / 10.0, "speed-up", ">= 2.0x", pit_seconds / 10.0 >= 2.0),
        record("ingest overhead, parquet landing", f"{rows:,} flights", {"what": "ingest", "seconds": 13.0},
               {"what": "plain", "seconds": 10.0, "timings": timings(10.0)}, 1.3, "overhead", "<= 1.25x", False),
        record("scoring vs the in-memory limit", f"{rows:,} rows",
               {"what": "score", "rows_per_s": 80_000.0, "rows_per_s_per_core": 40_000.0, "timings": timings(5.0)},
               {"what": "predict_proba", "rows_per_s_per_core": 50_000.0, "timings": timings(4.0)},
               0.8, "fraction", "report", None),
    ]}


@pytest.fixture
def results(tmp_path):
    files = {"peers-1.json": report("2026-12-01T10:00:00+00:00", 1_000_000, 15.0),
             "peers-2.json": report("2026-12-02T10:00:00+00:00", 1_000_000, 25.0),  # newer: replaces the first
             "peers-3.json": report("2026-12-02T11:00:00+00:00", 10_000_000, 30.0),
             "peers-4.json": report("2026-12-03T10:00:00+00:00", 20_000, 99.0, smoke=True)}
    for name, content in files.items():
        (tmp_path / name).write_text(json.dumps(content))
    return sorted(tmp_path.glob("peers-*.json"))


def table_rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| workload") and not line.startswith("| ---")]


def test_table_has_the_newest_result_per_workload_and_size_and_no_smoke_run(results):
    from benchmarks.summary import load_reports

    rows = table_rows(render_table(load_reports(results), include_smoke=False))
    assert [(r[0], r[1]) for r in rows] == [
        ("point-in-time join", "1,000,000 spine rows"), ("point-in-time join", "10,000,000 spine rows"),
        ("scoring vs the in-memory limit", "1,000,000 rows"), ("scoring vs the in-memory limit", "10,000,000 rows"),
        ("ingest overhead, parquet landing", "1,000,000 flights"), ("ingest overhead, parquet landing", "10,000,000 flights")]
    pit_1m = rows[0]
    assert pit_1m[2:7] == ["10.0 s", "Feast 0.67.0: 25.0 s", "2.50x", ">= 2.0x (met)", "2026-12-02"]
    assert pit_1m[7] == "2 cores AMD EPYC, 23.5 GiB, Spark 4.2.0 local[*]"
    assert pit_1m[8] == "0.10 / 0.10"  # others' core-seconds / wall seconds of each side's best round
    assert rows[2][2:6] == ["40,000 rows/s/core", "predict_proba: 50,000 rows/s/core", "0.80x", "report"]
    assert rows[4][4:6] == ["1.30x", "<= 1.25x (missed)"] and rows[4][8] == "? / 0.10"  # no load recorded: ?
    assert "99.0 s" not in render_table(load_reports(results), include_smoke=False)
    smoke = table_rows(render_table(load_reports(results), include_smoke=True))
    assert ("20,000 spine rows (smoke run, not a measurement)", "Feast 0.67.0: 99.0 s") in [(r[1], r[3]) for r in smoke]


def test_readme_block_is_rewritten_between_the_markers_only(results, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n\n{BEGIN}\nold table\n{END}\n\nafter\n")
    main([*map(str, results), "--readme", str(readme)])
    text = readme.read_text()
    assert text.startswith("# title\n\nbefore\n\n" + BEGIN) and text.endswith(END + "\n\nafter\n")
    assert "old table" not in text and "| point-in-time join | 10,000,000 spine rows |" in text
    assert f"`{tmp_path.resolve() / 'peers-2.json'}`" in text and "peers-1.json" not in text and "peers-4.json" not in text
    main([*map(str, results), "--readme", str(readme)])
    assert readme.read_text() == text  # idempotent


def test_no_report_yet_and_no_markers(tmp_path):
    assert "no measurement yet" in block([])
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="no <!-- peers:begin -->"):
        rewrite_readme(readme, block([]))
