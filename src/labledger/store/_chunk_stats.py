"""A chunk's summary for downsampled reads: its min and max point, and whether it is sorted.

``metric_chunks.stats`` (migration 0014) holds, packed little-endian:

    lo key (float64), lo index (int64), lo step (int64), lo value, lo timestamp,
    hi key (float64), hi index (int64), hi step (int64), hi value, hi timestamp,
    sorted (uint8: the chunk's steps never decrease)

where the lo point is the chunk's first minimum with NaN read as +inf, the hi point its
first maximum with NaN read as -inf: exactly what :func:`~._series_sql.downsample`
picks in a bucket, so a bucket that holds whole chunks is decided from their summaries
without reading their arrays. NULL when not known (a row written before 0014, or the
embedded store's open tail chunk); such a chunk is read.

Two implementations, one result: over lists (the embedded write path, which loads no
numpy) and over numpy arrays (SqlStore).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any, NamedTuple

__all__ = ["ChunkStats", "stats_of_arrays", "stats_of_lists", "unpack_stats"]

_STATS = struct.Struct("<dqqdddqqddB")


class ChunkStats(NamedTuple):
    lo: float
    lo_index: int
    lo_step: int
    lo_value: float
    lo_ts: float
    hi: float
    hi_index: int
    hi_step: int
    hi_value: float
    hi_ts: float
    sorted: bool


def unpack_stats(blob: bytes | None) -> ChunkStats | None:
    if blob is None or len(blob) != _STATS.size:
        return None
    lo, il, ls, lv, lt, hi, ih, hs, hv, ht, srt = _STATS.unpack(bytes(blob))
    return ChunkStats(lo, il, ls, lv, lt, hi, ih, hs, hv, ht, bool(srt))


def _pack(st: Any, va: Any, tt: Any, lo: float, il: int, hi: float, ih: int, srt: bool) -> bytes:
    return _STATS.pack(
        lo, il, int(st[il]), float(va[il]), float(tt[il]),
        hi, ih, int(st[ih]), float(va[ih]), float(tt[ih]), srt,
    )  # fmt: skip


def stats_of_lists(st: Sequence[int], va: Sequence[float], tt: Sequence[float]) -> bytes:
    """The summary of a non-empty chunk given as lists (no numpy)."""
    vals = list(va)
    total = sum(vals)  # NaN when a value is NaN (or +inf meets -inf): the careful path
    if total == total:
        lo, hi = min(vals), max(vals)
        il, ih = vals.index(lo), vals.index(hi)
    else:
        lo_v = [math.inf if v != v else v for v in vals]
        hi_v = [-math.inf if v != v else v for v in vals]
        lo, hi = min(lo_v), max(hi_v)
        il, ih = lo_v.index(lo), hi_v.index(hi)
    steps = list(st)
    return _pack(steps, vals, tt, lo, il, hi, ih, steps == sorted(steps))


def stats_of_arrays(st: Any, va: Any, tt: Any) -> bytes:
    """The summary of a non-empty chunk given as numpy arrays."""
    import numpy as np

    nan = np.isnan(va)
    if nan.any():
        lo_v, hi_v = np.where(nan, np.inf, va), np.where(nan, -np.inf, va)
    else:
        lo_v = hi_v = va
    il, ih = int(lo_v.argmin()), int(hi_v.argmax())
    srt = len(st) < 2 or bool(np.all(st[1:] >= st[:-1]))
    return _pack(st, va, tt, float(lo_v[il]), il, float(hi_v[ih]), ih, srt)
