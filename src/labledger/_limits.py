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
    "MAX_BODY_DEPTH",
    "MAX_FLOAT_INT",
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_KEYS_PER_CALL",
    "MAX_KEY_LENGTH",
    "MAX_METRIC_ABS",
    "MAX_METRIC_KEYS",
    "MAX_NAME_LENGTH",
    "MAX_NOTES_LENGTH",
    "MAX_STEP",
    "MAX_TAGS",
    "MAX_TAG_LENGTH",
    "check_json",
    "check_json_value",
    "check_metric_keys",
    "check_name",
    "check_notes",
    "check_seed",
    "check_tags",
    "json_depth",
    "metric_float_ok",
    "parse_json_body",
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
MAX_FLOAT_INT = 2**1024 - 2**970  # the largest int that rounds to a finite float64
# distinct metric keys of one run, and keys of one log() call: a run of 100,000 keys
# took 23 s to finish on SQLite, one of 1,000,000 never finished
MAX_METRIC_KEYS = 10_000
MAX_KEYS_PER_CALL = 10_000
# a request body nests at most this deep: a stored JSON field (MAX_JSON_DEPTH) plus its
# place in the body (the run record, a list of datasets, ...)
MAX_BODY_DEPTH = MAX_JSON_DEPTH + 8


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


def check_json_value(what: str, value: Any, depth_limit: int = MAX_JSON_DEPTH) -> None:
    """Check nesting and numbers of a JSON value in one iterative pass.

    Nested at most ``depth_limit`` levels (a 100,000-deep value raises no
    RecursionError); every integer fits a float64 (``10**400`` is stored by no back end:
    PostgreSQL's float columns, SQLite's ``json_extract`` and JavaScript read it as
    infinity or refuse it)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            items: Any = v.values()
        elif isinstance(v, (list, tuple)):
            items = v
        else:
            if isinstance(v, int) and not -MAX_FLOAT_INT <= v <= MAX_FLOAT_INT:
                raise LimitExceededError(
                    what,
                    # bit_length, not str(): a 5,000-digit int has no str() by default
                    f"holds an integer of about {int(v.bit_length() * 0.30103) + 1:,} "
                    "digits; numbers must fit a float64 (|value| <= 1.8e308)",
                )
            continue
        d += 1
        if d > depth_limit:
            raise LimitExceededError(
                what, f"is nested more than {depth_limit} levels deep (limit {depth_limit})"
            )
        stack.extend((c, d) for c in items)


def check_json(what: str, value: Any) -> int:
    """Check nesting, numbers and encoded size of a JSON field (config, summary, env, ...);
    return its size."""
    check_json_value(what, value)
    size = len(json.dumps(value, separators=(",", ":"), default=str).encode("utf-8"))
    if size > MAX_JSON_BYTES:
        raise LimitExceededError(
            what, f"is {size:,} bytes as JSON; at most {MAX_JSON_BYTES:,} bytes are allowed"
        )
    return size


def parse_json_body(raw: bytes, what: str = "the request body") -> Any:
    """Decode a JSON request body: strict UTF-8, then :func:`check_json_value` within
    :data:`MAX_BODY_DEPTH`. The one parse of a body that no route trusts blindly.

    Raises :class:`~labledger.UsageError` for bytes that are not JSON and
    :class:`~labledger.LimitExceededError` for one too deep or with a huge integer."""
    from ._exceptions import UsageError

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} is not valid UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise LimitExceededError(
            what, f"is nested more than {MAX_BODY_DEPTH} levels deep (limit {MAX_BODY_DEPTH})"
        ) from None
    except ValueError as exc:  # json.JSONDecodeError, and int() of a 5,000-digit literal
        raise UsageError(f"{what} is not JSON: {exc}") from None
    check_json_value(what, value, MAX_BODY_DEPTH)
    return value


def check_metric_keys(known: int, new: int, in_call: int) -> None:
    """A log() call of ``in_call`` keys, ``new`` of them not yet in the run's ``known``
    ones: refused before any of it is taken when over a limit."""
    if in_call > MAX_KEYS_PER_CALL:
        raise LimitExceededError(
            "log()",
            f"got {in_call:,} keys in one call; at most {MAX_KEYS_PER_CALL:,} are allowed "
            "(MAX_KEYS_PER_CALL)",
        )
    if known + new > MAX_METRIC_KEYS:
        raise LimitExceededError(
            "log()",
            f"would give the run {known + new:,} distinct metric keys; at most "
            f"{MAX_METRIC_KEYS:,} are allowed per run (MAX_METRIC_KEYS)",
        )


def metric_float_ok(value: Any) -> bool:
    """True when ``value`` converts to a float64 (NaN and ±inf included)."""
    if type(value) is float:
        return True
    try:
        f = float(value)
    except OverflowError:
        return False
    return not (math.isinf(f) and value == value and abs(value) != math.inf)
