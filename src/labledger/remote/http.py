"""HttpStore: the Store protocol spoken to a labledger tracking server.

``LABLEDGER_URI=http://host:port`` (and ``LABLEDGER_TOKEN``) is all a training script
needs. Like every store, a write raises a typed error and keeps nothing by itself: the
tracking writer (``tracking/_writer.py``) owns retry, the outbox and catch-up.

- the server is down, times out or answers 5xx (or 408/425/429: transient faults):
  :class:`~labledger.StoreUnavailableError`;
- a refused token (401, or 403 other than ``not_owner``) is a configuration fault:
  :class:`~labledger.AuthError` naming the fix, and nothing more is sent;
- any other 4xx (a malformed batch, a value too long, a run the server never heard of,
  someone else's run): the server's own typed error when it sends one (``RunFinishedError``,
  ``LimitExceededError``, ...), else :class:`~labledger._exceptions.WriteRejectedError`.

Every batch carries its idempotency key, so a batch that is retried after a lost answer
is stored once. :func:`replay_folder_counts` (``labledger sync``, catch-up) replays outbox
session folders through ``POST /api/v1/replay``.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import os
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
    LabledgerError,
    NotFoundError,
    RunFinishedError,
    RunNotFoundError,
    StoreError,
    StoreUnavailableError,
    UsageError,
    WriteRejectedError,
    error_from_wire,
)
from .._settings import setting
from .._values import decode_json, encode_json, warn
from ..store import (
    BATCH_MEDIA_TYPE,
    GZIP_ABOVE,
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
from .spool import SendResult, SpoolEntry, read_entries, reject

if TYPE_CHECKING:
    from ..query import Node

__all__ = [
    "HttpBlobStore",
    "HttpStore",
    "ReplayCounts",
    "SendResult",
    "replay_folder",
    "replay_folder_counts",
]

log = logging.getLogger("labledger.http")

API = "/api/v1"
_STOP = frozenset({SendResult.RETRY, SendResult.AUTH})  # what stops a replay: keep the rest
_RETRY_STATUS = frozenset({408, 425, 429})
_AUTH_STATUS = frozenset({401, 403})
# a longer filter is sent in the body of POST /runs/search, not in the URL
_URL_FILTER_MAX = 2000
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
    """Store over HTTP (keep-alive, gzip above 64 KiB); a failed write raises, typed.

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
        # ``spool_dir`` and ``sync_timeout`` are accepted and unused: the store keeps
        # nothing itself (the tracking writer's outbox does, LABLEDGER_SYNC_TIMEOUT is its)
        del spool_dir, sync_timeout, migrate
        self.uri = uri.rstrip("/")
        self.token = token if token is not None else setting("LABLEDGER_TOKEN") or None
        headers = {"User-Agent": "labledger-client"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self._timeout = httpx.Timeout(timeout, connect=min(5.0, timeout))
        self._headers = headers
        self._transport = transport
        self._client = self._new_client()
        self._warned: set[str] = set()
        self._no_replay = False  # the server has no POST /replay (an older one)
        self._no_binary = False  # the server refused a binary batch (an older one): JSON
        self.fatal: AuthError | None = None  # the token was refused: nothing more is sent
        os.register_at_fork(after_in_child=self._after_fork)

    def _new_client(self) -> httpx.Client:
        return new_http_client(self.uri, self._headers, self._timeout, self._transport)

    def _after_fork(self) -> None:
        # never share sockets with a forked child
        self._client = self._new_client()

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

    # -- writing (raises; the tracking writer owns retry and the outbox) ---------------

    def _write(
        self,
        kind: str,
        method: str,
        path: str,
        body: Any,
        run_id: str | None,
        binary: Callable[[], bytes] | None = None,
    ) -> bool:
        """Send one write; True when the server applied it (False: a no-op it accepted).

        ``body`` is the JSON form (a callable makes it only when it is sent); ``binary``
        makes the form sent first, a batch's binary body. An older server answers 415 or
        422 to a body it cannot read: the JSON form is sent then, and when that one is
        taken this client keeps to JSON from there on. Raises on every failure (the
        tracking writer owns retry and the outbox)."""
        if self.fatal is not None:
            raise self.fatal
        record = {"kind": kind, "method": method, "path": path, "run_id": run_id}
        resp: httpx.Response | None = None
        try:
            if binary is not None and not self._no_binary:
                resp = self._send(
                    self._client, method, path, content=binary(), content_type=BATCH_MEDIA_TYPE
                )
                if resp.status_code in (415, 422):
                    resp = None
            if resp is None:
                json_body = body() if callable(body) else body
                if kind == "blob":
                    resp = self._send(
                        self._client,
                        method,
                        path,
                        content=base64.b64decode(str(json_body)),
                        content_type="application/octet-stream",
                    )
                else:
                    resp = self._send(self._client, method, path, json_body=json_body)
                    if binary is not None and not self._no_binary and resp.is_success:
                        self._no_binary = True  # JSON taken where binary was not: an older server
        except httpx.TransportError as exc:
            raise StoreUnavailableError(self.uri, f"{type(exc).__name__}: {exc}") from exc
        result = _classify(resp)
        if result == SendResult.OK:
            try:
                answer = resp.json()
            except ValueError:
                return True
            self._note_answer(record, answer)
            return not isinstance(answer, dict) or answer.get("applied", True) is not False
        eb = _error_body(resp)
        info = f"HTTP {resp.status_code} {eb.get('code')}: {eb.get('message')}"
        if result == SendResult.AUTH:
            self.fatal = auth_fix(self.uri, resp.status_code, self.token, info)
            raise self.fatal
        if result == SendResult.RETRY:
            raise StoreUnavailableError(self.uri, info)
        try:
            self._raise(resp, path)
        except (UsageError, RunFinishedError):
            raise  # the server's own typed refusal (a value too long, an ended run)
        except LabledgerError as exc:
            raise WriteRejectedError(self.uri, info, resp.status_code) from exc
        raise WriteRejectedError(self.uri, info, resp.status_code)

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
        return applied

    def put_blob(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self._write("blob", "PUT", f"{API}/blobs", base64.b64encode(data).decode("ascii"), None)
        return digest

    def send_entries(
        self, client: httpx.Client | None, entries: list[SpoolEntry], *, note: bool = False
    ) -> Iterator[tuple[SpoolEntry, str, Any]]:
        """Send spooled requests in order; yield ``(entry, result, info)`` for each one sent.

        ``note``: say what the server's answers mean (a run its policy recorded as failed),
        as a direct write does; the tracking writer asks for it, ``labledger sync`` not."""
        for entry, result, info in self._send_entries(client, entries):
            if note and result == SendResult.OK:
                self._note_answer(entry.record, info)
            yield entry, result, info

    def _send_entries(
        self, client: httpx.Client | None, entries: list[SpoolEntry]
    ) -> Iterator[tuple[SpoolEntry, str, Any]]:
        """Send spooled requests in order; yield ``(entry, result, info)`` for each one sent.

        Consecutive run creations and batches go many per round trip through
        ``POST /api/v1/replay`` (:data:`REPLAY_ITEMS` requests or :data:`REPLAY_BYTES`
        at most); blobs and artifacts one by one. Stops after the first RETRY: what follows
        it stays in the spool, so a run's order is kept. ``client`` None: this store's."""
        client = client or self._client
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
        self._client.close()


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
                store = stores[target] = HttpStore(target, token=token, timeout=timeout)
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
