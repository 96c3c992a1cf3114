"""``/api/v1/auth/*`` (PRD §5.1.1): login, refresh, logout, me, password and email flows, open sign-up."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from chatsupport.domain import accounts, auth
from chatsupport.domain.auth import Session
from chatsupport.domain.emails import reset_email_body
from chatsupport.domain.permissions import AUTHENTICATED, permissions_for
from chatsupport.errors import AppError
from chatsupport.net.mail import mail_configured
from chatsupport.store import users, workspaces
from chatsupport.tasks.mail import send_email
from chatsupport.web.api.schemas import ChangePasswordRequest, ForgotPasswordRequest, LoginRequest, MeResponse, \
    RefreshRequest, RegisterRequest, ResetPasswordRequest, StatusResponse, TokenResponse, \
    UserOut, VerifyEmailRequest, WorkspaceOut
from chatsupport.web.auth import REFRESH_COOKIE, actor_of, clear_refresh_cookie, optional_actor, origin_of, \
    services_of, set_refresh_cookie
from chatsupport.web.permissions import PUBLIC, public, requires

RESET_REQUESTS_PER_HOUR = 3  # PRD §6.4 rate limits
SIGNUPS_PER_HOUR = 3
HOUR = timedelta(hours=1)


def _tokens(request: Request[Any, Any, Any], session: Session, status: int = 200) -> Response[TokenResponse]:
    body = msgspec.convert(auth.token_response(services_of(request), session), TokenResponse)
    response = Response(body, status_code=status)
    set_refresh_cookie(response, request, session.token)
    return response


@post("/api/v1/auth/login", status_code=200, **public())
async def login(request: Request[Any, Any, Any], data: LoginRequest) -> Response[TokenResponse]:
    """Email and password → access token (15 minutes) and refresh token (30 days, also set as a cookie). With
    two-factor on, 401 ``mfa_required`` until ``totp`` (a code from the app, or a recovery code) is sent too."""
    session = await asyncio.to_thread(auth.login, services_of(request), data.email, data.password,
                                      origin_of(request), code=data.totp)
    return _tokens(request, session)


@post("/api/v1/auth/refresh", status_code=200, **public())
async def refresh(request: Request[Any, Any, Any], data: RefreshRequest | None = None) -> Response[TokenResponse]:
    """Exchange a refresh token (JSON body or cookie) for a new pair; the old refresh token stops working."""
    token = (data.refresh_token if data else None) or request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise AppError("invalid_token", "No refresh token was sent.")
    session = await asyncio.to_thread(auth.refresh, services_of(request), token, origin_of(request))
    return _tokens(request, session)


@post("/api/v1/auth/logout", status_code=200, **public())
async def logout(request: Request[Any, Any, Any], data: RefreshRequest | None = None) -> Response[StatusResponse]:
    """End the session of the Bearer token and/or of the refresh token sent; works with an expired access token."""
    services, origin = services_of(request), origin_of(request)
    actor = await optional_actor(request)
    token = (data.refresh_token if data else None) or request.cookies.get(REFRESH_COOKIE)
    if actor is not None:
        await asyncio.to_thread(auth.logout, services, family_id=actor.session_id, origin=origin)
    if token:
        await asyncio.to_thread(auth.logout, services, token=token, origin=origin)
    response = Response(StatusResponse(status="ok"))
    clear_refresh_cookie(response)
    return response


@get("/api/v1/auth/me", **requires(AUTHENTICATED))
async def me(request: Request[Any, Any, Any]) -> MeResponse:
    actor, services = actor_of(request), services_of(request)
    user = await asyncio.to_thread(lambda: users.get(services.db.reader(), actor.user_id))
    ws = await asyncio.to_thread(workspaces.get, services.db.reader(), actor.workspace_id)
    if user is None or ws is None:
        raise AppError("invalid_token")
    return MeResponse(user=msgspec.convert(auth.public_user(user), UserOut),
                      workspace=WorkspaceOut(id=ws["id"], name=ws["name"], slug=ws["slug"]),
                      permissions=permissions_for(actor.role))


@post("/api/v1/auth/change-password", status_code=200, **requires(AUTHENTICATED))
async def change_password(request: Request[Any, Any, Any], data: ChangePasswordRequest) -> Response[TokenResponse]:
    """Every session of the user ends; the response carries a fresh token pair for this client."""
    session = await asyncio.to_thread(accounts.change_password, services_of(request), actor_of(request),
                                      data.current_password, data.new_password, "api")
    return _tokens(request, session)


@post("/api/v1/auth/forgot-password", status_code=200, **public())
async def forgot_password(request: Request[Any, Any, Any], data: ForgotPasswordRequest) -> StatusResponse:
    """Always ``{"status": "ok"}``, whether or not the email exists. With SMTP configured the link is emailed;
    without it an admin sees the request in the audit log and issues the link (``chatsupport reset-link`` or the
    users API)."""
    services, email = services_of(request), auth.normalize_email(data.email)
    await asyncio.to_thread(auth.rate_limit, services.db, f"reset|{email}", RESET_REQUESTS_PER_HOUR, HOUR)
    mailed = await asyncio.to_thread(accounts.request_reset, services, email, origin_of(request),
                                     mail_configured(services.db, services.settings))
    if mailed:
        send_email(mailed["email"], "Reset your ChatSupport password", reset_email_body(mailed["url"]))
    return StatusResponse(status="ok")


@post("/api/v1/auth/reset-password", status_code=200, **public())
async def reset_password(request: Request[Any, Any, Any], data: ResetPasswordRequest) -> StatusResponse:
    await asyncio.to_thread(accounts.reset_password, services_of(request), data.token, data.password,
                            origin_of(request))
    return StatusResponse(status="ok")


@post("/api/v1/auth/verify-email", status_code=200, **public())
async def verify_email(request: Request[Any, Any, Any], data: VerifyEmailRequest) -> UserOut:
    user = await asyncio.to_thread(accounts.verify_email, services_of(request), data.token, origin_of(request))
    return msgspec.convert(auth.public_user(user), UserOut)


async def signup_open(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Runs before the body is read, so a closed instance answers 403 whatever was sent."""
    if not services_of(connection).settings.OPEN_SIGNUP:
        raise AppError("signup_closed")


@post("/api/v1/auth/register", status_code=201, guards=[signup_open], opt={"permission": PUBLIC})
async def register(request: Request[Any, Any, Any], data: RegisterRequest) -> Response[TokenResponse]:
    """Open sign-up (``OPEN_SIGNUP``): a new workspace with the caller as its owner, signed in at once. The email
    stays unverified until the verify link (mailed, or issued by an admin) is used; that does not block login."""
    services, origin = services_of(request), origin_of(request)
    await asyncio.to_thread(auth.rate_limit, services.db, f"signup|{origin.ip or ''}", SIGNUPS_PER_HOUR, HOUR)
    session, _verify_url = await asyncio.to_thread(
        accounts.register, services, workspace=data.workspace_name, email=data.email, password=data.password,
        display_name=data.display_name, origin=origin)
    return _tokens(request, session, status=201)


ROUTES = [login, refresh, logout, me, change_password, forgot_password, reset_password, verify_email, register]
