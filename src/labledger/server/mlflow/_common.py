"""Shared pieces of the MLflow REST layer: its error shape, request parsing, value mapping.

MLflow answers errors as ``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": ...}``
with the status code its client expects; :class:`MlflowRoute` turns every exception a
route raises (labledger's own included) into that shape, so the unchanged client
raises the ``RestException`` it would raise against ``mlflow server``.
"""

from __future__ import annotations

import base64
import json
import logging
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from ..._exceptions import AuthError, LabledgerError, NotFoundError, RunFinishedError
from ..._limits import parse_json_body
from ..._mlflow_map import STATUS_FROM_MLFLOW, STATUS_TO_MLFLOW, param_text, type_param
from ..errors import ApiError

__all__ = [
    "STATUS_FROM_MLFLOW",
    "STATUS_TO_MLFLOW",
    "MlflowError",
    "MlflowRoute",
    "flatten",
    "float_to_json",
    "invalid_value",
    "json_float",
    "json_int",
    "json_list",
    "json_str",
    "max_results",
    "page_offset",
    "page_token",
    "param_text",
    "read_params",
    "require_str",
    "type_param",
]

log = logging.getLogger("labledger.server.mlflow")

_STATUS_OF_CODE = {
    "INVALID_PARAMETER_VALUE": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "BAD_REQUEST": 400,
    "INVALID_STATE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "INTERNAL_ERROR": 500,
    "TEMPORARILY_UNAVAILABLE": 503,
}


class MlflowError(Exception):
    """An error answered in MLflow's shape (``error_code`` decides the status code)."""

    def __init__(self, error_code: str, message: str) -> None:
        self.error_code = error_code
        self.status = _STATUS_OF_CODE.get(error_code, 400)
        self.message = message
        super().__init__(message)


def _as_mlflow(exc: Exception) -> MlflowError:
    if isinstance(exc, MlflowError):
        return exc
    if isinstance(exc, AuthError):
        code = "UNAUTHENTICATED" if exc.status_code == 401 else "PERMISSION_DENIED"
        return MlflowError(code, str(exc))
    if isinstance(exc, NotFoundError):
        return MlflowError("RESOURCE_DOES_NOT_EXIST", str(exc))
    if isinstance(exc, RunFinishedError):  # labledger seals a finished run (migrating.md)
        return MlflowError(
            "INVALID_STATE",
            f"{exc} (labledger seals a finished run's record in its audit chain; "
            "see docs/migrating.md)",
        )
    if isinstance(exc, LabledgerError):
        return MlflowError("INVALID_PARAMETER_VALUE", str(exc))
    if isinstance(exc, ApiError):
        codes = {404: "RESOURCE_DOES_NOT_EXIST", 403: "PERMISSION_DENIED", 401: "UNAUTHENTICATED"}
        return MlflowError(
            codes.get(
                exc.status, "INVALID_PARAMETER_VALUE" if exc.status < 500 else "INTERNAL_ERROR"
            ),
            exc.message,
        )
    # (a value the database refuses is ValueRejectedError, a LabledgerError, from the store)
    log.exception("unhandled error in the MLflow API", exc_info=exc)
    return MlflowError("INTERNAL_ERROR", f"internal server error: {type(exc).__name__}")


def error_response(exc: Exception) -> JSONResponse:
    err = _as_mlflow(exc)
    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
    return JSONResponse(
        {"error_code": err.error_code, "message": err.message},
        status_code=err.status,
        headers=headers,
    )


class MlflowRoute(APIRoute):
    """A route that authenticates first (401 before anything is looked up) and whose
    failures (dependencies included) answer in MLflow's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                from starlette.concurrency import run_in_threadpool

                from ..auth import principal

                await run_in_threadpool(principal, request)
                return await inner(request)
            except Exception as exc:  # every failure is reported to the client, in one shape
                return error_response(exc)

        return handler


async def read_params(request: Request) -> dict[str, Any]:
    """The request's fields: the query string for GET, the JSON body otherwise (both merged)."""
    params: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        params[key] = values if len(values) > 1 or key.endswith("_ids") else values[0]
    if request.method != "GET":
        raw = await request.body()
        if raw.strip():
            body = parse_json_body(raw)  # UsageError/LimitExceededError: INVALID_PARAMETER_VALUE
            if not isinstance(body, dict):
                raise MlflowError(
                    "INVALID_PARAMETER_VALUE",
                    f"the request body must be a JSON object, not {_json_type(body)}",
                )
            params.update(body)
    return params


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def invalid_value(name: str, value: Any) -> MlflowError:
    """MLflow's own wording for a field of the wrong type, so that clients and tests that
    match it keep working: ``Invalid value 31 for parameter 'key' supplied``."""
    return MlflowError(
        "INVALID_PARAMETER_VALUE",
        f"Invalid value {json.dumps(value)} for parameter '{name}' supplied. Hint: Value was "
        f"of type '{type(value).__name__}'. See the API docs for more information about "
        "request parameters.",
    )


def json_list(params: dict[str, Any], name: str, *, of: type | None = None) -> list[Any]:
    """A repeated field: absent or null is empty; anything but a JSON array is refused,
    and so is an item that is not an ``of`` (a string field given once in a query
    string is a list of one)."""
    value = params.get(name)
    if value is None:
        return []
    if of is str and isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise invalid_value(name, value)
    if of is not None:
        for item in value:
            if not isinstance(item, of) or isinstance(item, bool):
                want = "strings" if of is str else "objects"
                raise MlflowError(
                    "INVALID_PARAMETER_VALUE",
                    f"'{name}' must be an array of {want}, got {_json_type(item)}",
                )
    return value


def json_str(params: dict[str, Any], name: str) -> str | None:
    """An optional string field: absent or null is None; another type is refused."""
    value = params.get(name)
    if value is None or isinstance(value, str):
        return value
    raise invalid_value(name, value)


def max_results(params: dict[str, Any], default: int, most: int = 50000) -> int:
    """``max_results``: 1..``most`` (``default`` when absent)."""
    limit = json_int(params.get("max_results"), "max_results", default)
    assert limit is not None
    if not 0 < limit <= most:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            f"Invalid value {limit} for parameter 'max_results' supplied. It must be at most"
            f" {most}, and positive.",
        )
    return limit


def require_str(params: dict[str, Any], *names: str) -> str:
    """The first of ``names`` present as a non-empty string (INVALID_PARAMETER_VALUE if none)."""
    for name in names:
        value = params.get(name)
        if isinstance(value, str) and value:
            return value
    for name in names:
        value = params.get(name)
        if value is not None and not isinstance(value, str):
            raise invalid_value(name, value)
    raise MlflowError(
        "INVALID_PARAMETER_VALUE", f"Missing value for required parameter '{names[0]}'."
    )


def json_int(value: Any, name: str, default: int | None = None) -> int | None:
    """An int64 field (protobuf JSON sends them as numbers or as strings)."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise invalid_value(name, value)
    try:
        out = int(value) if not isinstance(value, float) or value.is_integer() else None
    except (TypeError, ValueError):
        out = None
    if out is None or not -(2**63) <= out < 2**63:
        raise invalid_value(name, value)
    return out


_SPECIAL = {"nan": math.nan, "infinity": math.inf, "-infinity": -math.inf, "inf": math.inf}


def json_float(value: Any, name: str) -> float:
    """A double field: a JSON number or protobuf's ``"NaN"``, ``"Infinity"``, ``"-Infinity"``."""
    if isinstance(value, bool) or value is None:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"'{name}' must be a number, got {value!r}")
    if isinstance(value, float):
        return value
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise MlflowError(
                "INVALID_PARAMETER_VALUE", f"'{name}' does not fit a double (|value| <= 1.8e308)"
            ) from None
    if isinstance(value, str):
        special = _SPECIAL.get(value.strip().lower())
        if special is not None:
            return special
        try:
            return float(value)
        except ValueError:
            pass
    raise MlflowError("INVALID_PARAMETER_VALUE", f"'{name}' must be a number, got {value!r}")


def float_to_json(value: float | None) -> Any:
    """Protobuf's JSON for a double: non-finite values as strings."""
    if value is None:
        return None
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def flatten(config: dict[str, Any]) -> dict[str, Any]:
    """Nested config as MLflow's flat params: ``{"model": {"hidden": 8}}`` -> ``model.hidden``."""
    from ..._values import flatten as flat

    return flat(config)


def page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def page_offset(token: Any) -> int:
    if not token:
        return 0
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(str(token).encode()))["offset"])
    except (ValueError, KeyError, TypeError, OverflowError):
        raise MlflowError("INVALID_PARAMETER_VALUE", f"invalid page_token {token!r}") from None
    if offset < 0:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"invalid page_token {token!r}")
    return offset
