"""Render report sections into one self-contained HTML page (jinja2; figures inline, no network)."""
from __future__ import annotations

import datetime as dt
import math
import numbers

from jinja2 import Environment, PackageLoader, select_autoescape

from lakeforge.config import LakeforgeConfig
from lakeforge.masking import mask_uri
from lakeforge.dag import RunState
from lakeforge.report.model import Section
from lakeforge.runs import RunSummary

__all__ = ["render_html"]


def _number(value: object) -> object:
    """Integers with thousands separators, floats to 4 significant digits (with separators from 1,000 on),
    NaN as a dash; anything else as it is."""
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        return value
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    number = float(value)
    if math.isnan(number):
        return "–"
    return f"{number:,.1f}".removesuffix(".0") if abs(number) >= 1000 else f"{number:.4g}"


def _cell_class(value: object, column: str) -> str:
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return "num"
    return "example" if column in ("example", "_raw") else ""


_ENVIRONMENT = Environment(loader=PackageLoader("lakeforge.report", "templates"), autoescape=select_autoescape(),
                           trim_blocks=True, lstrip_blocks=True)
_ENVIRONMENT.filters.update(number=_number, cell_class=_cell_class)


def render_html(config: LakeforgeConfig, state: RunState, sections: list[Section]) -> str:
    """The report page of run `state` with `sections`."""
    summary = RunSummary.of(state)
    return _ENVIRONMENT.get_template("report.html.j2").render(
        run_id=state.run_id, project=config.project, sections=sections,
        started=summary.started.strftime("%Y-%m-%d %H:%M:%S UTC") if summary.started else "-",
        done=summary.done, failed=summary.failed, storage_root=config.storage_root,
        written=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        finished={name: record.finished_at.replace("T", " ").removesuffix("+00:00")
                  for name, record in state.steps.items()},
        tracking_uri=mask_uri(config.tracking_uri), experiment=config.mlflow.experiment, fingerprint=config.fingerprint(),
    )
