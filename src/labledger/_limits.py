"""The one set of limits for values labledger accepts, used by every back end.

``init()``, ``log()``, ``run.config`` and ``run.summary`` check them at the call site
(:class:`~labledger.LimitExceededError`, a :class:`~labledger.UsageError`); the
tracking server checks the same values with the same functions (HTTP 422). A value
accepted here is storable on SQLite, on PostgreSQL (``varchar(250)`` columns, ``jsonb``)
and through the server (256 MiB request bodies), so a run never vanishes because one
back end refuses what another took. Kept free of heavy imports.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ._exceptions import LimitExceededError

__all__ = [
    "MAX_CAPTION_LENGTH",
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_KEY_LENGTH",
    "MAX_MEDIA_BYTES",
    "MAX_MEDIA_PER_RUN",
    "MAX_MEDIA_PER_STEP",
    "MAX_METRIC_ABS",
    "MAX_NAME_LENGTH",
    "MAX_NOTES_LENGTH",
    "MAX_STEP",
    "MAX_TAGS",
    "MAX_TAG_LENGTH",
    "check_json",
    "check_media",
    "check_name",
    "check_notes",
    "check_seed",
    "check_tags",
    "json_depth",
    "metric_float_ok",
]

MAX_NAME_LENGTH = 250  # run name, project name (varchar(250) on PostgreSQL)
MAX_KEY_LENGTH = 250  # metric, config and summary keys (metric_chunks.key is varchar(250))
MAX_TAG_LENGTH = 250
MAX_TAGS = 1_000
MAX_NOTES_LENGTH = 1_000_000  # characters
MAX_JSON_BYTES = 16 * 1024 * 1024  # config, summary, env, datasets: each, as compact JSON
MAX_JSON_DEPTH = 64  # nesting of dicts/lists in config, summary
MAX_STEP = 2**63 - 1  # steps are int64
MAX_METRIC_ABS = 1.7976931348623157e308  # metric values are float64
MIN_INT64 = -(2**63)
# rich results (images, tables, ...): one value's stored bytes, values per step of a run
# (all keys), values per run, caption characters
MAX_MEDIA_BYTES = 32 * 1024 * 1024
MAX_MEDIA_PER_STEP = 1_000
MAX_MEDIA_PER_RUN = 100_000
MAX_CAPTION_LENGTH = 10_000


def check_name(what: str, value: str) -> str:
    """A run or project name: 1..MAX_NAME_LENGTH characters, no NUL."""
    if not isinstance(value, str):
        raise LimitExceededError(what, f"must be a str, not {type(value).__name__}")
    if not value:
        raise LimitExceededError(what, "must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise LimitExceededError(
            what, f"is {len(value):,} characters long; at most {MAX_NAME_LENGTH} are allowed"
        )
    if "\x00" in value:
        raise LimitExceededError(what, "must not contain NUL characters")
    return value


def check_tags(tags: list[str]) -> list[str]:
    if len(tags) > MAX_TAGS:
        raise LimitExceededError("tags", f"{len(tags):,} tags; at most {MAX_TAGS} are allowed")
    for t in tags:
        if not t or len(t) > MAX_TAG_LENGTH or "\x00" in t:
            raise LimitExceededError(
                f"tag {t[:40]!r}",
                f"tags must be 1..{MAX_TAG_LENGTH} characters without NUL, got {len(t):,}",
            )
    return tags


def check_notes(notes: str | None) -> str | None:
    if notes is None:
        return None
    if not isinstance(notes, str):
        raise LimitExceededError("notes", f"must be a str, not {type(notes).__name__}")
    if len(notes) > MAX_NOTES_LENGTH or "\x00" in notes:
        raise LimitExceededError(
            "notes", f"must be at most {MAX_NOTES_LENGTH:,} characters without NUL"
        )
    return notes


def check_seed(seed: Any) -> None:
    if seed is not None and not MIN_INT64 <= int(seed) <= MAX_STEP:
        raise LimitExceededError("seed", f"{seed} does not fit a signed 64-bit integer")


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of dicts/lists (iterative: a 5,000-deep value raises no RecursionError).

    Stops counting at ``limit + 1``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            items: Any = v.values()
        elif isinstance(v, (list, tuple)):
            items = v
        else:
            continue
        d += 1
        if d > deepest:
            deepest = d
            if deepest > limit:
                return deepest
        stack.extend((c, d) for c in items)
    return deepest


def check_json(what: str, value: Any) -> int:
    """Check nesting and encoded size of a JSON field (config, summary, env, ...); return its size."""
    depth = json_depth(value)
    if depth > MAX_JSON_DEPTH:
        raise LimitExceededError(
            what, f"is nested more than {MAX_JSON_DEPTH} levels deep (limit {MAX_JSON_DEPTH})"
        )
    size = len(json.dumps(value, separators=(",", ":"), default=str).encode("utf-8"))
    if size > MAX_JSON_BYTES:
        raise LimitExceededError(
            what, f"is {size:,} bytes as JSON; at most {MAX_JSON_BYTES:,} bytes are allowed"
        )
    return size


def metric_float_ok(value: Any) -> bool:
    """True when ``value`` converts to a float64 (NaN and ±inf included)."""
    if type(value) is float:
        return True
    try:
        f = float(value)
    except OverflowError:
        return False
    return not (math.isinf(f) and value == value and abs(value) != math.inf)


def check_media(key: str, size: int, caption: str | None, at_step: int, in_run: int) -> None:
    """A rich result about to be logged: its size (bytes once stored, as estimated or
    encoded), its caption, and how many the run already holds at this step and in all
    (``at_step``, ``in_run``, this one not counted)."""
    if size > MAX_MEDIA_BYTES:
        raise LimitExceededError(
            f"{key!r}", f"is {size:,} bytes; at most {MAX_MEDIA_BYTES:,} bytes are allowed"
        )
    if caption is not None and (len(caption) > MAX_CAPTION_LENGTH or "\x00" in caption):
        raise LimitExceededError(
            f"caption of {key!r}", f"must be at most {MAX_CAPTION_LENGTH:,} characters without NUL"
        )
    if at_step >= MAX_MEDIA_PER_STEP:
        raise LimitExceededError(
            f"{key!r}", f"at most {MAX_MEDIA_PER_STEP:,} rich results per step are allowed"
        )
    if in_run >= MAX_MEDIA_PER_RUN:
        raise LimitExceededError(
            f"{key!r}", f"at most {MAX_MEDIA_PER_RUN:,} rich results per run are allowed"
        )
