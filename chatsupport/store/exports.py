"""Bulk exports (PRD §5.6.3): the export rows, and the batched reads an export job streams from.

The job reads conversations in keyset batches ordered by (created_at, id) and only those created up to the
request (so a busy inbox cannot make an export run forever, and ``total`` holds), then the messages of one batch
at a time. Each batch is its own short read: no read transaction stays open for the length of an export.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import apsw

from chatsupport.store.db import Row

EXPORT_COLUMNS = ("id, workspace_id, requested_by, kind, format, status, request, total, done, file_name, size,"
                  " error, created_at, started_at, updated_at, completed_at, expires_at")
BATCH_COLUMNS = (
    "c.id, c.created_at, c.updated_at, c.resolved_at, c.status, c.message_count, c.satisfaction_rating, c.tags,"
    " c.chatbot_id, b.name AS chatbot_name, cu.name AS customer_name, cu.email AS customer_email,"
    " c.assigned_agent_id, u.display_name AS agent_name, u.email AS agent_email,"
    " CASE WHEN c.resolved_at IS NULL THEN NULL"
    "  ELSE round((julianday(c.resolved_at) - julianday(c.created_at)) * 1440, 1) END AS resolution_time_minutes")


def _export(row: Row | None) -> Row | None:
    if row is not None:
        row["request"] = json.loads(row["request"])
    return row


def insert(conn: apsw.Connection, row: dict[str, Any]) -> None:
    """``kind``: ``conversations`` (bulk exports) unless the row names another (``workspace``: a privacy export)."""
    conn.execute("INSERT INTO exports(id, workspace_id, requested_by, kind, format, request, total, created_at,"
                 " updated_at, expires_at) VALUES (:id, :workspace_id, :requested_by, :kind, :format, :request, :total,"
                 " :created_at, :created_at, :expires_at)",
                 {"kind": "conversations", **row, "request": json.dumps(row["request"])})


def get(conn: apsw.Connection, workspace_id: str, export_id: str, kind: str = "conversations") -> Row | None:
    return _export(conn.execute(f"SELECT {EXPORT_COLUMNS} FROM exports WHERE id = ? AND workspace_id = ?"
                                " AND kind = ?", (export_id, workspace_id, kind)).fetchone())


def get_for_job(conn: apsw.Connection, export_id: str) -> Row | None:
    """The job knows the export by id only; the row carries its workspace."""
    return _export(conn.execute(f"SELECT {EXPORT_COLUMNS} FROM exports WHERE id = ?", (export_id,)).fetchone())


def recent(conn: apsw.Connection, workspace_id: str, now: str, limit: int, kind: str = "conversations") -> list[Row]:
    rows = conn.execute(f"SELECT {EXPORT_COLUMNS} FROM exports WHERE workspace_id = ? AND expires_at > ? AND kind = ?"
                        " ORDER BY created_at DESC, id DESC LIMIT ?", (workspace_id, now, kind, limit)).fetchall()
    return [_export(row) for row in rows]  # type: ignore[misc]


def running_count(conn: apsw.Connection, workspace_id: str) -> int:
    row = conn.execute("SELECT count(*) AS n FROM exports WHERE workspace_id = ? AND status = 'processing'",
                       (workspace_id,)).fetchone()
    return int(row["n"])


def start(conn: apsw.Connection, export_id: str, total: int, now: str) -> None:
    conn.execute("UPDATE exports SET started_at = ?, updated_at = ?, total = ?, done = 0 WHERE id = ?",
                 (now, now, total, export_id))


def progress(conn: apsw.Connection, export_id: str, done: int, now: str) -> None:
    conn.execute("UPDATE exports SET done = ?, updated_at = ? WHERE id = ?", (done, now, export_id))


def complete(conn: apsw.Connection, export_id: str, done: int, file_name: str, size: int, now: str) -> None:
    conn.execute("UPDATE exports SET status = 'completed', done = ?, total = ?, file_name = ?, size = ?,"
                 " updated_at = ?, completed_at = ? WHERE id = ?", (done, done, file_name, size, now, now, export_id))


def fail(conn: apsw.Connection, export_id: str, message: str, now: str) -> None:
    conn.execute("UPDATE exports SET status = 'failed', error = ?, updated_at = ?, completed_at = ? WHERE id = ?"
                 " AND status = 'processing'", (message, now, now, export_id))


def expired(conn: apsw.Connection, now: str) -> list[Row]:
    return conn.execute("SELECT id, workspace_id, file_name FROM exports WHERE expires_at <= ?", (now,)).fetchall()


def delete(conn: apsw.Connection, export_ids: Sequence[str]) -> None:
    conn.execute("DELETE FROM exports WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(list(export_ids)),))


def stalled(conn: apsw.Connection, cutoff: str) -> list[Row]:
    """Jobs that started and then wrote nothing since ``cutoff``: their process died. (A job still waiting in
    the queue has not started; Huey's queue file keeps it across restarts.)"""
    return conn.execute("SELECT id, workspace_id FROM exports WHERE status = 'processing' AND started_at IS NOT NULL"
                        " AND updated_at < ?", (cutoff,)).fetchall()


# --- what an export job reads -----------------------------------------------------------------------------------
def count_conversations(conn: apsw.Connection, where: str, params: Sequence[Any], created_until: str) -> int:
    row = conn.execute(f"SELECT count(*) AS n FROM conversations c WHERE {where} AND c.created_at <= ?",
                       (*params, created_until)).fetchone()
    return int(row["n"])


def conversation_batch(conn: apsw.Connection, where: str, params: Sequence[Any], created_until: str,
                       after: tuple[str, str] | None, limit: int) -> list[Row]:
    """``where`` comes from ``conversation_search.filter_where`` (alias ``c``, workspace included);
    ``after`` = (created_at, id) of the last conversation already written."""
    keyset, keys = ("AND (c.created_at, c.id) > (?, ?)", after) if after else ("", ())
    rows = conn.execute(
        f"SELECT {BATCH_COLUMNS} FROM conversations c JOIN chatbots b ON b.id = c.chatbot_id"
        " LEFT JOIN customers cu ON cu.id = c.customer_id LEFT JOIN users u ON u.id = c.assigned_agent_id"
        f" WHERE {where} AND c.created_at <= ? {keyset} ORDER BY c.created_at, c.id LIMIT ?",
        (*params, created_until, *keys, limit)).fetchall()
    for row in rows:
        row["tags"] = json.loads(row["tags"])
    return rows


def batch_messages(conn: apsw.Connection, conversation_ids: Sequence[str]) -> dict[str, list[Row]]:
    """The messages of a batch of conversations, oldest first, by conversation id."""
    by_conversation: dict[str, list[Row]] = {cid: [] for cid in conversation_ids}
    rows = conn.execute(
        "SELECT conversation_id, id, sender_type, sender_name, content, ai_metadata, created_at FROM messages"
        " WHERE conversation_id IN (SELECT value FROM json_each(?)) AND deleted_at IS NULL"
        " ORDER BY conversation_id, created_at, rowid", (json.dumps(list(conversation_ids)),)).fetchall()
    for row in rows:
        row["ai_metadata"] = json.loads(row["ai_metadata"]) if row["ai_metadata"] else None
        by_conversation[row["conversation_id"]].append(row)
    return by_conversation
