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
drop in R^2 when the key's column is shuffled (permutation importance, on at most 1,000
held-out runs; each tree sees at most 2,000 runs, see :func:`_forest_scores`), clipped at 0
and normalised to sum to 1. ``spearman`` is the rank
correlation between the key's numeric value and the metric (None for categorical keys).

Code and data are factors too (:func:`code_factors`): ``git.commit``, ``git.patch``
(the digest of the captured uncommitted change), ``data.NAME`` (a dataset's digest) and
``packages.NAME`` (a package whose version differs between the runs), all categorical.
Beside each factor stands the seed noise floor (:func:`noise_floor`): the share of the
metric's variance found inside replicate sets, i.e. what the seed alone moves. Seed keys
(``seed``, ``random_state``, ..., ``LABLEDGER_SEED_KEYS``) are not factors.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from itertools import chain, repeat
from typing import Any

from .._exceptions import UsageError

__all__ = [
    "MIN_RUNS",
    "SMALL_SAMPLE",
    "code_factors",
    "importance",
    "importance_columns",
    "noise_floor",
    "plot_importance",
    "small_sample_note",
]

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
    types = set(map(type, present))
    if types and types <= {int, float, bool}:  # JSON's numbers: one array, NaN checked there
        arr = np.array(values, dtype=float)  # None becomes NaN, booleans 0/1
        numeric = float not in types or not np.isnan(arr).sum() > values.count(None)
    else:
        numeric = bool(present) and all(_is_number(v) for v in present)
        if numeric:
            arr = np.array([float(v) if v is not None else np.nan for v in values], dtype=float)
    if numeric:
        finite = arr[np.isfinite(arr)]
        log = _log_scaled(finite)
        if log:
            arr = np.log10(arr)
        med = float(np.nanmedian(arr)) if np.isfinite(arr).any() else 0.0
        arr = np.where(np.isfinite(arr), arr, med)
        if types <= {int} or (types <= {float} and numeric and 0.0 not in values):
            distinct = len(set(values))  # equal exactly where their reprs are
        elif types == {float}:  # 0.0 among them: -0.0 is apart (a repr per value was slow)
            present_floats = values if None not in values else present
            distinct = len(np.unique(_float_bits(present_floats)))
            distinct += len(present_floats) != len(values)  # None is one more
        else:
            distinct = len({repr(v) for v in values})
        return (
            arr,
            "bool" if types == {bool} else "numeric",
            log,
            distinct,
        )
    keys = [_MISSING if v is None else repr(v) if not isinstance(v, str) else v for v in values]
    cats = {k: i for i, k in enumerate(sorted(set(keys)))}
    return np.array([cats[k] for k in keys], dtype=float), "categorical", False, len(cats)


def code_factors(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per run, the categorical code and data factors: ``git.commit``, ``git.patch``,
    ``data.NAME`` and ``packages.NAME`` for the packages whose version differs between
    ``runs`` (a package missing in a run counts as a difference)."""
    out: list[dict[str, Any]] = []
    versions: dict[str, set[Any]] = {}
    pkgs: list[Mapping[str, Any]] = []
    for r in runs:
        env = r.get("env") or {}
        git = env.get("git") if isinstance(env, Mapping) else None
        git = git if isinstance(git, Mapping) else {}
        f: dict[str, Any] = {"git.commit": git.get("commit"), "git.patch": git.get("diff_sha256")}
        for d in r.get("datasets") or []:
            if isinstance(d, Mapping):
                f[f"data.{d.get('name') or d.get('path')}"] = d.get("sha256")
        p = env.get("packages") if isinstance(env, Mapping) else None
        p = p if isinstance(p, Mapping) else {}
        pkgs.append(p)
        for name, version in p.items():
            versions.setdefault(str(name), set()).add(version)
        out.append(f)
    changed = sorted(
        n for n, vs in versions.items() if len(vs) > 1 or any(n not in p for p in pkgs)
    )
    for f, p in zip(out, pkgs, strict=True):
        f.update({f"packages.{n}": p.get(n) for n in changed})
    return out


def noise_floor(runs: Sequence[Mapping[str, Any]], metric: str) -> float | None:
    """The share of the variance of ``metric`` that lies inside replicate sets (runs that
    differ only in their seed): the pooled within-set variance over the total variance,
    at most 1. None without a set of two or more runs, or when the metric is constant."""
    from ._replicates import replicate_sets

    values = [float(r["summary"][metric]) for r in runs]
    n = len(values)
    if n < 2:
        return None
    mean = math.fsum(values) / n
    total = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    within, dof = 0.0, 0
    for s in replicate_sets(runs):
        if len(s.runs) < 2:
            continue
        vs = [float(r["summary"][metric]) for r in s.runs]
        m = math.fsum(vs) / len(vs)
        within += math.fsum((v - m) ** 2 for v in vs)
        dof += len(vs) - 1
    if dof == 0 or total <= 0:
        return None
    return round(min(1.0, (within / dof) / total), 4)


_ABSENT = object()  # a key a run's config lacks (equal only to itself)


def _token(v: Any) -> Any:
    """A hashable stand-in for a flattened config value: equal exactly where the values'
    JSON texts (what :func:`~labledger.analysis.replicate_key` digests) are equal."""
    t = type(v)
    if t is str or t is int or t is bool:
        return (t, v)  # 1, True and "1" stay apart, as their JSON texts do
    if t is float:
        return repr(v)  # json.dumps writes a float as its repr (nan/inf aside)
    if v is None or v is _ABSENT:
        return v
    return ("j", json.dumps(v, sort_keys=True, default=str))


def _noise_floor(
    runs: Sequence[Mapping[str, Any]], flat: Sequence[Mapping[str, Any]], y: Any
) -> float | None:
    """:func:`noise_floor` of ``runs`` (values ``y``) from their flattened configs ``flat``:
    the same replicate sets (project, commit, patch digest, datasets, config without
    seed keys), grouped by a tuple built a config key at a time instead of a digest of
    each run's JSON, and the configs flattened once (100,000 runs: 17 s became ~1 s)."""
    from ._replicates import _git, seed_keys

    n = len(runs)
    if n < 2:
        return None
    values = [float(v) for v in y]
    mean = math.fsum(values) / n
    total = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    seeds = seed_keys()
    # "\x00..." keys are the code factors importance adds, not config
    keys = sorted(
        k
        for k in {k for f in flat for k in f}
        if not k.startswith("\x00") and k.rsplit(".", 1)[-1].lower() not in seeds
    )
    columns = [[_token(f.get(k, _ABSENT)) for f in flat] for k in keys]
    heads = []
    for r in runs:
        git = _git(r)
        data = tuple(
            sorted(
                (str(d.get("name") or d.get("path") or ""), _token(d.get("sha256")))
                for d in (r.get("datasets") or [])
                if isinstance(d, Mapping)
            )
        )
        heads.append((r.get("project"), git.get("commit"), git.get("diff_sha256"), data))
    groups: dict[Any, list[float]] = {}
    for ident, v in zip(zip(heads, *columns, strict=True), values, strict=True):
        groups.setdefault(ident, []).append(v)
    within, dof = 0.0, 0
    for vs in groups.values():
        if len(vs) < 2:
            continue
        m = math.fsum(vs) / len(vs)
        within += math.fsum((v - m) ** 2 for v in vs)
        dof += len(vs) - 1
    if dof == 0 or total <= 0:
        return None
    return round(min(1.0, (within / dof) / total), 4)


def importance(
    runs: Sequence[Mapping[str, Any]],
    metric: str,
    *,
    keys: Sequence[str] | None = None,
    n_estimators: int | None = None,
    random_state: int = 0,
    progress: Callable[[str], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    code: bool = True,
) -> list[dict[str, Any]]:
    """Importance of each config key for ``metric`` over ``runs``, most important first.

    Each item: ``key, importance (0..1), spearman (-1..1 or None), kind (numeric, bool,
    categorical), log_scale, distinct, missing (runs without the key), n (runs used),
    source (config, code, data or packages), noise_floor`` (the seed's share of the
    variance, the same for every item; None when no two runs differ only in their seed).
    With ``code``, the code and data factors of :func:`code_factors` are keys beside the
    config's (not when ``keys`` names the keys). Runs without a finite value of the metric are ignored. ``progress(message)`` names the
    stage; ``on_progress(done, total)`` counts the runs read so far (progress bars).
    """
    cols: dict[str, list[Any]] = {
        k: [] for k in ("value", "project", "config", "datasets", "commit", "patch", "packages")
    }
    for i, r in enumerate(runs):
        git: Any = {}
        env = r.get("env") or {}
        if isinstance(env, Mapping):
            git = env.get("git")
            git = git if isinstance(git, Mapping) else {}
            pk = env.get("packages")
        else:
            pk = None
        summary = r.get("summary") or {}
        cols["value"].append(summary.get(metric) if isinstance(summary, Mapping) else None)
        cols["project"].append(r.get("project"))
        cols["config"].append(r.get("config") or {})
        cols["datasets"].append(r.get("datasets"))
        cols["commit"].append(git.get("commit"))
        cols["patch"].append(git.get("diff_sha256"))
        cols["packages"].append(pk if isinstance(pk, Mapping) else {})
        if on_progress is not None and (i + 1) % 500 == 0:
            on_progress(i + 1, len(runs))
    if on_progress is not None:
        on_progress(len(runs), len(runs))
    return importance_columns(
        cols,
        metric,
        keys=keys,
        n_estimators=n_estimators,
        random_state=random_state,
        progress=progress,
        code=code,
    )


SAMPLE_CAP = 2000  # runs each tree is fitted on, at most (a bootstrap sample of them)
TREES = 60  # trees in the forest, up to SAMPLE_CAP training runs
BIG_TREES = 32  # beyond: each tree sees a capped sample; 32 rank the keys as 60 do
TEST_CAP = 1000  # held-out runs the permutation importance is measured on, at most


def importance_columns(
    columns: Mapping[str, Sequence[Any]],
    metric: str,
    *,
    keys: Sequence[str] | None = None,
    n_estimators: int | None = None,
    random_state: int = 0,
    progress: Callable[[str], None] | None = None,
    code: bool = True,
) -> list[dict[str, Any]]:
    """:func:`importance` over runs given as columns (equal-length sequences, one value per
    run): ``value`` (the metric's value), ``project``, ``config`` (the config mapping),
    ``datasets`` (the run's dataset list), ``commit`` and ``patch`` (git commit and patch
    digest) and, optionally, ``packages`` (the env's packages map). A store's
    ``iter_run_columns`` pages, joined, are such columns: no record per run is built,
    the configs are flattened a key at a time over all runs."""
    import numpy as np
    from scipy.stats import spearmanr

    say = progress or (lambda _msg: None)
    value = columns["value"]
    if set(map(type, value)) <= {int, float}:  # the usual case: one array, no per-run test
        used = np.flatnonzero(np.isfinite(np.array(value, dtype=float))).tolist()
    else:
        used = [
            i
            for i, v in enumerate(value)
            if _is_number(v) and math.isfinite(float(v))  # bools count as 0/1, as before
        ]
    if len(used) < MIN_RUNS:
        raise UsageError(
            f"importance needs at least {MIN_RUNS} runs with a finite value of {metric!r}; found {len(used)}"
        )
    every = len(used) == len(value)

    def take(name: str) -> list[Any]:
        col = columns.get(name)
        if col is None:
            return [None] * len(used)
        return list(col) if every else [col[i] for i in used]

    y = np.array([float(v) for v in take("value")])
    flat = _flat_columns(take("config"))
    from ._replicates import seed_keys

    seeds = seed_keys()
    non_seed = sorted(k for k in flat if k.rsplit(".", 1)[-1].lower() not in seeds)
    # a seed key is no factor: what the seed moves is the noise floor, below
    all_keys = list(non_seed) if keys is None else list(keys)
    sources = dict.fromkeys(all_keys, "config")
    factors: dict[str, list[Any]] = {}
    commit, patch, datasets = take("commit"), take("patch"), take("datasets")
    if code and keys is None:
        extra = _code_columns(commit, patch, datasets, take("packages"))
        # only the code and data that changed: a constant commit says nothing here
        for k in sorted(extra):
            if len(set(map(repr, extra[k]))) > 1:
                factors[f"\x00{k}"] = extra[k]  # never collide with config keys
                sources[f"\x00{k}"] = (
                    "code"
                    if k.startswith("git.")
                    else "data"
                    if k.startswith("data.")
                    else "packages"
                )
        all_keys += list(factors)
    tokens: dict[int, tuple[Any, ...]] = {}  # runs read from a store share dataset lists
    data = []
    for d in datasets:
        tok = tokens.get(id(d))
        if tok is None:
            tok = tokens[id(d)] = _data_token(d)
        data.append(tok)
    heads = list(zip(take("project"), commit, patch, data, strict=True))
    floor = _floor_of(heads, [flat[k] for k in non_seed], y)
    say(f"encoding {len(all_keys)} config keys over {len(used)} runs")
    absent = [None] * len(used)
    cols: list[Any] = []
    info: list[dict[str, Any]] = []
    for key in all_keys:
        raw = factors.get(key) or flat.get(key) or absent
        values = [None if v is _ABSENT else v for v in raw] if raw is not absent else raw
        col, kind, log, distinct = _encode(values)
        missing = values.count(None)
        item = {
            "key": key.lstrip("\x00"),
            "source": sources.get(key, "config"),
            "noise_floor": floor,
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
        scores = _forest_scores(X, y, n_estimators, random_state, say)
        total = float(scores.sum())
        for j, i in enumerate(varying):
            info[i]["importance"] = round(float(scores[j]) / total, 4) if total > 0 else 0.0
    info.sort(key=lambda it: (-it["importance"], -abs(it["spearman"] or 0.0), it["key"]))
    return info


def _forest_scores(
    X: Any, y: Any, n_estimators: int | None, random_state: int, say: Callable[[str], None]
) -> Any:
    """Permutation importance of each column of ``X`` in a random forest predicting ``y``,
    clipped at 0. Bounded whatever the number of runs: each tree is fitted on a bootstrap
    sample of at most :data:`SAMPLE_CAP` runs (beyond that many: :data:`BIG_TREES` trees
    with leaves of 5+ runs; up to it :data:`TREES` trees, leaves of 2+), and the shuffles
    are scored on at most :data:`TEST_CAP` held-out runs (4 shuffles each; 16 on all
    runs under :data:`SMALL_SAMPLE` runs). ``n_estimators`` overrides the tree count."""
    import numpy as np
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    rng = np.random.default_rng(random_state)
    order = rng.permutation(len(y))
    n_test = min(TEST_CAP, max(len(y) // 4, 2))
    test, train = order[:n_test], order[n_test:] if len(y) - n_test >= MIN_RUNS else order
    if len(y) < SMALL_SAMPLE:
        # a held-out quarter of a few runs is two or three points: every shuffle scores
        # about the same and the importances come out as 1 and 0. Measure on all runs
        # (the warning about small samples still says they are rough).
        test = train = order
    big = len(train) > SAMPLE_CAP
    if n_estimators is None:
        n_estimators = BIG_TREES if big else TREES
    say(f"fitting a random forest on {len(train)} runs")
    model = RandomForestRegressor(
        n_estimators=n_estimators,
        min_samples_leaf=5 if big else 2,
        max_features=1.0,
        n_jobs=-1,
        random_state=random_state,
        max_samples=SAMPLE_CAP if big else None,
    )
    model.fit(X[train], y[train])
    # the shuffles' predictions are of at most TEST_CAP runs each: the trees one after
    # the other (the same predictions), not a thread pool started and joined for each
    # of the keys x repeats calls (that overhead was most of the scoring's time)
    model.set_params(n_jobs=1)
    say("measuring permutation importance")
    perm = permutation_importance(
        model,
        X[test],
        y[test],
        n_repeats=4 if len(y) >= SMALL_SAMPLE else 16,
        random_state=random_state,
        n_jobs=1,
    )
    return np.clip(perm.importances_mean, 0, None)


def _flat_columns(configs: Sequence[Any], prefix: str = "") -> dict[str, list[Any]]:
    """The flattened config keys of all runs (:func:`~labledger._values.flatten`'s dotted
    keys) as columns, a key at a time; a run without the key holds ``_ABSENT``."""
    # the usual case, configs decoded from JSON: plain dicts, read with C-level loops
    plain = all(type(c) is dict for c in configs)
    names: dict[Any, None] = {}
    if plain:
        names = dict.fromkeys(chain.from_iterable(configs))
    else:
        for c in configs:
            if c:
                names.update(dict.fromkeys(c))
    out: dict[str, list[Any]] = {}

    def put(name: str, col: list[Any]) -> None:
        have = out.get(name)
        if have is None:
            out[name] = col
        else:  # "a.b" both as a key and nested: the later one wins, as in flatten
            out[name] = [h if v is _ABSENT else v for h, v in zip(have, col, strict=True)]

    for k in names:
        if plain:
            col = list(map(dict.get, configs, repeat(k), repeat(_ABSENT)))
        else:
            col = [c.get(k, _ABSENT) if c else _ABSENT for c in configs]
        name = f"{prefix}{k}"
        # the types first (a few per column): a per-value isinstance on an ABC is slow
        if any(issubclass(t, Mapping) for t in set(map(type, col))) and any(
            isinstance(v, Mapping) and v for v in col
        ):
            nested = [v if isinstance(v, Mapping) and v else None for v in col]
            leaves = [_ABSENT if isinstance(v, Mapping) and v else v for v in col]
            if any(v is not _ABSENT for v in leaves):
                put(name, leaves)
            for sub, scol in _flat_columns(nested, name + ".").items():
                put(sub, scol)
        else:
            put(name, col)
    return out


def _data_token(datasets: Any) -> tuple[Any, ...]:
    """A run's datasets as its replicate identity sees them (name, digest), sorted."""
    return tuple(
        sorted(
            (str(d.get("name") or d.get("path") or ""), _token(d.get("sha256")))
            for d in (datasets or [])
            if isinstance(d, Mapping)
        )
    )


def _code_columns(
    commit: list[Any], patch: list[Any], datasets: list[Any], packages: list[Any]
) -> dict[str, list[Any]]:
    """:func:`code_factors` as columns: ``git.commit``, ``git.patch``, ``data.NAME`` and
    ``packages.NAME`` for the packages whose version differs between the runs."""
    out: dict[str, list[Any]] = {"git.commit": commit, "git.patch": patch}
    n = len(commit)
    for i, ds in enumerate(datasets):
        for d in ds or []:
            if isinstance(d, Mapping):
                col = out.setdefault(f"data.{d.get('name') or d.get('path')}", [None] * n)
                col[i] = d.get("sha256")
    versions: dict[str, set[Any]] = {}
    distinct: dict[int, Mapping[str, Any]] = {}  # runs of one env share its map
    for p in packages:
        if p and id(p) not in distinct:
            distinct[id(p)] = p
    if distinct:
        for p in distinct.values():
            for name, version in p.items():
                versions.setdefault(str(name), set()).add(version)
        maps = list(distinct.values())
        missing_somewhere = any(not p for p in packages)
        changed = sorted(
            name
            for name, vs in versions.items()
            if len(vs) > 1 or missing_somewhere or any(name not in p for p in maps)
        )
        for name in changed:
            out[f"packages.{name}"] = [(p or {}).get(name) for p in packages]
    return out


def _token_column(col: list[Any]) -> list[Any]:
    """``_token`` of each value, or the column as it is where its values already compare
    as their tokens do (one type of int, str, or float without NaN or zero)."""
    types = set(map(type, col)) - {type(None), object}  # object: _ABSENT
    if len(types) == 1:
        (t,) = types
        if t is int or t is str:
            return col
        if t is float and 0.0 not in col and all(v == v for v in col if type(v) is float):
            return col  # no NaN (unequal to itself) and no -0.0 == 0.0
    if types <= {float}:
        return [repr(v) if type(v) is float else v for v in col]
    return [_token(v) for v in col]


_NAN_BITS = 0x7FF8000000000000  # one bit pattern for every NaN (their reprs are all "nan")


def _float_bits(floats: Sequence[float]) -> Any:
    """``floats`` as int64 bit patterns: equal exactly where the floats' reprs are (-0.0
    apart from 0.0, every NaN alike), without a ``repr`` per value."""
    import numpy as np

    arr = np.array(floats, dtype=np.float64)
    bits = arr.view(np.int64).copy()
    bits[np.isnan(arr)] = _NAN_BITS
    return bits


def _codes(col: list[Any], *, tokens: bool = True) -> tuple[Any, int]:
    """Integer codes of ``col``'s values (equal where their ``_token`` are; with
    ``tokens=False``, where the values are) and how many distinct values. A column of
    floats alone goes by its bit patterns (``numpy.unique``), any other by a dict of its
    tokens, codes in order of first appearance (dict.fromkeys and map run in C: a
    generator calling setdefault per value was a third of the floor's time at 100,000
    runs)."""
    import numpy as np

    if tokens and set(map(type, col)) == {float}:
        uniq, codes = np.unique(_float_bits(col), return_inverse=True)
        return codes, len(uniq)
    keys = _token_column(col) if tokens else col
    seen = {v: i for i, v in enumerate(dict.fromkeys(keys))}
    if len(seen) <= 1:
        return np.zeros(len(col), dtype=np.int64), len(seen)
    return np.fromiter(map(seen.__getitem__, keys), np.int64, len(keys)), len(seen)


def _floor_of(heads: list[Any], columns: list[list[Any]], y: Any) -> float | None:
    """The noise floor of :func:`noise_floor` from the replicate identity's parts: per run
    ``heads`` (project, commit, patch digest, datasets) and the config columns without
    seed keys. Each part becomes integer codes (:func:`_codes`), the codes of all
    parts one group number per run (``numpy.unique`` of their rows), and the variances
    are sums by group (``bincount``): no tuple or list per run."""
    import numpy as np

    n = len(heads)
    if n < 2:
        return None
    yv = np.asarray(y, dtype=float)
    total = float(((yv - yv.mean()) ** 2).sum()) / (n - 1)
    group = np.zeros(n, dtype=np.int64)
    for i, col in enumerate([heads, *columns]):
        codes, count = _codes(col, tokens=i > 0)  # heads: tuples of plain values
        if count > 1:
            # (group, code) pairs renumbered: stays below n, whatever the number of columns
            uniq, group = np.unique(group * count + codes, return_inverse=True)
            if len(uniq) == n:  # every run alone in its set (a continuous key): no floor
                return None
    counts = np.bincount(group)
    means = np.bincount(group, weights=yv) / counts
    # a group of one run adds 0 to both: within = sum of squares about each group's mean,
    # degrees of freedom = runs - groups
    within = float(((yv - means[group]) ** 2).sum())
    dof = n - len(counts)
    if dof == 0 or total <= 0:
        return None
    return round(min(1.0, (within / dof) / total), 4)


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
