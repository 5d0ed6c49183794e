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
from fastapi.routing import APIRoute
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


PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def _documented(
    statuses: tuple[int, ...], schema: dict[str, Any] | None = None
) -> dict[int | str, dict[str, Any]]:
    schema = schema or Problem.model_json_schema()
    return {
        status: {
            "description": _TITLES[status] + " (RFC 9457 problem details)",
            "content": {PROBLEM_JSON: {"schema": schema}},
        }
        for status in statuses
    }


ERROR_RESPONSES = _documented((400, 401, 403, 404, 409, 413, 422, 429, 500), PROBLEM_REF)
"""Every error status an API route can answer; ``document_errors`` gives each operation the
ones that apply to it."""


def operation_errors(method: str, operation: dict[str, Any]) -> tuple[int, ...]:
    """The error statuses one operation can answer, from its shape in the document: 413
    only with a request body (the body limit), 409 only on writes (a GET conflicts with
    nothing), 404 only when something is named (a parameter, or a body that names a gallery
    or a case). 400, 401, 403, 422 (validation), 429 (rate limits) and 500 apply to all."""
    has_body = "requestBody" in operation
    names_something = has_body or bool(operation.get("parameters"))
    statuses = [400, 401, 403]
    if names_something:
        statuses.append(404)
    if method.lower() not in ("get", "head"):
        statuses.append(409)
    if has_body:
        statuses.append(413)
    return (*statuses, 422, 429, 500)


LOCATION_HEADER: dict[str, Any] = {
    "description": "the URL of what was made",
    "schema": {"type": "string"},
}


def document_errors(app: FastAPI) -> None:
    """Declare each ``/api/`` operation's own error responses (problem+json) in the OpenAPI
    document, and the ``Location`` header of every 201, so a generated client knows which
    errors to expect where. Done on the generated document (not on the routes), which
    FastAPI builds lazily and caches."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        doc = generate()
        # Problem (and what it uses) as named components, referenced from every error.
        schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        components = doc.setdefault("components", {}).setdefault("schemas", {})
        components.update(schema.pop("$defs", {}))
        components["Problem"] = schema
        _mark_binary(components)
        for path, operations in doc.get("paths", {}).items():
            if not path.startswith("/api/"):
                continue
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                errors = _documented(operation_errors(method, operation), PROBLEM_REF)
                for status, spec in errors.items():
                    if status == 422:  # our validation errors are problems, not FastAPI's shape
                        responses[str(status)] = spec
                    else:
                        responses.setdefault(str(status), spec)
                if "201" in responses:
                    responses["201"].setdefault("headers", {})["Location"] = LOCATION_HEADER
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def _mark_binary(node: Any) -> None:
    """Uploads are ``contentMediaType: application/octet-stream`` in OpenAPI 3.1; add the 3.0
    ``format: binary`` beside it, which client generators (openapi-python-client among
    them) read as "a file", so a generated client sends the photo as a file part."""
    if isinstance(node, dict):
        if node.get("contentMediaType") == "application/octet-stream":
            node.setdefault("format", "binary")
        for value in node.values():
            _mark_binary(value)
    elif isinstance(node, list):
        for value in node:
            _mark_binary(value)


def operation_id(route: APIRoute) -> str:
    """Readable operationIds: ``<tag>-<function name>`` (``searches-run_search``), which
    generated clients turn into module and function names."""
    tag = str(route.tags[0]).replace(" ", "_") if route.tags else "probity"
    return f"{tag}-{route.name}"


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
