"""The wire format of a batch, shared by the HTTP client, the spool and the server.

A batch travels as JSON::

    {"id": "<idempotency key>", "heartbeat": 1712.5 | null,
     "run_update": {...},                       # non-finite floats as {"$float": "NaN"}
     "metrics": {"loss": {"steps": "<b64>", "values": "<b64>", "timestamps": "<b64>"}},
     "media": [{"key", "step", "seq", "kind", "data": "<b64>", "meta", "caption", "ts"}]}

where each array is base64 of little-endian int64 (steps) or float64 (values,
timestamps). Raw IEEE-754 bytes round-trip every value exactly, NaN and infinities
included, and cost one ``base64`` call per array instead of one float formatting per
point. Bodies above :data:`GZIP_ABOVE` bytes are sent gzip-compressed.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import numpy as np

from .._exceptions import UsageError
from .._values import check_key, decode_json, encode_json
from ._base import Batch, MediaItem

__all__ = [
    "GZIP_ABOVE",
    "MAX_BODY_BYTES",
    "batch_from_wire",
    "batch_to_wire",
    "dumps",
    "run_to_wire",
]

GZIP_ABOVE = 64 * 1024
MAX_BODY_BYTES = 256 * 1024 * 1024


def _b64(arr: Any, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(np.asarray(arr, dtype=dtype)).tobytes()).decode(
        "ascii"
    )


def batch_to_wire(batch: Batch) -> dict[str, Any]:
    return {
        "id": batch.id,
        "heartbeat": batch.heartbeat,
        "run_update": encode_json(batch.run_update),
        "metrics": {
            key: {
                "steps": _b64(st, "<i8"),
                "values": _b64(va, "<f8"),
                "timestamps": _b64(ts, "<f8"),
            }
            for key, (st, va, ts) in batch.metrics.items()
        },
        **({"media": [_media_to_wire(m) for m in batch.media]} if batch.media else {}),
    }


def _media_to_wire(m: MediaItem) -> dict[str, Any]:
    return {
        "key": m.key,
        "step": m.step,
        "seq": m.seq,
        "kind": m.kind,
        "data": base64.b64encode(m.data).decode("ascii"),
        "meta": encode_json(m.meta),
        "caption": m.caption,
        "ts": m.ts,
    }


def _media_from_wire(item: Any) -> MediaItem:
    if not isinstance(item, dict):
        raise UsageError("each media item must be an object")
    try:
        key = check_key(item["key"])
        step, seq, kind = item["step"], item["seq"], item["kind"]
        data = base64.b64decode(item["data"], validate=True)
        meta = decode_json(item.get("meta") or {})
        caption, ts = item.get("caption"), float(item.get("ts") or 0.0)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise UsageError(f"malformed media item: {exc}") from exc
    if not all(type(v) is int for v in (step, seq)) or not isinstance(kind, str):
        raise UsageError("media step and seq must be integers, kind a string")
    if not isinstance(meta, dict) or not (caption is None or isinstance(caption, str)):
        raise UsageError("media meta must be an object, caption a string")
    return MediaItem(key, step, seq, kind, data, meta, caption, ts)


def _array(text: Any, dtype: str, what: str) -> np.ndarray:
    if not isinstance(text, str):
        raise UsageError(f"{what} must be a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UsageError(f"{what} is not valid base64: {exc}") from exc
    if len(raw) % 8:
        raise UsageError(f"{what} must hold 8-byte items, got {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dtype)


def batch_from_wire(run_id: str, body: dict[str, Any]) -> Batch:
    """Decode and check a batch (UsageError on anything malformed)."""
    metrics: dict[str, tuple[Any, Any, Any]] = {}
    raw_metrics = body.get("metrics") or {}
    if not isinstance(raw_metrics, dict):
        raise UsageError("metrics must be an object")
    for key, series in raw_metrics.items():
        check_key(key)
        if not isinstance(series, dict):
            raise UsageError(f"metric {key!r} must be an object with steps, values, timestamps")
        st = _array(series.get("steps"), "<i8", f"{key}.steps")
        va = _array(series.get("values"), "<f8", f"{key}.values")
        ts = _array(series.get("timestamps"), "<f8", f"{key}.timestamps")
        if not (len(st) == len(va) == len(ts)):
            raise UsageError(f"metric {key!r}: steps, values and timestamps differ in length")
        if len(st):
            metrics[key] = (st, va, ts)
    update = body.get("run_update") or {}
    if not isinstance(update, dict):
        raise UsageError("run_update must be an object")
    hb = body.get("heartbeat")
    raw_media = body.get("media") or []
    if not isinstance(raw_media, list):
        raise UsageError("media must be a list")
    return Batch(
        media=[_media_from_wire(m) for m in raw_media],
        run_id=run_id,
        metrics=metrics,
        run_update=decode_json(update),
        heartbeat=float(hb) if hb is not None else None,
        id=str(body["id"]),
    )


def run_to_wire(run: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = encode_json(dict(run))
    return out


def dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=False, separators=(",", ":")).encode()
