"""Console sign-in pages: first-run setup, login, logout, and the password-reset and email-verify links.

Each handler is form → CSRF → domain call → redirect, or the same page again with the problem in words.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get, post

from chatsupport.domain import accounts, auth
from chatsupport.domain.permissions import AUTHENTICATED
from chatsupport.errors import AppError
from chatsupport.web.auth import actor_of, clear_session_cookie, optional_actor, origin_of, services_of, \
    set_session_cookie
from chatsupport.web.console.common import check_password_form, csrf_ok, error_context, form_values, redirect, \
    render, retry_headers, safe_next
from chatsupport.web.permissions import console_requires, public

PAGE = {"include_in_schema": False}


def _signed_in(request: Request[Any, Any, Any], session: auth.Session, target: str) -> Response[Any]:
    response = redirect(target)
    set_session_cookie(response, request, session.token)
    return response


# --- first run ----------------------------------------------------------------------------------------------
@get("/setup", **PAGE, **public())
async def setup_page(request: Request[Any, Any, Any]) -> Response[Any]:
    if not await asyncio.to_thread(accounts.setup_needed, services_of(request)):
        return redirect("/login")
    return render(request, "setup/setup.html", {"form": {}})


@post("/setup", status_code=200, **PAGE, **public())
async def setup_submit(request: Request[Any, Any, Any]) -> Response[Any]:
    """Open only while the instance has no users; the check is repeated inside the write transaction."""
    services, form = services_of(request), await request.form()
    values = form_values(form, "workspace", "display_name", "email", "password", "password_confirm")
    shown = {k: v for k, v in values.items() if not k.startswith("password")}
    try:
        check_password_form(request, form, values, "password", "password_confirm")
        user = await asyncio.to_thread(accounts.setup, services, workspace=values["workspace"],
                                       email=values["email"], password=values["password"],
                                       display_name=values["display_name"], origin=origin_of(request))
    except AppError as exc:
        if exc.code == "setup_done":
            return redirect("/login")
        return render(request, "setup/setup.html", {"form": shown, **error_context(exc)}, status=exc.status)
    session = await asyncio.to_thread(auth.open_session, services, user, "console", origin_of(request))
    return _signed_in(request, session, "/chatbots/new")  # a new owner goes straight to creating a chatbot


# --- login and logout ---------------------------------------------------------------------------------------
@get("/login", **PAGE, **public())
async def login_page(request: Request[Any, Any, Any], next: str = "") -> Response[Any]:
    if await optional_actor(request) is not None:
        return redirect(safe_next(next))
    if await asyncio.to_thread(accounts.setup_needed, services_of(request)):
        return redirect("/setup")
    notice = {"reset": "Your password was changed. Sign in with the new one.",
              "out": "You are signed out."}.get(request.query_params.get("done", ""))
    return render(request, "auth/login.html", {"form": {}, "next": safe_next(next), "notice": notice})


@post("/login", status_code=200, **PAGE, **public())
async def login_submit(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    values = form_values(form, "email", "password", "next")
    target = safe_next(values["next"])
    try:
        problem = csrf_ok(request, form)
        if problem:
            raise problem
        session = await asyncio.to_thread(auth.login, services_of(request), values["email"], values["password"],
                                          origin_of(request), "console")
    except AppError as exc:
        return render(request, "auth/login.html", {"form": {"email": values["email"]}, "next": target,
                                                   **error_context(exc)}, status=exc.status,
                      headers=retry_headers(exc))
    return _signed_in(request, session, target)


@post("/logout", status_code=200, **PAGE, **console_requires(AUTHENTICATED))
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    problem = csrf_ok(request, form)
    if problem:
        return render(request, "auth/message.html", {"title": "Sign out", **error_context(problem)}, status=problem.status)
    await asyncio.to_thread(auth.logout, services_of(request), family_id=actor_of(request).session_id,
                            origin=origin_of(request))
    response = redirect("/login?done=out")
    clear_session_cookie(response)
    return response


# --- links from mail or from an admin -----------------------------------------------------------------------
@get("/reset-password", **PAGE, **public())
async def reset_page(request: Request[Any, Any, Any], token: str = "") -> Response[Any]:
    return render(request, "auth/reset_password.html", {"token": token})


@post("/reset-password", status_code=200, **PAGE, **public())
async def reset_submit(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    values = form_values(form, "token", "password", "password_confirm")
    try:
        check_password_form(request, form, values, "password", "password_confirm")
        await asyncio.to_thread(accounts.reset_password, services_of(request), values["token"], values["password"],
                                origin_of(request))
    except AppError as exc:
        return render(request, "auth/reset_password.html", {"token": values["token"], **error_context(exc)},
                      status=exc.status)
    response = redirect("/login?done=reset")
    clear_session_cookie(response)
    return response


@get("/verify-email", **PAGE, **public())
async def verify_page(request: Request[Any, Any, Any], token: str = "") -> Response[Any]:
    """A button, not an automatic verification: mail scanners follow links with GET."""
    return render(request, "auth/verify_email.html", {"token": token})


@post("/verify-email", status_code=200, **PAGE, **public())
async def verify_submit(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    token = str(form.get("token") or "")
    try:
        problem = csrf_ok(request, form)
        if problem:
            raise problem
        user = await asyncio.to_thread(accounts.verify_email, services_of(request), token, origin_of(request))
    except AppError as exc:
        return render(request, "auth/verify_email.html", {"token": token, **error_context(exc)}, status=exc.status)
    return render(request, "auth/verify_email.html", {"verified": user["email"]})


ROUTES = [setup_page, setup_submit, login_page, login_submit, logout, reset_page, reset_submit, verify_page,
          verify_submit]
