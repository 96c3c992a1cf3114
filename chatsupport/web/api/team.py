"""``/api/v1/team``: members (role, status, max concurrent conversations, deactivation) and invitations (create,
list, renew, revoke, and the invitee's public accept). ``/api/v1/users`` stays for existing clients; both go
through ``domain.team``.

An invitation's ``accept_url`` is returned once, on creation or renewal: only its hash is stored. With SMTP
configured the link is also emailed (``emailed: true``)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.params import Parameter
from msgspec import UNSET, Meta, Struct, UnsetType

from chatsupport.domain import auth, invitations, team
from chatsupport.errors import AppError
from chatsupport.net.mail import mail_configured
from chatsupport.tasks.mail import send_email
from chatsupport.web.api.schemas import Email, Secret, TokenResponse
from chatsupport.web.auth import actor_of, origin_of, services_of, set_refresh_cookie
from chatsupport.web.permissions import found, public, requires, requires_found

Role = Literal["owner", "admin", "agent", "viewer"]
Status = Literal["active", "inactive", "suspended"]
Name = Annotated[str, Meta(max_length=100)]


class MemberOut(Struct):
    id: str
    email: str
    workspace_id: str
    role: Role
    display_name: str
    status: str
    email_verified: bool
    created_at: str
    max_concurrent_conversations: int | None
    active_conversations: int
    last_login_at: str | None


class MemberList(Struct):
    data: list[MemberOut]


class MemberUpdate(Struct, forbid_unknown_fields=True):
    role: Role | UnsetType = UNSET
    status: Status | UnsetType = UNSET
    # null: no limit
    max_concurrent_conversations: Annotated[int, Meta(ge=1, le=team.MAX_CONCURRENT)] | None | UnsetType = UNSET


class InvitationIn(Struct, forbid_unknown_fields=True):
    email: Email
    role: Role = "agent"
    name: Name | None = None


class Inviter(Struct):
    id: str | None
    name: str | None


class InvitationOut(Struct):
    id: str
    email: str
    role: Role
    display_name: str
    status: Literal["pending", "expired"]
    emailed: bool
    created_at: str
    expires_at: str
    invited_by: Inviter | None


class IssuedInvitation(InvitationOut):
    accept_url: str


class InvitationList(Struct):
    data: list[InvitationOut]


class AcceptIn(Struct, forbid_unknown_fields=True):
    password: Secret
    name: Name | None = None


member_found = found("user_id", team.exists, "Member not found.")
invitation_found = found("invitation_id", invitations.exists, "Invitation not found.")


# --- members ------------------------------------------------------------------------------------------------
@get("/api/v1/team/members", **requires("team.view"))
async def list_members(request: Request[Any, Any, Any], role: Annotated[str, Parameter(default="")] = "",
                       status: Annotated[str, Parameter(default="")] = "") -> MemberList:
    """Everyone in the workspace with their capacity and live load; ``role`` and ``status`` filter."""
    rows = await asyncio.to_thread(team.list_members, services_of(request), actor_of(request), role, status)
    return MemberList(data=msgspec.convert(rows, list[MemberOut]))


@patch("/api/v1/team/members/{user_id:str}", **requires_found("team.manage", member_found))
async def update_member(request: Request[Any, Any, Any], user_id: str, data: MemberUpdate) -> MemberOut:
    """Change ``role``, ``status`` and/or ``max_concurrent_conversations`` (null: no limit). Only owners change
    owners; nobody changes their own role or status; a status other than active ends every session at once."""
    role = None if data.role is UNSET else data.role
    status = None if data.status is UNSET else data.status
    limit = team.KEEP if data.max_concurrent_conversations is UNSET else data.max_concurrent_conversations
    row = await asyncio.to_thread(team.update_member, services_of(request), actor_of(request), user_id, role,
                                  status, limit)
    return msgspec.convert(row, MemberOut)


@delete("/api/v1/team/members/{user_id:str}", status_code=200, **requires_found("team.manage", member_found))
async def deactivate_member(request: Request[Any, Any, Any], user_id: str) -> MemberOut:
    """Deactivate: the member can no longer sign in, and every console session, refresh token and access token
    they hold stops working on its next request. Their conversations, notes and audit trail stay."""
    row = await asyncio.to_thread(team.deactivate, services_of(request), actor_of(request), user_id)
    return msgspec.convert(row, MemberOut)


# --- invitations --------------------------------------------------------------------------------------------
def _send(outgoing: invitations.Outgoing | None) -> None:
    if outgoing:
        send_email(*outgoing)


@post("/api/v1/team/invitations", status_code=201, **requires("team.manage"))
async def create_invitation(request: Request[Any, Any, Any], data: InvitationIn) -> IssuedInvitation:
    """``{"email","role","name"}`` → the invitation with its ``accept_url`` (valid 7 days, shown once)."""
    services = services_of(request)
    mail = mail_configured(services.db, services.settings)
    shown, outgoing = await asyncio.to_thread(invitations.invite, services, actor_of(request), data.email,
                                              data.role, data.name, mail)
    _send(outgoing)
    return msgspec.convert(shown, IssuedInvitation)


@get("/api/v1/team/invitations", **requires("team.manage"))
async def list_invitations(request: Request[Any, Any, Any]) -> InvitationList:
    """Open invitations (neither accepted nor revoked), newest first; ``status`` says pending or expired."""
    rows = await asyncio.to_thread(invitations.list_open, services_of(request), actor_of(request))
    return InvitationList(data=msgspec.convert(rows, list[InvitationOut]))


@post("/api/v1/team/invitations/{invitation_id:str}/renew", status_code=200,
      **requires_found("team.manage", invitation_found))
async def renew_invitation(request: Request[Any, Any, Any], invitation_id: str) -> IssuedInvitation:
    """A new link valid 7 days from now (emailed again when SMTP is set); the previous link stops working."""
    services = services_of(request)
    shown, outgoing = await asyncio.to_thread(invitations.renew, services, actor_of(request), invitation_id,
                                              mail_configured(services.db, services.settings))
    _send(outgoing)
    return msgspec.convert(shown, IssuedInvitation)


@delete("/api/v1/team/invitations/{invitation_id:str}", status_code=204,
        **requires_found("team.manage", invitation_found))
async def revoke_invitation(request: Request[Any, Any, Any], invitation_id: str) -> None:
    await asyncio.to_thread(invitations.revoke, services_of(request), actor_of(request), invitation_id)


@post("/api/v1/team/invitations/{token:str}/accept", status_code=201, **public())
async def accept_invitation(request: Request[Any, Any, Any], token: str, data: AcceptIn) -> Response[TokenResponse]:
    """Public: the token is the credential. Creates the member in the inviting workspace and signs them in (the
    login response). Errors: ``invitation_invalid`` (unknown or revoked), ``invitation_expired``,
    ``invitation_used``; ``mfa_enrollment_required`` when the workspace requires two-factor sign-in (the account
    was created: its first sign-in in the console sets two-factor up)."""
    services = services_of(request)
    session = await asyncio.to_thread(invitations.accept, services, token, data.password, data.name,
                                      origin_of(request), "api")
    if session is None:
        raise AppError("mfa_enrollment_required", "Your account was created. This workspace requires two-factor "
                                                  "sign-in: sign in to the console to set it up.")
    response = Response(msgspec.convert(auth.token_response(services, session), TokenResponse), status_code=201)
    set_refresh_cookie(response, request, session.token)
    return response


ROUTES = [list_members, update_member, deactivate_member, create_invitation, list_invitations, renew_invitation,
          revoke_invitation, accept_invitation]
