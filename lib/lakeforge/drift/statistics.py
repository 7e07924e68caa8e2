"""Drift statistics computed from binned counts (small numpy arrays), never from raw rows.

Every function takes the reference and current counts over the same buckets. Distances:
PSI, Jensen-Shannon (base 2, in [0, 1]) and Wasserstein (bucket masses placed at each side's
bucket mean, normed by the reference standard deviation). Tests: two-sample Kolmogorov-Smirnov
on the cumulative bucket counts (exact at the bucket edges) and chi-squared on the contingency
table of bucket counts.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

PSI_FLOOR = 1e-4  # a bucket's share is at least this in PSI, so empty buckets give a finite value


def shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros_like(counts, dtype=float)


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index: sum of (q - p) * ln(q / p) over buckets, shares floored at PSI_FLOOR."""
    p = np.maximum(shares(reference), PSI_FLOOR)
    q = np.maximum(shares(current), PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen-Shannon distance (square root of the divergence, log base 2): 0 identical, 1 disjoint."""
    p, q = shares(reference), shares(current)
    m = (p + q) / 2

    def kl_to_m(x: np.ndarray) -> float:
        present = x > 0
        return float(np.sum(x[present] * np.log2(x[present] / m[present])))

    return float(np.sqrt(max(0.0, (kl_to_m(p) + kl_to_m(q)) / 2)))


def ks_statistic(reference: np.ndarray, current: np.ndarray) -> float:
    """Largest gap between the two cumulative distributions, evaluated at the bucket edges."""
    return float(np.max(np.abs(np.cumsum(shares(reference)) - np.cumsum(shares(current))), initial=0.0))


def ks_pvalue(statistic: float, n_reference: int, n_current: int) -> float:
    """Asymptotic two-sample KS p-value (as scipy's ``ks_2samp(method='asymp')``)."""
    if not n_reference or not n_current:
        return 1.0
    effective = round(n_reference * n_current / (n_reference + n_current))
    return float(stats.kstwo.sf(statistic, max(effective, 1)))


def ks_critical_value(alpha: float, n_reference: int, n_current: int) -> float:
    """The KS statistic above which the p-value falls below `alpha` for these sample sizes."""
    effective = max(round(n_reference * n_current / max(n_reference + n_current, 1)), 1)
    return float(stats.kstwo.isf(alpha, effective))


def chi2_pvalue(reference: np.ndarray, current: np.ndarray) -> float:
    """Chi-squared test that both samples come from one distribution over the buckets."""
    table = np.vstack([reference, current]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or not table[0].sum() or not table[1].sum():
        return 1.0
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def wasserstein_normed(
    reference: np.ndarray, current: np.ndarray,
    reference_means: np.ndarray, current_means: np.ndarray, reference_std: float,
) -> float:
    """Earth mover's distance between the bucketed samples, in reference standard deviations.

    Each bucket's mass sits at that side's mean value in the bucket, so the error is at most the
    bucket width (zero for columns with one value per bucket).
    """
    ref_present, cur_present = reference > 0, current > 0
    if not ref_present.any() or not cur_present.any():
        return 0.0
    distance = stats.wasserstein_distance(
        reference_means[ref_present], current_means[cur_present], reference[ref_present], current[cur_present]
    )
    return float(distance / reference_std) if reference_std > 0 else float(distance)
