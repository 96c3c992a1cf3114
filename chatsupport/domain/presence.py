"""Agent presence from the console's heartbeat: online, away, or offline (no heartbeat for
``store.presence.OFFLINE_AFTER_SECONDS``). It feeds the expected-wait estimate a customer sees on escalation."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from chatsupport.domain.audit import Actor
from chatsupport.domain.auth import Context
from chatsupport.errors import AppError
from chatsupport.store import presence as store

STATUSES = ("online", "away")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def heartbeat(ctx: Context, actor: Actor, status: str, now: datetime | None = None) -> dict[str, Any]:
    if status not in STATUSES:
        raise AppError("validation_error", details=[{"field": "status", "message": "online or away"}])
    at = now or _now()
    row = ctx.db.write(lambda conn: store.heartbeat(conn, actor.workspace_id, actor.user_id, status, at))
    return {"user_id": actor.user_id, "status": row["status"], "since": row["status_since"],
            "last_heartbeat_at": row["last_heartbeat_at"], "offline_after_seconds": store.OFFLINE_AFTER_SECONDS}


def effective(reported: str | None, last_heartbeat_at: str | None, now: datetime) -> str:
    if reported is None or last_heartbeat_at is None or last_heartbeat_at < store.online_cutoff(now):
        return "offline"
    return reported


def team(ctx: Context, actor: Actor, now: datetime | None = None) -> dict[str, Any]:
    """Everyone active in the workspace, online first; ``agents_online`` counts who can take a conversation."""
    at = now or _now()
    people = []
    for row in store.team(ctx.db.reader(), actor.workspace_id):
        status = effective(row["reported_status"], row["last_heartbeat_at"], at)
        people.append({"user_id": row["user_id"], "display_name": row["display_name"], "role": row["role"],
                       "status": status, "since": row["status_since"] if status != "offline" else None,
                       "last_seen_at": row["last_heartbeat_at"]})
    order = {"online": 0, "away": 1, "offline": 2}
    people.sort(key=lambda p: order[p["status"]])
    online = sum(1 for p in people if p["status"] == "online" and p["role"] in store.STAFF_ROLES)
    return {"data": people, "agents_online": online, "offline_after_seconds": store.OFFLINE_AFTER_SECONDS}
