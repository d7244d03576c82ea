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
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from .._limits import parse_json_body

__all__ = ["CheckedRequest", "CheckedRoute"]


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
