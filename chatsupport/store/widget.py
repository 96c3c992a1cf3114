"""What the chat widget reads and writes besides the state machine: visitors' customers, their conversations and
messages as the visitor sees them, attachments and the sites the widget was seen on. Plain SQL; every query that
takes a visitor-supplied id is scoped by workspace and chatbot (and customer where it matters)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import apsw

from chatsupport.store import conversations
from chatsupport.store.chatbots import COLUMNS as CHATBOT_COLUMNS
from chatsupport.store.db import Row
from chatsupport.store.instance_state import utc_now

VISITOR_MESSAGE_COLUMNS = ("id, conversation_id, sender_type, sender_id, sender_name, content, ai_metadata,"
                           " attachments, client_message_id, created_at")
ATTACHMENT_COLUMNS = ("id, workspace_id, chatbot_id, visitor_id, conversation_id, message_id, filename, content_type,"
                      " size, sha256, created_at")
REPLAY_LIMIT = 500


# --- chatbots ---------------------------------------------------------------------------------------------------
def chatbot_by_key(conn: apsw.Connection, public_key: str) -> Row | None:
    row = conn.execute(f"SELECT {CHATBOT_COLUMNS} FROM chatbots WHERE public_key = ?", (public_key,)).fetchone()
    if row is not None:
        row["settings"] = json.loads(row["settings"])
        row["allowed_origins"] = json.loads(row["allowed_origins"])
    return row


def chatbot_by_id(conn: apsw.Connection, chatbot_id: str) -> Row | None:
    row = conn.execute(f"SELECT {CHATBOT_COLUMNS} FROM chatbots WHERE id = ?", (chatbot_id,)).fetchone()
    if row is not None:
        row["settings"] = json.loads(row["settings"])
        row["allowed_origins"] = json.loads(row["allowed_origins"])
    return row


# --- customers --------------------------------------------------------------------------------------------------
def anonymous_customer(conn: apsw.Connection, workspace_id: str, visitor_id: str) -> str | None:
    """The visitor's customer that no verified identity claimed: an identified customer is never reached by the
    visitor id alone, so someone else on the same browser cannot read the signed-in user's chats."""
    row = conn.execute("SELECT id FROM customers WHERE workspace_id = ? AND visitor_id = ? AND external_id IS NULL"
                       " ORDER BY created_at LIMIT 1", (workspace_id, visitor_id)).fetchone()
    return row["id"] if row else None


def identified_customer(conn: apsw.Connection, workspace_id: str, external_id: str) -> str | None:
    row = conn.execute("SELECT id FROM customers WHERE workspace_id = ? AND external_id = ? ORDER BY created_at"
                       " LIMIT 1", (workspace_id, external_id)).fetchone()
    return row["id"] if row else None


def create_customer(conn: apsw.Connection, workspace_id: str, visitor_id: str, external_id: str | None) -> str:
    customer_id = conversations.create_customer(conn, workspace_id, visitor_id=visitor_id)
    if external_id is not None:
        conn.execute("UPDATE customers SET external_id = ? WHERE id = ?", (external_id, customer_id))
    return customer_id


def update_customer(conn: apsw.Connection, customer_id: str, *, name: str | None = None, email: str | None = None,
                    custom_fields: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None) -> None:
    """Given values replace, dictionaries merge key by key (``json_patch``); last_seen_at moves on."""
    now = utc_now()
    conn.execute("UPDATE customers SET name = coalesce(?, name), email = coalesce(?, email),"
                 " custom_fields = json_patch(custom_fields, ?), metadata = json_patch(metadata, ?),"
                 " last_seen_at = ?, updated_at = ? WHERE id = ?",
                 (name, email, json.dumps(custom_fields or {}), json.dumps(metadata or {}), now, now, customer_id))


def move_conversations(conn: apsw.Connection, workspace_id: str, from_customer: str, to_customer: str) -> None:
    conn.execute("UPDATE conversations SET customer_id = ? WHERE workspace_id = ? AND customer_id = ?",
                 (to_customer, workspace_id, from_customer))


# --- conversations as the visitor sees them -----------------------------------------------------------------------
def latest_conversation(conn: apsw.Connection, chatbot_id: str, customer_id: str) -> Row | None:
    return conn.execute("SELECT id, status FROM conversations WHERE customer_id = ? AND chatbot_id = ?"
                        " AND status != 'archived' ORDER BY created_at DESC LIMIT 1",
                        (customer_id, chatbot_id)).fetchone()


def visitor_conversation(conn: apsw.Connection, chatbot_id: str, customer_id: str | None,
                         conversation_id: str) -> Row | None:
    """The conversation only when it belongs to this chatbot and this visitor's customer."""
    if not customer_id:
        return None
    row = conn.execute(f"SELECT {conversations.CONVERSATION_COLUMNS} FROM conversations WHERE id = ?"
                       " AND chatbot_id = ? AND customer_id = ?", (conversation_id, chatbot_id, customer_id)).fetchone()
    if row is not None:
        row["context"] = json.loads(row["context"])
    return row


def merge_context(conn: apsw.Connection, conversation_id: str, context: dict[str, Any]) -> None:
    conn.execute("UPDATE conversations SET context = json_patch(context, ?) WHERE id = ?",
                 (json.dumps(context), conversation_id))


def set_satisfaction(conn: apsw.Connection, conversation_id: str, rating: int, comment: str | None) -> None:
    conn.execute("UPDATE conversations SET satisfaction_rating = ?, satisfaction_comment = ?,"
                 " satisfaction_rated_at = ? WHERE id = ?", (rating, comment, utc_now(), conversation_id))


def assigned_agent(conn: apsw.Connection, agent_id: str) -> Row | None:
    return conn.execute("SELECT id, display_name AS name, avatar_path FROM users WHERE id = ?",
                        (agent_id,)).fetchone()


# --- messages ---------------------------------------------------------------------------------------------------
def _decode(row: Row) -> Row:
    row["ai_metadata"] = json.loads(row["ai_metadata"]) if row["ai_metadata"] else None
    row["attachments"] = json.loads(row["attachments"]) if row["attachments"] else []
    return row


def message(conn: apsw.Connection, conversation_id: str, message_id: str) -> Row | None:
    row = conn.execute(f"SELECT {VISITOR_MESSAGE_COLUMNS} FROM messages WHERE id = ? AND conversation_id = ?",
                       (message_id, conversation_id)).fetchone()
    return _decode(row) if row else None


def message_by_client_id(conn: apsw.Connection, conversation_id: str, client_id: str) -> Row | None:
    """The unique index on (conversation_id, client_message_id) answers this: a resend costs one lookup."""
    row = conn.execute(f"SELECT {VISITOR_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?"
                       " AND client_message_id = ?", (conversation_id, client_id)).fetchone()
    return _decode(row) if row else None


def conversation_of_client_message(conn: apsw.Connection, chatbot_id: str, customer_id: str,
                                   client_id: str) -> str | None:
    """Which of this customer's conversations already holds ``client_id``: a first message re-sent after a drop
    (still without a conversation id) must find the conversation it started, not start another."""
    row = conn.execute("SELECT m.conversation_id FROM conversations c JOIN messages m ON m.conversation_id = c.id"
                       " AND m.client_message_id = ? WHERE c.customer_id = ? AND c.chatbot_id = ? LIMIT 1",
                       (client_id, customer_id, chatbot_id)).fetchone()
    return row["conversation_id"] if row else None


def messages_after(conn: apsw.Connection, conversation_id: str, after_id: str | None) -> list[Row]:
    """Messages newer than ``after_id`` (all when None or unknown), oldest first, on the (conversation, created_at)
    index. Ties on the millisecond are ordered by rowid, the insertion order."""
    anchor = conn.execute("SELECT created_at, rowid AS r FROM messages WHERE id = ? AND conversation_id = ?",
                          (after_id, conversation_id)).fetchone() if after_id else None
    since, rowid = (anchor["created_at"], anchor["r"]) if anchor else ("", 0)
    rows = conn.execute(f"SELECT {VISITOR_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?"
                        " AND deleted_at IS NULL AND (created_at > ? OR (created_at = ? AND rowid > ?))"
                        " ORDER BY created_at, rowid LIMIT ?",
                        (conversation_id, since, since, rowid, REPLAY_LIMIT)).fetchall()
    return [_decode(r) for r in rows]


def bot_message_in(conn: apsw.Connection, message_id: str, chatbot_id: str, customer_id: str) -> Row | None:
    """A bot message of one of this visitor's conversations (feedback is for those only)."""
    return conn.execute("SELECT m.id, m.conversation_id, c.workspace_id FROM messages m JOIN conversations c"
                        " ON c.id = m.conversation_id WHERE m.id = ? AND m.sender_type = 'bot' AND c.chatbot_id = ?"
                        " AND c.customer_id = ?", (message_id, chatbot_id, customer_id)).fetchone()


def set_message_attachments(conn: apsw.Connection, message_id: str, attachments: list[dict[str, Any]]) -> None:
    conn.execute("UPDATE messages SET attachments = ? WHERE id = ?", (json.dumps(attachments), message_id))


# --- attachments ------------------------------------------------------------------------------------------------
def add_attachment(conn: apsw.Connection, attachment: dict[str, Any]) -> None:
    conn.execute("INSERT INTO attachments(id, workspace_id, chatbot_id, visitor_id, filename, content_type, size,"
                 " sha256, created_at) VALUES (:id, :workspace_id, :chatbot_id, :visitor_id, :filename, :content_type,"
                 " :size, :sha256, :created_at)", {**attachment, "created_at": utc_now()})


def attachment(conn: apsw.Connection, attachment_id: str) -> Row | None:
    return conn.execute(f"SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE id = ?", (attachment_id,)).fetchone()


def workspace_attachment(conn: apsw.Connection, workspace_id: str, attachment_id: str) -> Row | None:
    return conn.execute(f"SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE id = ? AND workspace_id = ?",
                        (attachment_id, workspace_id)).fetchone()


def claim_attachments(conn: apsw.Connection, ids: list[str], chatbot_id: str, visitor_id: str,
                      conversation_id: str, message_id: str) -> list[Row]:
    """Attach the visitor's own, not yet used uploads to a message; ids of anyone else's are ignored."""
    claimed = []
    for attachment_id in ids:
        row = conn.execute("UPDATE attachments SET conversation_id = ?, message_id = ? WHERE id = ? AND chatbot_id = ?"
                           " AND visitor_id = ? AND message_id IS NULL"
                           f" RETURNING {ATTACHMENT_COLUMNS}",
                           (conversation_id, message_id, attachment_id, chatbot_id, visitor_id)).fetchone()
        if row is not None:
            claimed.append(row)
    return claimed


# --- where the widget was seen ----------------------------------------------------------------------------------
def record_sighting(conn: apsw.Connection, chatbot_id: str, origin: str) -> None:
    now = utc_now()
    conn.execute("INSERT INTO widget_sightings(chatbot_id, origin, first_seen_at, last_seen_at) VALUES (?, ?, ?, ?)"
                 " ON CONFLICT(chatbot_id, origin) DO UPDATE SET last_seen_at = excluded.last_seen_at",
                 (chatbot_id, origin, now, now))


def sightings(conn: apsw.Connection, chatbot_id: str) -> list[Row]:
    return conn.execute("SELECT origin, first_seen_at, last_seen_at FROM widget_sightings WHERE chatbot_id = ?"
                        " ORDER BY last_seen_at DESC LIMIT 100", (chatbot_id,)).fetchall()


def new_id() -> str:
    return str(uuid.uuid4())
