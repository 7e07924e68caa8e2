"""Bucketing on Spark and the drift decision: known answers, and the same values as numpy/scipy."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from lakeforge.config import DriftThresholds
from lakeforge.drift.binning import OTHER, bucket_counts, fit_bins
from lakeforge.drift.compare import compare_column, drifted_share

ROWS = 4000


def compare(bins, ref_counts, cur_counts, max_rows=1000):
    return {(b.name, m.method): m for b in bins
            for m in compare_column(b, ref_counts[b.name], cur_counts[b.name], DriftThresholds(), max_rows)}


def measures(spark, reference: pd.DataFrame, current: pd.DataFrame, numeric, categorical, max_rows=1000):
    ref, cur = spark.createDataFrame(reference), spark.createDataFrame(current)
    bins = fit_bins(ref, numeric, categorical, max_categories=3)
    ref_counts, cur_counts = bucket_counts(ref, bins)[None], bucket_counts(cur, bins)[None]
    return bins, ref_counts, cur_counts, compare(bins, ref_counts, cur_counts, max_rows)


@pytest.fixture(scope="module")
def samples(spark):
    """Reference, a fresh sample of the same distributions and a shifted one, counted in one aggregation."""
    rng = np.random.default_rng(7)

    def sample(name: str, mean: float, lowest: int) -> pd.DataFrame:
        return pd.DataFrame({"sample": name, "x": rng.normal(mean, 1, ROWS),
                             "n": rng.integers(lowest, 20, ROWS).astype(float),
                             "c": rng.choice(["a", "b", "c"], ROWS, p=[.5, .3, .2])})

    frames = {"reference": sample("reference", 0, 0), "same": sample("same", 0, 0), "shifted": sample("shifted", 0.5, 3)}
    everything = spark.createDataFrame(pd.concat(frames.values()))
    bins = fit_bins(everything.where("sample = 'reference'"), ["x", "n"], ["c"])
    return frames, bins, bucket_counts(everything, bins, "sample")


def test_identical_distributions_do_not_drift(samples):
    _, bins, counts = samples
    found = compare(bins, counts["reference"], counts["reference"])
    assert found["x", "psi"].value == pytest.approx(0.0, abs=1e-12)
    assert found["c", "jensen_shannon"].value == pytest.approx(0.0, abs=1e-6)
    assert not any(m.drifted for m in found.values())
    assert drifted_share(list(found.values())) == 0.0


def test_a_fresh_sample_of_the_same_distribution_does_not_drift(samples):
    _, bins, counts = samples
    found = compare(bins, counts["reference"], counts["same"])
    assert found["x", "psi"].value < 0.05
    assert [m.method for m in found.values() if m.decisive] == ["wasserstein_normed", "wasserstein_normed",
                                                                 "jensen_shannon"]
    assert not any(m.drifted for m in found.values() if m.decisive)


def test_a_shifted_normal_drifts(samples):
    _, bins, counts = samples
    found = compare(bins, counts["reference"], counts["shifted"])
    assert found["x", "wasserstein_normed"].decisive and found["x", "wasserstein_normed"].drifted
    assert found["x", "wasserstein_normed"].value == pytest.approx(0.5, abs=0.08)
    assert found["x", "psi"].drifted and found["x", "ks"].drifted
    assert not found["c", "jensen_shannon"].drifted
    assert drifted_share([m for m in found.values()]) == pytest.approx(2 / 3)


def test_small_samples_are_decided_by_tests(samples):
    _, bins, counts = samples
    found = compare(bins, counts["reference"], counts["shifted"], max_rows=ROWS)
    assert [m.method for m in found.values() if m.decisive] == ["ks", "ks", "chi2_pvalue"]


def test_psi_and_jensen_shannon_match_numpy_and_scipy_on_the_same_bins(samples):
    frames, bins, counts = samples
    x = next(b for b in bins if b.name == "x")
    edges = np.array(x.coarse_edges)
    ref_hist = np.bincount(np.searchsorted(edges, frames["reference"]["x"], side="right"), minlength=len(edges) + 2)
    cur_hist = np.bincount(np.searchsorted(edges, frames["shifted"]["x"], side="right"), minlength=len(edges) + 2)
    np.testing.assert_array_equal(counts["reference"]["x"].coarse(x), ref_hist)
    np.testing.assert_array_equal(counts["shifted"]["x"].coarse(x), cur_hist)
    found = compare(bins, counts["reference"], counts["shifted"])
    p, q = ref_hist / ref_hist.sum(), cur_hist / cur_hist.sum()
    p_floor, q_floor = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    assert found["x", "psi"].value == pytest.approx(np.sum((q_floor - p_floor) * np.log(q_floor / p_floor)), abs=1e-6)
    assert found["x", "jensen_shannon"].value == pytest.approx(jensenshannon(p, q, base=2), abs=1e-6)


def test_ks_and_wasserstein_are_exact_for_integer_columns(samples):
    frames, bins, counts = samples
    reference, shifted = frames["reference"]["n"], frames["shifted"]["n"]
    found = compare(bins, counts["reference"], counts["shifted"])
    assert found["n", "ks"].value == pytest.approx(stats.ks_2samp(reference, shifted).statistic, abs=1e-9)
    expected = stats.wasserstein_distance(reference, shifted) / reference.std()
    assert found["n", "wasserstein_normed"].value == pytest.approx(expected, abs=1e-9)


def test_unseen_and_rare_categories_go_to_other_and_nulls_to_missing(spark):
    reference = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 5})
    current = pd.DataFrame({"c": ["a"] * 40 + ["z"] * 40 + [None] * 20})
    bins, ref_counts, cur_counts, found = measures(spark, reference, current, [], ["c"])
    assert bins[0].categories == ("a", "b", "c")  # max_categories=3: "d" is other
    assert bins[0].coarse_labels() == ["a", "b", "c", OTHER, "<missing>"]
    np.testing.assert_array_equal(ref_counts["c"].counts, [50, 30, 15, 5, 0])
    np.testing.assert_array_equal(cur_counts["c"].counts, [40, 0, 0, 40, 20])
    assert np.isfinite(found["c", "psi"].value) and found["c", "psi"].drifted
    assert found["c", "chi2_pvalue"].decisive and found["c", "chi2_pvalue"].drifted


def test_values_outside_the_reference_range_have_their_own_buckets(spark):
    reference = pd.DataFrame({"month": [1.0, 2.0, 3.0] * 100})
    current = pd.DataFrame({"month": [4.0] * 300})
    bins, _, cur_counts, found = measures(spark, reference, current, ["month"], [], max_rows=10)
    assert cur_counts["month"].counts[-2] == 300  # the bucket above the reference maximum
    assert found["month", "jensen_shannon"].decisive and found["month", "jensen_shannon"].value == pytest.approx(1.0)
    assert found["month", "wasserstein_normed"].value == pytest.approx(2.0 / reference["month"].std())
