"""A/B test statistics on per-variant summaries: lifts with confidence intervals, significance tests, SRM.

Everything here works on counts, means and variances (a few numbers per variant), never on rows.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scipy import stats


@dataclass(frozen=True)
class Comparison:
    """Treatment versus control on one metric: absolute and relative lift with CIs, and the test."""

    control_value: float
    treatment_value: float
    abs_lift: float
    abs_ci_low: float
    abs_ci_high: float
    rel_lift: float
    rel_ci_low: float
    rel_ci_high: float
    test: str
    statistic: float
    p_value: float

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self)


def _relative(abs_lift: float, control: float, se_rel: float, critical: float) -> tuple[float, float, float]:
    """Relative lift and its delta-method interval (NaN when the control value is 0)."""
    if control == 0:
        return math.nan, math.nan, math.nan
    rel = abs_lift / control
    return rel, rel - critical * se_rel, rel + critical * se_rel


def two_proportion_ztest(successes_c: int, units_c: int, successes_t: int, units_t: int,
                         alpha: float = 0.05) -> Comparison:
    """Pooled two-sided z-test of p_t = p_c; Wald CI for p_t - p_c, delta-method CI for (p_t - p_c) / p_c."""
    if min(units_c, units_t) == 0:
        raise ValueError("each variant needs at least one unit")
    p_c, p_t = successes_c / units_c, successes_t / units_t
    pooled = (successes_c + successes_t) / (units_c + units_t)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / units_c + 1 / units_t))
    z = (p_t - p_c) / se_pooled if se_pooled > 0 else 0.0
    p_value = 2 * stats.norm.sf(abs(z))
    critical = stats.norm.ppf(1 - alpha / 2)
    se_diff = math.sqrt(p_c * (1 - p_c) / units_c + p_t * (1 - p_t) / units_t)
    diff = p_t - p_c
    se_rel = math.sqrt(p_t * (1 - p_t) / units_t + p_t**2 * (1 - p_c) / (p_c * units_c)) / p_c if p_c else math.nan
    rel, rel_low, rel_high = _relative(diff, p_c, se_rel, critical)
    return Comparison(p_c, p_t, diff, diff - critical * se_diff, diff + critical * se_diff,
                      rel, rel_low, rel_high, "two_proportion_z", z, float(p_value))


def welch_ttest(mean_c: float, var_c: float, units_c: int, mean_t: float, var_t: float, units_t: int,
                alpha: float = 0.05) -> Comparison:
    """Welch's two-sided t-test of mean_t = mean_c with Welch-Satterthwaite degrees of freedom."""
    if min(units_c, units_t) < 2:
        raise ValueError("each variant needs at least two units for a t-test")
    se2_c, se2_t = var_c / units_c, var_t / units_t
    se = math.sqrt(se2_c + se2_t)
    dof = (se2_c + se2_t) ** 2 / (se2_c**2 / (units_c - 1) + se2_t**2 / (units_t - 1)) if se > 0 else 1.0
    diff = mean_t - mean_c
    t = diff / se if se > 0 else 0.0
    p_value = 2 * stats.t.sf(abs(t), dof)
    critical = stats.t.ppf(1 - alpha / 2, dof)
    se_rel = math.sqrt(se2_t / mean_c**2 + mean_t**2 * se2_c / mean_c**4) if mean_c else math.nan
    rel, rel_low, rel_high = _relative(diff, mean_c, se_rel, critical)
    return Comparison(mean_c, mean_t, diff, diff - critical * se, diff + critical * se,
                      rel, rel_low, rel_high, "welch_t", t, float(p_value))


@dataclass(frozen=True)
class SampleRatioCheck:
    chi2: float
    p_value: float
    mismatch: bool


def sample_ratio_mismatch(units: dict[str, int], expected_split: dict[str, float], alpha: float) -> SampleRatioCheck:
    """Chi-squared goodness of fit of the observed units per variant to the declared split."""
    missing = sorted(set(expected_split) - set(units))
    unexpected = sorted(set(units) - set(expected_split))
    if unexpected:
        raise ValueError(f"variants {unexpected} are not in the declared split {sorted(expected_split)}")
    observed = [units.get(v, 0) for v in expected_split]
    shares = [expected_split[v] / sum(expected_split.values()) for v in expected_split]
    total = sum(observed)
    chi2, p_value = stats.chisquare(observed, [share * total for share in shares])
    return SampleRatioCheck(float(chi2), float(p_value), bool(p_value < alpha or missing))
