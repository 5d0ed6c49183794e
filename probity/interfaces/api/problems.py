"""RFC 9457 problem+json for every error the API returns.

Services raise ``ProbityError`` subclasses; this is the only place they become HTTP. Each
problem carries the error's stable ``code`` (the same one the CLI prints), a ``type`` URI
built from it, and a human ``detail``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from probity.errors import ProbityError, RateLimited, Unauthenticated
from probity.interfaces.api.schemas import Problem
from probity.interfaces.web.common import error_page, is_page

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("probity.api")

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Not permitted",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal error",
}


def _documented(statuses: tuple[int, ...]) -> dict[int | str, dict[str, Any]]:
    schema = Problem.model_json_schema()
    return {
        status: {
            "description": _TITLES[status] + " (RFC 9457 problem details)",
            "content": {PROBLEM_JSON: {"schema": schema}},
        }
        for status in statuses
    }


ERROR_RESPONSES = _documented((400, 401, 403, 404, 409, 413, 422, 429, 500))
"""Declared on every API route, so the OpenAPI document lists each error a client can get."""


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:probity:problem:{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        "instance": instance,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install(app: FastAPI) -> None:
    async def probity_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProbityError)
        headers: dict[str, str] = {}
        if isinstance(exc, Unauthenticated):
            headers["WWW-Authenticate"] = 'Bearer realm="probity"'
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after_s)
        if exc.status >= 500:
            log.error("request failed: %s", exc.message, extra={"path": request.url.path})
        if is_page(request.url.path):
            return error_page(request, exc)
        return problem(
            exc.status, exc.code, exc.message, instance=request.url.path, headers=headers
        )

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return problem(
            422,
            "invalid_request",
            f"{where}: {first['msg']}" if where else str(first["msg"]),
            instance=request.url.path,
            errors=errors,
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(
            exc.status_code, "http_error"
        )
        return problem(
            exc.status_code,
            code,
            str(exc.detail),
            instance=request.url.path,
            headers=dict(exc.headers or {}),
        )

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem(500, "internal_error", "internal error", instance=request.url.path)

    app.add_exception_handler(ProbityError, probity_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
