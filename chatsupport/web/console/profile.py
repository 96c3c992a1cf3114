"""The signed-in user's own page: display name (agents are shown to customers by it), password, and two-factor
authentication (set up with a QR code, confirm with a code, recovery codes shown once, turn off with the
password)."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get, post

from chatsupport.domain import accounts, mfa
from chatsupport.domain.permissions import AUTHENTICATED
from chatsupport.errors import AppError
from chatsupport.store import users, workspaces
from chatsupport.web.auth import actor_of, origin_of, services_of, set_session_cookie
from chatsupport.web.console.common import check_password_form, checked_form, csrf_ok, error_context, form_values, \
    redirect, render
from chatsupport.web.permissions import console_requires

PAGE = {"include_in_schema": False}
SAVED = {"name": "Your display name was saved.",
         "password": "Your password was changed. Other devices were signed out.",
         "mfa_off": "Two-factor authentication is off."}


async def _page(request: Request[Any, Any, Any], status: int = 200, **context: Any) -> Response[Any]:
    services, actor = services_of(request), actor_of(request)
    user = await asyncio.to_thread(lambda: users.get(services.db.reader(), actor.user_id))
    ws = await asyncio.to_thread(lambda: workspaces.get(services.db.reader(), actor.workspace_id))
    two_factor = await asyncio.to_thread(mfa.status, services, actor.user_id, actor.workspace_id)
    return render(request, "profile/profile.html", {"user": user, "workspace": ws, "mfa": two_factor, **context},
                  status=status)


@get("/profile", **PAGE, **console_requires(AUTHENTICATED))
async def profile_page(request: Request[Any, Any, Any], saved: str = "") -> Response[Any]:
    return await _page(request, notice=SAVED.get(saved))


@post("/profile", status_code=200, **PAGE, **console_requires(AUTHENTICATED))
async def profile_submit(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    try:
        problem = csrf_ok(request, form)
        if problem:
            raise problem
        await asyncio.to_thread(accounts.update_profile, services_of(request), actor_of(request),
                                str(form.get("display_name") or ""))
    except AppError as exc:
        return await _page(request, status=exc.status, form="name", **error_context(exc))
    return redirect("/profile?saved=name")


@post("/profile/password", status_code=200, **PAGE, **console_requires(AUTHENTICATED))
async def password_submit(request: Request[Any, Any, Any]) -> Response[Any]:
    """Every session ends, this one included; the browser gets a fresh session so it stays signed in."""
    form = await request.form()
    values = form_values(form, "current_password", "new_password", "new_password_confirm")
    try:
        check_password_form(request, form, values, "new_password", "new_password_confirm")
        session = await asyncio.to_thread(accounts.change_password, services_of(request), actor_of(request),
                                          values["current_password"], values["new_password"], "console")
    except AppError as exc:
        return await _page(request, status=exc.status, form="password", **error_context(exc))
    response = redirect("/profile?saved=password")
    set_session_cookie(response, request, session.token)
    return response


# --- two-factor authentication -----------------------------------------------------------------------------
async def _me(request: Request[Any, Any, Any]) -> dict[str, Any]:
    services, actor = services_of(request), actor_of(request)
    user = await asyncio.to_thread(lambda: users.get(services.db.reader(), actor.user_id))
    assert user is not None  # the guard found this user active a moment ago
    return user


@post("/profile/mfa/setup", status_code=200, **PAGE, **console_requires(AUTHENTICATED))
async def mfa_setup(request: Request[Any, Any, Any]) -> Response[Any]:
    """A fresh secret and its QR code; nothing changes for sign-in until a code confirms it."""
    try:
        await checked_form(request)
        setup = await asyncio.to_thread(mfa.begin_setup, services_of(request), await _me(request))
    except AppError as exc:
        return await _page(request, status=exc.status, form="mfa", **error_context(exc))
    return await _page(request, setup=setup)


@post("/profile/mfa/confirm", status_code=200, **PAGE, **console_requires(AUTHENTICATED))
async def mfa_confirm(request: Request[Any, Any, Any]) -> Response[Any]:
    services, user = services_of(request), await _me(request)
    try:
        form = await checked_form(request)
        codes = await asyncio.to_thread(mfa.confirm_setup, services, user, str(form.get("code") or ""),
                                        origin_of(request))
    except AppError as exc:
        setup = await asyncio.to_thread(mfa.pending_setup, services, user)
        return await _page(request, status=exc.status, form="mfa", setup=setup, **error_context(exc))
    return await _page(request, codes=codes, notice="Two-factor authentication is on.")


@post("/profile/mfa/recovery-codes", status_code=200, **PAGE, **console_requires(AUTHENTICATED))
async def mfa_recovery_codes(request: Request[Any, Any, Any]) -> Response[Any]:
    try:
        form = await checked_form(request)
        codes = await asyncio.to_thread(mfa.regenerate_recovery_codes, services_of(request), actor_of(request),
                                        str(form.get("password") or ""))
    except AppError as exc:
        return await _page(request, status=exc.status, form="mfa_codes", **error_context(exc))
    return await _page(request, codes=codes, notice="New recovery codes made; the old ones no longer work.")


@post("/profile/mfa/disable", status_code=200, **PAGE, **console_requires(AUTHENTICATED))
async def mfa_disable(request: Request[Any, Any, Any]) -> Response[Any]:
    try:
        form = await checked_form(request)
        await asyncio.to_thread(mfa.disable, services_of(request), actor_of(request), str(form.get("password") or ""))
    except AppError as exc:
        return await _page(request, status=exc.status, form="mfa_off", **error_context(exc))
    return redirect("/profile?saved=mfa_off")


ROUTES = [profile_page, profile_submit, password_submit, mfa_setup, mfa_confirm, mfa_recovery_codes, mfa_disable]
