"""Compare a current sample with the reference, column by column, and decide which columns drifted.

Every column gets several measures; one of them, chosen by this rule (after Evidently's), decides:

| column                                           | both samples <= stat_test_max_rows | larger samples              |
| ------------------------------------------------ | ---------------------------------- | --------------------------- |
| numeric with more than 5 distinct reference values | KS test (statistic > critical value at p_value) | Wasserstein / reference std >= 0.1 |
| categorical, or numeric with at most 5 values    | chi-squared test, p-value < p_value | Jensen-Shannon distance >= 0.1 |

On small samples a test keeps false alarms at the chosen rate; on large ones every test rejects
for negligible differences, so an effect size (a distance) decides. PSI (>= 0.2) is reported for
every column as the familiar summary but does not decide.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lakeforge.config import DriftThresholds
from lakeforge.drift import statistics
from lakeforge.drift.binning import BucketCounts, ColumnBins

DISCRETE_MAX_VALUES = 5


@dataclass(frozen=True)
class DriftMeasure:
    """One statistic for one column: its value, the threshold, whether it signals drift, whether it decides."""

    feature: str
    method: str
    value: float
    threshold: float
    drifted: bool
    decisive: bool
    reference_rows: int
    current_rows: int


def decisive_method(bins: ColumnBins, reference_rows: int, current_rows: int, stat_test_max_rows: int) -> str:
    """The method that decides drift for this column (see the module's table)."""
    small = min(reference_rows, current_rows) <= stat_test_max_rows
    continuous = bins.kind == "numeric" and bins.distinct > DISCRETE_MAX_VALUES
    if continuous:
        return "ks" if small else "wasserstein_normed"
    return "chi2_pvalue" if small else "jensen_shannon"


def compare_column(
    bins: ColumnBins, reference: BucketCounts, current: BucketCounts,
    thresholds: DriftThresholds, stat_test_max_rows: int,
) -> list[DriftMeasure]:
    """All measures for one column; exactly one is marked decisive."""
    n_ref, n_cur = reference.rows, current.rows
    ref_coarse, cur_coarse = reference.coarse(bins), current.coarse(bins)
    values: dict[str, tuple[float, float, bool]] = {}  # method -> (value, threshold, drifted)
    psi = statistics.psi(ref_coarse, cur_coarse)
    values["psi"] = (psi, thresholds.psi, psi >= thresholds.psi)
    js = statistics.jensen_shannon(ref_coarse, cur_coarse)
    values["jensen_shannon"] = (js, thresholds.jensen_shannon, js >= thresholds.jensen_shannon)
    chi2 = statistics.chi2_pvalue(reference.counts, current.counts)
    values["chi2_pvalue"] = (chi2, thresholds.p_value, chi2 < thresholds.p_value)
    if bins.kind == "numeric":
        present = slice(0, bins.n_buckets)  # the KS and Wasserstein distances ignore missing values
        ref_values, cur_values = reference.counts[present], current.counts[present]
        n_ref_values, n_cur_values = int(ref_values.sum()), int(cur_values.sum())
        ks = statistics.ks_statistic(ref_values, cur_values)
        critical = statistics.ks_critical_value(thresholds.p_value, n_ref_values, n_cur_values)
        values["ks"] = (ks, critical, statistics.ks_pvalue(ks, n_ref_values, n_cur_values) < thresholds.p_value)
        wasserstein = statistics.wasserstein_normed(ref_values, cur_values, reference.means[present],
                                                    current.means[present], bins.std)
        values["wasserstein_normed"] = (wasserstein, thresholds.wasserstein_normed,
                                        wasserstein >= thresholds.wasserstein_normed)
    decider = decisive_method(bins, n_ref, n_cur, stat_test_max_rows)
    return [DriftMeasure(bins.name, method, float(value), float(threshold), bool(drifted), method == decider, n_ref, n_cur)
            for method, (value, threshold, drifted) in values.items()]


def drifted_share(measures: list[DriftMeasure]) -> float:
    """Share of columns whose decisive measure signals drift."""
    decisive = [m for m in measures if m.decisive]
    return float(np.mean([m.drifted for m in decisive])) if decisive else 0.0
