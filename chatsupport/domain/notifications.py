"""A console user's own notifications: someone @mentioned them in a note, a conversation was escalated, a
conversation was assigned to them. Rows are written in the same transaction as the change they report; the
``notification:new`` frame goes to ``user:<id>`` (every console tab that person has open) after the commit.

Who hears of an escalation: every active owner, admin and agent of the workspace, online or not. Presence is a
heartbeat that lags by up to two minutes, and someone who opens the console a minute later should still find
the customer waiting in their list; the browser notification and sound are for the consoles open right now.
"""

from __future__ import annotations

from typing import Any, Iterable

import apsw

from chatsupport import live
from chatsupport.domain.audit import Actor
from chatsupport.domain.auth import Context
from chatsupport.errors import AppError
from chatsupport.store import collaboration as store
from chatsupport.store import conversations as conversation_store
from chatsupport.store.db import Row

MAX_BODY = 200
# Why the AI handed over, in the words an agent reads in the notification list.
REASONS = {
    "user_request": "The customer asked for a person.",
    "frustration_detected": "The customer seems frustrated.",
    "billing_dispute": "A billing dispute.",
    "account_deletion": "A request to delete an account or personal data.",
    "legal": "A legal matter.",
    "security_incident": "A possible security incident.",
    "low_confidence": "The AI was not confident in its answer.",
    "max_failed_responses": "The AI could not answer several times in a row.",
    "max_conversation_length": "The conversation ran long.",
}


def create(conn: apsw.Connection, workspace_id: str, user_ids: Iterable[str], kind: str, title: str, body: str, *,
           conversation_id: str | None, note_id: str | None = None, actor_id: str | None = None) -> list[Row]:
    """One row per person (each once), carrying their unread count for the frame."""
    rows = []
    for user_id in dict.fromkeys(user_ids):
        row = store.add_notification(conn, workspace_id, user_id, kind, title, body[:MAX_BODY],
                                     conversation_id=conversation_id, note_id=note_id, actor_id=actor_id)
        row["unread_count"] = store.unread_count(conn, workspace_id, user_id)
        rows.append(row)
    return rows


def publish(rows: Iterable[Row]) -> None:
    """After the commit: ``notification:new`` to each recipient's own channel."""
    for row in rows:
        live.publish("notification:new", {"notification": out(row), "unread_count": row["unread_count"]},
                     channel=live.user_channel(row["user_id"]))


def out(row: Row) -> dict[str, Any]:
    return {"id": row["id"], "kind": row["kind"], "title": row["title"], "body": row["body"],
            "conversation_id": row["conversation_id"], "note_id": row["note_id"], "actor_id": row["actor_id"],
            "read": row["read_at"] is not None, "read_at": row["read_at"], "created_at": row["created_at"]}


def _customer_name(conn: apsw.Connection, workspace_id: str, conversation_id: str) -> str:
    conversation = conversation_store.get(conn, workspace_id, conversation_id)
    customer = (conversation_store.get_customer(conn, workspace_id, conversation["customer_id"])
                if conversation and conversation["customer_id"] else None)
    return (customer or {}).get("name") or (customer or {}).get("email") or "A visitor"


def escalated(conn: apsw.Connection, workspace_id: str, conversation_id: str, reason: str | None) -> list[Row]:
    """Called by every escalation, inside its transaction (the answer engine's and the widget's button)."""
    staff = [member["id"] for member in store.active_staff(conn, workspace_id)]
    title = f"{_customer_name(conn, workspace_id, conversation_id)} needs a person"
    body = REASONS.get(reason or "", "The AI handed the conversation over.")
    return create(conn, workspace_id, staff, "escalation", title, body, conversation_id=conversation_id)


def assigned(conn: apsw.Connection, actor: Actor, conversation_id: str, assignee_id: str) -> list[Row]:
    """The assignee hears of it, unless they assigned it to themselves."""
    if assignee_id == actor.user_id:
        return []
    title = f"{actor.display_name or 'A colleague'} assigned you a conversation"
    body = f"With {_customer_name(conn, actor.workspace_id, conversation_id)}."
    return create(conn, actor.workspace_id, [assignee_id], "assignment", title, body,
                  conversation_id=conversation_id, actor_id=actor.user_id)


# --- the list and read state ------------------------------------------------------------------------------------
def _cursor(raw: str | None) -> tuple[str, str] | None:
    if not raw:
        return None
    stamp, _, last_id = raw.partition("|")
    if not stamp or not last_id:
        raise AppError("validation_error", details=[{"field": "cursor", "message": "Use next_cursor as given."}])
    return stamp, last_id


def listing(ctx: Context, actor: Actor, *, unread_only: bool, cursor: str | None, limit: int) -> dict[str, Any]:
    """The caller's own notifications, newest first, with their unread count."""
    conn = ctx.db.reader()
    rows = store.notifications(conn, actor.workspace_id, actor.user_id, unread_only=unread_only,
                               before=_cursor(cursor), limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"data": [out(r) for r in rows], "unread_count": store.unread_count(conn, actor.workspace_id,
                                                                               actor.user_id),
            "next_cursor": f"{rows[-1]['created_at']}|{rows[-1]['id']}" if more else None}


def mark_read(ctx: Context, actor: Actor, ids: list[str] | None) -> dict[str, Any]:
    """``ids`` None: every notification of the caller. Other people's ids are ignored, not refused (they are not
    the caller's to know about). Other tabs of the same person hear ``notification:read``."""

    def work(conn: apsw.Connection) -> tuple[int, int]:
        changed = store.mark_notifications_read(conn, actor.workspace_id, actor.user_id, ids)
        return changed, store.unread_count(conn, actor.workspace_id, actor.user_id)

    changed, unread = ctx.db.write(work)
    if changed:
        live.publish("notification:read", {"ids": ids, "unread_count": unread},
                     channel=live.user_channel(actor.user_id))
    return {"updated": changed, "unread_count": unread}
