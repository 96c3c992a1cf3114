"""Every error leaves as ``{"error": {"code", "message", "details", "request_id"}}``.

Codes and statuses come from ``chatsupport.errors.ERRORS``; Litestar's own exceptions are translated here so a
client never sees two error shapes. Body validation failures become 422 ``validation_error`` with one detail per
field; undecodable JSON is 400 ``malformed_json``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from litestar import Litestar, MediaType, Request, Response
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Template
from litestar.exceptions import HTTPException, SerializationException, ValidationException

from chatsupport.errors import ERRORS, AppError
from chatsupport.web.security import request_id

log = logging.getLogger(__name__)

class ErrorInfo(msgspec.Struct):
    code: str
    message: str
    request_id: str
    details: Any = None


class ErrorBody(msgspec.Struct):
    """The one error shape, as the OpenAPI schema documents it."""

    error: ErrorInfo


# What any route may answer besides its success: malformed or invalid input, missing or insufficient
# credentials, an unknown id, a state conflict, a body too large or of the wrong type, a rate limit.
STANDARD_ERRORS = {400: "Malformed request", 401: "Not signed in", 403: "Not allowed", 404: "Not found",
                   409: "Conflicts with the current state", 413: "Too large", 415: "Unsupported content type",
                   422: "Invalid fields", 429: "Too many requests"}
_ERROR_SPECS = {status: ResponseSpec(data_container=ErrorBody, description=text, generate_examples=False)
                for status, text in STANDARD_ERRORS.items()}


def document_errors(app: Litestar) -> None:
    """Add the standard error responses to every documented operation (a route's own ``responses`` win).

    Done once over the route table so that no handler can forget them, and so that the schema shows our error
    shape instead of Litestar's default ``{"status_code", "detail"}`` for 400.
    """
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if isinstance(handler, HTTPRouteHandler) and handler.include_in_schema:
                handler.responses = {**_ERROR_SPECS, **(handler.responses or {})}


_CODE_BY_STATUS = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "too_large", 415: "unsupported_type", 422: "validation_error", 429: "rate_limited",
    503: "not_ready",
}


def _wants_page(request: Request[Any, Any, Any]) -> bool:
    """A person's browser on a console page gets a readable page; API clients and htmx fragments get JSON."""
    if request.url.path.startswith(("/api/", "/schema", "/static/")) or request.headers.get("hx-request"):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_response(request: Request[Any, Any, Any], error: AppError, headers: dict[str, str] | None = None) -> Response:
    body = error.to_dict()
    body["error"]["request_id"] = request_id(request.scope)
    if _wants_page(request):
        return Template("error.html", context={"error": body["error"], "status": error.status},
                        status_code=error.status, headers=headers)  # type: ignore[return-value]
    return Response(body, status_code=error.status, media_type=MediaType.JSON, headers=headers)


def handle_app_error(request: Request[Any, Any, Any], exc: AppError) -> Response:
    headers = {"Retry-After": str(exc.details["retry_after"])} if isinstance(exc.details, dict) and \
        "retry_after" in exc.details else None
    return error_response(request, exc, headers)


_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")


def _field_details(extra: Any) -> list[dict[str, str]]:
    """Litestar reports a missing field against the whole body (``data``); name the field instead."""
    details = []
    for item in extra if isinstance(extra, list) else []:
        if isinstance(item, dict):
            message = str(item.get("message", ""))
            missing = _MISSING_FIELD.search(message)
            field = missing.group(1) if missing else str(item.get("key") or "body")
            details.append({"field": "body" if field == "data" else field, "message": message})
    return details


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response:
    if isinstance(exc.__cause__, SerializationException):
        return error_response(request, AppError("malformed_json"))
    if isinstance(exc, ValidationException) or exc.status_code == 400:
        if exc.extra:
            return error_response(request, AppError("validation_error", details=_field_details(exc.extra)))
    code = _CODE_BY_STATUS.get(exc.status_code, "bad_request" if exc.status_code < 500 else "internal_error")
    message = ERRORS[code][1]
    response = error_response(request, AppError(code, message))
    if exc.status_code != ERRORS[code][0]:
        response.status_code = exc.status_code
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response:
    log.exception("unhandled error on %s %s (request %s)", request.method, request.url.path, request_id(request.scope))
    return error_response(request, AppError("internal_error"))


EXCEPTION_HANDLERS = {
    AppError: handle_app_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
