"""Rich results in the SQL store (mixed into :class:`~labledger.store.sql.SqlStore`).

A logged image, table, confusion matrix, curve, histogram or text is one ``media`` row
(its run, key, step, position, kind, metadata), written in the transaction of the batch
that carries it, and its bytes in the artifact blob store, put there just before
(``_media_blobs.py``); identical bytes are stored once. Rich results stored before the
bytes moved there keep them in the ``blobs`` table, and are read from it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .._values import decode_json
from . import _schema as s
from ._base import MediaItem
from ._media_blobs import MediaBytes

__all__ = ["MediaSqlMixin", "media_row"]


def media_row(row: Any) -> dict[str, Any]:
    """A ``media`` row as the record readers get (``meta`` decoded)."""
    meta = row["meta"]
    return {
        "key": row["key"],
        "step": int(row["step"]),
        "seq": int(row["seq"]),
        "kind": row["kind"],
        "sha256": row["sha256"],
        "size": int(row["size"]),
        "caption": row["caption"],
        "meta": decode_json(json.loads(meta) if isinstance(meta, str) else meta),
        "ts": float(row["ts"]),
    }


class MediaSqlMixin:
    """``media`` / ``media_keys`` for a store with ``_tx``, ``_read`` and ``upsert``."""

    # provided by SqlStore
    _tx: Callable[[], AbstractContextManager[Connection]]
    _read: Callable[[], AbstractContextManager[Connection]]
    upsert: Callable[[sa.Table], Any]
    dialect: str
    get_blob: Callable[[str], bytes]
    media_bytes: MediaBytes

    def use_artifacts(self, artifacts_uri: str | None = None, blobs: Any = None) -> None:
        """Keep the bytes of rich results in ``artifacts_uri`` (or the open blob store
        ``blobs``), not in the default (env LABLEDGER_ARTIFACTS_URI, else beside the store)."""
        self.media_bytes.use(artifacts_uri, blobs)

    def _write_media(
        self, conn: Connection, run_id: str, media: Sequence[MediaItem], storage: str | None
    ) -> None:
        """The batch's rich results, by the statements both write paths share."""
        from ._sqla import SaDb
        from ._statements import write_media

        write_media(SaDb(conn, self.dialect), run_id, media, storage)

    def media(
        self,
        run_id: str,
        key: str | None = None,
        *,
        step: int | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """A run's rich results (ordered by key, step, seq), of one ``key`` and ``step``
        when given; ``offset``/``limit`` page through them."""
        m = s.media
        q = sa.select(m).where(m.c.run_id == run_id)
        if key is not None:
            q = q.where(m.c.key == key)
        if step is not None:
            q = q.where(m.c.step == int(step))
        q = q.order_by(m.c.key, m.c.step, m.c.seq).offset(max(0, int(offset)))
        if limit is not None:
            q = q.limit(max(0, int(limit)))
        with self._read() as conn:
            return [media_row(r) for r in conn.execute(q).mappings()]

    def media_keys(self, run_id: str) -> list[dict[str, Any]]:
        """One entry per key of a run's rich results: ``key``, ``kind``, ``count``,
        ``steps`` (distinct), ``first_step``, ``last_step``."""
        m = s.media
        q = (
            sa.select(
                m.c.key,
                sa.func.min(m.c.kind),
                sa.func.count(),
                sa.func.count(sa.distinct(m.c.step)),
                sa.func.min(m.c.step),
                sa.func.max(m.c.step),
            )
            .where(m.c.run_id == run_id)
            .group_by(m.c.key)
            .order_by(m.c.key)
        )
        with self._read() as conn:
            return [
                {
                    "key": k,
                    "kind": kind,
                    "count": int(n),
                    "steps": int(ns),
                    "first_step": int(lo),
                    "last_step": int(hi),
                }
                for k, kind, n, ns, lo, hi in conn.execute(q)
            ]

    def media_steps(self, run_id: str, key: str) -> list[int]:
        """The distinct steps at which ``key`` was logged, in order."""
        m = s.media
        q = (
            sa.select(sa.distinct(m.c.step))
            .where(m.c.run_id == run_id, m.c.key == key)
            .order_by(m.c.step)
        )
        with self._read() as conn:
            return [int(r[0]) for r in conn.execute(q)]

    def media_blob(self, run_id: str, sha256: str) -> bytes:
        """The bytes of one of the run's rich results (NotFoundError when the run has no
        rich result with these bytes: a reader of one run reads only its own)."""
        from .._exceptions import NotFoundError

        m = s.media
        q = sa.select(m.c.storage).where(m.c.run_id == run_id, m.c.sha256 == sha256).limit(1)
        with self._read() as conn:
            row = conn.execute(q).first()
        if row is None:
            raise NotFoundError(f"run {run_id[:8]} has no rich result {sha256[:16]}…")
        return self.media_bytes.get(sha256, self.get_blob, row[0])

    def media_blobs_uri(self) -> str:
        """The URI of the blob store that holds the bytes of this store's rich results."""
        return self.media_bytes.blobs().uri

    def media_blob_shas(self) -> set[str]:
        """The sha256 of every rich result whose bytes are in this store's blob store
        (:meth:`media_blobs_uri`; not those in the ``blobs`` table, where older rich
        results keep theirs): what ``verify`` expects to find there."""
        m, b = s.media, s.blobs
        q = sa.select(m.c.sha256, m.c.storage).distinct()
        q = q.where(~sa.exists().where(b.c.sha256 == m.c.sha256))
        own = self.media_blobs_uri()
        with self._read() as conn:
            return {sha for sha, where in conn.execute(q) if where in (None, own)}
