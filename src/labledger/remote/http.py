"""HttpStore: the Store protocol spoken to a labledger tracking server.

``LABLEDGER_URI=http://host:port`` (and ``LABLEDGER_TOKEN``) is all a training script
needs. When the server is down or answers 5xx (or 408/425/429: transient faults), a
write goes to a durable on-disk spool (:mod:`labledger.remote.spool`, the client's
outbox) and a background thread replays it with backoff. A refused token (401, or 403
other than ``not_owner``) is a configuration fault: the write raises
:class:`~labledger.AuthError` naming the fix, nothing is spooled and nothing is waited for. While
anything is spooled, later writes queue behind it, so a run's creation always reaches
the server before its batches. Every batch carries its idempotency key, so a batch
that is retried after a lost answer is stored once.

When a run's final batch (status finished/failed/killed/crashed) is written, the
store waits up to ``LABLEDGER_SYNC_TIMEOUT`` seconds (default 30) for the spool to
drain, then leaves the rest there with a warning; ``labledger sync`` uploads it later.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from .._exceptions import (
    AmbiguousRunError,
    AuthError,
    IntegrityError,
    InvalidFilterError,
    NotFoundError,
    RunFinishedError,
    RunNotFoundError,
    StoreError,
    StoreUnavailableError,
    UsageError,
    error_from_wire,
)
from .._settings import setting
from .._values import decode_json, encode_json, warn
from ..store import (
    BATCH_MEDIA_TYPE,
    GZIP_ABOVE,
    TERMINAL_STATUSES,
    Batch,
    History,
    RunRecord,
    batch_to_binary,
    batch_to_wire,
    dumps,
)
from ._http_artifacts import HttpArtifactsMixin, HttpBlobStore, _q, new_http_client
from ._http_audit import HttpAuditMixin
from ._http_registry import HttpRegistryMixin
from .spool import SendResult, Spool, SpoolEntry, read_entries, reject

if TYPE_CHECKING:
    from ..query import Node

__all__ = [
    "DEFAULT_SYNC_TIMEOUT",
    "HttpBlobStore",
    "HttpStore",
    "ReplayCounts",
    "SendResult",
    "replay_folder",
    "replay_folder_counts",
]

log = logging.getLogger("labledger.http")

DEFAULT_SYNC_TIMEOUT = 30.0
API = "/api/v1"
_STOP = frozenset({SendResult.RETRY, SendResult.AUTH})  # what stops a replay: keep the rest
_RETRY_STATUS = frozenset({408, 425, 429})
_AUTH_STATUS = frozenset({401, 403})
# a longer filter is sent in the body of POST /runs/search, not in the URL
_URL_FILTER_MAX = 2000
PROBE_MIN = 0.05  # first retry delay after the server failed (doubles up to PROBE_MAX)
PROBE_MAX = 1.0
DRAIN_PATIENCE = 600.0  # finish() waits this long at most for a spool that keeps draining
REPLAY_ITEMS = 50  # spooled requests per POST /replay (a round trip stays short: progress)
REPLAY_BYTES = 8 * 1024 * 1024


def _classify_status(status: int, code: str | None = None) -> str:
    if status == 403 and code == "not_owner":
        return SendResult.REJECTED  # someone else's run: no retry or new token changes that
    if status in _AUTH_STATUS:
        return SendResult.AUTH  # the token: a configuration fault, never waited for
    if status >= 500 or status in _RETRY_STATUS:
        return SendResult.RETRY
    if status < 400:
        return SendResult.OK
    return SendResult.REJECTED


def _classify(resp: httpx.Response | None) -> str:
    if resp is None:
        return SendResult.RETRY
    code = _error_body(resp).get("code") if resp.status_code == 403 else None
    return _classify_status(resp.status_code, code)


def _status_of(info: str) -> int:
    """The HTTP status a send result's reason starts with (``HTTP 401 …``); 401 if none."""
    parts = info.split()
    return int(parts[1]) if len(parts) > 1 and parts[0] == "HTTP" and parts[1].isdigit() else 401


def _answer(resp: httpx.Response) -> tuple[str, Any]:
    """(result, parsed answer or the reason) of a write the server answered."""
    result = _classify(resp)
    if result == SendResult.OK:
        try:
            return result, resp.json()
        except ValueError:
            return result, None
    eb = _error_body(resp)
    return result, f"HTTP {resp.status_code} {eb.get('code')}: {eb.get('message')}"


def _filter_text(filter: str | Node) -> str:
    """A parsed filter goes over HTTP as text that parses back to the same tree."""
    if isinstance(filter, str):
        return filter
    from ..query import to_text

    return to_text(filter)


def _in_projects(projects: Sequence[str], filter: str | Node | None) -> str:
    """``filter`` narrowed to ``projects`` (the filter language's ``project in (…)``)."""
    names = ", ".join(json.dumps(str(p), ensure_ascii=False) for p in projects)
    where = f"project in ({names})"
    return f"({where}) and ({_filter_text(filter)})" if filter else where


def _error_body(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {"code": "error", "message": resp.text[:200], "details": {}}
    return (
        body
        if isinstance(body, dict)
        else {"code": "error", "message": str(body)[:200], "details": {}}
    )


def auth_fix(uri: str, status: int, token: str | None, info: str) -> AuthError:
    """The error a refused token raises on the write path, with the fix named."""
    if status == 403:
        fix = (
            "the token has no write access to this project: ask an admin for the write role "
            "(`labledger server token create --user U --project P --role write`), or set "
            "LABLEDGER_TOKEN to a token that has it"
        )
    elif token:
        fix = (
            "set LABLEDGER_TOKEN to a valid token for this server (an admin creates one with "
            "`labledger server token create --user U --project P --role write`)"
        )
    else:
        fix = (
            "this server requires a token: set LABLEDGER_TOKEN (an admin creates one with "
            "`labledger server token create --user U --project P --role write`)"
        )
    return AuthError(
        f"the server {uri} refused this client ({info}): {fix}. Nothing was spooled",
        status,
        None,
    )


class HttpStore(HttpArtifactsMixin, HttpAuditMixin, HttpRegistryMixin):
    """Store over HTTP (keep-alive, gzip above 64 KiB, durable spool on failure).

    Artifact metadata and repro verdicts come from :class:`HttpArtifactsMixin`."""

    def __init__(
        self,
        uri: str,
        *,
        token: str | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        timeout: float = 30.0,
        sync_timeout: float | None = None,
        transport: httpx.BaseTransport | None = None,
        migrate: bool = True,  # accepted for open_store(**kwargs) symmetry; the server migrates
    ) -> None:
        self.uri = uri.rstrip("/")
        self.token = token if token is not None else setting("LABLEDGER_TOKEN") or None
        if sync_timeout is None:
            env = setting("LABLEDGER_SYNC_TIMEOUT")
            sync_timeout = float(env) if env else DEFAULT_SYNC_TIMEOUT
        self.sync_timeout = sync_timeout
        headers = {"User-Agent": "labledger-client"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self._timeout = httpx.Timeout(timeout, connect=min(5.0, timeout))
        self._headers = headers
        self._transport = transport
        self._client = self._new_client()
        self.spool = Spool(spool_dir)
        self._lock = threading.Lock()
        self._pending = 0  # files of our session not yet accepted by the server
        self._wake = threading.Event()
        self._drained = threading.Condition(self._lock)
        self._uploader: threading.Thread | None = None
        self._closed = False
        self._warned: set[str] = set()
        self._no_replay = False  # the server has no POST /replay (an older one)
        self._no_binary = False  # the server refused a binary batch (an older one): JSON
        self.fatal: AuthError | None = None  # the token was refused: nothing more is sent
        os.register_at_fork(after_in_child=self._after_fork)

    def _new_client(self) -> httpx.Client:
        return new_http_client(self.uri, self._headers, self._timeout, self._transport)

    def _after_fork(self) -> None:
        # never share sockets or the spool session with a forked child
        self._client = self._new_client()
        self.spool = Spool(self.spool.root)
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._pending = 0
        self._uploader = None

    def __repr__(self) -> str:
        return f"HttpStore({self.uri!r})"

    # -- low level -------------------------------------------------------------------

    def _send(
        self,
        client: httpx.Client,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        params: Any = None,
    ) -> httpx.Response:
        headers: dict[str, str] = {}
        if json_body is not None:
            content = dumps(json_body)
            content_type = "application/json"
        if content is not None and len(content) > GZIP_ABOVE and content_type != BATCH_MEDIA_TYPE:
            content = gzip.compress(content, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        if content_type:
            headers["Content-Type"] = content_type
        return client.request(method, path, content=content, headers=headers, params=params)

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """A read-side request: errors become labledger exceptions."""
        try:
            resp = self._send(self._client, method, path, **kw)
        except httpx.TransportError as exc:
            raise StoreUnavailableError(self.uri, f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 400:
            self._raise(resp, path)
        return resp

    def _raise(self, resp: httpx.Response, path: str) -> None:
        body = _error_body(resp)
        msg = str(body.get("message", ""))
        details = body.get("details") or {}
        code = resp.status_code
        typed = error_from_wire(details.get("error")) if isinstance(details, dict) else None
        if typed is not None and code < 500:
            raise typed  # the server's own exception: same class, same fields
        if code in (401, 403):
            raise AuthError(msg or "not authorised", code, body.get("code"))
        if code == 404:
            raise NotFoundError(msg or f"not found: {path}")
        if code == 400 and isinstance(details, dict) and "position" in details:
            raise InvalidFilterError(msg, "", None)
        if code == 409 and body.get("code") == "run_finished" and isinstance(details, dict):
            raise RunFinishedError(
                str(details.get("run_id", "")),
                str(details.get("status", "")),
                str(details.get("detail", "")),
            )
        if code in (400, 409, 413, 422):
            raise UsageError(msg or f"bad request: {path}")
        if code >= 500:
            raise StoreUnavailableError(self.uri, f"HTTP {code}: {msg}")
        raise StoreError(f"{self.uri}{path}: HTTP {code}: {msg}")

    def _get_json(self, path: str, params: Any = None) -> Any:
        return decode_json(self._request("GET", path, params=params).json())

    # -- writing (never raises for transport or server trouble) ------------------------

    def _write(
        self,
        kind: str,
        method: str,
        path: str,
        body: Any,
        run_id: str | None,
        binary: Callable[[], bytes] | None = None,
    ) -> bool:
        """Send one write now, or keep it in the outbox for the background uploader.

        ``body`` is the JSON form (a callable makes it only when the outbox needs it);
        ``binary`` makes the form sent first (a batch's binary body)."""
        lazy = body if callable(body) else None
        record = {
            "v": 1,
            "kind": kind,
            "uri": self.uri,
            "method": method,
            "path": path,
            "run_id": run_id,
            "body": None if lazy is not None else body,
        }
        if self.fatal is not None:
            raise self.fatal
        with self._lock:
            queued = self._pending > 0
        if not queued:
            sent = self._try_binary(path, binary) if binary is not None else None
            if sent is not None:
                result, resp = sent
            else:
                if lazy is not None:
                    record["body"] = lazy()
                result, resp = self._try(self._client, record)
                if binary is not None and result == SendResult.OK:
                    self._no_binary = True  # JSON taken where binary was not: an older server
            if result == SendResult.AUTH:
                self.fatal = auth_fix(self.uri, _status_of(str(resp)), self.token, str(resp))
                raise self.fatal
            if result == SendResult.OK:
                self._note_answer(record, resp)
                return (
                    resp is None
                    or not isinstance(resp, dict)
                    or resp.get("applied", True) is not False
                )
            if result == SendResult.REJECTED:
                self._warn_once(
                    "rejected",
                    f"labledger: the server refused a {kind} for run "
                    f"{(run_id or '')[:8]}: {resp}; it was kept in {self.spool.root}/rejected",
                )
                if record["body"] is None and lazy is not None:
                    record["body"] = lazy()
                reject(self.spool.put(record), str(resp))
                return False
            self._warn_once(
                "spool",
                f"labledger: the server {self.uri} is not reachable ({resp}); "
                f"writes go to the spool {self.spool.dir} and are retried in the background",
            )
        if record["body"] is None and lazy is not None:
            record["body"] = lazy()
        self._enqueue(record)
        return True

    def _try_binary(self, path: str, make: Callable[[], bytes]) -> tuple[str, Any] | None:
        """Send a batch in its binary form; None when the JSON form must be sent instead.

        An older server answers 415 or 422 to a body it cannot read: the caller then
        sends the JSON form, and when that one is taken, keeps to JSON from there on."""
        if self._no_binary:
            return None
        try:
            resp = self._send(
                self._client, "POST", path, content=make(), content_type=BATCH_MEDIA_TYPE
            )
        except httpx.TransportError as exc:
            return SendResult.RETRY, f"{type(exc).__name__}: {exc}"
        if resp.status_code in (415, 422):
            return None
        return _answer(resp)

    def _try(self, client: httpx.Client, record: dict[str, Any]) -> tuple[str, Any]:
        """Send one request record; (result, parsed answer or reason)."""
        body = record.get("body")
        if record["kind"] == "artifact":  # blobs, then the version (remote/_pending_artifacts.py)
            from ._pending_artifacts import replay_artifact

            return replay_artifact(self, record)
        try:
            if record["kind"] == "blob":
                resp = self._send(
                    client,
                    record["method"],
                    record["path"],
                    content=base64.b64decode(str(body)),
                    content_type="application/octet-stream",
                )
            else:
                resp = self._send(client, record["method"], record["path"], json_body=body)
        except httpx.TransportError as exc:
            return SendResult.RETRY, f"{type(exc).__name__}: {exc}"
        return _answer(resp)

    def _note_answer(self, record: dict[str, Any], answer: Any) -> None:
        """Say what the server's project policy means for this run (at init and finish)."""
        if not isinstance(answer, dict) or not isinstance(answer.get("policy"), dict):
            return
        policy = answer["policy"]
        run = str(record.get("run_id") or "")[:8]
        if policy.get("refused"):
            warn(
                f"labledger: run {run} was recorded as failed, not finished: "
                f"{policy.get('message')}"
            )
        elif policy.get("require") and record.get("kind") == "run":
            project = (record.get("body") or {}).get("project")
            self._warn_once(
                f"policy-{project}",
                f"labledger: project {project!r} requires every finished run to carry: "
                f"{', '.join(policy['require'])}; the server records run {run} as failed "
                "when one is missing at finish()",
            )

    def _warn_once(self, what: str, message: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            warn(message)
        else:
            log.debug(message)

    def create_run(self, run: dict[str, Any]) -> None:
        self._write("run", "POST", f"{API}/runs", encode_json(dict(run)), run["id"])

    def write_batch(self, batch: Batch, *, actor: str | None = None, late: bool = False) -> bool:
        # ``actor`` and ``late`` are not sent: the server's write core takes the token's
        # user, and applies its own rule to points that arrive after the run ended
        applied = self._write(
            "batch",
            "POST",
            f"{API}/runs/{batch.run_id}/batches",
            lambda: batch_to_wire(batch),  # the outbox's form, made only when needed
            batch.run_id,
            binary=lambda: batch_to_binary(batch),
        )
        if batch.run_update.get("status") in TERMINAL_STATUSES:
            self._finish_sync(batch.run_id)
        return applied

    def put_blob(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self._write("blob", "PUT", f"{API}/blobs", base64.b64encode(data).decode("ascii"), None)
        return digest

    def spool_artifact(self, record: dict[str, Any]) -> None:
        """Keep an artifact the server could not take now (see :mod:`._pending_artifacts`).

        Uploaded by the background loop once the server answers, else by ``labledger sync``;
        silent: the run's end says once what is left in the spool."""
        self._enqueue(record)

    def defer_artifact(self, **fields: Any) -> None:
        """Spool one artifact upload for later (``labledger.artifacts``' ``DeferredUploads``
        protocol); ``fields`` are those of :func:`._pending_artifacts.artifact_record`."""
        from ._pending_artifacts import artifact_record

        self.spool_artifact(artifact_record(uri=self.uri, **fields))

    def _enqueue(self, record: dict[str, Any]) -> None:
        """Spool ``record`` for the background uploader (later writes queue behind it)."""
        with self._lock:
            self.spool.put(record)
            self._pending += 1
            self._start_uploader()
        self._wake.set()

    def unreachable(self) -> bool:
        """True while this client's requests wait in the spool (the server did not answer)."""
        return self.pending() > 0

    # -- the spool ---------------------------------------------------------------------

    def _start_uploader(self) -> None:
        if self._uploader is None or not self._uploader.is_alive():
            self._uploader = threading.Thread(
                target=self._upload_loop, name="labledger-spool", daemon=True
            )
            self._uploader.start()

    def _upload_loop(self) -> None:
        client = self._new_client()
        delay = PROBE_MIN
        stuck = False
        try:
            while not self._closed:
                if stuck:
                    # back off (capped at PROBE_MAX: a server back from a restart is
                    # noticed within about a second), then probe cheaply before re-reading
                    # the whole spool
                    self._sleep(delay)
                    delay = min(delay * 2, PROBE_MAX)
                    if self._closed or not self._probe(client):
                        continue
                entries = self.spool.entries()
                if not entries:
                    stuck = False
                    with self._lock:
                        if not self.spool.entries():
                            self._pending = 0
                            self._drained.notify_all()
                    self._wake.wait(1.0)
                    self._wake.clear()
                    continue
                stuck = False
                for entry, result, info in self.send_entries(client, entries):
                    if result == SendResult.AUTH:
                        # a refused token does not get better by waiting: stop, say so
                        self.fatal = auth_fix(
                            self.uri, _status_of(str(info)), self.token, str(info)
                        )
                        warn(f"labledger: {self.fatal}")
                        with self._lock:
                            self._drained.notify_all()
                        return
                    if result == SendResult.RETRY:
                        stuck = True
                        break
                    if result == SendResult.REJECTED:
                        reject(entry.path, str(info))
                        self._warn_once(
                            "rejected",
                            f"labledger: the server refused a spooled {entry.kind}: "
                            f"{info}; kept in {self.spool.root}/rejected",
                        )
                    else:
                        self._note_answer(entry.record, info)
                        entry.path.unlink(missing_ok=True)
                    with self._lock:
                        self._pending = max(0, self._pending - 1)
                        self._drained.notify_all()
                    delay = PROBE_MIN
        finally:
            client.close()

    def _sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (new writes do not cut it short; closing does)."""
        until = time.monotonic() + seconds
        while not self._closed:
            left = until - time.monotonic()
            if left <= 0:
                return
            self._wake.wait(left)
            self._wake.clear()

    def _probe(self, client: httpx.Client) -> bool:
        """True when the server answers its liveness probe."""
        try:
            resp = client.get("/healthz", timeout=httpx.Timeout(2.0))
        except httpx.TransportError:
            return False
        return resp.status_code < 500

    def send_entries(
        self, client: httpx.Client, entries: list[SpoolEntry]
    ) -> Iterator[tuple[SpoolEntry, str, Any]]:
        """Send spooled requests in order; yield ``(entry, result, info)`` for each one sent.

        Consecutive run creations and batches go many per round trip through
        ``POST /api/v1/replay`` (:data:`REPLAY_ITEMS` requests or :data:`REPLAY_BYTES`
        at most); blobs and artifacts one by one. Stops after the first RETRY: what follows
        it stays in the spool, so a run's order is kept."""
        i = 0
        while i < len(entries):
            entry = entries[i]
            if entry.kind not in ("run", "batch") or self._no_replay:
                result, info = self._try(client, entry.record)
                yield entry, result, info
                if result in _STOP:
                    return
                i += 1
                continue
            group: list[SpoolEntry] = []
            size = 0
            while i < len(entries) and entries[i].kind in ("run", "batch"):
                try:
                    size += entries[i].path.stat().st_size
                except OSError:
                    pass
                if group and (len(group) >= REPLAY_ITEMS or size > REPLAY_BYTES):
                    break
                group.append(entries[i])
                i += 1
            answers = self._replay(client, group)
            if answers is None:  # no /replay here, or the envelope was refused: one by one
                for e in group:
                    result, info = self._try(client, e.record)
                    yield e, result, info
                    if result in _STOP:
                        return
                continue
            for e, (result, info) in zip(group, answers, strict=False):
                yield e, result, info
                if result in _STOP:
                    return
            if len(answers) < len(group):
                return

    def _replay(
        self, client: httpx.Client, group: list[SpoolEntry]
    ) -> list[tuple[str, Any]] | None:
        """Send ``group`` in one ``POST /replay``; one (result, info) per entry sent.

        A short list means the rest was not answered (RETRY); None: no such route."""
        items = []
        for e in group:
            item: dict[str, Any] = {"kind": e.kind, "body": e.record.get("body")}
            if e.kind == "batch":
                item["run_id"] = e.record.get("run_id")
            items.append(item)
        try:
            resp = self._send(client, "POST", f"{API}/replay", json_body={"requests": items})
        except httpx.TransportError as exc:
            return [(SendResult.RETRY, f"{type(exc).__name__}: {exc}")]
        if resp.status_code in (404, 405) and _error_body(resp).get("code") in (
            "not_found",
            "method_not_allowed",
        ):
            self._no_replay = True
            return None
        result = _classify(resp)
        if result != SendResult.OK:
            eb = _error_body(resp)
            info = f"HTTP {resp.status_code} {eb.get('code')}: {eb.get('message')}"
            if result in _STOP:
                return [(result, info)]
            return None if len(group) > 1 else [(result, info)]
        try:
            answers = resp.json()["results"]
        except (ValueError, KeyError, TypeError):
            return [(SendResult.RETRY, "the server's replay answer is not readable")]
        out: list[tuple[str, Any]] = []
        for a in answers[: len(group)]:
            status = int(a.get("status", 500))
            body = a.get("body")
            if status < 400:
                out.append((SendResult.OK, body))
                continue
            eb = body if isinstance(body, dict) else {}
            kind = _classify_status(status, eb.get("code"))
            out.append((kind, f"HTTP {status} {eb.get('code')}: {eb.get('message')}"))
            if kind in _STOP:
                break
        return out

    def pending(self) -> int:
        """Requests of this client still in the spool."""
        with self._lock:
            return self._pending

    def wait_synced(self, timeout: float, *, patience: float | None = None) -> bool:
        """Wait until the spool of this client is empty; False on timeout.

        With ``patience``, ``timeout`` is how long to wait *without progress*: each
        request accepted by the server restarts it, up to ``patience`` seconds in all
        (a long spool draining steadily is waited for; a server that stays down is not)."""
        start = time.monotonic()
        deadline = start + timeout
        hard = start + patience if patience is not None else deadline
        with self._lock:
            last = self._pending
            while self._pending > 0 and self.fatal is None:
                now = time.monotonic()
                if patience is not None and self._pending < last:
                    last = self._pending
                    deadline = min(hard, now + timeout)
                remaining = deadline - now
                if remaining <= 0:
                    return False
                self._wake.set()
                self._drained.wait(min(remaining, 0.2))
            return self._pending == 0

    def _finish_sync(self, run_id: str) -> None:
        if self.pending() == 0 or self.fatal is not None:
            return
        patience = max(self.sync_timeout * 10, DRAIN_PATIENCE)
        if not self.wait_synced(self.sync_timeout, patience=patience):
            warn(self._left_message(run_id))

    def _left_message(self, run_id: str) -> str:
        """One message naming what stays in the spool and how to upload it."""
        from ._pending_artifacts import describe_artifact

        entries = self.spool.entries()
        requests = [e for e in entries if e.kind != "artifact"]
        arts = [describe_artifact(e.record) for e in entries if e.kind == "artifact"]
        parts = []
        if requests:
            kinds: dict[str, int] = {}
            for e in requests:
                kinds[e.kind] = kinds.get(e.kind, 0) + 1
            parts.append(
                f"{len(requests)} request(s) ("
                + ", ".join(
                    f"{n} {k}"
                    for k, n in sorted(kinds.items(), key=lambda kv: (kv[0] != "run", kv[0]))
                )
                + ")"
            )
        if arts:
            more = f" and {len(arts) - 5} more" if len(arts) > 5 else ""
            parts.append(f"{len(arts)} artifact(s): {', '.join(arts[:5])}{more}")
        what = " and ".join(parts) or f"{self.pending()} request(s)"
        files = (
            "; the artifact files are not copied (unless small): keep them, unchanged, until then"
            if arts
            else ""
        )
        return (
            f"labledger: run {run_id[:8]} finished but {self.uri} took nothing from the spool "
            f"for {self.sync_timeout:.0f}s: {what} stay in the spool {self.spool.dir}. "
            f"Run `labledger sync` once the server is up to upload them{files}"
        )

    # -- reading -----------------------------------------------------------------------

    def resolve_run_id(self, ref: str) -> str:
        return str(self.get_run(ref)["id"])

    def get_run(self, ref: str) -> RunRecord:
        try:
            run: RunRecord = self._get_json(f"{API}/runs/{_q(ref)}")
        except (RunNotFoundError, AmbiguousRunError):
            raise
        except NotFoundError as exc:  # a server that does not send the error's type
            if "ambiguous" in str(exc):
                raise AmbiguousRunError(ref, []) from exc
            raise RunNotFoundError(ref) from exc
        return run

    def list_runs(
        self,
        *,
        project: str | None = None,
        filter: str | Node | None = None,
        order_by: str | list[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        projects: Sequence[str] | None = None,
    ) -> list[RunRecord]:
        if projects is not None:
            if not projects:
                return []
            filter = _in_projects(projects, filter)
        out: list[RunRecord] = []
        page = 1000
        while True:
            want = page if limit is None else min(page, limit - len(out))
            if want <= 0:
                return out
            params: dict[str, Any] = {"limit": want, "offset": offset + len(out), "total": "false"}
            if project is not None:
                params["project"] = project
            if filter:
                params["filter"] = _filter_text(filter)
            if order_by:
                params["order_by"] = [order_by] if isinstance(order_by, str) else list(order_by)
            runs = self._search(params)["runs"]
            out.extend(runs)
            if len(runs) < want:
                return out

    def count_runs(
        self,
        *,
        project: str | None = None,
        filter: str | Node | None = None,
        projects: Sequence[str] | None = None,
        cap: int | None = None,
    ) -> int:
        if projects is not None:
            if not projects:
                return 0
            filter = _in_projects(projects, filter)
        params: dict[str, Any] = {"limit": 1, "total_cap": cap or 0}
        if project is not None:
            params["project"] = project
        if filter:
            params["filter"] = _filter_text(filter)
        return int(self._search(params)["total"])

    def _search(self, params: dict[str, Any]) -> Any:
        """GET /runs, or POST /runs/search when the filter is too long for a URL."""
        if len(params.get("filter") or "") <= _URL_FILTER_MAX:
            return self._get_json(f"{API}/runs", params)
        body = dict(params)
        body["total"] = str(body.get("total", "true")) != "false"
        resp = self._request("POST", f"{API}/runs/search", json_body=body)
        return decode_json(resp.json())

    def history(self, run_id: str, key: str, max_points: int | None = None) -> History:
        params: dict[str, Any] = {"key": key}
        if max_points is not None:
            params["max_points"] = max_points
        if _has_pyarrow():
            # the raw arrays as Arrow IPC, no per-value JSON (a 10M-point series is 240 MB
            # of arrays, and several times that as JSON text)
            params["format"] = "arrow"
        try:
            resp = self._request("GET", f"{API}/runs/{_q(run_id)}/history", params=params)
        except NotFoundError as exc:
            raise RunNotFoundError(run_id) from exc
        if resp.headers.get("content-type", "").startswith("application/vnd.apache.arrow"):
            return History.from_arrow(resp.content, key=key)
        body = decode_json(resp.json())  # JSON asked for, or an older server's answer
        values = [float(v) if isinstance(v, str) else v for v in body["values"]]
        return History(
            body["run_id"],
            key,
            np.asarray(body["steps"], dtype=np.int64),
            np.asarray(values, dtype=np.float64),
            np.asarray(body["timestamps"], dtype=np.float64),
            int(body["total"]),
        )

    def metric_keys(self, run_id: str) -> list[str]:
        return list(self._get_json(f"{API}/runs/{_q(run_id)}/metrics")["keys"])

    def projects(self) -> list[dict[str, Any]]:
        return list(self._get_json(f"{API}/projects")["projects"])

    def media(
        self,
        run_id: str,
        key: str | None = None,
        *,
        step: int | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 10_000
        while True:
            want = page if limit is None else min(page, limit - len(out))
            if want <= 0:
                return out
            params: dict[str, Any] = {"offset": offset + len(out), "limit": want}
            if key is not None:
                params["key"] = key
            if step is not None:
                params["step"] = step
            got = self._get_json(f"{API}/runs/{_q(run_id)}/media", params=params)["items"]
            out.extend(got)
            if len(got) < want:
                return out

    def media_keys(self, run_id: str) -> list[dict[str, Any]]:
        return list(self._get_json(f"{API}/runs/{_q(run_id)}/media/keys")["keys"])

    def media_steps(self, run_id: str, key: str) -> list[int]:
        got = self._get_json(f"{API}/runs/{_q(run_id)}/media/steps", params={"key": key})
        return [int(s) for s in got["steps"]]

    def media_blob(self, run_id: str, sha256: str) -> bytes:
        data = self._request("GET", f"{API}/runs/{_q(run_id)}/media/blob/{_q(sha256)}").content
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise IntegrityError(f"rich result {sha256[:16]}", sha256, actual)
        return data

    def get_blob(self, sha256: str) -> bytes:
        data = self._request("GET", f"{API}/blobs/{_q(sha256)}").content
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise IntegrityError(f"blob {sha256[:16]}", sha256, actual)
        return data

    def reap_stale_runs(self, heartbeat_timeout: float | None = None) -> list[str]:
        """The server reaps stale runs itself (in the background and on reads): nothing to do here."""
        return []

    def whoami(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get_json(f"{API}/whoami")
        return result

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._client.close()
        if self._pending == 0:
            self.spool.close()


def replay_folder(
    folder: Path, *, uri: str | None = None, token: str | None = None, timeout: float = 30.0
) -> tuple[int, int, int, str]:
    """Upload the spooled requests of one session folder in order (``labledger sync``).

    ``uri`` overrides the server each request was meant for. Spooled artifacts go
    after every other request (their run must exist): their files are checked against
    the recorded sha256, their blobs uploaded, then their version registered. Returns
    (uploaded, rejected, left, reason) and stops at the first request the server cannot
    take now. :func:`replay_folder_counts` also counts the artifacts.
    """
    counts = replay_folder_counts(folder, uri=uri, token=token, timeout=timeout)
    return counts.uploaded, counts.rejected, counts.left, counts.reason


class ReplayCounts:
    """What one :func:`replay_folder_counts` did; ``artifacts`` counts registered versions."""

    def __init__(self) -> None:
        self.uploaded = self.rejected = self.left = self.artifacts = 0
        self.reason = ""
        self.refusals: list[str] = []  # one line per refused request: what, and why


def replay_folder_counts(
    folder: Path, *, uri: str | None = None, token: str | None = None, timeout: float = 30.0
) -> ReplayCounts:
    entries: list[SpoolEntry] = read_entries(folder)
    out = ReplayCounts()
    local = [e for e in entries if not _is_http(str(e.record.get("uri") or "http:"))]
    if local:  # outbox records of an SQLite/PostgreSQL store: written into it directly
        from ._outbox import replay_local

        written, rejected, left, reason, refusals = replay_local(local)
        out.uploaded += written
        out.rejected += rejected
        out.refusals.extend(refusals)
        if left:
            out.left, out.reason = left + len(entries) - len(local), reason
            return out
        entries = [e for e in entries if e not in local]
    ordered = [e for e in entries if e.kind != "artifact"] + [
        e for e in entries if e.kind == "artifact"
    ]
    stores: dict[str, HttpStore] = {}
    by_target: list[tuple[str, list[SpoolEntry]]] = []
    for entry in ordered:
        target = uri or str(entry.record.get("uri") or "")
        if not target:
            reason = "no server URI in the spool file"
            reject(entry.path, reason)
            out.rejected += 1
            out.refusals.append(f"{_describe(entry)}: {reason}")
            continue
        if by_target and by_target[-1][0] == target:
            by_target[-1][1].append(entry)
        else:
            by_target.append((target, [entry]))
    total = sum(len(g) for _, g in by_target)
    try:
        done = 0
        for target, group in by_target:
            store = stores.get(target)
            if store is None:
                store = stores[target] = HttpStore(
                    target, token=token, timeout=timeout, spool_dir=folder.parent
                )
            for entry, result, info in store.send_entries(store._client, group):
                if result == SendResult.AUTH:
                    out.left = total - done
                    out.reason = str(
                        auth_fix(target, _status_of(str(info)), store.token, str(info))
                    )
                    return out
                if result == SendResult.RETRY:
                    out.left, out.reason = total - done, str(info)
                    return out
                done += 1
                if result == SendResult.REJECTED:
                    reject(entry.path, str(info))
                    out.rejected += 1
                    out.refusals.append(f"{_describe(entry)}: {info}")
                else:
                    entry.path.unlink(missing_ok=True)
                    out.uploaded += 1
                    out.artifacts += entry.kind == "artifact"
    finally:
        for st in stores.values():
            st._client.close()
    return out


def _is_http(uri: str) -> bool:
    return uri.split(":", 1)[0].lower() in ("http", "https")


def _describe(entry: SpoolEntry) -> str:
    """A spooled request in a few words (for the one line that reports its refusal)."""
    run_id = str(entry.record.get("run_id") or "")
    return f"{entry.kind}" + (f" of run {run_id[:8]}" if run_id else "") + f" ({entry.path.name})"


def _has_pyarrow() -> bool:
    """Whether pyarrow can be imported (found, not imported: labledger never needs it)."""
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None
