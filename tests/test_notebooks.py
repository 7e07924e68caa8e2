"""Notebooks are committed without outputs (CI executes them after the demo: scripts/run-notebooks)."""
import nbformat
import pytest

from conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_the_three_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == ["01_explore_data.ipynb", "02_model_results.ipynb", "03_drift.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_are_stripped(path):
    book = nbformat.read(path, as_version=4)
    code = [cell for cell in book.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_read_the_tables_without_spark(path):
    """They use lakeforge.query / read_table (delta-rs + DuckDB): no SparkSession, no JVM."""
    source = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code")
    assert "from lakeforge import query, read_table" in source
    assert not any(word in source for word in ("pyspark", "session_for", "SparkSession", "spark."))
