"""What the run tables of ``ls`` and ``best`` lead with (issue #26, "metrics first").

- the project's **primary metric**: the one the user last sorted by (remembered per
  store and project in ``primary-metrics.json`` of the cache folder), else the most-logged validation metric;
- the **config keys that vary** across the shown runs, while the keys with one value for
  every run are said once above the table;
- compact identities: a short author (the name, or the part of an email before ``@``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .._settings import setting
from .._values import flatten, is_system_key
from ._output import fmt_value

__all__ = [
    "close_keys",
    "constant_line",
    "did_you_mean",
    "primary_metric",
    "remember_primary",
    "short_author",
    "sort_metric",
    "split_config",
]

_VALIDATION = re.compile(r"(^|[/_.-])(val|valid|validation|eval|dev)([/_.-]|$)", re.IGNORECASE)
_REMEMBERED = 200  # stores x projects remembered; a throwaway store is forgotten in time
_TEST = re.compile(r"(^|[/_.-])test([/_.-]|$)", re.IGNORECASE)


def _memory_file() -> Path:
    base = setting("LABLEDGER_CACHE_DIR")
    if base:
        return Path(base) / "primary-metrics.json"
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg) if xdg else Path.home() / ".cache"
    return root / "labledger" / "primary-metrics.json"


def _remembered() -> dict[str, str]:
    try:
        data = json.loads(_memory_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def sort_metric(sort: str | None) -> str | None:
    """The summary metric a ``--sort`` key names (``-summary.val/acc`` -> ``val/acc``)."""
    if not sort:
        return None
    key = sort.split(",")[0].strip().lstrip("-+")
    if key.startswith("summary."):
        return key[len("summary.") :]
    if key.startswith("metrics.") or key.startswith("metric."):
        return key.split(".", 1)[1]
    return None


def _where(store_uri: str, project: str | None) -> str:
    return f"{store_uri}#{project or '*'}"


def remember_primary(
    store_uri: str, project: str | None, sort: str | None, known: set[str] | None
) -> None:
    """Remember the metric ``sort`` ranks by as ``project``'s primary metric (best effort:
    a read-only home only means it is not remembered); only a metric in ``known`` counts."""
    metric = sort_metric(sort)
    if metric is None or is_system_key(metric) or not known or metric not in known:
        return
    memory = _remembered()
    if memory.get(_where(store_uri, project)) == metric:
        return
    memory.pop(_where(store_uri, project), None)  # newest last: the oldest go first
    memory[_where(store_uri, project)] = metric
    memory = dict(list(memory.items())[-_REMEMBERED:])
    path = _memory_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memory, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def primary_metric(
    runs: Iterable[Mapping[str, Any]],
    store_uri: str,
    project: str | None,
    sort: str | None = None,
) -> str | None:
    """The metric the tables lead with: the sort key's, the one remembered for
    ``project``, else the most-logged validation metric (then test, then any user metric)."""
    runs = list(runs)
    counts: dict[str, int] = {}
    points: dict[str, int] = {}
    for r in runs:
        metrics = r.get("metrics") or {}
        for k in r.get("summary") or {}:
            if is_system_key(k):
                continue
            counts[k] = counts.get(k, 0) + 1
            m = metrics.get(k) if isinstance(metrics, Mapping) else None
            points[k] = points.get(k, 0) + int((m or {}).get("count") or 1)
    chosen = sort_metric(sort)
    if chosen in counts:
        return chosen
    memory = _remembered()
    for p in (project, *sorted({str(r.get("project")) for r in runs})):
        if memory.get(_where(store_uri, p)) in counts:
            return memory[_where(store_uri, p)]
    if not counts:
        return None

    def rank(k: str) -> tuple[int, int, int, str]:
        kind = 0 if _VALIDATION.search(k) else 1 if _TEST.search(k) else 2
        return (kind, -counts[k], -points[k], k)

    return min(counts, key=rank)


def split_config(runs: Iterable[Mapping[str, Any]]) -> tuple[list[str], dict[str, Any]]:
    """The config keys whose value differs between ``runs`` (in first-seen order), and the
    keys every run has with one same value (they are said once, above the table)."""
    flats = [flatten(r.get("config") or {}) for r in runs]
    order: dict[str, None] = {}
    for f in flats:
        order.update(dict.fromkeys(f))
    varying: list[str] = []
    constant: dict[str, Any] = {}
    for k in order:
        values = [json.dumps(f[k], sort_keys=True, default=str) if k in f else None for f in flats]
        if len(flats) > 1 and None not in values and len(set(values)) == 1:
            constant[k] = flats[0][k]
        else:
            varying.append(k)
    return varying, constant


def constant_line(constant: Mapping[str, Any], width: int) -> str:
    """``same in every run: epochs=2, dataset=digits`` folded to ``width``."""
    import textwrap

    if not constant:
        return ""
    text = "same in every run: " + ", ".join(f"{k}={fmt_value(v)}" for k, v in constant.items())
    return textwrap.fill(text, width, break_long_words=False, subsequent_indent="  ")


def short_author(author: str | None) -> str:
    """``Ada Lovelace <ada@x.org>`` -> ``Ada Lovelace``; ``ada@x.org`` -> ``ada``."""
    if not author:
        return ""
    text = author.strip()
    if "<" in text and text.split("<", 1)[0].strip():
        return text.split("<", 1)[0].strip()
    text = text.strip("<>")
    return text.split("@", 1)[0] if "@" in text else text


def close_keys(name: str, keys: Iterable[str], n: int = 3) -> list[str]:
    """The keys ``name`` was probably meant to be: same up to case and separators, then
    difflib's close matches; user metrics before ``system/*``."""
    import difflib

    def norm(k: str) -> str:
        return k.lower().replace("/", "_").replace(".", "_").replace("-", "_")

    ordered = sorted(set(keys), key=lambda k: (is_system_key(k), k))
    normed: dict[str, str] = {}
    for k in ordered:
        normed.setdefault(norm(k), k)
    close = [k for k in ordered if norm(k) == norm(name)]
    if close:  # the same name but for case and separators: that is the one
        return close[:n]
    for cand in [
        *difflib.get_close_matches(name, ordered, n=n),
        *(normed[m] for m in difflib.get_close_matches(norm(name), list(normed), n=n)),
    ]:
        if cand not in close:
            close.append(cand)
    return close[:n]


def did_you_mean(name: str, keys: Iterable[str]) -> str:
    """``"; did you mean val/acc?"`` or ``""``."""
    close = close_keys(name, keys)
    return f"; did you mean {' or '.join(close)}?" if close else ""
