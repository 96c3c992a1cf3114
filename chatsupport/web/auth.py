"""Who is calling, and may they: the actor from a Bearer token (an access token or an API key) or the console
session cookie, the permission guards every non-public route carries, session cookies, and CSRF tokens for
console forms.

Order matters and is the same everywhere: no valid credentials → 401 (or the login page for console pages),
wrong role → 403, and only then does a handler look anything up (another workspace's id → 404).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Redirect

from chatsupport.domain import api_keys, auth
from chatsupport.domain.audit import Actor, Origin, record
from chatsupport.domain.auth import SESSION_DAYS
from chatsupport.domain.permissions import allowed
from chatsupport.errors import AppError
from chatsupport.services import Services
from chatsupport.web.client import client_ip, is_https

SESSION_COOKIE = "cs_session"
CSRF_COOKIE = "cs_csrf"
REFRESH_COOKIE = "cs_refresh"
REFRESH_COOKIE_PATH = "/api/v1/auth"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class LoginRequired(Exception):
    """A console page was asked for without a session: send the browser to the login page."""

    def __init__(self, next_path: str):
        self.next_path = next_path


def services_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Services:
    return connection.app.state.services


def origin_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Origin:
    proxies = services_of(connection).settings.TRUSTED_PROXIES
    return Origin(ip=client_ip(connection.scope, proxies) or None,
                  user_agent=connection.headers.get("user-agent"))


def secure_cookies(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """Secure over https, and always when the operator declared an https PUBLIC_URL (a proxy that is not in
    TRUSTED_PROXIES would otherwise hide the https and leave the session cookie sendable over plain http)."""
    settings = services_of(connection).settings
    return is_https(connection.scope, settings.TRUSTED_PROXIES) or settings.PUBLIC_URL.lower().startswith("https://")


def actor_of(request: Request[Any, Any, Any]) -> Actor:
    """The actor a guard put on the request (every non-public route has one)."""
    return request.state.actor


async def _resolve(connection: ASGIConnection[Any, Any, Any, Any]) -> Actor | None:
    services, origin = services_of(connection), origin_of(connection)
    header = connection.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AppError("unauthorized", "Use an Authorization: Bearer access token.")
        if api_keys.looks_like_key(token.strip()):
            return await asyncio.to_thread(api_keys.actor_from_key, services, token.strip(), origin)
        return await asyncio.to_thread(auth.actor_from_access_token, services, token.strip(), origin)
    cookie = connection.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    return await asyncio.to_thread(auth.actor_from_session, services, cookie, origin)


async def optional_actor(connection: ASGIConnection[Any, Any, Any, Any]) -> Actor | None:
    try:
        return await _resolve(connection)
    except AppError:
        return None


async def _authorize(connection: ASGIConnection[Any, Any, Any, Any], actor: Actor, permission: str) -> None:
    if not allowed(actor.role, permission):
        method, path = connection.scope.get("method", "GET"), connection.url.path
        await services_of(connection).db.awrite(lambda conn: record(
            conn, "access.denied", actor=actor, metadata={"permission": permission, "method": method, "path": path}))
        raise AppError("forbidden")
    connection.state.actor = actor


async def api_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    actor = await _resolve(connection)
    if actor is None:
        raise AppError("unauthorized")
    if connection.headers.get("authorization") is None and connection.scope.get("method") not in SAFE_METHODS:
        # A cookie rides along on cross-site requests; an API write made with it must prove it came from a page
        # this instance served (htmx sends the token as a header).
        check_csrf(connection, connection.headers.get(CSRF_HEADER))
    await _authorize(connection, actor, handler.opt["permission"])


async def console_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    actor = await optional_actor(connection) if connection.headers.get("authorization") is None else None
    if actor is None:
        raise LoginRequired(connection.url.path)
    await _authorize(connection, actor, handler.opt["permission"])


def login_redirect(request: Request[Any, Any, Any], exc: LoginRequired) -> Response[Any]:
    return Redirect(f"/login?next={quote(exc.next_path)}", status_code=303)


# --- cookies ------------------------------------------------------------------------------------------------
def set_session_cookie(response: Response[Any], connection: ASGIConnection[Any, Any, Any, Any], token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_DAYS * 86400, path="/", httponly=True,
                        samesite="lax", secure=secure_cookies(connection))


def clear_session_cookie(response: Response[Any]) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def set_refresh_cookie(response: Response[Any], connection: ASGIConnection[Any, Any, Any, Any], token: str) -> None:
    response.set_cookie(REFRESH_COOKIE, token, max_age=SESSION_DAYS * 86400, path=REFRESH_COOKIE_PATH,
                        httponly=True, samesite="strict", secure=secure_cookies(connection))


def clear_refresh_cookie(response: Response[Any]) -> None:
    response.delete_cookie(REFRESH_COOKIE, path=REFRESH_COOKIE_PATH)


# --- CSRF ---------------------------------------------------------------------------------------------------
def _csrf_for(secret: str, anchor: str) -> str:
    return hmac.new(secret.encode(), f"csrf|{anchor}".encode(), hashlib.sha256).hexdigest()


def csrf_anchor(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The browser-held value a form token is bound to: the session cookie, or before login the CSRF cookie."""
    return connection.cookies.get(SESSION_COOKIE) or connection.cookies.get(CSRF_COOKIE)


def csrf_token(connection: ASGIConnection[Any, Any, Any, Any], anchor: str | None = None) -> str:
    anchor = anchor or csrf_anchor(connection)
    return _csrf_for(services_of(connection).secret_key, anchor) if anchor else ""


def new_csrf_cookie(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """A fresh pre-login anchor when the browser has none yet; the caller sets it with ``set_csrf_cookie``."""
    return None if csrf_anchor(connection) else secrets.token_urlsafe(24)


def set_csrf_cookie(response: Response[Any], connection: ASGIConnection[Any, Any, Any, Any], value: str) -> None:
    response.set_cookie(CSRF_COOKIE, value, path="/", httponly=True, samesite="strict",
                        secure=secure_cookies(connection))


def check_csrf(connection: ASGIConnection[Any, Any, Any, Any], submitted: str | None) -> None:
    expected = csrf_token(connection)
    if not expected or not submitted or not hmac.compare_digest(expected, submitted):
        raise AppError("csrf_failed")
