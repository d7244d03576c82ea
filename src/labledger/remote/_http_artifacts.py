"""Artifacts and reproduction verdicts over HTTP: the client half of
:mod:`labledger.server.routes_artifacts`.

- :class:`HttpBlobStore` is the :class:`~labledger.artifacts.BlobStore` protocol spoken to a
  tracking server: uploads and downloads stream in 1 MiB chunks (never a whole file in
  memory), the server verifies the sha256 of every upload and the client verifies every
  download, and transport errors or 5xx answers are retried with backoff.
- :class:`HttpArtifactsMixin` gives :class:`~labledger.remote.http.HttpStore` the
  artifact-metadata and verdict methods of the Store protocol. Version dicts read through
  the server carry ``storage`` = the server's URL: their bytes are read through it too.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar, cast
from urllib.parse import quote

import httpx

from .._exceptions import (
    AuthError,
    IntegrityError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
    error_from_wire,
)
from .._settings import setting
from .._values import encode_json

__all__ = ["HttpArtifactsMixin", "HttpBlobStore"]

API = "/api/v1"
CHUNK = 1024 * 1024
RETRIES = 4
_T = TypeVar("_T")


def _q(part: str) -> str:
    return quote(part, safe="")


def _message(resp: httpx.Response) -> tuple[str, str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return "error", resp.text[:200], {}
    if not isinstance(body, dict):
        return "error", str(body)[:200], {}
    return str(body.get("code", "error")), str(body.get("message", "")), body.get("details") or {}


class _Retryable(Exception):
    pass


# nothing was sent: the server is down or unreachable, retrying at once will not help
_UNREACHABLE = (httpx.ConnectError, httpx.ConnectTimeout)


class _ResponseReader(io.RawIOBase):
    """A streamed HTTP response body as a binary file object (``read``/``readinto``/``close``)."""

    def __init__(self, resp: httpx.Response) -> None:
        self._resp = resp
        self._chunks = resp.iter_bytes(CHUNK)
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        if not self._left:
            self._left = next(self._chunks, b"")
            if not self._left:
                return 0
        n = min(len(view), len(self._left))
        view[:n] = self._left[:n]
        self._left = self._left[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._resp.close()
        super().close()


def new_http_client(
    base_url: str,
    headers: Mapping[str, str],
    timeout: httpx.Timeout,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """The client every labledger HTTP call uses: keep-alive, TCP_NODELAY.

    TCP_NODELAY: a request goes out as headers then body; with Nagle the body's last
    segment waits for the server's delayed ACK (~40 ms) on every request.
    """
    return httpx.Client(
        base_url=base_url,
        headers=dict(headers),
        timeout=timeout,
        transport=transport
        or httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]),
    )


class HttpBlobStore:
    """Blobs kept by a labledger tracking server (``PUT/GET/HEAD /api/v1/artifact-blobs/{sha}``)."""

    def __init__(
        self,
        uri: str,
        *,
        token: str | None = None,
        timeout: float = 300.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.uri = uri.rstrip("/")
        token = token if token is not None else setting("LABLEDGER_TOKEN") or None
        headers = {"User-Agent": "labledger-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._headers = headers
        self._timeout = httpx.Timeout(timeout, connect=min(10.0, timeout))
        self._transport = transport
        self._client = new_http_client(self.uri, headers, self._timeout, transport)
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        # same settings as the parent's client (TCP_NODELAY, an injected transport)
        self._client = new_http_client(self.uri, self._headers, self._timeout, self._transport)

    def __repr__(self) -> str:
        return f"HttpBlobStore({self.uri!r})"

    def close(self) -> None:
        self._client.close()

    # -- plumbing ------------------------------------------------------------------------

    def _fail(self, resp: httpx.Response, what: str) -> None:
        """Raise the labledger error for an answer >= 400 (_Retryable for 5xx/429)."""
        code, msg, details = _message(resp)
        status = resp.status_code
        if status >= 500 or status in (408, 429):
            raise _Retryable(f"HTTP {status}: {msg}")
        typed = error_from_wire(details.get("error")) if isinstance(details, dict) else None
        if typed is not None:
            raise typed
        if status in (401, 403):
            raise AuthError(msg or "not authorised", status)
        if status == 404:
            raise NotFoundError(msg or f"{what}: not found on {self.uri}")
        if code == "integrity":
            raise IntegrityError(
                what, str(details.get("expected", "")), str(details.get("actual", "unknown"))
            )
        raise StoreError(f"{self.uri}: {what}: HTTP {status} {code}: {msg}")

    def _retrying(self, what: str, fn: Callable[[], _T]) -> _T:
        """Retry 5xx answers and dropped connections with backoff; a server that cannot be
        reached at all (refused, connect timeout) fails at once: the caller spools."""
        delay = 0.25
        for attempt in range(RETRIES):
            try:
                return fn()
            except (httpx.TransportError, _Retryable) as exc:
                if attempt == RETRIES - 1 or isinstance(exc, _UNREACHABLE):
                    raise StoreUnavailableError(
                        self.uri, f"{what}: {type(exc).__name__}: {exc}"
                    ) from exc
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _path(self, sha: str) -> str:
        from ..artifacts import check_sha

        return f"{API}/artifact-blobs/{check_sha(sha)}"

    # -- the BlobStore protocol ------------------------------------------------------------

    def has(self, sha: str) -> bool:
        def go() -> bool:
            resp = self._client.head(self._path(sha))
            if resp.status_code == 404:
                return False
            if resp.status_code >= 400:
                self._fail(resp, f"blob {sha[:16]}")
            return True

        return self._retrying(f"check blob {sha[:12]}", go)

    def put_file(self, path: str | os.PathLike[str], sha: str, size: int) -> None:
        """Stream the file to the server, which refuses it unless it hashes to ``sha``."""
        target = self._path(sha)
        source = os.fspath(path)

        def body() -> Iterator[bytes]:
            with open(source, "rb") as fh:
                while True:
                    chunk = fh.read(CHUNK)
                    if not chunk:
                        return
                    yield chunk

        def go() -> None:
            resp = self._client.put(
                target,
                content=body(),
                params={"size": size},
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            )
            if resp.status_code >= 400:
                self._fail(resp, f"file {source!r} (it changed after it was logged)")

        self._retrying(f"upload blob {sha[:12]}", go)

    def open(self, sha: str) -> BinaryIO:
        def go() -> BinaryIO:
            resp = self._client.send(
                self._client.build_request("GET", self._path(sha)), stream=True
            )
            if resp.status_code >= 400:
                try:
                    resp.read()
                    self._fail(resp, f"blob {sha[:16]}")
                finally:
                    resp.close()
            return cast(BinaryIO, _ResponseReader(resp))

        return self._retrying(f"download blob {sha[:12]}", go)

    def download(self, sha: str, dest: str | os.PathLike[str]) -> None:
        from ..artifacts import atomic_download

        def go() -> None:
            stream = self.open(sha)
            try:
                atomic_download(stream, sha, dest, f"blob {sha[:16]}… from {self.uri}")
            finally:
                stream.close()

        self._retrying(f"download blob {sha[:12]}", go)

    def delete(self, sha: str) -> None:
        def go() -> None:
            resp = self._client.delete(self._path(sha))
            if resp.status_code >= 400 and resp.status_code != 404:
                self._fail(resp, f"blob {sha[:16]}")

        self._retrying(f"delete blob {sha[:12]}", go)

    def touch(self, sha: str) -> None:
        with contextlib.suppress(httpx.HTTPError, StoreError):
            resp = self._client.post(f"{self._path(sha)}/touch")
            if resp.status_code >= 400 and resp.status_code not in (401, 403, 404):
                self._fail(resp, f"blob {sha[:16]}")

    def iter_blobs(self) -> Iterator[Any]:
        from ..artifacts import BlobInfo

        with self._client.stream("GET", f"{API}/artifact-blobs") as resp:
            if resp.status_code >= 400:
                resp.read()
                self._fail(resp, "the blob list")
            for line in resp.iter_lines():
                if line.strip():
                    d = json.loads(line)
                    yield BlobInfo(str(d["sha256"]), int(d["size"]), float(d["modified"]))

    def iter_shas(self) -> Iterator[str]:
        return (b.sha256 for b in self.iter_blobs())


class HttpArtifactsMixin:
    """Artifact-metadata and verdict methods of :class:`~labledger.remote.http.HttpStore`."""

    if TYPE_CHECKING:
        uri: str

        def _request(self, method: str, path: str, **kw: Any) -> httpx.Response: ...

        def _get_json(self, path: str, params: Any = None) -> Any: ...

    def _version(self, v: dict[str, Any]) -> dict[str, Any]:
        v["storage"] = self.uri  # its bytes are read through this server
        return v

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        from .._values import decode_json

        kw: dict[str, Any] = {} if body is None else {"json_body": encode_json(body)}
        try:
            resp = self._request(method, path, **kw)
        except NotFoundError as exc:
            from .._exceptions import ArtifactNotFoundError

            if isinstance(exc, ArtifactNotFoundError):
                raise  # typed by the server
            if "artifact" in str(exc) or "version" in str(exc):
                raise ArtifactNotFoundError(path.rsplit("/", 1)[-1], str(exc)) from None
            raise
        return decode_json(resp.json())

    def create_artifact_version(
        self,
        project: str,
        name: str,
        kind: str,
        run_id: str | None,
        manifest: Sequence[dict[str, Any]],
        metadata: dict[str, Any] | None = None,
        *,
        storage: str | None = None,  # the server records where it keeps the bytes
        late: bool = False,
    ) -> dict[str, Any]:
        from ..store import validate_kind, validate_name

        validate_name(project, "project")
        validate_name(name)
        validate_kind(kind)
        body: dict[str, Any] = {
            "kind": kind,
            "run_id": run_id,
            "manifest": list(manifest),
            "metadata": metadata or {},
        }
        if late:
            body["late"] = True
        return self._version(
            self._json("POST", f"{API}/projects/{_q(project)}/artifacts/{_q(name)}/versions", body)
        )

    def get_artifact_version(self, project: str, ref: str) -> dict[str, Any]:
        from .._exceptions import ArtifactNotFoundError
        from ..store import parse_ref

        # the project named in the ref wins: the server checks the role on that one
        project = parse_ref(ref).project or project
        try:
            v = self._get_json(f"{API}/projects/{_q(project)}/artifact-ref", {"ref": ref})
        except NotFoundError as exc:
            raise ArtifactNotFoundError(
                ref if "/" in ref else f"{project}/{ref}", str(exc)
            ) from None
        return self._version(v)

    def get_artifact_version_by_id(self, version_id: str) -> dict[str, Any]:
        from .._exceptions import ArtifactNotFoundError

        try:
            return self._version(self._get_json(f"{API}/artifact-versions/{_q(version_id)}"))
        except NotFoundError:
            raise ArtifactNotFoundError(version_id, "no such version id") from None

    def list_artifact_versions(
        self, project: str | None = None, name: str | None = None
    ) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("project", project), ("name", name)) if v is not None}
        return [
            self._version(v) for v in self._get_json(f"{API}/artifact-versions", params)["versions"]
        ]

    def list_run_artifacts(self, run_id: str) -> dict[str, list[dict[str, Any]]]:
        out = self._get_json(f"{API}/runs/{_q(run_id)}/artifacts")
        return {k: [self._version(v) for v in out[k]] for k in ("produced", "consumed")}

    def set_artifact_alias(
        self, project: str, name: str, version: int, alias: str
    ) -> dict[str, Any]:
        from ..store import validate_alias

        validate_alias(alias)
        path = f"{API}/projects/{_q(project)}/artifacts/{_q(name)}/aliases/{_q(alias)}"
        return self._version(self._json("PUT", path, {"version": int(version)}))

    def record_artifact_use(self, run_id: str, version_id: str) -> None:
        self._json("POST", f"{API}/runs/{_q(run_id)}/artifact-uses", {"version_id": version_id})

    def artifact_consumers(self, version_id: str) -> list[str]:
        return list(self._get_json(f"{API}/artifact-versions/{_q(version_id)}/consumers")["runs"])

    def delete_artifact_version(self, project: str, ref: str) -> dict[str, Any]:
        from .._exceptions import ArtifactNotFoundError
        from ..store import parse_ref

        project = parse_ref(ref).project or project
        try:
            resp = self._request(
                "DELETE", f"{API}/projects/{_q(project)}/artifact-ref?ref={_q(ref)}"
            )
        except NotFoundError as exc:
            raise ArtifactNotFoundError(ref, str(exc)) from None
        from .._values import decode_json

        return self._version(decode_json(resp.json()))

    def referenced_blob_shas(self) -> set[str]:
        return set(self._get_json(f"{API}/admin/referenced-blob-shas")["sha256"])

    def add_repro_verdict(self, verdict: dict[str, Any], *, by: str | None = None) -> str:
        # ``by`` is not sent: the server records the token's user
        return str(self._json("POST", f"{API}/repro-verdicts", dict(verdict))["id"])

    def repro_verdicts(self, run_ids: Sequence[str]) -> list[dict[str, Any]]:
        ids = list(dict.fromkeys(run_ids))
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), 200):
            for v in self._get_json(f"{API}/repro-verdicts", {"runs": ids[i : i + 200]})[
                "verdicts"
            ]:
                out[v["id"]] = v
        return sorted(out.values(), key=lambda v: (-float(v["created_at"]), v["id"]))
