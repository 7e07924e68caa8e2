"""The report's plots, drawn with matplotlib and returned as inline SVG markup."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["curve_svg", "heatmap_svg", "lines_svg", "to_svg"]


def to_svg(figure: Figure) -> str:
    """The figure as an ``<svg>`` element (no XML prolog), ready to inline in HTML."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def curve_svg(curve: pd.DataFrame, x: str, chosen: float | None) -> str:
    """Every float column of `curve` against `x`: shares (within 0..1) on one panel, each other column on its own;
    a dashed line marks the `chosen` x."""
    floats = [c for c in curve.columns if c != x and pd.api.types.is_float_dtype(curve[c])]
    shares = [c for c in floats if curve[c].dropna().between(0, 1).all()]
    panels = [[c] for c in floats if c not in shares] + ([shares] if shares else [])
    figure, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.4), squeeze=False)
    for ax, columns in zip(axes[0], panels):
        for column in columns:
            ax.plot(curve[x], curve[column], label=column, linewidth=1.4)
        if chosen is not None:
            ax.axvline(chosen, color="black", linestyle="--", linewidth=1, label=f"chosen {x} {chosen:.3f}")
        ax.set_xlabel(x)
        ax.set_ylabel(columns[0] if len(columns) == 1 else "share")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figure.tight_layout()
    return to_svg(figure)


def heatmap_svg(values: pd.DataFrame, label: str) -> str:
    """A features x windows heatmap of `values` (rows: features, columns: windows), each cell annotated."""
    figure, ax = plt.subplots(figsize=(max(6.0, 3.0 + 1.2 * values.shape[1]), 1.2 + 0.3 * values.shape[0]))
    image = ax.imshow(values.to_numpy(dtype=float), cmap="Reds", aspect="auto", vmin=0,
                      vmax=max(2.0, float(np.nanmax(values.to_numpy(dtype=float)))))
    ax.set_xticks(range(values.shape[1]), values.columns, rotation=30, ha="right")
    ax.set_yticks(range(values.shape[0]), values.index)
    for (row, column), value in np.ndenumerate(values.to_numpy(dtype=float)):
        if not np.isnan(value):
            ax.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if value >= 1.5 else "black")
    figure.colorbar(image, ax=ax, label=label, fraction=0.08, pad=0.04)
    figure.tight_layout()
    return to_svg(figure)


def lines_svg(frame: pd.DataFrame, x: str, columns: list[str]) -> str:
    """Each of `columns` against `x` (e.g. live metrics per window), one small panel each."""
    figure, axes = plt.subplots(1, len(columns), figsize=(3.0 * len(columns), 2.8), squeeze=False)
    for ax, column in zip(axes[0], columns):
        ax.plot(frame[x].astype(str), frame[column], marker="o", linewidth=1.4)
        ax.set_title(column, fontsize=9)
        ax.tick_params(axis="x", rotation=30, labelsize=7)
        ax.grid(alpha=0.3)
    figure.tight_layout()
    return to_svg(figure)
