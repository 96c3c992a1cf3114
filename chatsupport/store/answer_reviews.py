"""The review queue of AI answers in SQL: bot messages (those the answer pipeline stored with ``ai_metadata``) with
the customer question each replied to, their chatbot's confidence threshold and the review, if any. Every read is
scoped by workspace through the conversation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import apsw

from chatsupport.store.db import Row
from chatsupport.store.instance_state import utc_now

CONFIDENCE = "json_extract(m.ai_metadata, '$.confidence')"
THRESHOLD = "coalesce(json_extract(b.settings, '$.ai_settings.escalation_triggers.low_confidence_threshold'), :default)"
# reason → the condition a queued answer meets; ``all`` is every answer
REASONS = {
    "low_confidence": f"{CONFIDENCE} < {THRESHOLD}",
    "thumbs_down": "m.feedback = 'down'",
    "escalated": "json_extract(m.ai_metadata, '$.outcome') = 'escalated'",
    "unreviewed": "r.message_id IS NULL",
    "all": "1",
}
# Lists read bot answers newest first straight from the partial index idx_messages_bot_answers (its conditions
# are repeated here) and stop at the page's end; without the hint SQLite, lacking statistics, would gather every
# message of the workspace's conversations and sort them. A single answer is looked up by its primary key.
LISTED = "messages m INDEXED BY idx_messages_bot_answers"
ANSWERS = ("FROM {messages} JOIN conversations c ON c.id = m.conversation_id JOIN chatbots b ON b.id = c.chatbot_id"
           " LEFT JOIN answer_reviews r ON r.message_id = m.id"
           " WHERE m.sender_type = 'bot' AND m.ai_metadata IS NOT NULL AND m.deleted_at IS NULL"
           " AND c.workspace_id = :workspace_id")
COLUMNS = (f"m.id, m.conversation_id, m.content AS answer, m.ai_metadata, m.feedback, m.created_at,"
           f" c.chatbot_id, b.name AS chatbot_name, c.status AS conversation_status,"
           f" c.escalation_reason AS conversation_escalation_reason, {THRESHOLD} AS threshold,"
           f" (SELECT q.content FROM messages q WHERE q.id = json_extract(m.ai_metadata, '$.reply_to')) AS question,"
           f" r.verdict, r.note, r.faq_id, r.reviewed_by, r.reviewed_at")


@dataclass(frozen=True)
class Scope:
    """Which answers: a workspace, optionally one chatbot and a ``created_at`` range (inclusive UTC stamps)."""

    workspace_id: str
    default_threshold: float
    chatbot_id: str | None = None
    start: str | None = None
    end: str | None = None

    def where(self, messages: str = LISTED) -> tuple[str, dict[str, Any]]:
        sql = ANSWERS.format(messages=messages)
        params = {"workspace_id": self.workspace_id, "default": self.default_threshold}
        for column, key, op in (("c.chatbot_id", "chatbot_id", "="), ("m.created_at", "start", ">="),
                                ("m.created_at", "end", "<=")):
            if getattr(self, key) is not None:
                sql += f" AND {column} {op} :{key}"
                params[key] = getattr(self, key)
        return sql, params


def _decoded(row: Row) -> Row:
    row["ai_metadata"] = json.loads(row["ai_metadata"]) if row["ai_metadata"] else {}
    return row


def queue(conn: apsw.Connection, scope: Scope, reason: str, limit: int,
          after: tuple[str, str] | None = None) -> list[Row]:
    """Newest first; ``after``: the (created_at, id) of the last answer already shown."""
    sql, params = scope.where()
    sql = f"SELECT {COLUMNS} {sql} AND {REASONS[reason]}"
    if after is not None:
        sql += " AND (m.created_at, m.id) < (:after_at, :after_id)"
        params.update(after_at=after[0], after_id=after[1])
    sql += " ORDER BY m.created_at DESC, m.id DESC LIMIT :limit"
    return [_decoded(row) for row in conn.execute(sql, {**params, "limit": limit}).fetchall()]


def counts(conn: apsw.Connection, scope: Scope) -> dict[str, int]:
    """How many answers each reason holds, in one pass over the scope."""
    sql, params = scope.where()
    sums = ", ".join(f'coalesce(sum({condition}), 0) AS "{name}"' for name, condition in REASONS.items())
    row = conn.execute(f"SELECT {sums} {sql}", params).fetchone()
    return {name: int(row[name]) for name in REASONS}


def get(conn: apsw.Connection, workspace_id: str, message_id: str, default_threshold: float) -> Row | None:
    sql, params = Scope(workspace_id, default_threshold).where("messages m")
    row = conn.execute(f"SELECT {COLUMNS} {sql} AND m.id = :message_id", {**params, "message_id": message_id}
                       ).fetchone()
    return _decoded(row) if row else None


def save(conn: apsw.Connection, *, message_id: str, workspace_id: str, chatbot_id: str, verdict: str,
         reviewed_by: str | None, note: str | None = None, faq_id: str | None = None) -> None:
    """Insert or replace the verdict; a note or FAQ link not given keeps the one recorded before."""
    conn.execute(
        "INSERT INTO answer_reviews(message_id, workspace_id, chatbot_id, verdict, note, faq_id, reviewed_by,"
        " reviewed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(message_id) DO UPDATE SET"
        " verdict = excluded.verdict, note = coalesce(excluded.note, answer_reviews.note),"
        " faq_id = coalesce(excluded.faq_id, answer_reviews.faq_id), reviewed_by = excluded.reviewed_by,"
        " reviewed_at = excluded.reviewed_at",
        (message_id, workspace_id, chatbot_id, verdict, note, faq_id, reviewed_by, utc_now()))
