"""The honest leaderboard: configurations (replicate sets) ranked by their mean over seeds.

Each row is one replicate set (:mod:`._replicates`): its mean, sample standard deviation,
n, a 95% interval for the mean (Student's t with n - 1 degrees of freedom) and whether it
can be told apart from the top configuration. That test is Welch's two-sided t-test
(unequal variances) at ``alpha`` = 0.05 between the row's values and the top row's. It
assumes each set's values are independent draws (one per seed) from a roughly normal
distribution; it does not correct for the many comparisons of a long board, so a
"not tied" far down the board is the safer reading than a "tied" near the top. A set with
one run has no spread: its std, interval and test are None ("one seed: noise unknown").
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._replicates import replicate_sets

__all__ = ["ALPHA", "ONE_SEED", "config_leaderboard", "set_stats", "welch_p_values"]

ALPHA = 0.05
ONE_SEED = "one seed: noise unknown"


def _value(run: Mapping[str, Any], metric: str) -> float | None:
    v = (run.get("summary") or {}).get(metric)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def set_stats(values: Sequence[float]) -> dict[str, Any]:
    """``mean, std, n, ci_low, ci_high`` of one set's values (std and interval None when n = 1)."""
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return {"mean": mean, "std": None, "n": n, "ci_low": None, "ci_high": None}
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = _t975(n - 1) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "n": n, "ci_low": mean - half, "ci_high": mean + half}


@functools.cache
def _t975(dof: int) -> float:
    """The 97.5% quantile of Student's t with ``dof`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.975, dof))


def welch_p_values(
    best: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
) -> list[float | None]:
    """Two-sided p-values of Welch's t-test between ``best`` and each of ``rows`` (dicts
    with ``mean, std, n``); None where either side has n < 2. One vectorised call."""
    out: list[float | None] = [None] * len(rows)
    if best["n"] < 2:
        return out
    import numpy as np
    from scipy.stats import t as student

    va = best["std"] ** 2 / best["n"]
    idx, ts, dfs = [], [], []
    for i, r in enumerate(rows):
        if r["n"] < 2:
            continue
        vb = r["std"] ** 2 / r["n"]
        if va + vb == 0:  # no spread on either side: equal means are tied, others are not
            out[i] = 1.0 if r["mean"] == best["mean"] else 0.0
            continue
        idx.append(i)
        ts.append(abs(best["mean"] - r["mean"]) / math.sqrt(va + vb))
        # Welch-Satterthwaite degrees of freedom
        den = (va**2 / (best["n"] - 1) if va else 0.0) + (vb**2 / (r["n"] - 1) if vb else 0.0)
        dfs.append((va + vb) ** 2 / den)
    if idx:
        ps = 2.0 * student.sf(np.asarray(ts), np.asarray(dfs))
        for i, p in zip(idx, ps.tolist(), strict=True):
            out[i] = float(p) if math.isfinite(p) else None
    return out


def config_leaderboard(
    runs: Iterable[Mapping[str, Any]],
    metric: str,
    *,
    mode: str = "max",
    alpha: float = ALPHA,
    seed_keys: Sequence[str] | None = None,
    top: int | None = None,
) -> list[dict[str, Any]]:
    """Replicate sets of ``runs`` ranked by their mean of ``metric`` (``mode`` max or min).

    Rows: ``rank, set, config`` (without seed keys), ``commit, patch_sha256, datasets,
    metric, mean, std, n, ci_low, ci_high, tied_with_best`` (True, False, or None when
    either side has one seed), ``p_value`` (Welch vs the top), ``runs`` (ids), ``seeds``,
    ``note``. Runs without a finite value of ``metric`` are left out."""
    scored = [r for r in runs if _value(r, metric) is not None]
    rows: list[dict[str, Any]] = []
    for s in replicate_sets(scored, seed_keys):
        values = [v for r in s.runs if (v := _value(r, metric)) is not None]
        stats = set_stats(values)
        rows.append(
            {
                "set": s.key,
                "config": s.identity["config"],
                "commit": s.identity["commit"],
                "patch_sha256": s.identity["patch_sha256"],
                "datasets": s.identity["datasets"],
                "project": s.identity["project"],
                "metric": metric,
                **stats,
                "runs": s.run_ids,
                "seeds": s.seeds,
                "authors": sorted({str(r.get("author")) for r in s.runs if r.get("author")}),
                "note": ONE_SEED if stats["n"] == 1 else None,
            }
        )
    sign = -1.0 if mode == "max" else 1.0
    rows.sort(key=lambda r: (sign * r["mean"], -r["n"], r["set"]))
    if top is not None:
        rows = rows[:top]
    ps = welch_p_values(rows[0], rows) if rows else []
    for i, row in enumerate(rows):
        row["rank"] = i + 1
        if i == 0:
            row["p_value"], row["tied_with_best"] = None, True
            continue
        p = ps[i]
        row["p_value"] = p
        row["tied_with_best"] = None if p is None else p >= alpha
    return [{"rank": r.pop("rank"), **r} for r in rows]
