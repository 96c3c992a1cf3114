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


def set_message_analysis(conn: apsw.Connection, message_id: str, intent: str | None, intent_confidence: float | None,
                         sentiment: str | None, sentiment_score: float | None) -> None:
    conn.execute("UPDATE messages SET intent = ?, intent_confidence = ?, sentiment = ?, sentiment_score = ?"
                 " WHERE id = ?", (intent, intent_confidence, sentiment, sentiment_score, message_id))


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
    """Team members who can take a conversation, whose console says "online" (not away) and beat since ``since``
    (``store.presence.online_cutoff(now)`` is the presence list's own rule)."""
    row = conn.execute("SELECT count(*) AS n FROM agent_presence p JOIN users u ON u.id = p.user_id"
                       " WHERE p.workspace_id = ? AND p.status = 'online' AND p.last_heartbeat_at >= ?"
                       " AND u.role IN ('owner','admin','agent') AND u.status = 'active' AND u.deleted_at IS NULL",
                       (workspace_id, since)).fetchone()
    return int(row["n"])


def waiting_for_agent(conn: apsw.Connection, workspace_id: str) -> int:
    row = conn.execute("SELECT count(*) AS n FROM conversations WHERE workspace_id = ? AND status = 'escalated'",
                       (workspace_id,)).fetchone()
    return int(row["n"])


# --- the agent API (issue 6): inbox list, one conversation in full, agent actions, lifecycle scans -------------
LIST_SORTS = {"updated_at", "created_at"}
LIST_COLUMNS = ("c.id, c.chatbot_id, c.customer_id, c.status, c.assigned_agent_id, c.context, c.tags,"
                " c.message_count, c.satisfaction_rating, c.created_at, c.updated_at,"
                " cu.name AS customer_name, cu.email AS customer_email, cu.metadata AS customer_metadata,"
                " u.display_name AS agent_name, u.email AS agent_email")


def list_page(conn: apsw.Connection, where: str, params: Sequence[Any], *, sort: str, descending: bool,
              after: tuple[str, str] | None, limit: int, offset: int = 0) -> list[Row]:
    """Conversations passing ``where`` (from ``conversation_search.filter_where``, alias ``c``) ordered by
    ``sort`` then id; ``after`` = (sort value, id) of the last row already shown (keyset)."""
    if sort not in LIST_SORTS:
        raise ValueError(f"unknown sort {sort!r}")
    direction, beyond = ("DESC", "<") if descending else ("ASC", ">")
    keyset, values = "", list(params)
    if after is not None:
        keyset = f" AND (c.{sort}, c.id) {beyond} (?, ?)"
        values.extend(after)
    rows = conn.execute(
        f"SELECT {LIST_COLUMNS} FROM conversations c LEFT JOIN customers cu ON cu.id = c.customer_id"
        f" LEFT JOIN users u ON u.id = c.assigned_agent_id WHERE {where}{keyset}"
        f" ORDER BY c.{sort} {direction}, c.id {direction} LIMIT ? OFFSET ?", (*values, limit, offset)).fetchall()
    return [_list_row(row) for row in rows]


def list_rows(conn: apsw.Connection, workspace_id: str, conversation_ids: Sequence[str]) -> dict[str, Row]:
    """List rows for these ids (search results), by id."""
    rows = conn.execute(
        f"SELECT {LIST_COLUMNS} FROM json_each(?) j JOIN conversations c ON c.id = j.value"
        " LEFT JOIN customers cu ON cu.id = c.customer_id LEFT JOIN users u ON u.id = c.assigned_agent_id"
        " WHERE c.workspace_id = ?", (json.dumps(list(conversation_ids)), workspace_id)).fetchall()
    return {row["id"]: _list_row(row) for row in rows}


def _list_row(row: Row) -> Row:
    _conversation(row)
    row["customer_metadata"] = json.loads(row["customer_metadata"]) if row["customer_metadata"] else {}
    return row


def count_matching(conn: apsw.Connection, where: str, params: Sequence[Any], cap: int) -> int:
    """How many conversations pass ``where``, counting no further than ``cap`` + 1 (deep counts cost a full
    scan)."""
    row = conn.execute(f"SELECT count(*) AS n FROM (SELECT 1 FROM conversations c WHERE {where} LIMIT ?)",
                       (*params, cap + 1)).fetchone()
    return int(row["n"])


def last_messages(conn: apsw.Connection, conversation_ids: Sequence[str]) -> dict[str, Row]:
    """The newest message of each conversation, by conversation id (one indexed lookup each)."""
    if not conversation_ids:
        return {}
    rows = conn.execute(
        "SELECT c.value AS conversation_id, m.content, m.sender_type, m.created_at FROM json_each(?) c"
        " JOIN messages m ON m.rowid = (SELECT rowid FROM messages WHERE conversation_id = c.value"
        " AND deleted_at IS NULL ORDER BY created_at DESC, rowid DESC LIMIT 1)",
        (json.dumps(list(conversation_ids)),)).fetchall()
    return {row["conversation_id"]: row for row in rows}


def details(conn: apsw.Connection, workspace_id: str, conversation_id: str) -> Row | None:
    """The conversation row plus what only the full view shows (rating, resolution, assignment time)."""
    return _conversation(conn.execute(
        f"SELECT {CONVERSATION_COLUMNS}, assigned_at, satisfaction_rating, satisfaction_comment,"
        " satisfaction_rated_at, resolved_by, resolution_note, total_duration_seconds FROM conversations"
        " WHERE id = ? AND workspace_id = ?", (conversation_id, workspace_id)).fetchone())


def all_messages(conn: apsw.Connection, conversation_id: str) -> list[Row]:
    rows = conn.execute(f"SELECT {MESSAGE_COLUMNS}, attachments FROM messages WHERE conversation_id = ?"
                        " AND deleted_at IS NULL ORDER BY created_at, rowid", (conversation_id,)).fetchall()
    for row in rows:
        _message(row)
        row["attachments"] = json.loads(row["attachments"])
    return rows


def notes(conn: apsw.Connection, conversation_id: str) -> list[Row]:
    rows = conn.execute("SELECT n.id, n.content, n.mentioned_users, n.author_id, u.display_name AS author_name,"
                        " n.created_at FROM internal_notes n LEFT JOIN users u ON u.id = n.author_id"
                        " WHERE n.conversation_id = ? AND n.deleted_at IS NULL ORDER BY n.created_at, n.rowid",
                        (conversation_id,)).fetchall()
    for row in rows:
        row["mentioned_users"] = json.loads(row["mentioned_users"])
    return rows


def clear_agent(conn: apsw.Connection, workspace_id: str, conversation_id: str) -> None:
    """Back to the AI: nobody holds the conversation (``set_status`` only ever sets an agent)."""
    conn.execute("UPDATE conversations SET assigned_agent_id = NULL, assigned_at = NULL WHERE id = ?"
                 " AND workspace_id = ?", (conversation_id, workspace_id))


def set_resolution(conn: apsw.Connection, workspace_id: str, conversation_id: str, resolved_by: str,
                   note: str | None, tags: Sequence[str]) -> None:
    conn.execute("UPDATE conversations SET resolved_by = ?, resolution_note = coalesce(?, resolution_note),"
                 " tags = ? WHERE id = ? AND workspace_id = ?",
                 (resolved_by, note, json.dumps(list(tags)), conversation_id, workspace_id))


def idle_waiting(conn: apsw.Connection, now: str, default_timeout_ms: int, limit: int) -> list[Row]:
    """Waiting conversations untouched (no message, no status change) for longer than their chatbot's
    ``behavior_settings.inactivity_timeout`` (milliseconds)."""
    # the first bound is the shortest timeout a chatbot may set (one minute): an index range, not a full scan
    return conn.execute(
        "SELECT c.id, c.workspace_id FROM conversations c JOIN chatbots b ON b.id = c.chatbot_id"
        " WHERE c.status = 'waiting' AND c.updated_at < strftime('%Y-%m-%dT%H:%M:%fZ', ?, '-60 seconds')"
        " AND c.updated_at < strftime('%Y-%m-%dT%H:%M:%fZ', ?, '-' ||"
        " (coalesce(json_extract(b.settings, '$.behavior_settings.inactivity_timeout'), ?) / 1000.0) || ' seconds')"
        " ORDER BY c.updated_at LIMIT ?", (now, now, default_timeout_ms, limit)).fetchall()


def agent_silent_since(conn: apsw.Connection, cutoff: str, limit: int) -> list[Row]:
    """Agent-handled conversations where the customer has been owed an agent reply since before ``cutoff``:
    the agent said nothing since taking over, or the customer wrote after the agent's last message."""
    return conn.execute(
        "WITH held AS (SELECT c.id, c.workspace_id, c.assigned_at, (SELECT max(created_at) FROM messages m"
        "   WHERE m.conversation_id = c.id AND m.sender_type = 'agent' AND m.created_at >= c.assigned_at)"
        "   AS last_agent FROM conversations c"
        "   WHERE c.status = 'agent_handling' AND coalesce(c.assigned_at, c.updated_at) < ?)"
        " SELECT id, workspace_id FROM held WHERE coalesce(CASE WHEN last_agent IS NULL THEN assigned_at ELSE"
        "   (SELECT min(created_at) FROM messages m WHERE m.conversation_id = held.id AND m.sender_type = 'customer'"
        "    AND m.created_at > held.last_agent) END, '9999') < ? LIMIT ?", (cutoff, cutoff, limit)).fetchall()


def archivable(conn: apsw.Connection, cutoff: str, limit: int) -> list[Row]:
    """Resolved and abandoned conversations with no change since before ``cutoff``."""
    return conn.execute("SELECT id, workspace_id FROM conversations WHERE status IN ('resolved','abandoned')"
                        " AND updated_at < ? ORDER BY updated_at LIMIT ?", (cutoff, limit)).fetchall()
