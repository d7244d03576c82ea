"""Edits and the audit chain over HTTP: the client half of :mod:`labledger.server.routes_trust`.

The server does the work (it owns the database and the chain); the client only asks.
Edits are made as the token's user: the server never takes an author from the client.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .._values import encode_json

if TYPE_CHECKING:
    import httpx

__all__ = ["HttpAuditMixin"]

API = "/api/v1"


class HttpAuditMixin:
    """``edit_run``, ``verify_run``, ``audit_verify`` and ``audit_head`` of :class:`~labledger.remote.http.HttpStore`."""

    if TYPE_CHECKING:

        def _request(self, method: str, path: str, **kw: Any) -> httpx.Response: ...

        def _get_json(self, path: str, params: Any = None) -> Any: ...

    def edit_run(
        self,
        ref: str,
        *,
        notes: str | None = None,
        add_tags: Sequence[str] = (),
        remove_tags: Sequence[str] = (),
        summary: dict[str, Any] | None = None,
        actor: str | None = None,  # ignored: the server records the token's user
        reason: str | None = None,
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"add_tags": list(add_tags), "remove_tags": list(remove_tags)}
        if reason:
            body["reason"] = reason
        if notes is not None:
            body["notes"] = notes
        if summary:
            body["summary"] = encode_json(summary)
        resp = self._request("POST", f"{API}/runs/{quote(ref, safe='')}/edits", json_body=body)
        edits: list[dict[str, Any]] = resp.json()["edits"]
        return edits

    def audit_verify(self, project: str | None = None, head: str | None = None) -> dict[str, Any]:
        params = {k: v for k, v in (("project", project), ("head", head)) if v is not None}
        result: dict[str, Any] = self._get_json(f"{API}/audit/verify", params=params)
        return result

    def verify_run(self, ref: str) -> dict[str, Any]:
        result: dict[str, Any] = self._get_json(f"{API}/runs/{quote(ref, safe='')}/verify")
        return result

    def audit_head(self, project: str | None = None) -> list[dict[str, Any]]:
        params = {"project": project} if project is not None else None
        heads: list[dict[str, Any]] = self._get_json(f"{API}/audit/head", params=params)["heads"]
        return heads
