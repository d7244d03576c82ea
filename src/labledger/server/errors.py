"""One JSON shape for every error response: ``{"code", "message", "details"}``.

A labledger exception also travels as ``details["error"] = {"type", "fields"}`` (see
:func:`labledger._exceptions.error_to_wire`), so the HTTP client raises the same class
with the same fields (an ambiguous prefix, a filter error with its position...).

A body that is not JSON, not UTF-8, nested too deep or holding a number no back end
stores is answered 400 (``bad_request``); a body that is JSON but does not match the
route's model 422 (``invalid_request``). Paths of the MLflow API (:data:`MLFLOW_PREFIXES`)
answer every error, a missing route included, in MLflow's shape
``{"error_code", "message"}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._exceptions import (
    AuthError,
    LabledgerError,
    NotFoundError,
    PolicyViolationError,
    RunFinishedError,
    RunIdTakenError,
    StoreUnavailableError,
    UsageError,
    error_to_wire,
)

__all__ = ["MLFLOW_PREFIXES", "ApiError", "error_body", "install_error_handlers", "mlflow_body"]

log = logging.getLogger("labledger.server")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal",
    503: "unavailable",
}


class ApiError(Exception):
    """Raise from a route to answer with the common error shape."""

    def __init__(
        self, status: int, message: str, code: str | None = None, details: Any = None
    ) -> None:
        self.status = status
        self.code = code or _HTTP_CODES.get(status, "error")
        self.message = message
        self.details = details
        super().__init__(message)


MLFLOW_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/", "/api/3.0/")
_MLFLOW_CODES = {
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    405: "ENDPOINT_NOT_FOUND",
    503: "TEMPORARILY_UNAVAILABLE",
}


def mlflow_body(status: int, message: str) -> dict[str, str]:
    """MLflow's error shape for an answer of ``status``."""
    code = _MLFLOW_CODES.get(status) or (
        "INTERNAL_ERROR" if status >= 500 else "INVALID_PARAMETER_VALUE"
    )
    return {"error_code": code, "message": message}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details if details is not None else {}}


def _typed(exc: LabledgerError) -> dict[str, Any]:
    """``{"error": {"type", "fields"}}``: what the client needs to raise ``exc`` again."""
    return {"error": error_to_wire(exc)}


def _respond(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
    request: Request | None = None,
) -> JSONResponse:
    if request is not None and request.url.path.startswith(MLFLOW_PREFIXES):
        return JSONResponse(mlflow_body(status, message), status_code=status, headers=headers)
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


def _allowed_methods(request: Request, default: str) -> str:
    """Every method the description gives this path (Starlette names only the methods of
    the first route that matched, so ``GET`` and ``PUT`` of one path declared apart
    answered ``Allow: GET``); ``default`` for a path it does not describe. As in OpenAPI,
    the most concrete templates win (``/runs/search`` over ``/runs/{ref}``)."""
    parts = request.url.path.rstrip("/").split("/")
    best, methods = -1, set[str]()
    for template, ops in request.app.openapi().get("paths", {}).items():
        segments = template.rstrip("/").split("/")
        if len(segments) != len(parts):
            continue
        variable = [s.startswith("{") and s.endswith("}") for s in segments]
        if not all((v and p) or s == p for s, p, v in zip(segments, parts, variable, strict=True)):
            continue
        literal = variable.count(False)
        if literal > best:
            best, methods = literal, set()
        if literal == best:
            methods |= {m.upper() for m in ops}
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods)) if methods else default


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _respond(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(AuthError)
    async def _auth_error(request: Request, exc: AuthError) -> JSONResponse:
        code = exc.code or ("unauthorized" if exc.status_code == 401 else "forbidden")
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return _respond(exc.status_code, code, str(exc), _typed(exc), headers=headers)

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return _respond(404, "not_found", str(exc), _typed(exc))

    @app.exception_handler(RunFinishedError)
    async def _finished(request: Request, exc: RunFinishedError) -> JSONResponse:
        details = {"run_id": exc.run_id, "status": exc.status, "detail": exc.detail}
        return _respond(409, "run_finished", str(exc), details)

    @app.exception_handler(PolicyViolationError)
    async def _policy(request: Request, exc: PolicyViolationError) -> JSONResponse:
        return _respond(422, "policy_violation", exc.message, {"missing": exc.missing})

    @app.exception_handler(RunIdTakenError)
    async def _taken(request: Request, exc: RunIdTakenError) -> JSONResponse:
        return _respond(409, "conflict", str(exc), _typed(exc))

    @app.exception_handler(UsageError)
    async def _usage(request: Request, exc: UsageError) -> JSONResponse:
        details = _typed(exc)
        pos = getattr(exc, "position", None)
        if pos is not None:
            details["position"] = pos
        return _respond(400, "bad_request", str(exc), details)

    @app.exception_handler(StoreUnavailableError)
    async def _unavailable(request: Request, exc: StoreUnavailableError) -> JSONResponse:
        return _respond(503, "unavailable", str(exc), _typed(exc))

    @app.exception_handler(LabledgerError)
    async def _other(request: Request, exc: LabledgerError) -> JSONResponse:
        return _respond(400, "bad_request", str(exc), _typed(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        bad_json = [e for e in exc.errors() if e.get("type") == "json_invalid"]
        if bad_json:  # not JSON at all: a bad body, not a body of the wrong shape
            reason = (bad_json[0].get("ctx") or {}).get("error", "")
            message = f"the request body is not JSON: {reason}".rstrip(": ")
            return _respond(400, "bad_request", message, {"errors": errors}, request=request)
        return _respond(
            422, "invalid_request", "the request is not valid", {"errors": errors}, request=request
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        cause = exc.__cause__
        if exc.status_code == 400 and isinstance(cause, LabledgerError):
            # FastAPI wraps what the body parse (server/_body.py) refused
            return _respond(400, "bad_request", str(cause), _typed(cause), request=request)
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request, headers.get("Allow", ""))
        return _respond(
            exc.status_code,
            _HTTP_CODES.get(exc.status_code, "error"),
            str(exc.detail),
            headers=headers or None,
            request=request,
        )

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _respond(500, "internal", "internal server error", request=request)
