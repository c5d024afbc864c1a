"""The statistics of a comparison: paired differences over seeds, their interval, and what the seeds
used can detect.

A comparison is a claim about noise. For a method against a baseline, seed by seed, this module gives
the mean paired difference with a t-based interval and a paired t-test, and the **minimum detectable
effect** (MDE): the smallest true difference a two-sided paired t-test at level α would detect with the
given power at the seeds used, from the spread of the paired differences,

    MDE = (t_{1−α/2, n−1} + t_{power, n−1}) · s_d / √n,

with the number of seeds that would be needed to detect a given effect (1 point by default) at the same
spread. The t quantiles make both honest at small n (with 5 seeds MDE ≈ 4.0·s_d/√5 ≈ 1.8·s_d).
"""
from __future__ import annotations

import itertools
import math
from typing import Optional, Sequence, Tuple

import numpy as np

__all__ = ["paired_difference", "minimum_detectable_effect", "seeds_needed", "spearman"]


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


def paired_difference(diffs: Sequence[float], *, level: float = 0.95, power: float = 0.8,
                      target: float = 0.01) -> dict:
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

    Returns
    -------
    dict
        ``n``, ``mean``, ``std`` (n − 1 denominator), ``ci_low``, ``ci_high``, ``p_value``, ``wins``,
        ``losses``, ``ties``, ``significant`` (the interval excludes zero), ``mde`` and
        ``seeds_for_target`` (with ``target``). With n = 1 the interval, the p-value and the MDE are
        None; with zero spread the interval is the point and p is 0 (or 1 for a zero mean).
    """
    from scipy import stats
    d = np.asarray(list(diffs), dtype=np.float64)
    if d.ndim != 1 or d.size == 0 or not np.all(np.isfinite(d)):
        raise ValueError(f"diffs must be a non-empty 1-D sequence of finite numbers; got {list(d.ravel())[:5]}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got level={level!r}")
    n, mean = d.size, float(d.mean())
    out = {"n": int(n), "mean": mean, "std": None, "ci_low": None, "ci_high": None, "p_value": None,
           "wins": int((d > 0).sum()), "losses": int((d < 0).sum()), "ties": int((d == 0).sum()),
           "significant": False, "mde": None, "seeds_for_target": None, "target": target}
    if n >= 2:
        sd = float(d.std(ddof=1))
        se = sd / math.sqrt(n)
        half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * se
        out.update(std=sd, ci_low=mean - half, ci_high=mean + half)
        if se > 0:
            out["p_value"] = float(2 * stats.t.sf(abs(mean) / se, n - 1))
        else:
            out["p_value"] = 0.0 if mean != 0 else 1.0
        out["significant"] = bool(out["ci_low"] > 0 or out["ci_high"] < 0)
        out["mde"] = minimum_detectable_effect(sd, n, alpha=1 - level, power=power)
        out["seeds_for_target"] = seeds_needed(sd, target, alpha=1 - level, power=power)
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
