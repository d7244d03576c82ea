"""The model registry over HTTP: the client half of :mod:`labledger.server.routes_registry`.

The server's write core applies every rule as the token's user (an alias move is an edit
event by that user); the client only asks. Renaming, describing, retagging and deleting
are offered by the server's MLflow API (``/api/2.0/mlflow/registered-models/...``), not
by this client: they raise :class:`UsageError` here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .._exceptions import NotFoundError, UsageError

if TYPE_CHECKING:
    import httpx

__all__ = ["HttpRegistryMixin"]

API = "/api/v1"


def _q(text: str) -> str:
    return quote(text, safe="")


def _not_here(what: str) -> UsageError:
    return UsageError(
        f"{what} is not offered by labledger's HTTP client: use the server's MLflow API "
        "(MlflowClient) or run it against the store itself"
    )


class HttpRegistryMixin:
    """``ModelRegistry`` of :class:`~labledger.remote.http.HttpStore`."""

    if TYPE_CHECKING:

        def _request(self, method: str, path: str, **kw: Any) -> httpx.Response: ...

        def _get_json(self, path: str, params: Any = None) -> Any: ...

    def create_registered_model(
        self,
        name: str,
        *,
        project: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        author: str | None = None,  # ignored: the server records the token's user
    ) -> dict[str, Any]:
        body = {"name": name, "description": description, "tags": dict(tags or {})}
        out: dict[str, Any] = self._request("POST", f"{API}/models", json_body=body).json()
        return out

    def registered_model(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self._get_json(f"{API}/models/{_q(name)}")
        return out

    def registered_models(self, projects: Sequence[str] | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._get_json(f"{API}/models")
        if projects is None:
            return found
        return [m for m in found if m.get("project") in (None, *projects)]

    def update_registered_model(
        self,
        name: str,
        *,
        new_name: str | None = None,
        description: Any = ...,
        set_tags: Mapping[str, str] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> dict[str, Any]:
        raise _not_here("changing a registered model")

    def delete_registered_model(self, name: str) -> None:
        raise _not_here("deleting a registered model")

    def create_model_version(
        self,
        name: str,
        *,
        run_id: str,
        artifact_version_id: str,
        project: str = "",  # the server's core takes the run's
        source: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        author: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "run_id": run_id,
            "artifact_version_id": artifact_version_id,
            "description": description,
            "tags": dict(tags or {}),
        }
        out: dict[str, Any] = self._request(
            "POST", f"{API}/models/{_q(name)}/versions", json_body=body
        ).json()
        return out

    def model_versions(
        self, name: str | None = None, *, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        if name is None:
            params = None if run_id is None else {"run_id": run_id}
            found: list[dict[str, Any]] = self._get_json(f"{API}/model-versions", params)
            return found
        out: list[dict[str, Any]] = self._get_json(f"{API}/models/{_q(name)}/versions")
        return [v for v in out if run_id is None or v["run_id"] == run_id]

    def model_version(self, name: str, version: int) -> dict[str, Any]:
        for v in self.model_versions(name):
            if v["version"] == int(version):
                return v
        raise NotFoundError(f"Model Version (name={name}, version={version}) not found")

    def model_version_by_alias(self, name: str, alias: str) -> dict[str, Any]:
        number = self.registered_model(name)["aliases"].get(alias)
        if number is None:
            raise NotFoundError(f"Registered model alias {alias} not found.")
        return self.model_version(name, int(number))

    def update_model_version(
        self,
        name: str,
        version: int,
        *,
        description: Any = ...,
        set_tags: Mapping[str, str] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> dict[str, Any]:
        raise _not_here("changing a model version")

    def delete_model_version(self, name: str, version: int) -> None:
        raise _not_here("deleting a model version")

    def set_model_alias(
        self, name: str, alias: str, version: int | None, *, actor: str | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = self._request(
            "PUT", f"{API}/models/{_q(name)}/aliases/{_q(alias)}", json_body={"version": version}
        ).json()
        return out

    def model_alias_events(self, name: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._get_json(f"{API}/models/{_q(name)}/alias-history")
        return out
