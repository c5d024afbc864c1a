"""The statistics of a comparison: paired differences over seeds, their interval, and what the seeds
used can detect.

A comparison is a claim about noise. For a method against a baseline, seed by seed, this module gives
the mean paired difference with a t-based interval and a paired t-test, and the **minimum detectable
effect** (MDE): the smallest true difference a two-sided paired t-test at level α would detect with the
given power at the seeds used, from the spread of the paired differences,

    MDE = (t_{1−α/2, n−1} + t_{power, n−1}) · s_d / √n,

with the number of seeds that would be needed to detect a given effect (1 point by default) at the same
spread. The t quantiles make both honest at small n (with 5 seeds MDE ≈ 4.0·s_d/√5 ≈ 1.8·s_d).

A test needs a spread to test against: with fewer than :data:`MIN_SEEDS` seeds, or differences that do
not spread beyond float resolution (:func:`float_resolution`), a comparison reports ``cannot_tell`` and no
interval, p-value or verdict — never a "significant" result built on rounding noise.

The **headroom recovered** by a method (:func:`headroom_recovered`) is the share of the paired ceiling's
gain over the baseline it gets, (method − baseline) / (ceiling − baseline) paired by seed, with Fieller's
interval for a ratio of means (:func:`fieller_interval`); it is undefined, and said so in words, when the
ceiling is not shown to be above the baseline.
"""
from __future__ import annotations

import itertools
import math
from typing import Optional, Sequence, Tuple

import numpy as np

__all__ = ["paired_difference", "minimum_detectable_effect", "seeds_needed", "spearman", "fieller_interval",
           "headroom_recovered", "cannot_tell", "float_resolution", "MIN_SEEDS"]


def _t(q: float, df: int) -> float:
    from scipy import stats
    return float(stats.t.ppf(q, df))


def minimum_detectable_effect(sd: float, n: int, *, alpha: float = 0.05, power: float = 0.8) -> Optional[float]:
    """The MDE of a paired comparison over ``n`` seeds whose differences have standard deviation ``sd``
    (two-sided level ``alpha``, ``power``); None below 2 seeds.

    Parameters
    ----------
    sd : float >= 0
        Standard deviation of the paired differences (n − 1 denominator).
    n : int
        Number of pairs (seeds).
    """
    if n < 2 or sd is None or not math.isfinite(sd):
        return None
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"alpha and power must be in (0, 1); got alpha={alpha!r}, power={power!r}")
    return (_t(1 - alpha / 2, n - 1) + _t(power, n - 1)) * float(sd) / math.sqrt(n)


def seeds_needed(sd: float, effect: float, *, alpha: float = 0.05, power: float = 0.8,
                 max_seeds: int = 10_000) -> Optional[int]:
    """The fewest seeds (pairs) whose MDE at spread ``sd`` is at most ``effect``; None without a spread,
    ``max_seeds`` + 1 ("more than") when even that many would not do."""
    if sd is None or not math.isfinite(sd) or effect is None or effect <= 0:
        return None
    if sd == 0:
        return 2
    # The normal approximation gives the order of magnitude; step up from a little below it.
    from scipy import stats
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    n = max(2, int((z * sd / effect) ** 2) - 2)
    while n <= max_seeds:
        if minimum_detectable_effect(sd, n, alpha=alpha, power=power) <= effect:
            return n
        n += 1
    return max_seeds + 1


# A verdict needs an estimate of the spread worth the name. With 2 seeds the variance has one degree of
# freedom and, on the lab's quantised metric (accuracy moves in steps of 1/n_test), the two differences are
# equal often enough that the t statistic is infinite: a simulation of the null (binomial accuracies, 60 and
# 600 test samples) gives a zero spread in 3.6 % and 1.2 % of 2-seed comparisons and a miscalibrated rate
# (2.8 % / 3.9 % instead of 5 %) for the rest, where 3 seeds give 4.8 % / 5.1 % and zero spreads ~0.1 %
# (tests/test_headroom.py re-measures it). Below MIN_SEEDS a comparison reports "cannot tell".
MIN_SEEDS = 3
# A spread within a few float32 ulps of the compared values is rounding (the trainer computes accuracies in
# float32; 2/3 ≠ 0.6666667 and their differences scatter by ~1e-8), not a spread between seeds: with it a
# t statistic is a ratio of a difference to float noise. The smallest true spread of differences on a
# metric quantised at q = 1/n_test is q/√n (one seed one step away), above this bound for any n_test < 10⁶.
RESOLUTION_ULPS = 4


def float_resolution(scale: float) -> float:
    """The smallest spread of paired differences that is not rounding, for values of magnitude ``scale``:
    :data:`RESOLUTION_ULPS` float32 ulps at ``scale`` (float32: what the values may have passed through)."""
    return RESOLUTION_ULPS * float(np.spacing(np.float32(abs(scale) or 1.0)))


def cannot_tell(n: int, sd: Optional[float], scale: float) -> Optional[str]:
    """Why a paired comparison of ``n`` seeds with spread ``sd`` gives no verdict (None when it can)."""
    if n < MIN_SEEDS:
        return (f"{n} seed{'s' if n != 1 else ''}: a verdict needs at least {MIN_SEEDS} (with fewer the spread "
                "has no degrees of freedom to speak of)")
    if sd is None or sd <= float_resolution(scale):
        return (f"the paired differences do not spread beyond float resolution (std {sd:.2g} ≤ "
                f"{float_resolution(scale):.2g}): no spread to test against")
    return None


def paired_difference(diffs: Sequence[float], *, level: float = 0.95, power: float = 0.8,
                      target: float = 0.01, scale: Optional[float] = None) -> dict:
    """Mean of paired differences with a t-based interval, a two-sided paired t-test and the MDE.

    Parameters
    ----------
    diffs : sequence of float, shape (n,)
        One difference per seed (method − baseline), in the metric's units (accuracy 0–1).
    level : float in (0, 1)
        Confidence level of the interval (the test's α is 1 − level).
    power : float in (0, 1)
        Power of the minimum detectable effect.
    target : float > 0
        The effect ``seeds_for_target`` is computed for (0.01 = one point of accuracy).
    scale : float, optional
        The magnitude of the values the differences were taken between (e.g. the largest accuracy), for the
        float-resolution rule; default the largest |difference|.

    Returns
    -------
    dict
        ``n``, ``mean``, ``std`` (n − 1 denominator), ``ci_low``, ``ci_high``, ``p_value``, ``wins``,
        ``losses``, ``ties``, ``significant`` (the interval excludes zero), ``mde``, ``seeds_for_target``
        (with ``target``) and ``cannot_tell``: None, or why no verdict can be read — fewer than
        :data:`MIN_SEEDS` seeds, or a spread at float resolution (:func:`float_resolution`). Then the
        interval, the p-value and the MDE are None and ``significant`` is False.
    """
    from scipy import stats
    d = np.asarray(list(diffs), dtype=np.float64)
    if d.ndim != 1 or d.size == 0 or not np.all(np.isfinite(d)):
        raise ValueError(f"diffs must be a non-empty 1-D sequence of finite numbers; got {list(d.ravel())[:5]}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got level={level!r}")
    n, mean = d.size, float(d.mean())
    sd = float(d.std(ddof=1)) if n >= 2 else None
    scale = float(np.max(np.abs(d))) if scale is None else float(scale)
    why = cannot_tell(n, sd, scale)
    out = {"n": int(n), "mean": mean, "std": sd, "ci_low": None, "ci_high": None, "p_value": None,
           "wins": int((d > 0).sum()), "losses": int((d < 0).sum()), "ties": int((d == 0).sum()),
           "significant": False, "mde": None, "seeds_for_target": None, "target": target, "cannot_tell": why}
    if sd is not None and sd > float_resolution(scale):  # a planning number: how many seeds would do
        out["seeds_for_target"] = seeds_needed(sd, target, alpha=1 - level, power=power)
    if why is None:
        se = sd / math.sqrt(n)
        half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * se
        out.update(ci_low=mean - half, ci_high=mean + half, p_value=float(2 * stats.t.sf(abs(mean) / se, n - 1)))
        out["significant"] = bool(out["ci_low"] > 0 or out["ci_high"] < 0)
        out["mde"] = minimum_detectable_effect(sd, n, alpha=1 - level, power=power)
    return out


def spearman(x, y) -> Tuple[float, float]:
    """Spearman's ρ and its two-sided p-value. Below 10 points the p-value comes from the permutation
    distribution (exact up to 7 points, 9,999 seeded resamples for 8 or 9), where the t approximation of
    ``scipy.stats.spearmanr`` is unreliable (it gives p = 0 for any perfect ranking); from 10 points on,
    scipy's value.

    Parameters
    ----------
    x, y : array-like, shape (n,)
    """
    from scipy import stats
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size < 3:
        raise ValueError(f"x and y must be 1-D of the same length >= 3; got shapes {x.shape} and {y.shape}")
    res = stats.spearmanr(x, y)
    rho, p = float(res.statistic), float(res.pvalue)
    n = x.size
    if n < 10 and math.isfinite(rho):
        # ρ is Pearson's r of the (average) ranks: centre and scale them once, then one matrix product
        # gives ρ for every permutation of y's ranks.
        rx, ry = stats.rankdata(x), stats.rankdata(y)
        rx, ry = (rx - rx.mean()) / np.linalg.norm(rx - rx.mean()), (ry - ry.mean()) / np.linalg.norm(ry - ry.mean())
        if n <= 7:
            perms = np.array(list(itertools.permutations(range(n))))  # (n!, n), the identity included
            extra = 0
        else:
            rng = np.random.default_rng(0)
            perms = np.argsort(rng.random((9999, n)), axis=1)  # (9999, n)
            extra = 1  # the observed ordering counts as one resample
        null = ry[perms] @ rx  # (P,)
        p = float((np.sum(np.abs(null) >= abs(rho) - 1e-12) + extra) / (len(perms) + extra))
    return rho, p


def fieller_interval(a: Sequence[float], b: Sequence[float], *, level: float = 0.95) -> dict:
    """The ratio of means ``mean(a) / mean(b)`` of paired samples with Fieller's interval.

    The interval is the set of ratios ρ that a two-sided paired t-test of ``a − ρ·b`` at level ``1 − level``
    does not reject: with ā, b̄ the means, v_aa, v_bb, v_ab the (co)variances of the means (sample
    (co)variances / n) and t = t_{(1+level)/2, n−1}, the ρ where

        (b̄² − t² v_bb) ρ² − 2 (ā b̄ − t² v_ab) ρ + (ā² − t² v_aa) ≤ 0.

    It accounts for the spread of the numerator and the denominator and for their covariance. The set is a
    bounded interval exactly when b̄ is significantly non-zero (b̄² > t² v_bb: the leading coefficient is
    positive); otherwise it is unbounded (the whole line, or the line minus an interval) and ``bounded`` is
    False with ``ci_low``/``ci_high`` None.

    Parameters
    ----------
    a, b : sequence of float, shape (n,)
        Paired samples (one per seed), n ≥ 2.
    level : float in (0, 1)

    Returns
    -------
    dict
        ``n``, ``ratio`` (ā / b̄; None when b̄ = 0), ``ci_low``, ``ci_high``, ``bounded``.
    """
    from scipy import stats
    a, b = np.asarray(list(a), dtype=np.float64), np.asarray(list(b), dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.size < 2 or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError(f"a and b must be 1-D finite samples of the same length >= 2; got shapes {a.shape} and "
                         f"{b.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got level={level!r}")
    n = a.size
    cov = np.cov(np.stack([a, b]), ddof=1) / n  # (2, 2): covariance of the two means
    t2 = float(stats.t.ppf(0.5 + level / 2, n - 1)) ** 2
    ma, mb = float(a.mean()), float(b.mean())
    qa, qb, qc = mb * mb - t2 * cov[1, 1], ma * mb - t2 * cov[0, 1], ma * ma - t2 * cov[0, 0]
    out = {"n": int(n), "ratio": ma / mb if mb != 0 else None, "ci_low": None, "ci_high": None, "bounded": False}
    if qa > 0:
        root = math.sqrt(max(qb * qb - qa * qc, 0.0))  # ≥ 0 when qa > 0: the estimate lies inside the set
        out.update(ci_low=(qb - root) / qa, ci_high=(qb + root) / qa, bounded=True)
    return out


def headroom_recovered(method_gain: Sequence[float], ceiling_gain: Sequence[float], *, level: float = 0.95,
                       scale: Optional[float] = None, baseline: str = "ce", ceiling: str = "the ceiling") -> dict:
    """The share of the paired ceiling's gain a method recovers: (method − baseline) / (ceiling − baseline),
    paired by seed, with Fieller's interval (:func:`fieller_interval`).

    Parameters
    ----------
    method_gain, ceiling_gain : sequence of float, shape (n,)
        Per seed: the method's and the ceiling's accuracy minus the baseline's (a_s and b_s).
    level : float in (0, 1)
    scale : float, optional
        Magnitude of the accuracies, for the float-resolution rule of :func:`paired_difference`.
    baseline, ceiling : str
        Names for the message.

    Returns
    -------
    dict
        ``n``, ``headroom`` (mean a / mean b), ``ci_low``, ``ci_high``, and ``note``: None, or in words why
        there is no number — fewer than :data:`MIN_SEEDS` seeds, or a ceiling not shown to be above the
        baseline (then the interval is unbounded and the ratio means nothing).
    """
    denom = paired_difference(ceiling_gain, level=level, scale=scale)
    out = {"n": denom["n"], "headroom": None, "ci_low": None, "ci_high": None, "note": None}
    if denom["cannot_tell"] is not None:
        out["note"] = f"headroom undefined: cannot tell whether {ceiling} is above {baseline} ({denom['cannot_tell']})"
    elif not (denom["significant"] and denom["mean"] > 0):
        out["note"] = f"{ceiling} not above {baseline}: headroom undefined"
    else:
        f = fieller_interval(method_gain, ceiling_gain, level=level)
        out.update(headroom=f["ratio"], ci_low=f["ci_low"], ci_high=f["ci_high"])
    return out
