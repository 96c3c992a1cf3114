"""Accounts: first-run setup, users created by the CLI or open sign-up, profile, password change and reset,
email verification.

On-prem instances often have no mail server: an unverified email does not block login, and reset/verify links
are printed by ``chatsupport reset-link`` or handed to an admin instead of mailed.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import apsw

from chatsupport.domain import passwords
from chatsupport.domain.audit import CLI, Actor, Origin, record
from chatsupport.domain.auth import Context, Session, iso, new_token, normalize_email, now_utc, start_session, \
    token_hash
from chatsupport.domain.permissions import ROLES
from chatsupport.errors import AppError
from chatsupport.store import sessions, users, workspaces
from chatsupport.store.db import Row

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
RESET_VALID = timedelta(hours=1)
VERIFY_VALID = timedelta(days=7)
LINK_PATHS = {"reset_password": "/reset-password", "verify_email": "/verify-email"}


def _invalid(field: str, message: str) -> AppError:
    return AppError("validation_error", details=[{"field": field, "message": message}])


def clean_email(email: str) -> str:
    email = normalize_email(email)
    if len(email) > 254 or not EMAIL.match(email):
        raise _invalid("email", "Enter a valid email address.")
    return email


def clean_name(value: str | None, field: str, fallback: str = "", max_length: int = 100) -> str:
    """Trimmed, without control characters, 1..max_length characters."""
    value = " ".join((value or "").split()) or fallback
    if not value:
        raise _invalid(field, "This field is required.")
    if len(value) > max_length:
        raise _invalid(field, f"At most {max_length} characters.")
    return value


def _hash_new_password(ctx: Context, password: str, field: str = "password") -> str:
    passwords.check(password, field)
    return passwords.hash_password(password, ctx.settings.ARGON2_MEMORY_KIB)


def _add_user(conn: apsw.Connection, workspace_id: str, email: str, pw_hash: str, role: str, name: str,
              verified: bool, origin: Origin, by: Actor | None = None) -> Row:
    if users.email_exists(conn, email):
        raise AppError("already_exists", "A user with this email already exists.",
                       details=[{"field": "email", "message": "Already registered."}])
    user = users.create(conn, workspace_id=workspace_id, email=email, password_hash=pw_hash, role=role,
                        display_name=name, email_verified=verified)
    record(conn, "user.created", actor=by, workspace_id=workspace_id, origin=origin,
           user_email=by.email if by else email, resource_type="user", resource_id=user["id"],
           changes={"after": {"email": email, "role": role, "display_name": name}})
    return user


def setup(ctx: Context, *, workspace: str, email: str, password: str, display_name: str | None,
          origin: Origin) -> Row:
    """First run: the instance's first workspace and its owner. Refused once any user exists."""
    workspace, email = clean_name(workspace, "workspace"), clean_email(email)
    name = clean_name(display_name, "display_name", email.split("@")[0])
    pw_hash = _hash_new_password(ctx, password)

    def write(conn: apsw.Connection) -> Row:
        if users.count(conn):
            raise AppError("setup_done")
        ws = workspaces.create(conn, workspace)
        record(conn, "workspace.created", workspace_id=ws["id"], origin=origin, user_email=email,
               resource_type="workspace", resource_id=ws["id"], metadata={"via": "setup"})
        return _add_user(conn, ws["id"], email, pw_hash, "owner", name, True, origin)

    return ctx.db.write(write)


def create_user(ctx: Context, *, workspace: str, email: str, password: str, role: str,
                display_name: str | None = None, origin: Origin = CLI) -> tuple[Row, bool]:
    """Operator path (CLI): add a user to the named workspace, creating it if new. Returns (user, created_ws)."""
    if role not in ROLES:
        raise _invalid("role", f"One of {', '.join(ROLES)}.")
    workspace, email = clean_name(workspace, "workspace"), clean_email(email)
    name = clean_name(display_name, "display_name", email.split("@")[0])
    pw_hash = _hash_new_password(ctx, password)

    def write(conn: apsw.Connection) -> tuple[Row, bool]:
        ws, created = workspaces.find_by_name(conn, workspace), False
        if ws is None:
            ws, created = workspaces.create(conn, workspace), True
            record(conn, "workspace.created", workspace_id=ws["id"], origin=origin, user_email=email,
                   resource_type="workspace", resource_id=ws["id"], metadata={"via": "cli"})
        return _add_user(conn, ws["id"], email, pw_hash, role, name, True, origin), created

    return ctx.db.write(write)


def register(ctx: Context, *, workspace: str, email: str, password: str, display_name: str | None,
             origin: Origin) -> tuple[Session, str]:
    """Open sign-up: a new workspace and its (unverified) owner, signed in. Returns the session and a verify link."""
    workspace, email = clean_name(workspace, "workspace_name"), clean_email(email)
    name = clean_name(display_name, "display_name", email.split("@")[0])
    pw_hash = _hash_new_password(ctx, password)
    verify = new_token()

    def write(conn: apsw.Connection) -> Session:
        ws = workspaces.create(conn, workspace)
        record(conn, "workspace.created", workspace_id=ws["id"], origin=origin, user_email=email,
               resource_type="workspace", resource_id=ws["id"], metadata={"via": "register"})
        user = _add_user(conn, ws["id"], email, pw_hash, "owner", name, False, origin)
        _store_link_token(conn, user["id"], "verify_email", verify)
        return start_session(conn, user, "api", origin)

    return ctx.db.write(write), link(ctx, "verify_email", verify)


# --- profile and passwords ----------------------------------------------------------------------------------
def update_profile(ctx: Context, actor: Actor, display_name: str) -> Row:
    name = clean_name(display_name, "display_name")

    def write(conn: apsw.Connection) -> Row:
        users.update(conn, actor.user_id, display_name=name)
        record(conn, "user.updated", actor=actor, resource_type="user", resource_id=actor.user_id,
               changes={"before": {"display_name": actor.display_name}, "after": {"display_name": name}})
        return users.get(conn, actor.user_id)  # type: ignore[return-value]

    return ctx.db.write(write)


def change_password(ctx: Context, actor: Actor, current: str, new: str, kind: str) -> Session:
    """Every session of the user ends (other devices too); the caller gets a fresh one of ``kind``."""
    memory = ctx.settings.ARGON2_MEMORY_KIB
    if not passwords.verify(users.password_hash(ctx.db.reader(), actor.user_id), current, memory):
        raise AppError("wrong_password", details=[{"field": "current_password", "message": "Incorrect."}])
    pw_hash = _hash_new_password(ctx, new, "new_password")

    def write(conn: apsw.Connection) -> Session:
        _set_password(conn, actor.user_id, pw_hash)
        record(conn, "user.password_changed", actor=actor, resource_type="user", resource_id=actor.user_id)
        user = users.get(conn, actor.user_id)
        assert user is not None
        return start_session(conn, user, kind, actor.origin)

    return ctx.db.write(write)


def _set_password(conn: apsw.Connection, user_id: str, pw_hash: str) -> None:
    users.update(conn, user_id, password_hash=pw_hash)
    sessions.revoke_user(conn, user_id)
    sessions.use_user_tokens(conn, user_id, "reset_password")


# --- one-time links -----------------------------------------------------------------------------------------
def link(ctx: Context, purpose: str, token: str) -> str:
    return f"{ctx.settings.base_url}{LINK_PATHS[purpose]}?token={token}"


def _store_link_token(conn: apsw.Connection, user_id: str, purpose: str, token: str) -> None:
    valid = RESET_VALID if purpose == "reset_password" else VERIFY_VALID
    sessions.insert_user_token(conn, user_id=user_id, purpose=purpose, token_hash=token_hash(token),
                               expires_at=iso(now_utc() + valid))


def issue_link(ctx: Context, email: str, purpose: str, origin: Origin = CLI, by: Actor | None = None,
               user_id: str | None = None) -> dict[str, Any]:
    """A reset or verify link for a user named by email (CLI) or id within ``by``'s workspace (admin API)."""
    token = new_token()

    def write(conn: apsw.Connection) -> dict[str, Any]:
        if user_id is not None:
            user = users.get_in_workspace(conn, by.workspace_id, user_id) if by else None
        else:
            row = users.credentials(conn, normalize_email(email))
            user = users.get(conn, row["id"]) if row else None
        if user is None:
            raise AppError("not_found", "No such user.")
        _store_link_token(conn, user["id"], purpose, token)
        record(conn, f"user.{purpose}_link_issued", actor=by, workspace_id=user["workspace_id"], origin=origin,
               user_email=by.email if by else None, resource_type="user", resource_id=user["id"])
        return {"user_id": user["id"], "email": user["email"], "url": link(ctx, purpose, token),
                "expires_at": iso(now_utc() + (RESET_VALID if purpose == "reset_password" else VERIFY_VALID))}

    return ctx.db.write(write)


def request_reset(ctx: Context, email: str, origin: Origin, mail: bool = False) -> dict[str, Any] | None:
    """forgot-password: never says whether the email exists. With a mail server (``mail``) a one-time link is
    issued and returned for the caller to send; without one the request is only recorded, so an admin sees it in
    the audit log and hands over a link (``chatsupport reset-link`` or the users API)."""
    email = normalize_email(email)
    row = users.credentials(ctx.db.reader(), email) if EMAIL.match(email) else None
    if row is None or row["status"] != "active":
        return None
    token = new_token()

    def write(conn: apsw.Connection) -> None:
        if mail:
            _store_link_token(conn, row["id"], "reset_password", token)
        record(conn, "user.password_reset_requested", workspace_id=row["workspace_id"], user_id=row["id"],
               user_email=email, origin=origin, resource_type="user", resource_id=row["id"],
               metadata={"mailed": mail})

    ctx.db.write(write)
    return {"email": email, "url": link(ctx, "reset_password", token)} if mail else None


def _take_token(conn: apsw.Connection, purpose: str, token: str) -> Row | None:
    row = sessions.user_token(conn, purpose, token_hash(token))
    if row is None or row["used_at"] or row["expires_at"] <= iso(now_utc()):
        return None
    user = users.get(conn, row["user_id"])
    if user is None or user["status"] != "active":
        return None
    sessions.use_user_tokens(conn, user["id"], purpose)
    return user


def reset_password(ctx: Context, token: str, password: str, origin: Origin) -> Row:
    pw_hash = _hash_new_password(ctx, password)

    def write(conn: apsw.Connection) -> Row | None:
        user = _take_token(conn, "reset_password", token)
        if user is not None:
            _set_password(conn, user["id"], pw_hash)
            users.update(conn, user["id"], email_verified=1)  # the link reached the mailbox
            record(conn, "user.password_reset", workspace_id=user["workspace_id"], user_id=user["id"],
                   user_email=user["email"], origin=origin, resource_type="user", resource_id=user["id"])
        return user

    user = ctx.db.write(write)
    if user is None:
        raise AppError("invalid_token", "The link is invalid, used or expired.")
    return user


def verify_email(ctx: Context, token: str, origin: Origin) -> Row:
    def write(conn: apsw.Connection) -> Row | None:
        user = _take_token(conn, "verify_email", token)
        if user is not None:
            users.update(conn, user["id"], email_verified=1)
            record(conn, "user.email_verified", workspace_id=user["workspace_id"], user_id=user["id"],
                   user_email=user["email"], origin=origin, resource_type="user", resource_id=user["id"])
            user = users.get(conn, user["id"])
        return user

    user = ctx.db.write(write)
    if user is None:
        raise AppError("invalid_token", "The link is invalid, used or expired.")
    return user


def setup_needed(ctx: Context) -> bool:
    return users.count(ctx.db.reader()) == 0
