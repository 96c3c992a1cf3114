"""Console sign-in pages: first-run setup, login, logout, and the password-reset and email-verify links.

Each handler is form → CSRF → domain call → redirect, or the same page again with the problem in words.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get, post

from chatsupport.domain import accounts, auth, mfa
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
    """The password step; with two-factor on (or required and not set up) the next step is a code page."""
    form = await request.form()
    values = form_values(form, "email", "password", "next")
    target = safe_next(values["next"])
    try:
        problem = csrf_ok(request, form)
        if problem:
            raise problem
        outcome = await asyncio.to_thread(mfa.start_login, services_of(request), values["email"], values["password"],
                                          origin_of(request))
    except AppError as exc:
        return render(request, "auth/login.html", {"form": {"email": values["email"]}, "next": target,
                                                   **error_context(exc)}, status=exc.status,
                      headers=retry_headers(exc))
    if isinstance(outcome, auth.Session):
        return _signed_in(request, outcome, target)
    return render(request, "auth/login_code.html", {"pending": outcome.token, "purpose": outcome.purpose,
                                                    "setup": outcome.setup, "next": target})


@post("/login/code", status_code=200, **PAGE, **public())
async def login_code_submit(request: Request[Any, Any, Any]) -> Response[Any]:
    """The second step: a code from the app or a recovery code, against the pending sign-in token."""
    return await _second_step(request, "code")


@post("/login/enrol", status_code=200, **PAGE, **public())
async def login_enrol_submit(request: Request[Any, Any, Any]) -> Response[Any]:
    """The workspace requires two-factor: the first code confirms the new app, then the recovery codes show once."""
    return await _second_step(request, "enrol")


async def _second_step(request: Request[Any, Any, Any], purpose: str) -> Response[Any]:
    services, form = services_of(request), await request.form()
    values = form_values(form, "pending", "code", "next")
    target = safe_next(values["next"])
    try:
        problem = csrf_ok(request, form)
        if problem:
            raise problem
        if purpose == "code":
            session = await asyncio.to_thread(mfa.finish_code_login, services, values["pending"], values["code"],
                                              origin_of(request))
            return _signed_in(request, session, target)
        session, codes = await asyncio.to_thread(mfa.finish_enrol_login, services, values["pending"],
                                                 values["code"], origin_of(request))
    except AppError as exc:
        if exc.code == "invalid_token":  # expired or forged: back to the password step
            return render(request, "auth/login.html", {"form": {}, "next": target, **error_context(exc)},
                          status=exc.status)
        setup = None
        if purpose == "enrol":
            user = await asyncio.to_thread(mfa.pending_user, services, values["pending"], purpose)
            setup = await asyncio.to_thread(mfa.pending_setup, services, user)
        shown = error_context(exc)
        if exc.code == "mfa_invalid":  # said beside the field, like a mistyped set-up code
            shown["field_errors"] = {"code": exc.message}
        return render(request, "auth/login_code.html", {"pending": values["pending"], "purpose": purpose,
                                                        "setup": setup, "next": target, **shown},
                      status=exc.status, headers=retry_headers(exc))
    page = render(request, "auth/recovery_codes.html", {"codes": codes, "next": target})
    set_session_cookie(page, request, session.token)
    return page


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


ROUTES = [setup_page, setup_submit, login_page, login_submit, login_code_submit, login_enrol_submit, logout,
          reset_page, reset_submit, verify_page, verify_submit]
