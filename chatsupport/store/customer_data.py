"""What the store holds about one customer, and the SQL that anonymises or deletes it (privacy, PRD §6.5).

A customer is a ``customers`` row. What hangs off it: the conversations that name it (``customer_id``) with their
messages, notes, events, tags, read markers, notifications, attachments and answer reviews; the files the visitor
uploaded but never sent (``attachments`` by ``visitor_id``); audit entries about it; outgoing-webhook deliveries
that name it; the analytics facts of its conversations. The search index (``search_refs`` with the contentless
FTS tables) follows messages, notes and customers through triggers, so changing or deleting those rows is enough.
Every statement names the workspace, directly or through a conversation id read under it.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import apsw

from chatsupport.store.db import Row

CUSTOMER_COLUMNS = ("id, workspace_id, visitor_id, external_id, email, name, phone, company, metadata, custom_fields,"
                    " first_seen_at, last_seen_at, created_at, updated_at, anonymized_at")
CONVERSATION_COLUMNS = ("id, chatbot_id, status, context, tags, message_count, satisfaction_rating,"
                        " satisfaction_comment, satisfaction_rated_at, escalation_reason, resolution_note,"
                        " created_at, updated_at, resolved_at, anonymized_at")
CLOSED = ("resolved", "abandoned", "archived")
FIND_LIMIT = 20


def _ids(values: Sequence[str]) -> str:
    return json.dumps(list(values))


def _decoded(row: Row, *columns: str) -> Row:
    for column in columns:
        if row.get(column) is not None:
            row[column] = json.loads(row[column])
    return row


# --- finding a customer -----------------------------------------------------------------------------------------
def customer(conn: apsw.Connection, workspace_id: str, customer_id: str) -> Row | None:
    row = conn.execute(f"SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = ? AND workspace_id = ?",
                       (customer_id, workspace_id)).fetchone()
    return _decoded(row, "metadata", "custom_fields") if row else None


def by_email(conn: apsw.Connection, workspace_id: str, email: str) -> list[Row]:
    """Every customer row with this address (one person may have several: an anonymous visitor that later
    identified, or one per browser), with how many conversations each has."""
    rows = conn.execute(
        f"SELECT {CUSTOMER_COLUMNS}, (SELECT count(*) FROM conversations c WHERE c.customer_id = customers.id"
        " AND c.workspace_id = customers.workspace_id) AS conversations FROM customers"
        " WHERE workspace_id = ? AND email = ? ORDER BY created_at LIMIT ?",
        (workspace_id, email, FIND_LIMIT)).fetchall()
    return [_decoded(row, "metadata", "custom_fields") for row in rows]


def conversation_ids(conn: apsw.Connection, workspace_id: str, customer_id: str) -> list[str]:
    rows = conn.execute("SELECT id FROM conversations WHERE workspace_id = ? AND customer_id = ? ORDER BY created_at",
                        (workspace_id, customer_id)).fetchall()
    return [row["id"] for row in rows]


# --- the export's reads -----------------------------------------------------------------------------------------
def conversations(conn: apsw.Connection, workspace_id: str, ids: Sequence[str]) -> list[Row]:
    rows = conn.execute(f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE workspace_id = ?"
                        " AND id IN (SELECT value FROM json_each(?)) ORDER BY created_at", (workspace_id, _ids(ids)))
    return [_decoded(row, "context", "tags") for row in rows]


def messages(conn: apsw.Connection, ids: Sequence[str]) -> list[Row]:
    rows = conn.execute(
        "SELECT id, conversation_id, sender_type, sender_name, content, attachments, feedback, created_at, edited_at"
        " FROM messages WHERE conversation_id IN (SELECT value FROM json_each(?)) AND deleted_at IS NULL"
        " ORDER BY conversation_id, created_at, rowid", (_ids(ids),)).fetchall()
    return [_decoded(row, "attachments") for row in rows]


def notes(conn: apsw.Connection, ids: Sequence[str]) -> list[Row]:
    return conn.execute(
        "SELECT n.id, n.conversation_id, n.content, u.display_name AS author, n.created_at FROM internal_notes n"
        " LEFT JOIN users u ON u.id = n.author_id WHERE n.conversation_id IN (SELECT value FROM json_each(?))"
        " AND n.deleted_at IS NULL ORDER BY n.created_at", (_ids(ids),)).fetchall()


def events(conn: apsw.Connection, ids: Sequence[str]) -> list[Row]:
    rows = conn.execute(
        "SELECT id, conversation_id, event_type, event_data, triggered_by_type, created_at FROM conversation_events"
        " WHERE conversation_id IN (SELECT value FROM json_each(?)) ORDER BY created_at", (_ids(ids),)).fetchall()
    return [_decoded(row, "event_data") for row in rows]


def attachments(conn: apsw.Connection, workspace_id: str, ids: Sequence[str], visitor_id: str | None) -> list[Row]:
    """Files in the conversations, and the visitor's uploads that never reached a message."""
    return conn.execute(
        "SELECT id, conversation_id, message_id, filename, content_type, size, sha256, created_at FROM attachments"
        " WHERE workspace_id = ? AND (conversation_id IN (SELECT value FROM json_each(?))"
        " OR (conversation_id IS NULL AND visitor_id = ?)) ORDER BY created_at",
        (workspace_id, _ids(ids), visitor_id)).fetchall()


def answer_reviews(conn: apsw.Connection, workspace_id: str, ids: Sequence[str]) -> list[Row]:
    return conn.execute(
        "SELECT r.message_id, r.verdict, r.note, r.reviewed_at FROM answer_reviews r JOIN messages m"
        " ON m.id = r.message_id WHERE r.workspace_id = ? AND m.conversation_id IN (SELECT value FROM json_each(?))"
        " ORDER BY r.reviewed_at", (workspace_id, _ids(ids))).fetchall()


def audit_entries(conn: apsw.Connection, workspace_id: str, customer_id: str, ids: Sequence[str]) -> list[Row]:
    rows = conn.execute(
        "SELECT id, action, resource_type, resource_id, user_email, metadata, created_at FROM audit_logs"
        " WHERE workspace_id = ? AND ((resource_type = 'customer' AND resource_id = ?)"
        " OR (resource_type = 'conversation' AND resource_id IN (SELECT value FROM json_each(?))))"
        " ORDER BY created_at", (workspace_id, customer_id, _ids(ids))).fetchall()
    return [_decoded(row, "metadata") for row in rows]


def webhook_deliveries(conn: apsw.Connection, workspace_id: str, customer_id: str) -> list[Row]:
    rows = conn.execute(
        "SELECT d.id, w.url AS webhook_url, d.event, d.payload, d.status, d.attempts, d.created_at,"
        " (SELECT json_group_array(json_object('attempt', a.attempt, 'outcome', a.outcome, 'response_code',"
        " a.response_code, 'at', a.created_at)) FROM webhook_delivery_attempts a WHERE a.delivery_id = d.id)"
        " AS tries FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id"
        " WHERE d.workspace_id = ? AND d.customer_id = ? ORDER BY d.created_at", (workspace_id, customer_id))
    return [_decoded(row, "payload", "tries") for row in rows]


# --- anonymising ------------------------------------------------------------------------------------------------
def conversation_customers(conn: apsw.Connection, workspace_id: str, ids: Sequence[str]) -> list[Row]:
    """The batch's conversations with what their customer is known by, to find it in free text."""
    rows = conn.execute(
        "SELECT c.id, c.chatbot_id, c.created_at, c.context, c.satisfaction_comment, c.resolution_note,"
        " c.customer_id, cu.name, cu.email, cu.phone, cu.company, cu.external_id, cu.custom_fields"
        " FROM conversations c LEFT JOIN customers cu ON cu.id = c.customer_id"
        " WHERE c.workspace_id = ? AND c.id IN (SELECT value FROM json_each(?))", (workspace_id, _ids(ids)))
    return [_decoded(row, "context", "custom_fields") for row in rows]


def texts(conn: apsw.Connection, conversation_id: str) -> dict[str, list[Row]]:
    """Every free text of one conversation that may quote its customer, by table."""
    return {
        "messages": conn.execute("SELECT id, sender_type, content, sender_name FROM messages"
                                 " WHERE conversation_id = ?", (conversation_id,)).fetchall(),
        "internal_notes": conn.execute("SELECT id, content FROM internal_notes WHERE conversation_id = ?",
                                       (conversation_id,)).fetchall(),
        "conversation_events": conn.execute("SELECT id, event_data FROM conversation_events"
                                            " WHERE conversation_id = ?", (conversation_id,)).fetchall(),
        "notifications": conn.execute("SELECT id, title, body FROM notifications WHERE conversation_id = ?",
                                      (conversation_id,)).fetchall(),
        "answer_reviews": conn.execute("SELECT r.message_id AS id, r.note FROM answer_reviews r JOIN messages m"
                                       " ON m.id = r.message_id WHERE m.conversation_id = ? AND r.note IS NOT NULL",
                                       (conversation_id,)).fetchall(),
    }


def set_message(conn: apsw.Connection, message_id: str, content: str, sender_name: str | None) -> None:
    """The search trigger re-indexes the new text and drops the old."""
    conn.execute("UPDATE messages SET content = ?, sender_name = ?, attachments = '[]' WHERE id = ?",
                 (content, sender_name, message_id))


def set_note(conn: apsw.Connection, note_id: str, content: str) -> None:
    conn.execute("UPDATE internal_notes SET content = ? WHERE id = ?", (content, note_id))


def set_event(conn: apsw.Connection, event_id: str, data: dict[str, Any]) -> None:
    conn.execute("UPDATE conversation_events SET event_data = ? WHERE id = ?", (json.dumps(data), event_id))


def set_notification(conn: apsw.Connection, notification_id: str, title: str, body: str) -> None:
    conn.execute("UPDATE notifications SET title = ?, body = ? WHERE id = ?", (title, body, notification_id))


def set_review_note(conn: apsw.Connection, message_id: str, note: str) -> None:
    conn.execute("UPDATE answer_reviews SET note = ? WHERE message_id = ?", (note, message_id))


def set_conversation(conn: apsw.Connection, workspace_id: str, conversation_id: str, context: dict[str, Any],
                     satisfaction_comment: str | None, resolution_note: str | None, now: str) -> None:
    """``updated_at`` stays: anonymising is not activity, and retention ages conversations by it."""
    conn.execute("UPDATE conversations SET context = ?, satisfaction_comment = ?, resolution_note = ?,"
                 " anonymized_at = ? WHERE id = ? AND workspace_id = ?",
                 (json.dumps(context), satisfaction_comment, resolution_note, now, conversation_id, workspace_id))


def anonymize_customer(conn: apsw.Connection, workspace_id: str, customer_id: str, now: str) -> None:
    """The row stays (counts of customers and returning customers hold); nothing in it points at a person, and
    without its visitor id no browser reaches its conversations any more."""
    conn.execute("UPDATE customers SET visitor_id = NULL, external_id = NULL, email = NULL, name = NULL, phone = NULL,"
                 " company = NULL, metadata = '{}', custom_fields = '{}', anonymized_at = ?, updated_at = ?"
                 " WHERE id = ? AND workspace_id = ?", (now, now, customer_id, workspace_id))


# --- deleting ---------------------------------------------------------------------------------------------------
def take_attachments(conn: apsw.Connection, workspace_id: str, ids: Sequence[str],
                     visitor_id: str | None = None) -> list[str]:
    """Delete the attachment rows of these conversations (and the visitor's unsent uploads); returns their ids,
    whose files the caller removes once the transaction is committed."""
    rows = conn.execute(
        "DELETE FROM attachments WHERE workspace_id = ? AND (conversation_id IN (SELECT value FROM json_each(?))"
        " OR (conversation_id IS NULL AND visitor_id = ?)) RETURNING id",
        (workspace_id, _ids(ids), visitor_id)).fetchall()
    return [row["id"] for row in rows]


def delete_conversations(conn: apsw.Connection, workspace_id: str, ids: Sequence[str]) -> dict[str, int]:
    """Messages and notes go first and one by one through their search triggers; the conversation's other rows
    (events, tags, read markers, notifications, reviews) follow it by cascade."""
    scoped = conn.execute("SELECT value AS id FROM json_each(?) WHERE value IN (SELECT id FROM conversations"
                          " WHERE workspace_id = ?)", (_ids(ids), workspace_id)).fetchall()
    own = _ids([row["id"] for row in scoped])
    conn.execute("DELETE FROM messages WHERE conversation_id IN (SELECT value FROM json_each(?))", (own,))
    messages_gone = conn.changes()
    conn.execute("DELETE FROM internal_notes WHERE conversation_id IN (SELECT value FROM json_each(?))", (own,))
    notes_gone = conn.changes()
    conn.execute("DELETE FROM analytics_conversations WHERE workspace_id = ?"
                 " AND conversation_id IN (SELECT value FROM json_each(?))", (workspace_id, own))
    conn.execute("DELETE FROM conversations WHERE workspace_id = ? AND id IN (SELECT value FROM json_each(?))",
                 (workspace_id, own))
    return {"conversations": conn.changes(), "messages": messages_gone, "notes": notes_gone}


def delete_customer(conn: apsw.Connection, workspace_id: str, customer_id: str) -> None:
    conn.execute("DELETE FROM customers WHERE id = ? AND workspace_id = ?", (customer_id, workspace_id))


def redact_audit(conn: apsw.Connection, workspace_id: str, customer_id: str) -> int:
    """Audit entries about a deleted customer keep what happened, not whom it was about."""
    conn.execute("UPDATE audit_logs SET resource_id = NULL WHERE workspace_id = ? AND resource_type = 'customer'"
                 " AND resource_id = ?", (workspace_id, customer_id))
    return conn.changes()


def clear_webhook_payloads(conn: apsw.Connection, workspace_id: str, customer_id: str) -> int:
    """Anonymising keeps the delivery log (event, status, response codes) but not the payload, which quotes the
    customer (housekeeping empties every payload after 30 days the same way)."""
    conn.execute("UPDATE webhook_deliveries SET payload = NULL WHERE workspace_id = ? AND customer_id = ?",
                 (workspace_id, customer_id))
    return conn.changes()


def delete_webhook_deliveries(conn: apsw.Connection, workspace_id: str, customer_id: str) -> int:
    conn.execute("DELETE FROM webhook_deliveries WHERE workspace_id = ? AND customer_id = ?",
                 (workspace_id, customer_id))
    return conn.changes()


def abandoned_customers(conn: apsw.Connection, workspace_id: str, customer_ids: Sequence[str],
                        anonymized: bool) -> list[str]:
    """Of these customers, those with no conversation left (deleting), or none left un-anonymised (anonymising)."""
    still = " AND c.anonymized_at IS NULL" if anonymized else ""
    rows = conn.execute(
        "SELECT cu.id FROM customers cu WHERE cu.workspace_id = ? AND cu.id IN (SELECT value FROM json_each(?))"
        f" AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.customer_id = cu.id{still})"
        + (" AND cu.anonymized_at IS NULL" if anonymized else ""), (workspace_id, _ids(customer_ids))).fetchall()
    return [row["id"] for row in rows]


def customer_visitor(conn: apsw.Connection, workspace_id: str, customer_id: str) -> str | None:
    row = conn.execute("SELECT visitor_id FROM customers WHERE id = ? AND workspace_id = ?",
                       (customer_id, workspace_id)).fetchone()
    return row["visitor_id"] if row else None


# --- retention --------------------------------------------------------------------------------------------------
def policy(conn: apsw.Connection, workspace_id: str) -> Row | None:
    return conn.execute("SELECT workspace_id, action, after_days, updated_at, last_run_at, last_run_conversations"
                        " FROM retention_policies WHERE workspace_id = ?", (workspace_id,)).fetchone()


def set_policy(conn: apsw.Connection, workspace_id: str, action: str, after_days: int | None, user_id: str,
               now: str) -> None:
    conn.execute("INSERT INTO retention_policies(workspace_id, action, after_days, updated_by, updated_at)"
                 " VALUES (?, ?, ?, ?, ?) ON CONFLICT(workspace_id) DO UPDATE SET action = excluded.action,"
                 " after_days = excluded.after_days, updated_by = excluded.updated_by,"
                 " updated_at = excluded.updated_at",
                 (workspace_id, action, after_days, user_id, now))


def active_policies(conn: apsw.Connection) -> list[Row]:
    return conn.execute("SELECT workspace_id, action, after_days FROM retention_policies WHERE action != 'off'"
                        " AND after_days IS NOT NULL ORDER BY workspace_id").fetchall()


def record_run(conn: apsw.Connection, workspace_id: str, conversations_done: int, now: str) -> None:
    conn.execute("UPDATE retention_policies SET last_run_at = ?, last_run_conversations = ? WHERE workspace_id = ?",
                 (now, conversations_done, workspace_id))


def expired_conversations(conn: apsw.Connection, workspace_id: str, action: str, cutoff: str,
                          limit: int) -> list[str]:
    """Closed conversations untouched since ``cutoff``, oldest first; anonymising skips those already done."""
    pending = " AND anonymized_at IS NULL" if action == "anonymize" else ""
    rows = conn.execute(
        f"SELECT id FROM conversations WHERE workspace_id = ? AND updated_at < ?{pending}"
        f" AND status IN ({','.join('?' * len(CLOSED))}) ORDER BY updated_at LIMIT ?",
        (workspace_id, cutoff, *CLOSED, limit)).fetchall()
    return [row["id"] for row in rows]


def customers_of(conn: apsw.Connection, workspace_id: str, ids: Sequence[str]) -> list[str]:
    rows = conn.execute("SELECT DISTINCT customer_id FROM conversations WHERE workspace_id = ? AND customer_id IS NOT"
                        " NULL AND id IN (SELECT value FROM json_each(?))", (workspace_id, _ids(ids))).fetchall()
    return [row["customer_id"] for row in rows]


def purge_search_index(conn: apsw.Connection) -> None:
    """Rewrite the contentless search indexes into one segment each. A delete only leaves a tombstone: search no
    longer finds the row, but its words stay in the old segment's pages until FTS5 merges it; ``optimize`` drops
    them now. It reads and writes the whole index (about 0.3 s per 30,000 messages), so it runs once per erasure
    or retention run, in its own transaction."""
    for table in ("conversation_text", "customer_text"):
        conn.execute(f"INSERT INTO {table}({table}) VALUES ('optimize')")
