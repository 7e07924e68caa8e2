"""Drift statistics on bucket counts: known answers and agreement with scipy."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr

from lakeforge.drift import statistics


def test_identical_counts_have_no_distance():
    counts = np.array([10.0, 40.0, 30.0, 20.0])
    assert statistics.psi(counts, counts * 3) == pytest.approx(0.0, abs=1e-12)
    assert statistics.jensen_shannon(counts, counts * 3) == pytest.approx(0.0, abs=1e-6)
    assert statistics.ks_statistic(counts, counts * 3) == pytest.approx(0.0, abs=1e-12)
    assert statistics.chi2_pvalue(counts, counts * 3) == pytest.approx(1.0)


def test_psi_and_jensen_shannon_match_scipy():
    rng = np.random.default_rng(3)
    reference, current = rng.integers(1, 500, 12).astype(float), rng.integers(1, 500, 12).astype(float)
    p, q = reference / reference.sum(), current / current.sum()
    assert statistics.psi(reference, current) == pytest.approx(np.sum(rel_entr(q, p) + rel_entr(p, q)), abs=1e-9)
    assert statistics.jensen_shannon(reference, current) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-9)


def test_disjoint_distributions_are_maximally_distant():
    assert statistics.jensen_shannon(np.array([5.0, 0.0]), np.array([0.0, 7.0])) == pytest.approx(1.0)
    assert statistics.ks_statistic(np.array([5.0, 0.0]), np.array([0.0, 7.0])) == pytest.approx(1.0)
    assert np.isfinite(statistics.psi(np.array([5.0, 0.0]), np.array([0.0, 7.0])))


def test_ks_critical_value_is_where_the_pvalue_crosses_alpha():
    critical = statistics.ks_critical_value(0.05, 800, 600)
    assert statistics.ks_pvalue(critical * 0.99, 800, 600) > 0.05 > statistics.ks_pvalue(critical * 1.01, 800, 600)


def test_ks_pvalue_matches_scipy_asymptotic_test():
    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 30, 700), rng.integers(2, 31, 500)
    expected = stats.ks_2samp(a, b, method="asymp")
    counts_a, counts_b = np.bincount(a, minlength=32), np.bincount(b, minlength=32)
    statistic = statistics.ks_statistic(counts_a, counts_b)
    assert statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert statistics.ks_pvalue(statistic, len(a), len(b)) == pytest.approx(expected.pvalue, rel=1e-6)


def test_wasserstein_is_exact_with_one_value_per_bucket():
    values = np.array([1.0, 2.0, 5.0])
    reference, current = np.array([3.0, 1.0, 0.0]), np.array([0.0, 1.0, 3.0])
    expected = stats.wasserstein_distance(values, values, reference, current)
    assert statistics.wasserstein_normed(reference, current, values, values, 2.0) == pytest.approx(expected / 2.0)
