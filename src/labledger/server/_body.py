"""The one parse of a JSON request body on the native API (``/api/v1``).

FastAPI reads a JSON body with ``Request.json()``; :class:`CheckedRoute` hands its
handler a :class:`CheckedRequest`, whose ``json()`` is
:func:`labledger._limits.parse_json_body`: strict UTF-8, nested at most
``MAX_BODY_DEPTH`` levels, every integer a float64 (``10**400`` is refused). What it
refuses is answered 400 in the common error shape (:mod:`labledger.server.errors`),
never a 500; field limits are then checked by the route's model (422). The MLflow
routes parse their bodies with the same function (``mlflow/_common.read_params``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BeforeValidator

from .._limits import parse_json_body

__all__ = ["CheckedRequest", "CheckedRoute", "JsonInt", "JsonNumber"]


def _not_bool(value: Any) -> Any:
    # pydantic's lax mode reads JSON true/false as 1/0 ("heartbeat_at": false was stored
    # as 0); JSON Schema's integer is any integral number, 5.0 included, never a boolean
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


JsonInt = Annotated[int, BeforeValidator(_not_bool)]
"""A JSON Schema ``integer``: ``5`` and ``5.0``, not ``true``."""
JsonNumber = Annotated[float, BeforeValidator(_not_bool)]
"""A JSON Schema ``number``: not ``true``."""


class CheckedRequest(Request):
    """A request whose JSON body is parsed by :func:`~labledger._limits.parse_json_body`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json_body(await self.body())
        return self._json


class CheckedRoute(APIRoute):
    """An API route whose JSON body goes through :class:`CheckedRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            return await inner(CheckedRequest(request.scope, request.receive))

        return handler
