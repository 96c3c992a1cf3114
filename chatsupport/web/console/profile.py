"""The signed-in user's own page: display name (agents are shown to customers by it) and password."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get, post

from chatsupport.domain import accounts
from chatsupport.domain.permissions import AUTHENTICATED
from chatsupport.errors import AppError
from chatsupport.store import users, workspaces
from chatsupport.web.auth import actor_of, services_of, set_session_cookie
from chatsupport.web.console.common import check_password_form, csrf_ok, error_context, form_values, redirect, render
from chatsupport.web.permissions import console_requires

PAGE = {"include_in_schema": False}
SAVED = {"name": "Your display name was saved.",
         "password": "Your password was changed. Other devices were signed out."}


async def _page(request: Request[Any, Any, Any], status: int = 200, **context: Any) -> Response[Any]:
    services, actor = services_of(request), actor_of(request)
    user = await asyncio.to_thread(lambda: users.get(services.db.reader(), actor.user_id))
    ws = await asyncio.to_thread(lambda: workspaces.get(services.db.reader(), actor.workspace_id))
    return render(request, "profile/profile.html", {"user": user, "workspace": ws, **context}, status=status)


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


ROUTES = [profile_page, profile_submit, password_submit]
