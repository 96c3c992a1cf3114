"""The people of a workspace: listing them, and the role and status changes an owner or admin makes.

Deactivating a user ends every session at once. Only an owner may make or unmake owners, and nobody changes
their own role or status (so a workspace cannot lose its last owner by accident).
"""

from __future__ import annotations

from typing import Any

import apsw

from chatsupport.domain.audit import Actor, record
from chatsupport.domain.auth import Context, public_user
from chatsupport.domain.permissions import ROLES
from chatsupport.errors import AppError
from chatsupport.store import sessions, users
from chatsupport.store.db import Row

STATUSES = ("active", "inactive", "suspended")


def list_users(ctx: Context, actor: Actor) -> list[dict[str, Any]]:
    return [public_user(user) for user in users.in_workspace(ctx.db.reader(), actor.workspace_id)]


def get_user(ctx: Context, actor: Actor, user_id: str) -> dict[str, Any]:
    user = users.get_in_workspace(ctx.db.reader(), actor.workspace_id, user_id)
    if user is None:
        raise AppError("not_found")
    return public_user(user)


def update_user(ctx: Context, actor: Actor, user_id: str, role: str | None, status: str | None) -> dict[str, Any]:
    if role is not None and role not in ROLES:
        raise AppError("validation_error", details=[{"field": "role", "message": f"One of {', '.join(ROLES)}."}])
    if status is not None and status not in STATUSES:
        raise AppError("validation_error", details=[{"field": "status", "message": f"One of {', '.join(STATUSES)}."}])
    return public_user(ctx.db.write(lambda conn: _apply(conn, actor, user_id, role, status)))


def _apply(conn: apsw.Connection, actor: Actor, user_id: str, role: str | None, status: str | None) -> Row:
    user = users.get_in_workspace(conn, actor.workspace_id, user_id)
    if user is None:
        raise AppError("not_found")
    if user["id"] == actor.user_id:
        raise AppError("conflict", "You cannot change your own role or status.")
    if actor.role != "owner" and "owner" in (user["role"], role):
        raise AppError("forbidden", "Only an owner can change an owner's role or make someone an owner.")
    changes = {k: v for k, v in (("role", role), ("status", status)) if v is not None and v != user[k]}
    if not changes:
        return user
    users.update(conn, user["id"], **changes)
    if changes.get("status", "active") != "active":
        sessions.revoke_user(conn, user["id"])
    action = "user.role_changed" if "role" in changes else "user.status_changed"
    record(conn, action, actor=actor, resource_type="user", resource_id=user["id"],
           changes={"before": {k: user[k] for k in changes}, "after": changes})
    return users.get(conn, user["id"])  # type: ignore[return-value]
