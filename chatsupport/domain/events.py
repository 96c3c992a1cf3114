"""THE hook for integration events: where a conversation starts, escalates or is resolved, a message is written,
a customer rates a chat or a document finishes processing, the code calls one function here after its
transaction committed (a rolled-back change never reaches it, so it sends nothing).

``emit`` records one delivery per enabled webhook listening to the event (in one write), then hands the work to
the job queue: webhook deliveries, the Slack post for new and escalated conversations, the transcript email on
resolve. It never raises: the change it reports has already happened, and a broken integration must not turn
it into an error for the customer or agent who made it.

The jobs live in ``chatsupport.tasks.webhooks``, which registers itself with ``use_dispatcher`` when imported
(domain code does not import tasks).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, ParamSpec

import apsw

from chatsupport.store import integrations as integration_store
from chatsupport.store import webhooks as store
from chatsupport.store.db import Database, Row
from chatsupport.store.instance_state import utc_now

EVENTS = ("conversation.created", "conversation.escalated", "conversation.resolved", "message.created",
          "csat.submitted", "document.processed")
SLACK_EVENTS = frozenset({"conversation.created", "conversation.escalated"})
WRITE_TIMEOUT_S = 30

log = logging.getLogger(__name__)
P = ParamSpec("P")


@dataclass
class Outbox:
    """What one event asks the job queue to do."""

    workspace_id: str
    event: str
    data: dict[str, Any]
    webhook_ids: list[str] = field(default_factory=list)
    delivery_ids: list[str] = field(default_factory=list)
    slack: bool = False
    transcript_conversation_id: str | None = None


Dispatcher = Callable[[Outbox], None]
_dispatcher: Dispatcher | None = None


def use_dispatcher(dispatcher: Dispatcher | None) -> None:
    global _dispatcher
    _dispatcher = dispatcher


def body(delivery_id: str, event: str, workspace_id: str, created_at: str, data: dict[str, Any]) -> str:
    """The exact bytes a webhook receives (and that its signature covers); stored so a redelivery is identical."""
    return json.dumps({"event": event, "delivery_id": delivery_id, "created_at": created_at,
                       "workspace_id": workspace_id, "data": data}, ensure_ascii=False, separators=(",", ":"))


def emit(db: Database, workspace_id: str, event: str, data: dict[str, Any], customer_id: str | None = None) -> None:
    """Call after commit. Cheap when nothing listens: one read, no write, no job."""
    try:
        outbox = _plan(db.reader(), workspace_id, event, data)
        if outbox is None:
            return
        if outbox.webhook_ids:
            # bounded: the process may be shutting down (the writer gone), and this thread serves every event
            recorded = db.submit(lambda conn: _record(conn, outbox, customer_id))
            outbox.delivery_ids = recorded.result(timeout=WRITE_TIMEOUT_S)
        if _dispatcher is not None:
            _dispatcher(outbox)
    except Exception:  # noqa: BLE001 - see the module docstring
        log.exception("integration event %s of workspace %s was not sent", event, workspace_id)


def _plan(conn: apsw.Connection, workspace_id: str, event: str, data: dict[str, Any]) -> Outbox | None:
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}")
    hooks = store.subscribed(conn, workspace_id, event)
    settings = integration_store.workspace(conn, workspace_id)
    slack = event in SLACK_EVENTS and settings["slack_webhook_enc"] is not None
    conversation = data.get("conversation") or {}
    transcript = event == "conversation.resolved" and settings["transcript_email"] and \
        bool((conversation.get("customer") or {}).get("email"))
    if not (hooks or slack or transcript):
        return None
    return Outbox(workspace_id, event, data, hooks, slack=slack,
                  transcript_conversation_id=conversation["id"] if transcript else None)


def _record(conn: apsw.Connection, outbox: Outbox, customer_id: str | None) -> list[str]:
    created_at = utc_now()
    ids = []
    for webhook_id in outbox.webhook_ids:
        delivery_id = str(uuid.uuid4())
        store.add_delivery(conn, delivery_id=delivery_id, webhook_id=webhook_id, workspace_id=outbox.workspace_id,
                           event=outbox.event, customer_id=customer_id, created_at=created_at,
                           payload=body(delivery_id, outbox.event, outbox.workspace_id, created_at, outbox.data))
        ids.append(delivery_id)
    return ids


# --- the event sources' one-liners --------------------------------------------------------------------------------
def _quietly(fn: Callable[P, None]) -> Callable[P, None]:
    """Like ``emit``, the one-liners never raise into the change they report."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:  # noqa: BLE001 - see the module docstring
            log.exception("integration event from %s failed", fn.__name__)

    return wrapper


def conversation_payload(row: Row) -> dict[str, Any]:
    customer = None
    if row["customer_id"]:
        customer = {"id": row["customer_id"], "name": row["customer_name"], "email": row["customer_email"]}
    rating = row["satisfaction_rating"]
    return {"id": row["id"], "chatbot": {"id": row["chatbot_id"], "name": row["chatbot_name"]},
            "status": row["status"], "escalation_reason": row["escalation_reason"],
            "assigned_agent_id": row["assigned_agent_id"], "message_count": row["message_count"],
            "customer": customer, "created_at": row["created_at"], "resolved_at": row["resolved_at"],
            "satisfaction": {"rating": rating, "comment": row["satisfaction_comment"]} if rating else None}


@_quietly
def conversation_event(db: Database, workspace_id: str, event: str, conversation_id: str) -> None:
    """``conversation.*`` and ``csat.submitted``: the conversation as it is now (with its customer and rating)."""
    row = store.conversation_subject(db.reader(), workspace_id, conversation_id)
    if row is not None:
        emit(db, workspace_id, event, {"conversation": conversation_payload(row)}, row["customer_id"])


@_quietly
def message_created(db: Database, workspace_id: str, message_id: str) -> None:
    row = store.message_subject(db.reader(), workspace_id, message_id)
    if row is not None:
        message = {key: row[key] for key in ("id", "conversation_id", "sender_type", "sender_name", "content",
                                             "created_at")}
        emit(db, workspace_id, "message.created", {"message": message}, row["customer_id"])


@_quietly
def document_processed(db: Database, document_id: str) -> None:
    """After ingestion settled: ``status`` is ``completed`` or ``failed`` (with ``error_code``)."""
    row = store.document_subject(db.reader(), document_id)
    if row is not None and row["status"] in ("completed", "failed"):
        document = {key: row[key] for key in row if key != "workspace_id"}
        emit(db, row["workspace_id"], "document.processed", {"document": document})


async def after_commit(fn: Callable[..., None], *args: Any) -> None:
    """One of the functions above, from async code, off the event loop. Awaited, so the request's events stay in
    order and nothing still reads the database once the request is over."""
    await asyncio.to_thread(fn, *args)
