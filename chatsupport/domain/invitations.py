"""Inviting people into a workspace (Story 6.1): an owner or admin names an email and a role, the invitee opens
a 7-day link, chooses a password and is signed in as a new member of the inviting workspace.

The link's token is single-use and stored hashed, so it is shown (or mailed) once; a manager who lost it issues
a new link, which ends the old one. Only owners invite owners. Inviting an email that already has an open
invitation replaces it; an email that already has an account (on any workspace: emails are unique per instance)
is refused. The web layer mails the link when SMTP is configured, otherwise the console shows it to copy.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import apsw

from chatsupport.domain import emails, passwords, totp
from chatsupport.domain.accounts import clean_email, clean_name
from chatsupport.domain.audit import Actor, Origin, record
from chatsupport.domain.auth import Context, Session, iso, new_token, now_utc, start_session, token_hash
from chatsupport.domain.permissions import ROLES
from chatsupport.errors import AppError
from chatsupport.store import invitations, users, workspaces
from chatsupport.store.db import Row

VALID = timedelta(days=7)
ACCEPT_PATH = "/invite/"

# (to, subject, body) of an email the web layer queues once the transaction committed
Outgoing = tuple[str, str, str]


def accept_url(ctx: Context, token: str) -> str:
    return f"{ctx.settings.base_url}{ACCEPT_PATH}{token}"


def public(row: Row) -> dict[str, Any]:
    return {"id": row["id"], "email": row["email"], "role": row["role"], "display_name": row["display_name"],
            "status": "pending" if row["expires_at"] > iso(now_utc()) else "expired", "emailed": bool(row["mailed"]),
            "created_at": row["created_at"], "expires_at": row["expires_at"],
            "invited_by": {"id": row["invited_by"], "name": row.get("invited_by_name") or row.get("invited_by_email")}
            if row["invited_by"] else None}


def exists(ctx: Context, actor: Actor, invitation_id: str) -> bool:
    """For the web layer's 404-before-the-body check; the actions check again inside their transaction."""
    return invitations.get(ctx.db.reader(), actor.workspace_id, invitation_id) is not None


def list_open(ctx: Context, actor: Actor) -> list[dict[str, Any]]:
    """Invitations not yet accepted nor revoked, newest first; expired ones say so and can get a new link."""
    return [public(row) for row in invitations.open_in_workspace(ctx.db.reader(), actor.workspace_id)]


def _may_handle(actor: Actor, role: str) -> None:
    if role == "owner" and actor.role != "owner":
        raise AppError("forbidden", "Only an owner can invite an owner.")


def _issued(ctx: Context, conn: apsw.Connection, actor: Actor, row: Row, token: str,
            mail: bool) -> tuple[dict[str, Any], Outgoing | None]:
    url = accept_url(ctx, token)
    workspace = workspaces.get(conn, actor.workspace_id)
    subject, body = emails.invitation_email(workspace["name"] if workspace else "a workspace",
                                            actor.display_name or actor.email, row["role"], url,
                                            row["expires_at"][:16].replace("T", " "))
    shown = {**public(row), "invited_by": {"id": actor.user_id, "name": actor.display_name or actor.email},
             "accept_url": url}
    return shown, (row["email"], subject, body) if mail else None


def invite(ctx: Context, actor: Actor, email: str, role: str, name: str | None,
           mail: bool) -> tuple[dict[str, Any], Outgoing | None]:
    """A new invitation and its link (``accept_url``, shown once), plus the email to send when ``mail``."""
    email = clean_email(email)
    if role not in ROLES:
        raise AppError("validation_error", details=[{"field": "role", "message": f"One of {', '.join(ROLES)}."}])
    _may_handle(actor, role)
    name = clean_name(name, "name", email.split("@")[0])
    token = new_token()

    def write(conn: apsw.Connection) -> tuple[dict[str, Any], Outgoing | None]:
        if users.email_exists(conn, email):
            raise AppError("already_exists", "This email already has a ChatSupport account.",
                           details=[{"field": "email", "message": "Already has an account."}])
        for older in invitations.open_for_email(conn, actor.workspace_id, email):
            invitations.revoke(conn, older["id"])
            record(conn, "invitation.revoked", actor=actor, resource_type="invitation", resource_id=older["id"],
                   metadata={"reason": "replaced"})
        row = invitations.insert(conn, workspace_id=actor.workspace_id, email=email, role=role, display_name=name,
                                 token_hash=token_hash(token), invited_by=actor.user_id,
                                 expires_at=iso(now_utc() + VALID), mailed=mail)
        record(conn, "invitation.created", actor=actor, resource_type="invitation", resource_id=row["id"],
               changes={"after": {"email": email, "role": role, "display_name": name}}, metadata={"mailed": mail})
        return _issued(ctx, conn, actor, row, token, mail)

    return ctx.db.write(write)


def _open(conn: apsw.Connection, actor: Actor, invitation_id: str) -> Row:
    row = invitations.get(conn, actor.workspace_id, invitation_id)
    if row is None or row["revoked_at"]:
        raise AppError("not_found", "Invitation not found.")
    if row["accepted_at"]:
        raise AppError("conflict", "This invitation was already accepted: change or deactivate the member instead.")
    _may_handle(actor, row["role"])
    return row


def renew(ctx: Context, actor: Actor, invitation_id: str, mail: bool) -> tuple[dict[str, Any], Outgoing | None]:
    """A new link, valid 7 days from now; the previous link stops working."""
    token = new_token()

    def write(conn: apsw.Connection) -> tuple[dict[str, Any], Outgoing | None]:
        row = _open(conn, actor, invitation_id)
        invitations.renew(conn, row["id"], token_hash(token), iso(now_utc() + VALID), mail)
        record(conn, "invitation.renewed", actor=actor, resource_type="invitation", resource_id=row["id"],
               metadata={"mailed": mail})
        renewed = invitations.get(conn, actor.workspace_id, row["id"])
        assert renewed is not None
        return _issued(ctx, conn, actor, renewed, token, mail)

    return ctx.db.write(write)


def revoke(ctx: Context, actor: Actor, invitation_id: str) -> None:
    def write(conn: apsw.Connection) -> None:
        row = _open(conn, actor, invitation_id)
        invitations.revoke(conn, row["id"])
        record(conn, "invitation.revoked", actor=actor, resource_type="invitation", resource_id=row["id"],
               changes={"before": {"email": row["email"], "role": row["role"]}})

    ctx.db.write(write)


# --- the invitee's side (public: the token is the credential) --------------------------------------------------
def _usable(row: Row | None) -> Row:
    if row is None or row["revoked_at"]:
        raise AppError("invitation_invalid")
    if row["accepted_at"]:
        raise AppError("invitation_used")
    if row["expires_at"] <= iso(now_utc()):
        raise AppError("invitation_expired")
    return row


def peek(ctx: Context, token: str) -> dict[str, Any]:
    """What the accept page shows before the form: who is invited, where, as what."""
    conn = ctx.db.reader()
    row = _usable(invitations.by_token_hash(conn, token_hash(token)))
    workspace = workspaces.get(conn, row["workspace_id"])
    return {"email": row["email"], "role": row["role"], "display_name": row["display_name"],
            "workspace": workspace["name"] if workspace else "", "expires_at": row["expires_at"]}


def accept(ctx: Context, token: str, password: str, name: str | None, origin: Origin, kind: str) -> Session | None:
    """Create the member and sign them in (a session of ``kind``). The token is checked before the password is
    hashed (a guessed token costs no argon2 work) and again inside the transaction, so it works exactly once.

    None when the workspace requires two-factor sign-in: the account exists, and the member sets up two-factor at
    their first sign-in like anyone else without it (the invitation must not be a way around it)."""
    hashed = token_hash(token)
    invited = _usable(invitations.by_token_hash(ctx.db.reader(), hashed))
    name = clean_name(name, "name", invited["display_name"] or invited["email"].split("@")[0])
    passwords.check(password, "password")
    pw_hash = passwords.hash_password(password, ctx.settings.ARGON2_MEMORY_KIB)

    def write(conn: apsw.Connection) -> Session | None:
        row = _usable(invitations.by_token_hash(conn, hashed))
        if users.email_exists(conn, row["email"]):
            raise AppError("already_exists", "This email already has a ChatSupport account. Sign in instead.")
        # a mailed link proves the mailbox; a copied one only proves someone handed it over
        user = users.create(conn, workspace_id=row["workspace_id"], email=row["email"], password_hash=pw_hash,
                            role=row["role"], display_name=name, email_verified=bool(row["mailed"]))
        invitations.accept(conn, row["id"], user["id"])
        who = {"workspace_id": user["workspace_id"], "user_id": user["id"], "user_email": user["email"],
               "origin": origin}
        record(conn, "user.created", **who, resource_type="user", resource_id=user["id"],
               changes={"after": {"email": user["email"], "role": user["role"], "display_name": name}},
               metadata={"via": "invitation", "invited_by": row["invited_by"]})
        record(conn, "invitation.accepted", **who, resource_type="invitation", resource_id=row["id"])
        if totp.gate(conn, user) != "none":
            return None
        users.update(conn, user["id"], last_login_at=iso(now_utc()))
        session = start_session(conn, user, kind, origin)
        record(conn, "user.login", **who, resource_type="session", resource_id=session.family_id,
               metadata={"via": "invitation"})
        return session

    return ctx.db.write(write)
