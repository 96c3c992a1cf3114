"""What the team keeps around a conversation besides its messages: internal notes, assignment, tags, canned
responses, read markers and notifications. Plain SQL, every query scoped to a workspace (notes through their
conversation's)."""

from __future__ import annotations

import json
import uuid
from typing import Any, Sequence

import apsw

from chatsupport.store.db import Row
from chatsupport.store.instance_state import utc_now

CANNED_COLUMNS = "id, shortcut, title, content, created_by, created_at, updated_at"
NOTIFICATION_COLUMNS = ("id, kind, title, body, conversation_id, note_id, actor_id, read_at, created_at")


def like_prefix(text: str) -> str:
    """A LIKE pattern matching ``text`` as a literal prefix (``ESCAPE '\\'``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# --- members: who can be mentioned, notified, assigned ----------------------------------------------------------
def active_members(conn: apsw.Connection, workspace_id: str) -> list[Row]:
    return conn.execute("SELECT id, email, display_name, role FROM users WHERE workspace_id = ? AND status = 'active'"
                        " AND deleted_at IS NULL ORDER BY created_at, email", (workspace_id,)).fetchall()


def active_staff(conn: apsw.Connection, workspace_id: str) -> list[Row]:
    return [m for m in active_members(conn, workspace_id) if m["role"] in ("owner", "admin", "agent")]


# --- notes --------------------------------------------------------------------------------------------------
def add_note(conn: apsw.Connection, conversation_id: str, author_id: str, content: str,
             mentioned: Sequence[str]) -> Row:
    note_id, now = str(uuid.uuid4()), utc_now()
    conn.execute("INSERT INTO internal_notes(id, conversation_id, content, mentioned_users, author_id, created_at,"
                 " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (note_id, conversation_id, content, json.dumps(list(mentioned)), author_id, now, now))
    return {"id": note_id, "conversation_id": conversation_id, "content": content, "mentioned_users": list(mentioned),
            "author_id": author_id, "created_at": now}


# --- assignment and tags ----------------------------------------------------------------------------------------
def assign(conn: apsw.Connection, workspace_id: str, conversation_id: str, agent_id: str) -> None:
    """Name the agent without touching the status (``conversations.set_status`` would stamp resolved_at again)."""
    now = utc_now()
    conn.execute("UPDATE conversations SET assigned_agent_id = ?, assigned_at = ?, updated_at = ? WHERE id = ?"
                 " AND workspace_id = ?", (agent_id, now, now, conversation_id, workspace_id))


def set_tags(conn: apsw.Connection, workspace_id: str, conversation_id: str, tags: Sequence[str]) -> None:
    conn.execute("UPDATE conversations SET tags = ? WHERE id = ? AND workspace_id = ?",
                 (json.dumps(list(tags)), conversation_id, workspace_id))


def tag_counts(conn: apsw.Connection, workspace_id: str, prefix: str, limit: int) -> list[Row]:
    """The workspace's tags starting with ``prefix``, most used first: a range of the ``conversation_tags`` index
    (lower-cased tags kept in step with ``conversations.tags`` by triggers, so tags differing in case are one)."""
    return conn.execute(
        "SELECT tag, count(*) AS count FROM conversation_tags WHERE workspace_id = ? AND tag >= lower(?)"
        " AND tag < lower(?) || char(1114111) GROUP BY tag ORDER BY count(*) DESC, tag LIMIT ?",
        (workspace_id, prefix, prefix, limit)).fetchall()


# --- read markers ---------------------------------------------------------------------------------------------
def mark_read(conn: apsw.Connection, user_id: str, conversation_id: str) -> str:
    now = utc_now()
    conn.execute("INSERT INTO conversation_reads(user_id, conversation_id, read_at) VALUES (?, ?, ?)"
                 " ON CONFLICT(user_id, conversation_id) DO UPDATE SET read_at = excluded.read_at",
                 (user_id, conversation_id, now))
    return now


# --- canned responses -----------------------------------------------------------------------------------------
def canned_list(conn: apsw.Connection, workspace_id: str, prefix: str, limit: int) -> list[Row]:
    pattern = like_prefix(prefix)
    return conn.execute(f"SELECT {CANNED_COLUMNS} FROM canned_responses WHERE workspace_id = ?"
                        " AND (shortcut LIKE ? ESCAPE '\\' OR title LIKE ? ESCAPE '\\')"
                        " ORDER BY shortcut COLLATE NOCASE LIMIT ?", (workspace_id, pattern, pattern, limit)).fetchall()


def canned_get(conn: apsw.Connection, workspace_id: str, canned_id: str) -> Row | None:
    return conn.execute(f"SELECT {CANNED_COLUMNS} FROM canned_responses WHERE id = ? AND workspace_id = ?",
                        (canned_id, workspace_id)).fetchone()


def canned_shortcut_taken(conn: apsw.Connection, workspace_id: str, shortcut: str, except_id: str | None) -> bool:
    return conn.execute("SELECT 1 AS x FROM canned_responses WHERE workspace_id = ? AND shortcut = ? COLLATE NOCASE"
                        " AND id IS NOT ?", (workspace_id, shortcut, except_id)).fetchone() is not None


def canned_insert(conn: apsw.Connection, workspace_id: str, shortcut: str, title: str, content: str,
                  created_by: str) -> str:
    canned_id, now = str(uuid.uuid4()), utc_now()
    conn.execute("INSERT INTO canned_responses(id, workspace_id, shortcut, title, content, created_by, created_at,"
                 " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (canned_id, workspace_id, shortcut, title, content, created_by, now, now))
    return canned_id


def canned_update(conn: apsw.Connection, workspace_id: str, canned_id: str, fields: dict[str, Any]) -> None:
    if not fields or not set(fields) <= {"shortcut", "title", "content"}:
        raise ValueError(f"cannot update {sorted(fields)}")
    assignments = ", ".join(f"{name} = :{name}" for name in fields)
    conn.execute(f"UPDATE canned_responses SET {assignments}, updated_at = :now WHERE id = :id"
                 " AND workspace_id = :workspace_id",
                 {**fields, "now": utc_now(), "id": canned_id, "workspace_id": workspace_id})


def canned_delete(conn: apsw.Connection, workspace_id: str, canned_id: str) -> None:
    conn.execute("DELETE FROM canned_responses WHERE id = ? AND workspace_id = ?", (canned_id, workspace_id))


# --- notifications --------------------------------------------------------------------------------------------
def add_notification(conn: apsw.Connection, workspace_id: str, user_id: str, kind: str, title: str, body: str, *,
                     conversation_id: str | None, note_id: str | None = None, actor_id: str | None = None) -> Row:
    notification_id, now = str(uuid.uuid4()), utc_now()
    conn.execute("INSERT INTO notifications(id, workspace_id, user_id, kind, title, body, conversation_id, note_id,"
                 " actor_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (notification_id, workspace_id, user_id, kind, title, body, conversation_id, note_id, actor_id, now))
    return conn.execute(f"SELECT {NOTIFICATION_COLUMNS}, user_id FROM notifications WHERE id = ?",
                        (notification_id,)).fetchone()


def notifications(conn: apsw.Connection, workspace_id: str, user_id: str, *, unread_only: bool,
                  before: tuple[str, str] | None, limit: int) -> list[Row]:
    """Newest first; ``before`` = (created_at, id) of the last one already shown."""
    clauses, params = ["workspace_id = ?", "user_id = ?"], [workspace_id, user_id]
    if unread_only:
        clauses.append("read_at IS NULL")
    if before is not None:
        clauses.append("(created_at, id) < (?, ?)")
        params.extend(before)
    return conn.execute(f"SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE {' AND '.join(clauses)}"
                        " ORDER BY created_at DESC, id DESC LIMIT ?", (*params, limit)).fetchall()


def unread_count(conn: apsw.Connection, workspace_id: str, user_id: str) -> int:
    row = conn.execute("SELECT count(*) AS n FROM notifications WHERE user_id = ? AND workspace_id = ?"
                       " AND read_at IS NULL", (user_id, workspace_id)).fetchone()
    return int(row["n"])


def mark_notifications_read(conn: apsw.Connection, workspace_id: str, user_id: str,
                            ids: Sequence[str] | None) -> int:
    """The caller's own notifications only; ``ids`` None means all of them. Returns how many changed."""
    sql = "UPDATE notifications SET read_at = ? WHERE user_id = ? AND workspace_id = ? AND read_at IS NULL"
    params: list[Any] = [utc_now(), user_id, workspace_id]
    if ids is not None:
        sql += " AND id IN (SELECT value FROM json_each(?))"
        params.append(json.dumps(list(ids)))
    conn.execute(sql, params)
    return conn.changes()


def prune_notifications(conn: apsw.Connection, read_days: int, unread_days: int) -> int:
    """Delete read notifications older than ``read_days`` and unread ones older than ``unread_days`` (every
    workspace: housekeeping). Returns how many went."""
    conn.execute("DELETE FROM notifications WHERE created_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)"
                 " AND (read_at IS NOT NULL OR created_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?))",
                 (f"-{read_days} days", f"-{unread_days} days"))
    return conn.changes()


# --- the copilot ----------------------------------------------------------------------------------------------
def latest_customer_message(conn: apsw.Connection, workspace_id: str, conversation_id: str) -> Row | None:
    """What the agent copilot drafts a reply to."""
    return conn.execute("SELECT m.id, m.content FROM messages m JOIN conversations c ON c.id = m.conversation_id"
                        " WHERE m.conversation_id = ? AND c.workspace_id = ? AND m.sender_type = 'customer'"
                        " AND m.deleted_at IS NULL ORDER BY m.created_at DESC, m.rowid DESC LIMIT 1",
                        (conversation_id, workspace_id)).fetchone()
