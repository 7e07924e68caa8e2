"""The monitor's PNG: reference vs current histograms of the most drifted columns, drift over time."""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

PANEL_COLUMNS = 3


@dataclass(frozen=True)
class HistogramPanel:
    """Shares of rows per bucket on both sides, for one column in one window."""

    feature: str
    labels: list[str]
    reference: np.ndarray
    current: np.ndarray
    caption: str


def drift_figure(
    panels: list[HistogramPanel], psi_by_feature: dict[str, dict[str, float]],
    drift_share: dict[str, float], live_metric: str, live: dict[str, float], title: str,
) -> Figure:
    """Histograms (one panel per column) above a time line of PSI, drifted share and a live metric."""
    panel_rows = max(1, math.ceil(len(panels) / PANEL_COLUMNS))
    figure = plt.figure(figsize=(16, 3.6 * panel_rows + 4.5), layout="constrained")
    grid = figure.add_gridspec(panel_rows + 1, PANEL_COLUMNS, height_ratios=[1] * panel_rows + [1.2])
    for position, panel in enumerate(panels):
        axes = figure.add_subplot(grid[position // PANEL_COLUMNS, position % PANEL_COLUMNS])
        shown = (panel.reference > 0) | (panel.current > 0)
        x = np.arange(int(shown.sum()))
        axes.bar(x - 0.2, panel.reference[shown], width=0.4, label="reference", color="tab:blue")
        axes.bar(x + 0.2, panel.current[shown], width=0.4, label="current", color="tab:orange")
        axes.set_xticks(x, [label for label, keep in zip(panel.labels, shown) if keep],
                        rotation=45, ha="right", fontsize=7)
        axes.set_title(f"{panel.feature}: {panel.caption}", fontsize=10)
        axes.set_ylabel("share of rows")
        axes.legend(fontsize=8)
    timeline = figure.add_subplot(grid[panel_rows, :])
    for feature, series in psi_by_feature.items():
        windows = sorted(series)
        timeline.plot(windows, [series[w] for w in windows], marker="o", label=f"PSI {feature}")
    windows = sorted(drift_share)
    timeline.plot(windows, [drift_share[w] for w in windows], color="black", linestyle="--", marker="s",
                  label="share of drifted features")
    timeline.set_ylabel("PSI / share (symlog)")
    timeline.set_yscale("symlog", linthresh=0.1)  # one extreme PSI (e.g. month) must not flatten the rest
    timeline.set_xlabel("window")
    if live:
        live_axes = timeline.twinx()
        live_windows = sorted(live)
        live_axes.plot(live_windows, [live[w] for w in live_windows], color="tab:red", linewidth=2.5, marker="D",
                       label=f"live {live_metric}")
        live_axes.set_ylabel(f"live {live_metric}", color="tab:red")
        live_axes.legend(loc="upper right", fontsize=8)
    timeline.legend(loc="upper left", fontsize=8, ncol=2)
    timeline.set_title("drift over time")
    figure.suptitle(title)
    return figure


def png_bytes(figure: Figure) -> bytes:
    """`figure` as a PNG file's bytes (the figure is closed)."""
    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=90)
    plt.close(figure)
    return png.getvalue()
