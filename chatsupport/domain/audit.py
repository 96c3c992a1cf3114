"""Security-relevant actions, recorded in the same transaction as the change they describe.

Action names follow the PRD (``user.login``, ``chatbot.created``): ``<resource>.<verb>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import apsw

from chatsupport.errors import AppError
from chatsupport.store import audit as audit_store
from chatsupport.store.db import Database


@dataclass(frozen=True)
class Origin:
    """Where a request came from, for the audit trail and login throttling."""

    ip: str | None = None
    user_agent: str | None = None


CLI = Origin(ip=None, user_agent="chatsupport-cli")


@dataclass(frozen=True)
class Actor:
    """The signed-in user a request acts for; ``session_id`` is the session (token family) it came in on."""

    user_id: str
    workspace_id: str
    role: str
    email: str
    display_name: str
    session_id: str | None = None
    origin: Origin = Origin()


def record(conn: apsw.Connection, action: str, *, actor: Actor | None = None, workspace_id: str | None = None,
           origin: Origin | None = None, user_id: str | None = None, user_email: str | None = None,
           resource_type: str | None = None, resource_id: str | None = None, changes: Any = None,
           metadata: Any = None) -> None:
    origin = origin or (actor.origin if actor else Origin())
    audit_store.insert(
        conn, action=action, workspace_id=workspace_id or (actor.workspace_id if actor else None),
        user_id=user_id or (actor.user_id if actor else None), user_email=user_email or (actor.email if actor else None),
        ip_address=origin.ip, user_agent=origin.user_agent, resource_type=resource_type, resource_id=resource_id,
        changes=changes, metadata=metadata,
    )


def search(db: Database, actor: Actor, filters: dict[str, str], page: int, limit: int) -> dict[str, Any]:
    """One page of the actor's workspace log, newest first. ``action`` ending in ``.*`` matches a prefix."""
    if not 1 <= limit <= 200 or page < 1:
        raise AppError("validation_error", details=[{"field": "limit" if page >= 1 else "page",
                                                     "message": "limit is 1-200 and page starts at 1"}])
    filters = {k: v for k, v in filters.items() if v}
    action = filters.get("action", "")
    if action.endswith(".*"):
        prefix = action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        filters.pop("action")
        filters["action_prefix"] = prefix + "%"
    rows, total = audit_store.search(db.reader(), actor.workspace_id, filters, limit, (page - 1) * limit)
    return {"data": rows, "pagination": pagination(page, limit, total)}


def pagination(page: int, limit: int, total: int) -> dict[str, int]:
    return {"page": page, "limit": limit, "total": total, "total_pages": max(1, math.ceil(total / limit))}

