"""Settings → Team: the members (role and max concurrent conversations, deactivate and reactivate), invitations
(invite, a new link, revoke), and the public page an invitation link opens.

Everyone signed in sees the team; only roles with ``team.manage`` see the forms, and the domain refuses the
same changes for anyone else. A new or renewed invitation link is shown once on the page that issued it (only
its hash is kept), and mailed too when SMTP is configured.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get, post

from chatsupport.domain import invitations, team
from chatsupport.domain.permissions import ROLES, allowed
from chatsupport.errors import AppError
from chatsupport.net.mail import mail_configured
from chatsupport.services import Services
from chatsupport.tasks.mail import send_email
from chatsupport.web.auth import actor_of, origin_of, services_of, set_session_cookie
from chatsupport.web.console.common import check_password_form, checked_form, error_context, form_values, \
    redirect, render
from chatsupport.web.permissions import console_requires, console_requires_found, found, public

PAGE = {"include_in_schema": False}
LANDING = "/inbox"
SAVED = {"member": "Member saved.", "deactivated": "Member deactivated: they were signed out everywhere.",
         "reactivated": "Member reactivated: they can sign in again.", "revoked": "Invitation revoked."}

member_found = found("user_id", team.exists, "Member not found.")
invitation_found = found("invitation_id", invitations.exists, "Invitation not found.")


def _mail_ready(services: Services) -> bool:
    return mail_configured(services.db, services.settings)


async def _page(request: Request[Any, Any, Any], status: int = 200, **context: Any) -> Response[Any]:
    services, actor = services_of(request), actor_of(request)
    manager = allowed(actor.role, "team.manage")
    members = await asyncio.to_thread(team.list_members, services, actor)
    pending = await asyncio.to_thread(invitations.list_open, services, actor) if manager else []
    roles = [r for r in ROLES if r != "owner" or actor.role == "owner"]  # only owners make owners
    return render(request, "settings/team.html", {
        "members": members, "invitations": pending, "manager": manager, "roles": roles,
        "mail_ready": _mail_ready(services), "invite": {"role": "agent"}, "field_errors": {},
        **context}, status=status)


@get("/settings/team", **PAGE, **console_requires("team.view"))
async def team_page(request: Request[Any, Any, Any], saved: str = "") -> Response[Any]:
    return await _page(request, notice=SAVED.get(saved))


def _limit(text: str) -> int | None:
    """The max-concurrent field: empty means no limit."""
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        raise AppError("validation_error", details=[{"field": "max_concurrent_conversations",
                                                     "message": "A whole number, or empty for no limit."}])
    return int(text)


@post("/settings/team/members/{user_id:str}", status_code=200, **PAGE,
      **console_requires_found("team.manage", member_found))
async def member_save(request: Request[Any, Any, Any], user_id: str) -> Response[Any]:
    """Role and max concurrent conversations; the own row's form has no role field (nobody changes their own)."""
    form = await checked_form(request)
    values = form_values(form, "role", "max_concurrent_conversations")
    try:
        await asyncio.to_thread(team.update_member, services_of(request), actor_of(request), user_id,
                                values["role"] or None, None, _limit(values["max_concurrent_conversations"]))
    except AppError as exc:
        return await _page(request, status=exc.status, edited=user_id, **error_context(exc))
    return redirect("/settings/team?saved=member")


@post("/settings/team/members/{user_id:str}/deactivate", status_code=200, **PAGE,
      **console_requires_found("team.manage", member_found))
async def member_deactivate(request: Request[Any, Any, Any], user_id: str) -> Response[Any]:
    await checked_form(request)
    try:
        await asyncio.to_thread(team.deactivate, services_of(request), actor_of(request), user_id)
    except AppError as exc:
        return await _page(request, status=exc.status, **error_context(exc))
    return redirect("/settings/team?saved=deactivated")


@post("/settings/team/members/{user_id:str}/reactivate", status_code=200, **PAGE,
      **console_requires_found("team.manage", member_found))
async def member_reactivate(request: Request[Any, Any, Any], user_id: str) -> Response[Any]:
    await checked_form(request)
    try:
        await asyncio.to_thread(team.update_member, services_of(request), actor_of(request), user_id, None,
                                "active")
    except AppError as exc:
        return await _page(request, status=exc.status, **error_context(exc))
    return redirect("/settings/team?saved=reactivated")


# --- invitations --------------------------------------------------------------------------------------------
def _issued_notice(shown: dict[str, Any]) -> str:
    if shown["emailed"]:
        return f"Invitation emailed to {shown['email']}. You can also pass the link on yourself."
    return f"Invitation for {shown['email']} ready. No mail server is set up: copy the link and send it yourself."


@post("/settings/team/invitations", status_code=200, **PAGE, **console_requires("team.manage"))
async def invite(request: Request[Any, Any, Any]) -> Response[Any]:
    services = services_of(request)
    form = await checked_form(request)
    typed = form_values(form, "email", "role", "name")
    try:
        shown, outgoing = await asyncio.to_thread(invitations.invite, services, actor_of(request), typed["email"],
                                                  typed["role"], typed["name"], _mail_ready(services))
    except AppError as exc:
        return await _page(request, status=exc.status, invite=typed, **error_context(exc))
    if outgoing:
        send_email(*outgoing)
    return await _page(request, issued=shown, notice=_issued_notice(shown))


@post("/settings/team/invitations/{invitation_id:str}/renew", status_code=200, **PAGE,
      **console_requires_found("team.manage", invitation_found))
async def invitation_renew(request: Request[Any, Any, Any], invitation_id: str) -> Response[Any]:
    services = services_of(request)
    await checked_form(request)
    try:
        shown, outgoing = await asyncio.to_thread(invitations.renew, services, actor_of(request), invitation_id,
                                                  _mail_ready(services))
    except AppError as exc:
        return await _page(request, status=exc.status, **error_context(exc))
    if outgoing:
        send_email(*outgoing)
    return await _page(request, issued=shown, notice=_issued_notice(shown) + " The previous link no longer works.")


@post("/settings/team/invitations/{invitation_id:str}/revoke", status_code=200, **PAGE,
      **console_requires_found("team.manage", invitation_found))
async def invitation_revoke(request: Request[Any, Any, Any], invitation_id: str) -> Response[Any]:
    await checked_form(request)
    try:
        await asyncio.to_thread(invitations.revoke, services_of(request), actor_of(request), invitation_id)
    except AppError as exc:
        return await _page(request, status=exc.status, **error_context(exc))
    return redirect("/settings/team?saved=revoked")


# --- the invitee's page (public: the token in the link is the credential) -----------------------------------
@get("/invite/{token:str}", **PAGE, **public())
async def accept_page(request: Request[Any, Any, Any], token: str) -> Response[Any]:
    try:
        invited = await asyncio.to_thread(invitations.peek, services_of(request), token)
    except AppError as exc:
        return render(request, "auth/accept_invite.html", {"problem": exc.message, "problem_code": exc.code},
                      status=exc.status)
    return render(request, "auth/accept_invite.html", {"invited": invited, "form": {"name": invited["display_name"]},
                                                       "token": token})


@post("/invite/{token:str}", status_code=200, **PAGE, **public())
async def accept_submit(request: Request[Any, Any, Any], token: str) -> Response[Any]:
    """Password twice and a name → the new member, signed in, lands in the inbox."""
    services, form = services_of(request), await request.form()
    values = form_values(form, "name", "password", "password_confirm")
    try:
        check_password_form(request, form, values, "password", "password_confirm")
        session = await asyncio.to_thread(invitations.accept, services, token, values["password"], values["name"],
                                          origin_of(request), "console")
    except AppError as exc:
        if exc.code.startswith("invitation_"):
            return render(request, "auth/accept_invite.html", {"problem": exc.message, "problem_code": exc.code},
                          status=exc.status)
        invited = await asyncio.to_thread(invitations.peek, services, token)
        return render(request, "auth/accept_invite.html", {
            "invited": invited, "form": {"name": values["name"]}, "token": token, **error_context(exc)},
            status=exc.status)
    if session is None:  # the workspace requires two-factor: set up at the first sign-in
        return render(request, "auth/accept_invite.html", {"joined": True})
    response = redirect(LANDING)
    set_session_cookie(response, request, session.token)
    return response


ROUTES = [team_page, member_save, member_deactivate, member_reactivate, invite, invitation_renew, invitation_revoke,
          accept_page, accept_submit]
