"""Outgoing webhooks, their deliveries (one per event and webhook) and every attempt at a delivery."""

from __future__ import annotations

import json
from typing import Any

import apsw

from chatsupport.store.db import Row
from chatsupport.store.instance_state import utc_now

WEBHOOK_COLUMNS = "id, workspace_id, url, description, events, enabled, created_at, updated_at"
UPDATABLE = frozenset({"url", "description", "events", "enabled"})


def _webhook(row: Row | None) -> Row | None:
    if row is not None:
        row["events"] = json.loads(row["events"])
        row["enabled"] = bool(row["enabled"])
    return row


def create(conn: apsw.Connection, *, webhook_id: str, workspace_id: str, url: str, description: str,
           events: list[str], secret_enc: bytes, enabled: bool, user_id: str | None) -> Row:
    now = utc_now()
    conn.execute("INSERT INTO webhooks(id, workspace_id, url, description, events, secret_enc, enabled, created_by,"
                 " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (webhook_id, workspace_id, url, description, json.dumps(events), secret_enc, int(enabled), user_id,
                  now, now))
    return get(conn, workspace_id, webhook_id)  # type: ignore[return-value]


def get(conn: apsw.Connection, workspace_id: str, webhook_id: str) -> Row | None:
    return _webhook(conn.execute(f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ? AND workspace_id = ?",
                                 (webhook_id, workspace_id)).fetchone())


def secret_blob(conn: apsw.Connection, workspace_id: str, webhook_id: str) -> bytes | None:
    row = conn.execute("SELECT secret_enc FROM webhooks WHERE id = ? AND workspace_id = ?",
                       (webhook_id, workspace_id)).fetchone()
    return row["secret_enc"] if row else None


def listing(conn: apsw.Connection, workspace_id: str) -> list[Row]:
    """Oldest first, each with the outcome of its latest delivery (for the console's list)."""
    rows = conn.execute(
        f"SELECT {', '.join('w.' + c for c in WEBHOOK_COLUMNS.split(', '))},"
        " (SELECT d.status FROM webhook_deliveries d WHERE d.webhook_id = w.id"
        "  ORDER BY d.created_at DESC, d.rowid DESC LIMIT 1) AS last_status"
        " FROM webhooks w WHERE w.workspace_id = ? ORDER BY w.created_at, w.rowid", (workspace_id,)).fetchall()
    return [_webhook(row) for row in rows]  # type: ignore[misc]


def subscribed(conn: apsw.Connection, workspace_id: str, event: str) -> list[str]:
    """Ids of the enabled webhooks of the workspace that listen to ``event``."""
    rows = conn.execute("SELECT w.id FROM webhooks w WHERE w.workspace_id = ? AND w.enabled = 1 AND EXISTS"
                        " (SELECT 1 FROM json_each(w.events) e WHERE e.value = ?)", (workspace_id, event))
    return [row["id"] for row in rows]


def update(conn: apsw.Connection, workspace_id: str, webhook_id: str, changes: dict[str, Any]) -> None:
    if not set(changes) <= UPDATABLE:
        raise ValueError(f"unknown webhook columns: {set(changes) - UPDATABLE}")
    values = {k: json.dumps(v) if k == "events" else int(v) if k == "enabled" else v for k, v in changes.items()}
    assignments = "".join(f"{name} = ?, " for name in sorted(values))
    conn.execute(f"UPDATE webhooks SET {assignments}updated_at = ? WHERE id = ? AND workspace_id = ?",
                 [values[name] for name in sorted(values)] + [utc_now(), webhook_id, workspace_id])


def delete(conn: apsw.Connection, workspace_id: str, webhook_id: str) -> bool:
    conn.execute("DELETE FROM webhooks WHERE id = ? AND workspace_id = ?", (webhook_id, workspace_id))
    return conn.changes() > 0


# --- deliveries -----------------------------------------------------------------------------------------------
def add_delivery(conn: apsw.Connection, *, delivery_id: str, webhook_id: str, workspace_id: str, event: str,
                 payload: str, customer_id: str | None, created_at: str) -> None:
    conn.execute("INSERT INTO webhook_deliveries(id, webhook_id, workspace_id, event, payload, customer_id,"
                 " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (delivery_id, webhook_id, workspace_id, event, payload, customer_id, created_at, created_at))


def delivery(conn: apsw.Connection, delivery_id: str) -> Row | None:
    """A delivery with what sending it needs (its webhook's URL, secret blob and state)."""
    return conn.execute(
        "SELECT d.id, d.webhook_id, d.workspace_id, d.event, d.payload, d.status, d.attempts, w.url, w.secret_enc,"
        " w.enabled FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = ?",
        (delivery_id,)).fetchone()


def workspace_delivery(conn: apsw.Connection, workspace_id: str, webhook_id: str, delivery_id: str) -> Row | None:
    return conn.execute("SELECT id, status, payload FROM webhook_deliveries WHERE id = ? AND webhook_id = ?"
                        " AND workspace_id = ?", (delivery_id, webhook_id, workspace_id)).fetchone()


def record_attempt(conn: apsw.Connection, delivery_id: str, *, outcome: str, status: str,
                   response_code: int | None, error: str | None, duration_ms: int) -> int:
    """Log one try and move the delivery to ``status``; returns the attempt's number."""
    conn.execute("UPDATE webhook_deliveries SET attempts = attempts + 1, status = ?, updated_at = ? WHERE id = ?",
                 (status, utc_now(), delivery_id))
    attempt = conn.execute("SELECT attempts FROM webhook_deliveries WHERE id = ?", (delivery_id,)).fetchone()
    conn.execute("INSERT INTO webhook_delivery_attempts(delivery_id, attempt, outcome, response_code, error,"
                 " duration_ms, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (delivery_id, attempt["attempts"], outcome, response_code, error, duration_ms, utc_now()))
    return int(attempt["attempts"])


def set_status(conn: apsw.Connection, delivery_id: str, status: str) -> None:
    conn.execute("UPDATE webhook_deliveries SET status = ?, updated_at = ? WHERE id = ?",
                 (status, utc_now(), delivery_id))


def attempts(conn: apsw.Connection, workspace_id: str, webhook_id: str, limit: int, offset: int
             ) -> tuple[list[Row], int]:
    """The delivery log of one webhook, newest try first (a delivery not tried yet shows as pending)."""
    where = "d.webhook_id = ? AND d.workspace_id = ?"
    total = conn.execute(f"SELECT count(*) AS n FROM webhook_deliveries d LEFT JOIN webhook_delivery_attempts a"
                         f" ON a.delivery_id = d.id WHERE {where}", (webhook_id, workspace_id)).fetchone()["n"]
    rows = conn.execute(
        "SELECT d.id AS delivery_id, d.event, d.status AS delivery_status, d.payload IS NOT NULL AS has_payload,"
        " a.attempt, a.outcome, a.response_code, a.error, a.duration_ms, coalesce(a.created_at, d.created_at)"
        " AS created_at FROM webhook_deliveries d LEFT JOIN webhook_delivery_attempts a ON a.delivery_id = d.id"
        f" WHERE {where} ORDER BY coalesce(a.created_at, d.created_at) DESC, a.id DESC LIMIT ? OFFSET ?",
        (webhook_id, workspace_id, limit, offset)).fetchall()
    for row in rows:
        row["has_payload"] = bool(row["has_payload"])
    return rows, total


def purge(conn: apsw.Connection, payload_days: int, keep_days: int) -> tuple[int, int]:
    """Empty payloads older than ``payload_days`` and forget deliveries older than ``keep_days``."""
    conn.execute("UPDATE webhook_deliveries SET payload = NULL WHERE payload IS NOT NULL AND created_at <"
                 " strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)", (f"-{payload_days} days",))
    emptied = conn.changes()
    conn.execute("DELETE FROM webhook_deliveries WHERE created_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)",
                 (f"-{keep_days} days",))
    return emptied, conn.changes()


# --- what events say about their subject -------------------------------------------------------------------------
def conversation_subject(conn: apsw.Connection, workspace_id: str, conversation_id: str) -> Row | None:
    row = conn.execute(
        "SELECT c.id, c.chatbot_id, b.name AS chatbot_name, c.status, c.escalation_reason, c.assigned_agent_id,"
        " c.message_count, c.created_at, c.resolved_at, c.satisfaction_rating, c.satisfaction_comment,"
        " c.customer_id, cu.name AS customer_name, cu.email AS customer_email FROM conversations c"
        " JOIN chatbots b ON b.id = c.chatbot_id LEFT JOIN customers cu ON cu.id = c.customer_id"
        " WHERE c.id = ? AND c.workspace_id = ?", (conversation_id, workspace_id)).fetchone()
    return row


def message_subject(conn: apsw.Connection, workspace_id: str, message_id: str) -> Row | None:
    return conn.execute(
        "SELECT m.id, m.conversation_id, m.sender_type, m.sender_name, m.content, m.created_at, c.customer_id"
        " FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.id = ? AND c.workspace_id = ?",
        (message_id, workspace_id)).fetchone()


def document_subject(conn: apsw.Connection, document_id: str) -> Row | None:
    return conn.execute(
        "SELECT d.id, d.chatbot_id, b.workspace_id, d.source_type, d.title, d.original_filename, d.source_url,"
        " d.status, d.error_code, d.chunk_count, d.page_count, d.processing_completed_at FROM knowledge_documents d"
        " JOIN chatbots b ON b.id = d.chatbot_id WHERE d.id = ?", (document_id,)).fetchone()
