"""What a visitor can do through the chat widget (docs/widget-protocol.md, visitor → server), as functions over the
database. Each checks that the conversation is the visitor's own, changes state through the state machine, commits
in one write, and only then publishes the protocol events to the conversation and workspace channels.

The AI answer is not started here: the web layer streams it (``web.widget.answers``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import apsw

from chatsupport import live
from chatsupport.domain import conversation_payloads as payloads
from chatsupport.domain import handover, notifications
from chatsupport.domain import conversations as states
from chatsupport.domain import events
from chatsupport.domain import widget
from chatsupport.domain.chatbot_schema import DEFAULTS
from chatsupport.domain.chatbots import merge
from chatsupport.domain.widget import Visitor
from chatsupport.domain.widget_limits import MAX_MESSAGE_LENGTH
from chatsupport.errors import AppError
from chatsupport.store import conversations as store
from chatsupport.store import widget as widget_store
from chatsupport.store.db import Database, Row

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,63}$")
MAX_FIELD = 500
MAX_METADATA_KEYS, MAX_METADATA_CHARS = 50, 1000
MAX_COMMENT = 1000


@dataclass
class Sent:
    """A stored customer message: ``duplicate`` when the client id was seen before (nothing was stored)."""

    message: Row
    conversation_id: str
    status: str
    duplicate: bool = False


def publish(event: str, data: dict[str, Any], visitor: Visitor, conversation_id: str | None) -> None:
    live.publish(event, data, conversation_id=conversation_id, workspace_id=visitor.workspace_id)


def receive_payload(message: Row, bot: Row | None = None) -> dict[str, Any]:
    avatar = (merge(DEFAULTS, bot["settings"])["widget_settings"].get("avatar_url") if bot is not None else None)
    return payloads.message_receive(message, avatar_url=avatar if message["sender_type"] == "bot" else None)


def own_conversation(conn: apsw.Connection, visitor: Visitor, conversation_id: Any) -> Row:
    """The conversation when it is this visitor's; any other id — another visitor's included — is not found."""
    row = widget_store.visitor_conversation(conn, visitor.chatbot_id, widget.customer_of(conn, visitor),
                                            str(conversation_id)) if isinstance(conversation_id, str) else None
    if row is None:
        raise AppError("not_found", "Conversation not found.")
    return row


# --- parsing what the visitor typed -----------------------------------------------------------------------------
def _text(value: Any, field: str, limit: int = MAX_FIELD) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise AppError("validation_error", details=[{"field": field, "message": f"Text of at most {limit} "
                                                                                 "characters."}])
    return value.strip() or None


def message_text(content: Any) -> str:
    """Stored verbatim (markup is the reader's job to escape); only empty and over-long messages are refused."""
    if not isinstance(content, str) or not content.strip():
        raise AppError("validation_error", details=[{"field": "content", "message": "A message is required."}])
    if len(content) > MAX_MESSAGE_LENGTH:
        raise AppError("message_too_long")
    return content


def customer_fields(fields: Any, bot: Row) -> dict[str, Any]:
    """Pre-chat fields: name, email and the chatbot's configured custom fields (anything else is ignored)."""
    fields = fields if isinstance(fields, dict) else {}
    email = _text(fields.get("email"), "email", 254)
    if email is not None and not EMAIL.match(email):
        raise AppError("validation_error", details=[{"field": "email", "message": "Not an email address."}])
    configured = merge(DEFAULTS, bot["settings"])["data_collection"].get("custom_fields") or []
    custom = {f["name"]: value for f in configured
              if (value := _text(fields.get(f["name"]), f["name"])) is not None}
    return {"name": _text(fields.get("name"), "name", 100), "email": email, "custom_fields": custom}


def page_context(metadata: Any, visitor: Visitor) -> dict[str, Any]:
    """The conversation's context from the frame's page metadata, with device and browser read off the UA."""
    metadata = metadata if isinstance(metadata, dict) else {}
    agent = _text(metadata.get("user_agent"), "user_agent", 1000) or ""
    context = {"page_url": _text(metadata.get("page_url"), "page_url", 2000),
               "referrer": _text(metadata.get("referrer"), "referrer", 2000),
               "locale": _text(metadata.get("locale"), "locale", 35), "origin": visitor.origin,
               "user_agent": agent[:500] or None, "device": device_of(agent), "browser": browser_of(agent)}
    return {k: v for k, v in context.items() if v is not None}


def device_of(user_agent: str) -> str | None:
    if not user_agent:
        return None
    if re.search(r"iPad|Tablet", user_agent):
        return "tablet"
    return "mobile" if re.search(r"Mobi|Android|iPhone", user_agent) else "desktop"


BROWSERS = (("Edge", r"Edg/"), ("Opera", r"OPR/"), ("Firefox", r"Firefox/"), ("Chrome", r"Chrome/|CriOS/"),
            ("Safari", r"Safari/"))


def browser_of(user_agent: str) -> str | None:
    """The first match wins: Edge and Opera also say Chrome, Chrome also says Safari."""
    return next((name for name, pattern in BROWSERS if re.search(pattern, user_agent)), None) if user_agent else None


def clean_metadata(metadata: Any) -> dict[str, Any]:
    if not isinstance(metadata, dict):
        raise AppError("validation_error", details=[{"field": "metadata", "message": "An object is expected."}])
    clean: dict[str, Any] = {}
    for key, value in list(metadata.items())[:MAX_METADATA_KEYS]:
        if isinstance(value, (bool, int, float)) or value is None:
            clean[str(key)[:100]] = value
        else:
            clean[str(key)[:100]] = str(value)[:MAX_METADATA_CHARS]
    return clean


# --- the actions ------------------------------------------------------------------------------------------------
async def start(db: Database, visitor: Visitor, bot: Row, fields: Any, metadata: Any, *,
                offline: bool = False, message: str | None = None) -> dict[str, Any]:
    """A new conversation with the pre-chat fields on the customer and the page on the conversation. The offline
    form's ``message`` is stored as its first message, for agents (no AI answer)."""
    person = customer_fields(fields, bot)
    context = {**page_context(metadata, visitor), **({"offline": True} if offline else {})}
    text = message_text(message) if offline else None

    def write(conn: apsw.Connection) -> tuple[str, list[Row]]:
        customer_id = widget.ensure_customer(conn, visitor)
        widget_store.update_customer(conn, customer_id, name=person["name"], email=person["email"],
                                     custom_fields=person["custom_fields"])
        conversation_id = states.start(conn, visitor.workspace_id, visitor.chatbot_id, customer_id, context)
        if text is None:
            return conversation_id, []
        message_id = store.add_message(conn, conversation_id, "customer", text, sender_id=customer_id,
                                       sender_name=person["name"])
        store.add_event(conn, conversation_id, "offline_message", {"message_id": message_id}, "customer",
                        customer_id)
        return conversation_id, [widget_store.message(conn, conversation_id, message_id)]  # type: ignore[list-item]

    conversation_id, messages = await db.awrite(write)
    await events.after_commit(events.conversation_event, db, visitor.workspace_id, "conversation.created",
                              conversation_id)
    for message in messages:
        await events.after_commit(events.message_created, db, visitor.workspace_id, message["id"])
    shown = [receive_payload(m) for m in messages]
    started = {"conversation_id": conversation_id, "status": "active", "messages": shown}
    live.publish("conversation:started", {**started, "chatbot_id": visitor.chatbot_id, "context": context},
                 workspace_id=visitor.workspace_id)
    for data in shown:
        publish("message:receive", data, visitor, conversation_id)
    return started


async def send(db: Database, visitor: Visitor, conversation_id: str, content: str, client_id: str | None,
               attachment_ids: list[str]) -> Sent:
    """Store the customer's message (a resend with a known ``client_id`` returns the first one). A resolved or
    abandoned conversation reopens; an archived one is ``conversation_closed``."""
    def write(conn: apsw.Connection) -> tuple[Sent, str]:
        conversation = own_conversation(conn, visitor, conversation_id)
        if client_id and (first := widget_store.message_by_client_id(conn, conversation_id, client_id)):
            return Sent(first, conversation_id, conversation["status"], duplicate=True), conversation["status"]
        status = states.customer_arrives(conn, visitor.workspace_id, conversation_id)
        message_id = store.add_message(conn, conversation_id, "customer", content,
                                       sender_id=conversation["customer_id"], client_message_id=client_id)
        claimed = widget_store.claim_attachments(conn, attachment_ids, visitor.chatbot_id, visitor.visitor_id,
                                                 conversation_id, message_id) if attachment_ids else []
        if claimed:
            widget_store.set_message_attachments(conn, message_id, [attachment_summary(a) for a in claimed])
        stored = widget_store.message(conn, conversation_id, message_id)
        return Sent(stored, conversation_id, status), conversation["status"]  # type: ignore[arg-type]

    sent, before = await db.awrite(write)
    if not sent.duplicate:
        await events.after_commit(events.message_created, db, visitor.workspace_id, sent.message["id"])
        publish("message:receive", receive_payload(sent.message), visitor, conversation_id)
        if sent.status != before:
            publish("conversation:status_changed", payloads.status_changed(conversation_id, before, sent.status,
                                                                           "customer"), visitor, conversation_id)
    return sent


def attachment_summary(row: Row) -> dict[str, Any]:
    """As messages carry it. ``url`` is the visitor's download path (the frame adds ``?token=``); the console
    downloads the same file from ``/api/v1/attachments/{id}``."""
    return {"id": row["id"], "filename": row["filename"], "content_type": row["content_type"], "size": row["size"],
            "url": f"/widget/api/attachments/{row['id']}"}


async def request_human(db: Database, visitor: Visitor, bot: Row, conversation_id: str,
                        now: datetime | None = None) -> dict[str, Any]:
    """The visitor asks for a person: escalate (reason ``user_request``), with the bot's notice saying when to
    expect one. Asking again while waiting just repeats the notice."""
    now = now or datetime.now(timezone.utc)
    hours = merge(DEFAULTS, bot["settings"])["business_hours"]

    def write(conn: apsw.Connection) -> tuple[handover.Wait, str, str, str, Row | None, list[Row]]:
        conversation = own_conversation(conn, visitor, conversation_id)
        before = conversation["status"]
        wait = handover.wait_estimate(conn, visitor.workspace_id, hours, now)
        notice = handover.notice("user_request", wait, hours)
        if before in ("escalated", "agent_handling"):
            return wait, notice, before, before, None, []
        if before in ("resolved", "abandoned"):
            states.transition(conn, visitor.workspace_id, conversation_id, "reopen", by_type="customer")
        message_id = store.add_message(conn, conversation_id, "bot", notice, sender_name=bot["name"],
                                       ai_metadata={"outcome": "escalated", "escalated": True,
                                                    "escalation_reason": "user_request"})
        after = states.transition(conn, visitor.workspace_id, conversation_id, "escalate", by_type="customer",
                                  by_id=conversation["customer_id"], reason="user_request",
                                  data={"rule": "widget:request_human", "message_id": message_id})
        store.add_event(conn, conversation_id, "escalated", {"reason": "user_request", "rule": "widget:request_human"},
                        "customer", conversation["customer_id"])
        return wait, notice, before, after, widget_store.message(conn, conversation_id, message_id), \
            notifications.escalated(conn, visitor.workspace_id, conversation_id, "user_request")

    wait, notice, before, after, notice_message, notified = await db.awrite(write)
    notifications.publish(notified)
    data = payloads.escalated(conversation_id, "user_request", notice, wait.seconds, wait.open_now)
    if notice_message is not None:
        await events.after_commit(events.message_created, db, visitor.workspace_id, notice_message["id"])
        await events.after_commit(events.conversation_event, db, visitor.workspace_id, "conversation.escalated",
                                  conversation_id)
        publish("message:receive", receive_payload(notice_message, bot), visitor, conversation_id)
        publish("conversation:status_changed", payloads.status_changed(conversation_id, before, after, "customer"),
                visitor, conversation_id)
        publish("conversation:escalated", data, visitor, conversation_id)
    return data


async def rate(db: Database, visitor: Visitor, conversation_id: str, rating: Any, comment: Any) -> dict[str, Any]:
    """CSAT, once the conversation is resolved: 1-5 and an optional comment (a second rating replaces the first)."""
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise AppError("validation_error", details=[{"field": "rating", "message": "A whole number from 1 to 5."}])
    text = _text(comment, "comment", MAX_COMMENT)

    def write(conn: apsw.Connection) -> None:
        conversation = own_conversation(conn, visitor, conversation_id)
        if conversation["status"] != "resolved":
            raise AppError("not_resolved")
        widget_store.set_satisfaction(conn, conversation_id, rating, text)
        store.add_event(conn, conversation_id, "csat", {"rating": rating, "comment": text}, "customer",
                        conversation["customer_id"])

    await db.awrite(write)
    await events.after_commit(events.conversation_event, db, visitor.workspace_id, "csat.submitted", conversation_id)
    publish("csat:received", {"conversation_id": conversation_id, "rating": rating, "comment": text}, visitor,
            conversation_id)
    return {"conversation_id": conversation_id}


async def feedback(db: Database, visitor: Visitor, message_id: Any, helpful: Any) -> dict[str, Any]:
    """Thumbs up or down on one of the bot's answers in the visitor's own conversations."""
    if not isinstance(helpful, bool):
        raise AppError("validation_error", details=[{"field": "helpful", "message": "true or false."}])

    def write(conn: apsw.Connection) -> Row:
        customer_id = widget.customer_of(conn, visitor)
        row = widget_store.bot_message_in(conn, str(message_id), visitor.chatbot_id, customer_id) \
            if customer_id and isinstance(message_id, str) else None
        if row is None:
            raise AppError("not_found", "Message not found.")
        store.set_feedback(conn, row["id"], "up" if helpful else "down")
        return row

    row = await db.awrite(write)
    publish("feedback:received", {"message_id": row["id"], "conversation_id": row["conversation_id"],
                                  "helpful": helpful}, visitor, row["conversation_id"])
    return {"message_id": row["id"]}


async def identify(db: Database, visitor: Visitor, bot: Row, data: dict[str, Any]) -> tuple[Visitor, str | None]:
    """``visitor:identify``: a valid signature binds this visitor to the host site's user (their conversations
    follow them); an invalid one changes nothing. Returns the identified visitor and their latest conversation."""
    user_id = _text(data.get("user_id"), "user_id", 255)
    signature = data.get("signature")
    if user_id is None or not isinstance(signature, str) or not widget.signature_valid(bot["identity_secret"],
                                                                                       user_id, signature):
        raise AppError("invalid_signature")
    name, email = _text(data.get("name"), "name", 100), _text(data.get("email"), "email", 254)
    if email is not None and not EMAIL.match(email):
        email = None

    def write(conn: apsw.Connection) -> str | None:
        customer_id = widget.identify(conn, visitor, user_id)
        widget_store.update_customer(conn, customer_id, name=name, email=email)
        latest = widget_store.latest_conversation(conn, visitor.chatbot_id, customer_id)
        return latest["id"] if latest else None

    return visitor.identified(user_id), await db.awrite(write)


async def set_metadata(db: Database, visitor: Visitor, metadata: Any) -> None:
    """``visitor:metadata``: merged into the customer's metadata (the inbox's sidebar)."""
    clean = clean_metadata(metadata)
    await db.awrite(lambda conn: widget_store.update_customer(conn, widget.ensure_customer(conn, visitor),
                                                              metadata=clean))


def typing(visitor: Visitor, conversation_id: str, on: bool) -> None:
    publish("typing:start" if on else "typing:stop", payloads.typing(conversation_id, "customer", None), visitor,
            conversation_id)


def replay(conn: apsw.Connection, visitor: Visitor, bot: Row, conversation_id: Any,
           last_message_id: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``resume``: every message after ``last_message_id`` (all when null) and the ``resume:done`` data."""
    conversation = own_conversation(conn, visitor, conversation_id)
    after = last_message_id if isinstance(last_message_id, str) else None
    messages = [receive_payload(m, bot) for m in widget_store.messages_after(conn, conversation["id"], after)]
    agent = None
    if conversation["status"] == "agent_handling" and conversation["assigned_agent_id"]:
        row = widget_store.assigned_agent(conn, conversation["assigned_agent_id"])
        agent = payloads.agent_joined(conversation["id"], row)["agent"] if row else None
    return messages, {"conversation_id": conversation["id"], "status": conversation["status"], "agent": agent}
