"""MLflow ``search_runs`` filter and ``order_by`` strings in labledger's query language.

MLflow compares params as strings; here a param (stored typed in ``config``) compares
as a number when the literal is one, so ``params.lr < 0.01`` means what it says.
``metrics.K`` reads the run's summary, ``tags.K`` the MLflow tags kept in
``env.mlflow.tags``, ``attributes.*`` the run's columns. Clauses join with ``AND``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ._common import STATUS_FROM_MLFLOW, MlflowError, type_param

__all__ = ["combine", "lifecycle_filter", "translate_filter", "translate_order_by"]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^'\\]|\\.)*')
    | (?P<ident>[A-Za-z_][\w]*(?:\.(?:`[^`]+`|"[^"]+"|[\w\-/.:]+))?)
    | (?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    | (?P<dq>"(?:[^"\\]|\\.)*")
    | (?P<op>!=|<>|<=|>=|==|=|<|>)
    | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)
_ATTRS = {
    "status": "status",
    "run_name": "name",
    "run_id": "id",
    "start_time": "created_at",
    "end_time": "ended_at",
    "created": "created_at",
    "user_id": "author",  # the identity that created the run, not the mlflow.user claim
}
_GIT_TAGS = {
    "mlflow.source.git.commit": "env.git.commit",
    "mlflow.source.git.branch": "env.git.branch",
    "mlflow.source.git.repoURL": "env.git.remote",
}
_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_/\-]*\Z")


def _seg(key: str) -> str:
    if _SEGMENT.match(key):
        return key
    if "`" in key:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE", f"a key with a backtick cannot be searched: {key!r}"
        )
    return f"`{key}`"


def _lit(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _field(ident: str) -> tuple[str, str]:
    """``(kind, labledger field)`` of an MLflow identifier; kind is metric/param/tag/attr."""
    prefix, _, key = ident.partition(".")
    key = key.strip('`"') if key else ""
    prefix = prefix.lower()
    if not key:
        prefix, key = "attributes", prefix
    if prefix in ("metric", "metrics"):
        return "metric", f"summary.{_seg(key)}"
    if prefix in ("param", "params", "parameter", "parameters"):
        return "param", f"config.{_seg(key)}"
    if prefix in ("tag", "tags"):
        if key == "mlflow.runName":
            return "attr", "name"
        if key in _GIT_TAGS:
            return "tag", _GIT_TAGS[key]
        return "tag", f"env.mlflow.tags.{_seg(key)}"
    if prefix in ("attribute", "attributes", "attr", "run"):
        target = _ATTRS.get(key)
        if target is None:
            raise MlflowError(
                "INVALID_PARAMETER_VALUE", f"Invalid attribute key '{key}' specified."
            )
        if target.startswith("tag:"):
            return "tag", f"env.mlflow.tags.{_seg(target[4:])}"
        return "attr", target
    raise MlflowError(
        "INVALID_PARAMETER_VALUE",
        f"Invalid entity type '{prefix}'. Valid values are metrics, params, tags and attributes.",
    )


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid filter '{text}' at {pos}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _unquote(tok: str) -> str:
    body = tok[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _value(kind: str, field: str, tok: tuple[str, str]) -> str:
    """A literal for ``field``: numbers stay numbers for metrics, params and times."""
    t, raw = tok
    if t in ("str", "dq"):
        text = _unquote(raw)
        if field == "status":
            status = STATUS_FROM_MLFLOW.get(text.upper())
            if status is None:
                raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid run status '{text}'")
            return _lit(status)
        if kind in ("param", "metric") and not isinstance(type_param(text), str):
            return repr(type_param(text))
        if field in ("created_at", "ended_at"):
            return _time(text)
        return _lit(text)
    if t == "num":
        if field in ("created_at", "ended_at"):
            return _time(raw)
        if kind == "tag" or field in ("name", "id", "status"):
            return _lit(raw)
        return repr(type_param(raw))
    raise MlflowError("INVALID_PARAMETER_VALUE", f"expected a value, got {raw!r}")


def _time(ms: str) -> str:
    try:
        return repr(float(ms) / 1000.0)
    except ValueError:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE", f"a time must be milliseconds, got {ms!r}"
        ) from None


def _like(pattern: str) -> str:
    return _lit("".join("*" if c == "%" else "?" if c == "_" else c for c in pattern))


def translate_filter(text: str | None) -> str | None:
    """The labledger filter for an MLflow search filter (INVALID_PARAMETER_VALUE if unsupported)."""
    if not text or not text.strip():
        return None
    toks = _tokens(text)
    clauses: list[str] = []
    i = 0

    def take() -> tuple[str, str]:
        nonlocal i
        if i >= len(toks):
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid filter '{text}': unexpected end")
        i += 1
        return toks[i - 1]

    while i < len(toks):
        t, ident = take()
        if t != "ident":
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid filter '{text}' near {ident!r}")
        kind, field = _field(ident)
        t2, op = take()
        word = op.upper()
        if t2 == "op":
            if (
                kind == "attr"
                and field in ("name", "id", "status")
                and op in ("<", "<=", ">", ">=")
            ):
                raise MlflowError(
                    "INVALID_PARAMETER_VALUE", f"Invalid comparator '{op}' for {ident}"
                )
            clauses.append(f"{field} {'!=' if op == '<>' else op} {_value(kind, field, take())}")
        elif word in ("LIKE", "ILIKE"):
            tv, raw = take()
            if tv not in ("str", "dq"):
                raise MlflowError("INVALID_PARAMETER_VALUE", f"LIKE needs a string, got {raw!r}")
            clauses.append(f"{field} like {_like(_unquote(raw))}")
        elif word == "IS":
            _, nxt = take()
            negate = nxt.upper() == "NOT"
            if negate:
                _tn, nxt = take()
            if nxt.upper() != "NULL":
                raise MlflowError(
                    "INVALID_PARAMETER_VALUE", f"Invalid filter '{text}': IS needs NULL"
                )
            clauses.append(f"{field} exists" if negate else f"{field} not exists")
        elif word in ("IN", "NOT"):
            negate = word == "NOT"
            if negate and take()[1].upper() != "IN":
                raise MlflowError(
                    "INVALID_PARAMETER_VALUE", f"Invalid filter '{text}': NOT needs IN"
                )
            if take()[1] != "(":
                raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid filter '{text}': IN needs (")
            values = [_value(kind, field, take())]
            while (sep := take()[1]) == ",":
                values.append(_value(kind, field, take()))
            if sep != ")":
                raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid filter '{text}': missing )")
            clauses.append(f"{field} {'not in' if negate else 'in'} ({', '.join(values)})")
        else:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid comparator '{op}' in '{text}'")
        if i < len(toks):
            _tand, word_and = take()
            if word_and.upper() != "AND":
                raise MlflowError(
                    "INVALID_PARAMETER_VALUE", f"Invalid filter '{text}': clauses join with AND"
                )
    return " and ".join(f"({c})" for c in clauses)


def translate_order_by(clauses: list[str] | None) -> list[str]:
    """``["metrics.acc DESC", "params.lr"]`` -> ``["-summary.acc", "config.lr"]``."""
    out: list[str] = []
    for clause in clauses or []:
        text = clause.strip()
        m = re.fullmatch(r"(.+?)(?:\s+(ASC|DESC))?", text, re.IGNORECASE | re.DOTALL)
        if m is None or not m.group(1).strip():
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid order_by clause '{clause}'")
        _, field = _field(m.group(1).strip())
        desc = (m.group(2) or "ASC").upper() == "DESC"
        out.append(("-" if desc else "") + field)
    return out


def lifecycle_filter(view_type: Any) -> str | None:
    """The filter for MLflow's ``run_view_type`` (deleted runs carry ``env.mlflow.lifecycle_stage``)."""
    view = str(view_type or "ACTIVE_ONLY").upper()
    if view in ("ACTIVE_ONLY", "1"):
        return 'not env.mlflow.lifecycle_stage exists or env.mlflow.lifecycle_stage != "deleted"'
    if view in ("DELETED_ONLY", "2"):
        return 'env.mlflow.lifecycle_stage = "deleted"'
    if view in ("ALL", "3"):
        return None
    raise MlflowError("INVALID_PARAMETER_VALUE", f"invalid run_view_type {view_type!r}")


def combine(*filters: str | None) -> str | None:
    parts = [f"({f})" for f in filters if f]
    return " and ".join(parts) or None
