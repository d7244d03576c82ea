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

The HTTP client sends a batch in the binary form instead (:data:`BATCH_MEDIA_TYPE`,
never gzip-compressed: float arrays barely compress)::

    b"LLB1"                       4 bytes, the format and its version
    header length                 uint32, little-endian
    header                        UTF-8 JSON: the JSON form less its arrays, with
                                  "metrics": [{"key": "loss", "n": 3}, ...]
    padding                       zero bytes up to a multiple of 8
    arrays                        per series, in header order: n int64 steps,
                                  n float64 values, n float64 timestamps (little-endian)

The server reads both forms into the same :class:`~labledger.store.Batch`; the outbox
keeps the JSON form.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from typing import Any

import numpy as np

from .._exceptions import UsageError
from .._values import check_key, decode_json, encode_json
from ._base import Batch, MediaItem

__all__ = [
    "BATCH_MEDIA_TYPE",
    "GZIP_ABOVE",
    "MAX_BODY_BYTES",
    "batch_from_binary",
    "batch_from_wire",
    "batch_to_binary",
    "batch_to_wire",
    "dumps",
    "run_to_wire",
    "split_binary_batch",
]

GZIP_ABOVE = 64 * 1024
MAX_BODY_BYTES = 256 * 1024 * 1024
BATCH_MEDIA_TYPE = "application/vnd.labledger.batch"
_MAGIC = b"LLB1"
_HEAD = struct.Struct("<4sI")


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


def batch_to_binary(batch: Batch) -> bytes:
    """The binary form of ``batch`` (module docstring): a JSON header, then raw arrays."""
    series = []
    arrays: list[bytes] = []
    for key, (st, va, ts) in batch.metrics.items():
        steps = np.ascontiguousarray(np.asarray(st, dtype="<i8"))
        series.append({"key": key, "n": len(steps)})
        arrays.append(steps.tobytes())
        arrays.append(np.ascontiguousarray(np.asarray(va, dtype="<f8")).tobytes())
        arrays.append(np.ascontiguousarray(np.asarray(ts, dtype="<f8")).tobytes())
    header: dict[str, Any] = {
        "id": batch.id,
        "heartbeat": batch.heartbeat,
        "run_update": encode_json(batch.run_update),
        "metrics": series,
    }
    if batch.media:
        header["media"] = [_media_to_wire(m) for m in batch.media]
    head = dumps(header)
    pad = -(_HEAD.size + len(head)) % 8
    return b"".join([_HEAD.pack(_MAGIC, len(head)), head, b"\0" * pad, *arrays])


def split_binary_batch(
    data: bytes, *, max_keys: int | None = None
) -> tuple[dict[str, Any], dict[str, tuple[Any, Any, Any]]]:
    """The header (its ``metrics`` taken out) and the series of a binary batch.

    UsageError on anything malformed: a wrong magic, a header that is not a JSON object,
    series that do not add up to the bytes that follow it, a bad or repeated key."""
    view = memoryview(data)
    if len(view) < _HEAD.size:
        raise UsageError("a binary batch starts with b'LLB1' and a header length")
    magic, size = _HEAD.unpack_from(view)
    if magic != _MAGIC:
        raise UsageError(f"not a binary batch (magic {bytes(magic)!r}, expected {_MAGIC!r})")
    start = _HEAD.size + size
    if start > len(view):
        raise UsageError("the binary batch's header is longer than the body")
    try:
        header = json.loads(bytes(view[_HEAD.size : start]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UsageError(f"the binary batch's header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise UsageError("the binary batch's header must be a JSON object")
    series = header.pop("metrics", None) or []
    if not isinstance(series, list):
        raise UsageError("the binary batch's metrics must be a list of {key, n}")
    if max_keys is not None and len(series) > max_keys:
        raise UsageError(f"a batch holds at most {max_keys} metric keys")
    offset = start + (-start % 8)
    metrics: dict[str, tuple[Any, Any, Any]] = {}
    for item in series:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise UsageError("each series of a binary batch is {key, n}")
        key, n = item["key"], item.get("n")
        if type(n) is not int or n < 0:
            raise UsageError(f"series {key!r}: n must be a non-negative integer")
        check_key(key)
        if key in metrics:
            raise UsageError(f"series {key!r} appears twice")
        end = offset + 24 * n
        if end > len(view):
            raise UsageError(f"series {key!r}: the body ends before its {n} points")
        st = np.frombuffer(view, dtype="<i8", count=n, offset=offset)
        va = np.frombuffer(view, dtype="<f8", count=n, offset=offset + 8 * n)
        ts = np.frombuffer(view, dtype="<f8", count=n, offset=offset + 16 * n)
        offset = end
        metrics[key] = (st, va, ts)
    if offset < len(view):
        raise UsageError(f"{len(view) - offset} bytes follow the binary batch's last series")
    return header, {k: s for k, s in metrics.items() if len(s[0])}


def batch_from_binary(run_id: str, data: bytes) -> Batch:
    """Decode and check a binary batch (UsageError on anything malformed)."""
    header, metrics = split_binary_batch(data)
    if not isinstance(header.get("id"), str):
        raise UsageError("a batch needs its id (a string)")
    batch = batch_from_wire(run_id, header)
    batch.metrics = metrics
    return batch


def run_to_wire(run: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = encode_json(dict(run))
    return out


def dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=False, separators=(",", ":")).encode()
