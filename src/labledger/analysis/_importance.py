"""Which hyperparameters matter: random-forest permutation importance plus Spearman correlation.

For each flattened config key:

- numeric keys (ints, floats, booleans as 0/1) are used as they are, on a log10 scale
  when all values are positive and span at least two decades (learning rates, weight
  decay); missing values are imputed with the median, and a key missing in some runs
  gets its importance from the imputed column (so "was it set" counts as signal);
- categorical keys (strings, lists, anything else) are ordinal-encoded by category
  (trees split such codes as well as one-hot columns and keep one feature per key);
  missing becomes its own category;
- constant keys (one distinct value) get importance 0 and are reported as constant.

A random forest (scikit-learn) is fitted to predict the metric; importance is the mean
drop in R^2 when the key's column is shuffled (permutation importance, on at most 1,500
held-out runs; each tree sees at most 3,000 runs), clipped at 0 and normalised to sum to 1. ``spearman`` is the rank
correlation between the key's numeric value and the metric (None for categorical keys).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._exceptions import UsageError
from .._values import flatten

__all__ = ["MIN_RUNS", "SMALL_SAMPLE", "importance", "plot_importance", "small_sample_note"]

MIN_RUNS = 5
_MISSING = "<missing>"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v))


def _log_scaled(finite: Any) -> bool:
    """Positive values spanning two decades or more whose median sits nearer their geometric
    mean than their arithmetic mean (log-uniform choices such as learning rates)."""
    import numpy as np

    if len(finite) < 2 or float(finite.min()) <= 0 or float(finite.max() / finite.min()) < 100:
        return False
    log_median = math.log10(float(np.median(finite)))
    return abs(log_median - float(np.log10(finite).mean())) < abs(
        log_median - math.log10(float(finite.mean()))
    )


def _encode(values: list[Any]) -> tuple[Any, str, bool, int]:
    """Return (column as float array, kind, log_scale, distinct count)."""
    import numpy as np

    present = [v for v in values if v is not None]
    numeric = bool(present) and all(_is_number(v) for v in present)
    if numeric:
        arr = np.array([float(v) if v is not None else np.nan for v in values], dtype=float)
        finite = arr[np.isfinite(arr)]
        log = _log_scaled(finite)
        if log:
            arr = np.log10(arr)
        med = float(np.nanmedian(arr)) if np.isfinite(arr).any() else 0.0
        arr = np.where(np.isfinite(arr), arr, med)
        distinct = len({repr(v) for v in values})
        return (
            arr,
            "bool" if all(isinstance(v, bool) for v in present) else "numeric",
            log,
            distinct,
        )
    keys = [_MISSING if v is None else repr(v) if not isinstance(v, str) else v for v in values]
    cats = {k: i for i, k in enumerate(sorted(set(keys)))}
    return np.array([cats[k] for k in keys], dtype=float), "categorical", False, len(cats)


def importance(
    runs: Sequence[Mapping[str, Any]],
    metric: str,
    *,
    keys: Sequence[str] | None = None,
    n_estimators: int = 60,
    random_state: int = 0,
    progress: Callable[[str], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Importance of each config key for ``metric`` over ``runs``, most important first.

    Each item: ``key, importance (0..1), spearman (-1..1 or None), kind (numeric, bool,
    categorical), log_scale, distinct, missing (runs without the key), n (runs used)``.
    Runs without a finite value of the metric are ignored. ``progress(message)`` names the
    stage; ``on_progress(done, total)`` counts the runs read so far (progress bars).
    """
    import numpy as np
    from scipy.stats import spearmanr
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    say = progress or (lambda _msg: None)
    used = [
        r
        for r in runs
        if _is_number((r.get("summary") or {}).get(metric))
        and math.isfinite(float(r["summary"][metric]))
    ]
    if len(used) < MIN_RUNS:
        raise UsageError(
            f"importance needs at least {MIN_RUNS} runs with a finite value of {metric!r}; found {len(used)}"
        )
    y = np.array([float(r["summary"][metric]) for r in used])
    flat = []
    for r in used:
        flat.append(flatten(r.get("config") or {}))
        if on_progress is not None and len(flat) % 500 == 0:
            on_progress(len(flat), len(used))
    if on_progress is not None:
        on_progress(len(flat), len(used))
    all_keys = sorted({k for f in flat for k in f}) if keys is None else list(keys)
    say(f"encoding {len(all_keys)} config keys over {len(used)} runs")
    cols: list[Any] = []
    info: list[dict[str, Any]] = []
    for key in all_keys:
        values = [f.get(key) for f in flat]
        col, kind, log, distinct = _encode(values)
        missing = sum(v is None for v in values)
        item = {
            "key": key,
            "kind": kind,
            "log_scale": log,
            "distinct": distinct,
            "missing": missing,
            "n": len(used),
            "importance": 0.0,
            "spearman": None,
            "constant": distinct <= 1,
        }
        if kind != "categorical" and distinct > 1 and float(np.std(col)) > 0:
            rho = spearmanr(col, y).statistic
            item["spearman"] = (
                None if rho is None or not math.isfinite(float(rho)) else round(float(rho), 4)
            )
        info.append(item)
        cols.append(col)
    varying = [i for i, it in enumerate(info) if not it["constant"]]
    if varying and float(np.std(y)) > 0:
        X = np.column_stack([cols[i] for i in varying])
        rng = np.random.default_rng(random_state)
        order = rng.permutation(len(y))
        n_test = min(1500, max(len(y) // 4, 2))
        test, train = order[:n_test], order[n_test:] if len(y) - n_test >= MIN_RUNS else order
        if len(y) < SMALL_SAMPLE:
            # a held-out quarter of a few runs is two or three points: every shuffle scores
            # about the same and the importances come out as 1 and 0. Measure on all runs
            # (the warning about small samples still says they are rough).
            test = train = order
        say(f"fitting a random forest on {len(train)} runs")
        model = RandomForestRegressor(
            n_estimators=n_estimators,
            min_samples_leaf=2,
            max_features=1.0,
            n_jobs=-1,
            random_state=random_state,
            max_samples=3000 if len(train) > 3000 else None,
        )
        model.fit(X[train], y[train])
        say("measuring permutation importance")
        perm = permutation_importance(
            model,
            X[test],
            y[test],
            n_repeats=4 if len(y) >= SMALL_SAMPLE else 16,
            random_state=random_state,
            n_jobs=1,
        )
        scores = np.clip(perm.importances_mean, 0, None)
        total = float(scores.sum())
        for j, i in enumerate(varying):
            info[i]["importance"] = round(float(scores[j]) / total, 4) if total > 0 else 0.0
    info.sort(key=lambda it: (-it["importance"], -abs(it["spearman"] or 0.0), it["key"]))
    return info


SMALL_SAMPLE = 20  # fewer runs than this: importances are rough, and say so


def small_sample_note(items: Sequence[Mapping[str, Any]]) -> str | None:
    """A warning when the importances rest on few runs, else None."""
    n = max((int(it.get("n") or 0) for it in items), default=0)
    if 0 < n < SMALL_SAMPLE:
        return (
            f"only {n} runs: importances and correlations are rough estimates "
            f"(use {SMALL_SAMPLE}+ runs before drawing conclusions)"
        )
    return None


def plot_importance(items: Sequence[Mapping[str, Any]], path: str, metric: str) -> None:
    """A horizontal bar chart of importances: green/red by the sign of the Spearman
    correlation for numeric keys, grey for categorical keys (which have no sign)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    shown = [it for it in items if not it.get("constant")][:30][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(shown) + 1.6))

    def colour(it: Mapping[str, Any]) -> str:
        rho = it.get("spearman")
        if it.get("kind") == "categorical" or rho is None:
            return "#999"
        return "#2a7" if rho >= 0 else "#c44"

    ax.barh(
        [it["key"] for it in shown],
        [it["importance"] for it in shown],
        color=list(map(colour, shown)),
    )
    ax.set_xlabel(f"importance for {metric}")
    ax.legend(
        handles=[
            Patch(color="#2a7", label="positive correlation"),
            Patch(color="#c44", label="negative correlation"),
            Patch(color="#999", label="categorical (no sign)"),
        ],
        loc="lower right",
        fontsize="small",
    )
    note = small_sample_note(items)
    if note:
        ax.set_title(note, fontsize="small", color="#b60")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
