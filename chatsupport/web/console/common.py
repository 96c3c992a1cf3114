"""What every console page shares: rendering with the CSRF token and the signed-in user, form errors shown in
words, and safe redirects after a form."""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import urlsplit

from litestar import Request
from litestar.response import Redirect, Template

from chatsupport.domain import instance
from chatsupport.errors import AppError
from chatsupport.web.auth import (CSRF_FIELD, CSRF_HEADER, check_csrf, csrf_token, new_csrf_cookie, services_of,
                                   set_csrf_cookie)

DEFAULT_LANDING = "/profile"


def render(request: Request[Any, Any, Any], template: str, context: Mapping[str, Any] | None = None,
           status: int = 200, headers: dict[str, str] | None = None) -> Template:
    """A full page, with a CSRF token bound to this browser (a fresh pre-login cookie when it has none)."""
    fresh = new_csrf_cookie(request)
    actor = getattr(request.state, "actor", None)
    page = Template(template, context={"csrf_token": csrf_token(request, fresh), "csrf_field": CSRF_FIELD,
                                       "actor": actor, "manages_instance": lambda: _manages_instance(request, actor),
                                       **(context or {})}, status_code=status, headers=headers)
    if fresh:
        set_csrf_cookie(page, request, fresh)
    return page


def _manages_instance(request: Request[Any, Any, Any], actor: Any) -> bool:
    """For the settings tabs, asked only while rendering a settings page for an owner."""
    return actor is not None and instance.is_instance_owner(services_of(request).db, actor)


def safe_next(target: str | None) -> str:
    """Only paths on this site: an open redirect after login would hand a phishing page our credibility."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return DEFAULT_LANDING
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return DEFAULT_LANDING
    return target


def redirect(path: str) -> Redirect:
    return Redirect(path, status_code=303)


def form_values(form: Mapping[str, Any], *names: str) -> dict[str, str]:
    return {name: str(form.get(name) or "") for name in names}


def csrf_ok(request: Request[Any, Any, Any], form: Mapping[str, Any]) -> AppError | None:
    try:
        check_csrf(request, form.get(CSRF_FIELD))
    except AppError as exc:
        return exc
    return None


def error_context(exc: AppError) -> dict[str, Any]:
    """The message and per-field messages of an error, for the template."""
    fields = {d["field"]: d["message"] for d in exc.details if isinstance(d, dict) and "field" in d} \
        if isinstance(exc.details, list) else {}
    return {"error": exc.message, "error_code": exc.code, "field_errors": fields}


def retry_headers(exc: AppError) -> dict[str, str] | None:
    if isinstance(exc.details, dict) and "retry_after" in exc.details:
        return {"Retry-After": str(exc.details["retry_after"])}
    return None


def check_password_form(request: Request[Any, Any, Any], form: Mapping[str, Any], values: Mapping[str, str],
                        password: str, confirm: str) -> None:
    """The checks every password form makes before touching an account: CSRF first, then the two entries match."""
    problem = csrf_ok(request, form)
    if problem is None and values[password] != values[confirm]:
        problem = AppError("validation_error", details=[{"field": confirm, "message": "The passwords do not match."}])
    if problem:
        raise problem


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    """An htmx request gets the fragment it swaps; a plain one gets the whole page."""
    return request.headers.get("hx-request") == "true"


async def checked_form(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The form (for its fields), after checking the CSRF token from the htmx header or the form field."""
    form = dict(await request.form())
    check_csrf(request, request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD))
    return form


def words(exc: AppError) -> str:
    """An error as one sentence for an alert: the message, then each field's complaint."""
    details = exc.details if isinstance(exc.details, list) else []
    fields = "; ".join(f"{d['field']}: {d['message']}" for d in details if isinstance(d, dict) and "field" in d)
    return f"{exc.message} {fields}".strip()
