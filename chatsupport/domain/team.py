"""The people of a workspace: listing them, and the role, status and capacity changes an owner or admin makes.

Deactivating a user ends every session at once (console cookies, refresh tokens, and with them every access
token: a token is only honoured while its session lives). Only an owner may change an owner or make someone an
owner, and nobody changes their own role or status, so a workspace cannot lose its last owner: the owner who
would demote or deactivate them is an owner too. History stays: a deactivated user keeps their messages, notes
and audit trail, and can be reactivated.

An agent's max concurrent conversations (``None``: no limit) caps how many conversations they handle live at
once; ``domain.agent_conversations`` enforces it when someone takes over or is handed a conversation.
"""

from __future__ import annotations

import enum
from typing import Any

import apsw

from chatsupport.domain.audit import Actor, record
from chatsupport.domain.auth import Context, public_user
from chatsupport.domain.permissions import ROLES
from chatsupport.errors import AppError
from chatsupport.store import sessions, users
from chatsupport.store.db import Row

STATUSES = ("active", "inactive", "suspended")
MAX_CONCURRENT = 500


class Keep(enum.Enum):
    """A setting the caller did not send (``None`` means something: no limit)."""

    KEEP = "keep"


KEEP = Keep.KEEP


def _invalid(field: str, message: str) -> AppError:
    return AppError("validation_error", details=[{"field": field, "message": message}])


def member(user: Row, held: int) -> dict[str, Any]:
    """A user as the team page and API show them: who, role, status, capacity and current load."""
    return {**public_user(user), "max_concurrent_conversations": user["max_concurrent_conversations"],
            "active_conversations": held, "last_login_at": user["last_login_at"]}


def list_users(ctx: Context, actor: Actor) -> list[dict[str, Any]]:
    return [public_user(user) for user in users.in_workspace(ctx.db.reader(), actor.workspace_id)]


def list_members(ctx: Context, actor: Actor, role: str = "", status: str = "") -> list[dict[str, Any]]:
    """Everyone in the workspace, optionally only one role and/or status."""
    if role and role not in ROLES:
        raise _invalid("role", f"One of {', '.join(ROLES)}.")
    if status and status not in STATUSES:
        raise _invalid("status", f"One of {', '.join(STATUSES)}.")
    conn = ctx.db.reader()
    held = users.conversations_held(conn, actor.workspace_id)
    return [member(user, held.get(user["id"], 0)) for user in users.in_workspace(conn, actor.workspace_id)
            if role in ("", user["role"]) and status in ("", user["status"])]


def exists(ctx: Context, actor: Actor, user_id: str) -> bool:
    """For the web layer's 404-before-the-body check; the changes check again inside their transaction."""
    return users.get_in_workspace(ctx.db.reader(), actor.workspace_id, user_id) is not None


def get_user(ctx: Context, actor: Actor, user_id: str) -> dict[str, Any]:
    user = users.get_in_workspace(ctx.db.reader(), actor.workspace_id, user_id)
    if user is None:
        raise AppError("not_found")
    return public_user(user)


def update_user(ctx: Context, actor: Actor, user_id: str, role: str | None, status: str | None) -> dict[str, Any]:
    return public_user(_update(ctx, actor, user_id, role, status, KEEP))


def update_member(ctx: Context, actor: Actor, user_id: str, role: str | None = None, status: str | None = None,
                  max_concurrent: int | None | Keep = KEEP) -> dict[str, Any]:
    """Role, status and max concurrent conversations in one change (one audit row per kind of change)."""
    user = _update(ctx, actor, user_id, role, status, max_concurrent)
    return member(user, users.conversations_held(ctx.db.reader(), actor.workspace_id, user["id"]).get(user["id"], 0))


def deactivate(ctx: Context, actor: Actor, user_id: str) -> dict[str, Any]:
    """``DELETE /team/members/:id``: the account stays (its history with it) but can no longer sign in, and
    every session it has ends now."""
    user = ctx.db.write(lambda conn: _apply(conn, actor, user_id, None, "inactive", KEEP, "user.deactivated"))
    return member(user, users.conversations_held(ctx.db.reader(), actor.workspace_id, user["id"]).get(user["id"], 0))


def _update(ctx: Context, actor: Actor, user_id: str, role: str | None, status: str | None,
            max_concurrent: int | None | Keep) -> Row:
    if role is not None and role not in ROLES:
        raise _invalid("role", f"One of {', '.join(ROLES)}.")
    if status is not None and status not in STATUSES:
        raise _invalid("status", f"One of {', '.join(STATUSES)}.")
    if isinstance(max_concurrent, int) and not 1 <= max_concurrent <= MAX_CONCURRENT:
        raise _invalid("max_concurrent_conversations", f"Between 1 and {MAX_CONCURRENT}, or empty for no limit.")
    return ctx.db.write(lambda conn: _apply(conn, actor, user_id, role, status, max_concurrent))


def _apply(conn: apsw.Connection, actor: Actor, user_id: str, role: str | None, status: str | None,
           max_concurrent: int | None | Keep, status_action: str = "user.status_changed") -> Row:
    user = users.get_in_workspace(conn, actor.workspace_id, user_id)
    if user is None:
        raise AppError("not_found")
    if user["id"] == actor.user_id and (role is not None or status is not None):
        raise AppError("conflict", "You cannot change your own role or status.")
    if actor.role != "owner" and "owner" in (user["role"], role):
        raise AppError("forbidden", "Only an owner can change an owner or make someone an owner.")
    changes = {k: v for k, v in (("role", role), ("status", status)) if v is not None and v != user[k]}
    if max_concurrent is not KEEP and max_concurrent != user["max_concurrent_conversations"]:
        changes["max_concurrent_conversations"] = max_concurrent
    if not changes:
        return user
    users.update(conn, user["id"], **changes)
    if changes.get("status", "active") != "active":
        sessions.revoke_user(conn, user["id"])
    for field, action in (("role", "user.role_changed"), ("status", status_action),
                          ("max_concurrent_conversations", "user.max_concurrent_changed")):
        if field in changes:
            record(conn, action, actor=actor, resource_type="user", resource_id=user["id"],
                   changes={"before": {field: user[field]}, "after": {field: changes[field]}})
    return users.get(conn, user["id"])  # type: ignore[return-value]
