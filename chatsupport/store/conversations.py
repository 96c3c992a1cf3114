"""Conversations, their messages and events: plain SQL. The state machine lives in ``domain.conversations``;
this module writes whatever status it is told to, and every query is scoped to a workspace."""

from __future__ import annotations

import json
import uuid
from typing import Any, Sequence

import apsw

from chatsupport.store.db import Row
from chatsupport.store.instance_state import utc_now

CONVERSATION_COLUMNS = ("id, workspace_id, chatbot_id, customer_id, status, assigned_agent_id, context, tags,"
                        " message_count, ai_message_count, agent_message_count, customer_message_count,"
                        " escalation_reason, created_at, updated_at, last_message_at, resolved_at, archived_at")
MESSAGE_COLUMNS = ("id, conversation_id, sender_type, sender_id, sender_name, content, ai_metadata,"
                   " client_message_id, intent, intent_confidence, sentiment, sentiment_score, feedback, created_at")
# Which counter a message bumps besides message_count.
COUNTERS = {"customer": "customer_message_count", "bot": "ai_message_count", "agent": "agent_message_count"}


def _conversation(row: Row | None) -> Row | None:
    if row is not None:
        row["context"] = json.loads(row["context"])
        row["tags"] = json.loads(row["tags"])
    return row


def _message(row: Row) -> Row:
    row["ai_metadata"] = json.loads(row["ai_metadata"]) if row["ai_metadata"] else None
    return row


def create_customer(conn: apsw.Connection, workspace_id: str, *, visitor_id: str | None = None,
                    name: str | None = None, email: str | None = None,
                    metadata: dict[str, Any] | None = None) -> str:
    customer_id = str(uuid.uuid4())
    conn.execute("INSERT INTO customers(id, workspace_id, visitor_id, name, email, metadata, first_seen_at,"
                 " last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (customer_id, workspace_id, visitor_id, name, email, json.dumps(metadata or {}), utc_now(),
                  utc_now()))
    return customer_id


def get_customer(conn: apsw.Connection, workspace_id: str, customer_id: str) -> Row | None:
    row = conn.execute("SELECT id, name, email, metadata FROM customers WHERE id = ? AND workspace_id = ?",
                       (customer_id, workspace_id)).fetchone()
    if row is not None:
        row["metadata"] = json.loads(row["metadata"])
    return row


def previous_conversation_count(conn: apsw.Connection, workspace_id: str, customer_id: str,
                                except_id: str) -> int:
    row = conn.execute("SELECT count(*) AS n FROM conversations WHERE workspace_id = ? AND customer_id = ?"
                       " AND id != ?", (workspace_id, customer_id, except_id)).fetchone()
    return int(row["n"])


def create(conn: apsw.Connection, workspace_id: str, chatbot_id: str, customer_id: str | None,
           context: dict[str, Any] | None = None) -> str:
    conversation_id = str(uuid.uuid4())
    now = utc_now()
    conn.execute("INSERT INTO conversations(id, workspace_id, chatbot_id, customer_id, status, context, created_at,"
                 " updated_at) VALUES (?, ?, ?, ?, 'active', ?, ?, ?)",
                 (conversation_id, workspace_id, chatbot_id, customer_id, json.dumps(context or {}), now, now))
    return conversation_id


def get(conn: apsw.Connection, workspace_id: str, conversation_id: str) -> Row | None:
    return _conversation(conn.execute(f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?"
                                      " AND workspace_id = ?", (conversation_id, workspace_id)).fetchone())


def set_status(conn: apsw.Connection, workspace_id: str, conversation_id: str, status: str,
               escalation_reason: str | None = None, agent_id: str | None = None) -> None:
    """``escalation_reason`` and ``agent_id`` are only written when given (a later transition keeps them)."""
    now = utc_now()
    conn.execute(
        "UPDATE conversations SET status = ?, updated_at = ?, escalation_reason = coalesce(?, escalation_reason),"
        " assigned_agent_id = coalesce(?, assigned_agent_id),"
        " assigned_at = CASE WHEN ? IS NULL THEN assigned_at ELSE ? END,"
        " resolved_at = CASE WHEN ? = 'resolved' THEN ? ELSE resolved_at END,"
        " archived_at = CASE WHEN ? = 'archived' THEN ? ELSE archived_at END"
        " WHERE id = ? AND workspace_id = ?",
        (status, now, escalation_reason, agent_id, agent_id, now, status, now, status, now, conversation_id,
         workspace_id))


def add_event(conn: apsw.Connection, conversation_id: str, event_type: str, data: dict[str, Any],
              triggered_by_type: str = "system", triggered_by_id: str | None = None) -> str:
    event_id = str(uuid.uuid4())
    conn.execute("INSERT INTO conversation_events(id, conversation_id, event_type, event_data, triggered_by_type,"
                 " triggered_by_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (event_id, conversation_id, event_type, json.dumps(data), triggered_by_type, triggered_by_id,
                  utc_now()))
    return event_id


def events(conn: apsw.Connection, conversation_id: str) -> list[Row]:
    rows = conn.execute("SELECT id, event_type, event_data, triggered_by_type, triggered_by_id, created_at"
                        " FROM conversation_events WHERE conversation_id = ? ORDER BY created_at, rowid",
                        (conversation_id,)).fetchall()
    for row in rows:
        row["event_data"] = json.loads(row["event_data"])
    return rows


def add_message(conn: apsw.Connection, conversation_id: str, sender_type: str, content: str, *,
                sender_id: str | None = None, sender_name: str | None = None,
                ai_metadata: dict[str, Any] | None = None, client_message_id: str | None = None,
                intent: str | None = None, intent_confidence: float | None = None, sentiment: str | None = None,
                sentiment_score: float | None = None, message_id: str | None = None) -> str:
    """Insert one message and bump the conversation's counters in the same transaction."""
    message_id = message_id or str(uuid.uuid4())
    now = utc_now()
    conn.execute(
        "INSERT INTO messages(id, conversation_id, sender_type, sender_id, sender_name, content, ai_metadata,"
        " client_message_id, intent, intent_confidence, sentiment, sentiment_score, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (message_id, conversation_id, sender_type, sender_id, sender_name, content,
         json.dumps(ai_metadata) if ai_metadata is not None else None, client_message_id, intent,
         intent_confidence, sentiment, sentiment_score, now))
    counter = COUNTERS.get(sender_type)
    extra = f", {counter} = {counter} + 1" if counter else ""
    conn.execute(f"UPDATE conversations SET message_count = message_count + 1{extra}, last_message_at = ?,"
                 " updated_at = ? WHERE id = ?", (now, now, conversation_id))
    return message_id


def get_message(conn: apsw.Connection, message_id: str) -> Row | None:
    row = conn.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)).fetchone()
    return _message(row) if row is not None else None


def recent_messages(conn: apsw.Connection, conversation_id: str, limit: int = 10) -> list[Row]:
    """The last ``limit`` messages, oldest first."""
    rows = conn.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND deleted_at IS NULL"
                        " ORDER BY created_at DESC, rowid DESC LIMIT ?", (conversation_id, limit)).fetchall()
    return [_message(r) for r in reversed(rows)]


def set_feedback(conn: apsw.Connection, message_id: str, feedback: str | None) -> None:
    conn.execute("UPDATE messages SET feedback = ? WHERE id = ?", (feedback, message_id))


def gap_candidates(conn: apsw.Connection, workspace_id: str, chatbot_id: str, since: str,
                   outcomes: Sequence[str] = ("declined",), below: float = 0.7) -> list[Row]:
    """Customer questions whose bot reply was declined, under ``below`` confidence, or thumbed down."""
    marks = ",".join("?" * len(outcomes))
    return conn.execute(
        "SELECT q.content AS question, json_extract(a.ai_metadata, '$.confidence') AS confidence,"
        " json_extract(a.ai_metadata, '$.outcome') AS outcome, a.feedback AS feedback, a.created_at AS created_at"
        " FROM messages a JOIN conversations c ON c.id = a.conversation_id"
        " JOIN messages q ON q.id = json_extract(a.ai_metadata, '$.reply_to')"
        " WHERE c.workspace_id = ? AND c.chatbot_id = ? AND a.sender_type = 'bot' AND a.created_at >= ?"
        f" AND (json_extract(a.ai_metadata, '$.outcome') IN ({marks})"
        "      OR coalesce(json_extract(a.ai_metadata, '$.confidence'), 1.0) < ? OR a.feedback = 'down')"
        " ORDER BY a.created_at DESC LIMIT 2000",
        (workspace_id, chatbot_id, since, *outcomes, below)).fetchall()


def count_bot_replies(conn: apsw.Connection, workspace_id: str, chatbot_id: str, since: str) -> int:
    row = conn.execute("SELECT count(*) AS n FROM messages a JOIN conversations c ON c.id = a.conversation_id"
                       " WHERE c.workspace_id = ? AND c.chatbot_id = ? AND a.sender_type = 'bot'"
                       " AND a.created_at >= ?", (workspace_id, chatbot_id, since)).fetchone()
    return int(row["n"])


def agents_online(conn: apsw.Connection, workspace_id: str, since: str) -> int:
    """Team members who can take a conversation and were active since ``since``."""
    row = conn.execute("SELECT count(*) AS n FROM users WHERE workspace_id = ? AND role IN ('owner','admin','agent')"
                       " AND status = 'active' AND deleted_at IS NULL AND last_active_at >= ?",
                       (workspace_id, since)).fetchone()
    return int(row["n"])


def waiting_for_agent(conn: apsw.Connection, workspace_id: str) -> int:
    row = conn.execute("SELECT count(*) AS n FROM conversations WHERE workspace_id = ? AND status = 'escalated'",
                       (workspace_id,)).fetchone()
    return int(row["n"])
