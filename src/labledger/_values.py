"""Validation and normalisation of user values: metric keys, metric values, config.

Kept free of heavy imports: numpy and torch values are recognised by duck typing.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_KEY_LENGTH",
    "SYSTEM_PREFIX",
    "check_key",
    "coerce_metric",
    "config_digest",
    "decode_json",
    "encode_json",
    "flatten",
    "fmt_duration",
    "fmt_metric",
    "fmt_size",
    "is_system_key",
    "json_safe",
    "metric_unit",
    "normalize_config",
    "warn",
]

from ._limits import MAX_FLOAT_INT, MAX_JSON_DEPTH, MAX_KEY_LENGTH, metric_float_ok

_CONTROL = {chr(c) for c in range(32)} | {chr(127)}


def check_key(key: object) -> str:
    """Return ``key`` if it is a valid metric or config key, else raise InvalidKeyError."""
    from ._exceptions import InvalidKeyError

    if not isinstance(key, str):
        raise InvalidKeyError(key, f"keys must be str, not {type(key).__name__}")
    if not key:
        raise InvalidKeyError(key, "keys must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(
            key[:40] + "…", f"keys must be at most {MAX_KEY_LENGTH} characters, got {len(key)}"
        )
    if any(ch in _CONTROL for ch in key):
        raise InvalidKeyError(key, "keys must not contain control characters")
    if key.startswith("/") or key.endswith("/") or "//" in key:
        raise InvalidKeyError(key, "'/' groups keys and must separate non-empty parts")
    return key


def coerce_metric(key: str, value: object) -> float | int:
    """Turn an accepted metric value into a Python number, or raise TypeError.

    Accepted: int, float, bool, numpy scalars and 0-d arrays, 0-d (or one-element)
    torch tensors, and anything else with a real ``__float__`` that is a scalar.
    """
    tv = type(value)
    if tv is float:
        return value  # type: ignore[return-value]
    if tv is int:
        if not -MAX_FLOAT_INT <= value <= MAX_FLOAT_INT:  # type: ignore[operator]
            raise _too_big(key, value)
        return value  # type: ignore[return-value]
    if tv is bool:
        return 1 if value else 0
    if isinstance(value, (str, bytes, bytearray)) or value is None:
        raise TypeError(f"metric {key!r} must be a number, got {tv.__name__} {value!r:.40}")
    mod = tv.__module__ or ""
    if mod.startswith("torch"):
        numel = getattr(value, "numel", None)
        if callable(numel) and numel() == 1:
            item = value.detach().cpu().item()  # type: ignore[attr-defined]
            if isinstance(item, (int, float, bool)) and not isinstance(item, complex):
                return int(item) if isinstance(item, bool) else item
        raise TypeError(
            f"metric {key!r} must be a number, got a {tv.__name__} with "
            f"shape {tuple(getattr(value, 'shape', ()))}; log a scalar (tensor.item())"
        )
    if mod == "numpy":
        shape = getattr(value, "shape", None)
        if shape == () or (shape is not None and math.prod(shape) == 1 and hasattr(value, "item")):
            item = value.item()  # type: ignore[attr-defined]
            if isinstance(item, bool):
                return int(item)
            if isinstance(item, (int, float)):
                return coerce_metric(key, item)
            if hasattr(item, "__float__") and not isinstance(item, complex):
                # np.longdouble.item() stays a longdouble: keep it when float64 holds it
                if type(item).__name__.startswith("complex"):
                    raise TypeError(f"metric {key!r} must be a real number, got {tv.__name__}")
                if not metric_float_ok(item):
                    raise _too_big(key, item)
                return float(item)
        raise TypeError(
            f"metric {key!r} must be a number, got numpy {tv.__name__} "
            f"with shape {shape}; log a scalar"
        )
    if isinstance(value, (int, float)):  # subclasses, decimal-free numbers
        return coerce_metric(key, float(value) if isinstance(value, float) else int(value))
    if (
        hasattr(value, "__float__")
        and not isinstance(value, complex)
        and not hasattr(value, "__len__")
    ):
        try:
            f = float(value)
        except OverflowError:
            raise _too_big(key, value) from None
        except (TypeError, ValueError):
            pass
        else:
            if not metric_float_ok(value):
                raise _too_big(key, value)
            return f
    raise TypeError(f"metric {key!r} must be a number, got {tv.__name__}")


def _too_big(key: str, value: object) -> Exception:
    from ._exceptions import LimitExceededError

    shown = (
        f"{value!r:.40}"
        if len(repr(value)) <= 40
        else f"{str(value)[:20]}… ({type(value).__name__})"
    )
    return LimitExceededError(
        f"metric {key!r}", f"= {shown} does not fit a float64 (|value| <= 1.8e308)"
    )


def _config_source_to_dict(source: Any) -> dict[str, Any]:
    # argparse/dataclasses are looked up, not imported: a Namespace or a dataclass
    # instance exists only when its module is loaded (init() stays cheap)
    if source is None:
        return {}
    if isinstance(source, Mapping):
        return {str(k): v for k, v in source.items()}
    argparse = sys.modules.get("argparse")
    if argparse is not None and isinstance(source, argparse.Namespace):
        return dict(vars(source))
    dataclasses = sys.modules.get("dataclasses")
    if (
        dataclasses is not None
        and dataclasses.is_dataclass(source)
        and not isinstance(source, type)
    ):
        return {f.name: getattr(source, f.name) for f in dataclasses.fields(source)}
    for attr in ("to_dict", "model_dump", "dict"):
        fn = getattr(source, attr, None)
        if callable(fn):
            try:
                out = fn()
            except TypeError:
                continue
            if isinstance(out, Mapping):
                return {str(k): v for k, v in out.items()}
    raise TypeError(
        f"config must be a dict, a Mapping, an argparse.Namespace or a dataclass, "
        f"not {type(source).__name__}"
    )


def _jsonable(value: Any, path: str, bad: list[str], depth: int = 0) -> Any:
    """Return a JSON-representable copy of ``value``; non-representable leaves become repr.

    Raises LimitExceededError beyond MAX_JSON_DEPTH levels (never a RecursionError)."""
    if depth > MAX_JSON_DEPTH:
        from ._exceptions import LimitExceededError

        top = path.split(".", 1)[0].split("[", 1)[0]
        raise LimitExceededError(
            f"config/summary value {top!r}", f"is nested more than {MAX_JSON_DEPTH} levels deep"
        )
    d = depth + 1

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        bad.append(path)
        return repr(value)
    mod = type(value).__module__ or ""
    if mod == "numpy" or mod.startswith("torch"):
        try:
            return _jsonable(coerce_metric(path, value), path, bad, d)
        except TypeError:
            tolist = getattr(value, "tolist", None)
            if callable(tolist):
                return _jsonable(tolist(), path, bad, d)
    if isinstance(value, Mapping):
        return {
            str(k): _jsonable(v, f"{path}.{k}" if path else str(k), bad, d)
            for k, v in value.items()
        }
    dataclasses = sys.modules.get("dataclasses")
    if dataclasses is not None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _jsonable(getattr(value, f.name), f"{path}.{f.name}", bad, d)
            for f in dataclasses.fields(value)
        }
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{path}[{i}]", bad, d) for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        try:
            items = sorted(value)
        except TypeError:
            items = list(value)
        return [_jsonable(v, f"{path}[{i}]", bad, d) for i, v in enumerate(items)]
    enum = sys.modules.get("enum")
    if enum is not None and isinstance(value, enum.Enum):
        return _jsonable(value.value, path, bad, d)
    pathlib = sys.modules.get("pathlib")
    if pathlib is not None and isinstance(value, pathlib.PurePath):
        return str(value)
    bad.append(path)
    return repr(value)


def normalize_config(source: Any) -> dict[str, Any]:
    """Turn a config source into a JSON-representable nested dict.

    Values that JSON cannot hold are stored as their ``repr`` and reported in one
    warning listing their keys.
    """
    raw = _config_source_to_dict(source)
    bad: list[str] = []
    out = {}
    for k, v in raw.items():
        check_key(k)
        out[k] = _jsonable(v, k, bad, 1)
    if bad:
        warnings.warn(
            "labledger: config values that are not JSON-serialisable were stored as their repr: "
            + ", ".join(bad[:10])
            + ("" if len(bad) <= 10 else f" and {len(bad) - 10} more"),
            stacklevel=user_stacklevel(),
        )
    return out


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning point at the first frame outside labledger."""
    import os
    import sys

    pkg = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(pkg + os.sep):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def warn(message: str, category: type[Warning] = RuntimeWarning) -> None:
    """A labledger warning that points at the user's code which led to it, or, raised on
    one of labledger's own threads (writer, client spool, uploads), at no code at all:
    never a stray line of labledger's source under the message."""
    import os

    pkg = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(pkg):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    if frame is not None and os.path.basename(frame.f_code.co_filename) != "threading.py":
        warnings.warn(message, category, stacklevel=level + 1)
        return
    # no user frame: a location without source, so the formatter prints the message alone
    warnings.warn_explicit(message, category, filename="labledger", lineno=0, module="labledger")


def fmt_duration(seconds: float | None) -> str:
    """A duration for tables and panels: ``12.3s``, ``4m05s``, ``2h07m`` (``-`` for None)."""
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def fmt_size(n: int | None) -> str:
    """A byte count for messages: ``512 B``, ``12.3 KB``, ... ``1.5 TB`` (``""`` for None)."""
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


SYSTEM_PREFIX = "system/"


def is_system_key(key: str) -> bool:
    """A metric the machine logged (``system/*``), shown in its own folded group."""
    return key.startswith(SYSTEM_PREFIX)


def metric_unit(key: str) -> str:
    """The unit a system metric is printed in (``MB``, ``MB/s``, ``%``, ...), ``""`` for others."""
    if not is_system_key(key):
        return ""
    if key.endswith("_bytes_per_s"):
        return "MB/s"
    if key.endswith("_bytes"):
        return "MB"
    if key.endswith(("percent", "/util")):
        return "%"
    if key.endswith("temp_c"):
        return "°C"
    if key.endswith("power_w"):
        return "W"
    return ""


def fmt_metric(key: str, value: Any) -> str:
    """A metric value for people: system metrics in their unit (``80.8 MB``, ``12.5 %``,
    ``3.2 MB/s``) instead of ``8.07822e+07``; anything else as ``%.6g``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    unit = metric_unit(key)
    if unit in ("MB", "MB/s"):
        return f"{v / 1e6:.1f} {unit}"
    if unit:
        return f"{v:.1f} {unit}"
    return f"{v:.6g}"


def flatten(d: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """Flatten nested mappings into dotted keys (``{"a": {"b": 1}} -> {"a.b": 1}``)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{sep}{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key, sep))
        else:
            out[key] = v
    return out


_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_json(value: Any) -> Any:
    """Encode for strict JSON (PostgreSQL jsonb): non-finite floats become {"$float": "NaN"}."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, dict):
        return {k: encode_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_json(v) for v in value]
    return value


def decode_json(value: Any) -> Any:
    """Inverse of :func:`encode_json`."""
    if isinstance(value, dict):
        if len(value) == 1 and "$float" in value and value["$float"] in _NONFINITE:
            return _NONFINITE[value["$float"]]
        return {k: decode_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_json(v) for v in value]
    return value


def json_safe(value: Any) -> Any:
    """Strict JSON: non-finite floats become the strings "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def config_digest(config: Mapping[str, Any]) -> str:
    """sha256 of a normalized config in canonical JSON: equal configs, equal digests.

    ``labledger repro`` passes the original's digest to the re-run, so that a process
    making several runs (a grid, a sweep) links only the matching one to the original.
    """
    import hashlib

    blob = json.dumps(json_safe(config), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def dumps(value: Any) -> str:
    return json.dumps(encode_json(value), allow_nan=False, separators=(",", ":"), sort_keys=False)
