"""The HTML report of a real pipeline run: written under the storage root, logged to MLflow, read in headless Chromium."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import mlflow
import pytest

from lakeforge.dag import RunState
from lakeforge.lakehouse import read_table
from lakeforge.report.collect import STEP_TITLES, collect_sections
from lakeforge.report.render import render_html
from lakeforge.storage import local_path
from lakeforge.runs import mlflow_runs, report_path

from conftest import REPO

pytestmark = pytest.mark.e2e
SCREENSHOT = REPO / "build" / "report-screenshot.png"


@pytest.fixture(scope="module")
def report(flights_pipeline) -> tuple[object, Path]:
    config, _, run_id = flights_pipeline
    return config, Path(local_path(report_path(config, run_id)))


def test_the_report_is_one_self_contained_page(report):
    config, path = report
    html = path.read_text()
    assert path.parent == Path(local_path(config.location("reports")))
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the report fetches something"
    assert "<script" not in html
    assert html.count("<svg") >= 3 and "data:image/png;base64," in html


def test_every_step_has_its_content(flights_pipeline, tmp_path, monkeypatch):
    config, _, run_id = flights_pipeline
    store = config.tracking_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)  # put back as it was after the test
    mlflow.set_tracking_uri(tmp_path.as_uri())  # MLflow's own default elsewhere: the report reads the config's store
    os.environ["MLFLOW_TRACKING_URI"] = store  # set_tracking_uri exported the other one, which the config would read
    try:
        state = RunState.load(config, run_id)
        sections = {s.step: s for s in collect_sections(config, state, list(STEP_TITLES))}
    finally:
        mlflow.set_tracking_uri(store)
    assert all(s.status == "succeeded" and not s.notes for s in sections.values()), {s.step: s.notes for s in sections.values()}
    tables = {step: {t.title: t for t in s.tables} for step, s in sections.items()}
    for source, read, written, quarantined in tables["ingest"]["Rows per source"].rows:
        assert read == written + quarantined and written == len(read_table(f"bronze_{source}", config=config)) > 0
    assert tables["ingest"]["Rule results"].rows
    found = {row[0]: row[4] for row in tables["features"]["Feature views joined onto flight_features v0"].rows}
    assert set(found) == set(config.features) and all(0 < rate <= 1 for rate in found.values())
    assert {"val_auc"} <= {row[0] for row in tables["train"]["Metrics"].rows}
    assert sections["evaluate"].facts["gate decision"] in ("promoted", "refused")
    assert [f.title.split(":")[0] for f in sections["evaluate"].figures] == ["Challenger"]
    assert any(row[0] == "rows_scored" for row in tables["score"]["Metrics"].rows)
    assert len(sections["monitor"].figures) == 3  # heatmap, histograms, live metrics


def test_the_report_is_logged_to_the_parent_mlflow_run_of_the_pipeline_run(flights_pipeline):
    config, _, run_id = flights_pipeline
    runs = mlflow_runs(config, run_id)
    parents = [r for r in runs if r.data.tags.get("lakeforge.role") == "pipeline"]
    assert len(parents) == 1 and {r.data.tags.get("lakeforge.step") for r in runs if r not in parents} == set(STEP_TITLES)
    logged = mlflow.MlflowClient(config.tracking_uri).list_artifacts(parents[0].info.run_id, "reports")
    assert [a.path for a in logged] == [f"reports/{run_id}.html"]


def _chrome():
    """Headless Chromium through selenium; skipped without it, except in CI where its absence is a failure."""
    webdriver = pytest.importorskip("selenium.webdriver")
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and driver):
        message = "Debian's chromium and chromium-driver are not installed (.ci/run installs them)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))


def test_the_report_renders_in_a_real_browser(report):
    from selenium.webdriver.common.by import By

    _, path = report
    browser = _chrome()
    try:
        browser.get(path.as_uri())
        sections = {s.get_attribute("data-section"): s for s in browser.find_elements(By.CSS_SELECTOR, "section")}
        assert list(sections) == ["overview", *STEP_TITLES]
        for name, section in sections.items():
            assert section.is_displayed() and section.size["height"] > 60, name
            assert len(section.text.strip().splitlines()) > 3, name
        for figure in browser.find_elements(By.CSS_SELECTOR, "figure svg, figure img"):
            assert figure.size["width"] > 200 and figure.size["height"] > 100
        assert browser.execute_script("return [...document.images].every(i => i.complete && i.naturalWidth > 0)")
        errors = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
        assert errors == []
        height = browser.execute_script("return document.body.scrollHeight")
        browser.set_window_size(1400, min(height, 16000))
        SCREENSHOT.parent.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOT))
    finally:
        browser.quit()


def test_a_step_that_did_not_run_says_so(flights_pipeline, tmp_path):
    config, _, run_id = flights_pipeline
    state = RunState.load(config, run_id)
    partial = RunState(run_id, str(tmp_path / "partial.json"), state.storage, {"ingest": state.steps["ingest"]})
    sections = collect_sections(config, partial, list(STEP_TITLES))
    assert [s.status for s in sections] == ["succeeded", *["not run"] * 5]
    assert sections[1].notes == ["The features step did not run in this pipeline run."]
    assert not sections[1].tables and not sections[1].figures
    html = render_html(config, partial, sections)
    assert html.count("did not run in this pipeline run") == 5
