"""What agents read (PRD §5.3.3): the conversation list with keyset pagination, and one conversation in full.

Pagination is keyset first: ``next_cursor`` is an opaque token naming the last row shown, so page 500 costs what
page 1 costs. The PRD's ``pagination`` object comes along: ``page`` without a cursor reads by offset while that is
cheap (the first ``MAX_OFFSET`` rows), and ``total`` stops counting at ``TOTAL_CAP`` (``total_capped: true``).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from datetime import datetime
from typing import Any

import apsw

from chatsupport.domain import notes, saved_filters
from chatsupport.domain.audit import Actor
from chatsupport.domain.auth import Context
from chatsupport.domain.conversation_filters import Filters, overlay, parse_filters
from chatsupport.domain.conversations import STATUSES
from chatsupport.errors import AppError
from chatsupport.store import conversation_search as search_store
from chatsupport.store import conversations as store
from chatsupport.store.db import Row

TOTAL_CAP = 10_000
MAX_OFFSET = 10_000
# sort parameter → (column, newest first)
SORTS = {"-updated_at": ("updated_at", True), "-created_at": ("created_at", True),
         "updated_at": ("updated_at", False), "created_at": ("created_at", False)}
PREVIEW_CHARS = 300


def _invalid(field: str, message: str) -> AppError:
    return AppError("validation_error", details=[{"field": field, "message": message}])


def encode_cursor(sort: str, row: Row, page: int) -> str:
    raw = json.dumps([sort, row[SORTS[sort][0]], row["id"], page], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[tuple[str, str], int]:
    """((sort value, id), page number) from a cursor this server made for the same sort."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        made_for, value, row_id, page = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not (isinstance(value, str) and isinstance(row_id, str) and isinstance(page, int)):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise _invalid("cursor", "Not a cursor from this list; start again without it.") from None
    if made_for != sort:
        raise _invalid("cursor", "The cursor was made for another sort order.")
    return (value, row_id), page


def applied_filters(ctx: Context, actor: Actor, filters: Filters, filter_id: str | None) -> Filters:
    """``filters`` on top of the caller's saved filter ``filter_id`` (a condition given in the request wins)."""
    if filter_id is None:
        return filters
    saved = saved_filters.get(ctx, actor, filter_id)
    return overlay(parse_filters(saved["filters"]), filters)


def list_conversations(ctx: Context, actor: Actor, *, filters: Filters | None = None, filter_id: str | None = None,
                       sort: str = "-updated_at", cursor: str | None = None, page: int = 1,
                       limit: int = 20) -> dict[str, Any]:
    """One page of the inbox: rows with ``unread`` for the caller, the PRD ``pagination`` (total capped at
    ``TOTAL_CAP``), ``next_cursor``, and ``counts`` per status for the same filters minus the status condition
    (each shown up to ``TOTAL_CAP``, like the total; ``counts_capped`` says whether any was more)."""
    if sort not in SORTS:
        raise _invalid("sort", f"One of {', '.join(SORTS)}.")
    if not 1 <= limit <= 100:
        raise _invalid("limit", "Between 1 and 100.")
    chosen = applied_filters(ctx, actor, filters or Filters(), filter_id)
    after, offset = None, 0
    if cursor:
        after, page = decode_cursor(cursor, sort)
    elif page < 1 or (page - 1) * limit >= MAX_OFFSET:
        raise _invalid("page", f"Pages reach the first {MAX_OFFSET} conversations; use next_cursor beyond.")
    else:
        offset = (page - 1) * limit
    conn = ctx.db.reader()
    where, params = search_store.filter_where(actor.workspace_id, chosen, actor.user_id)
    column, descending = SORTS[sort]
    rows = store.list_page(conn, where, params, sort=column, descending=descending, after=after, limit=limit + 1,
                           offset=offset)
    more, rows = len(rows) > limit, rows[:limit]
    total = store.count_matching(conn, where, params, cap=TOTAL_CAP)
    found = search_store.counts_by_status(conn, actor.workspace_id, chosen, actor.user_id)
    counts = {status: found.get(status, 0) for status in STATUSES}
    return {"data": list_items(conn, actor, rows), "pagination": pagination(page, limit, total),
            "next_cursor": encode_cursor(sort, rows[-1], page + 1) if more else None,
            "counts": {status: min(n, TOTAL_CAP) for status, n in counts.items()},
            "counts_capped": any(n > TOTAL_CAP for n in counts.values())}


def list_item_if(ctx: Context, actor: Actor, conversation_id: str, filters: Filters) -> dict[str, Any] | None:
    """One conversation as a list row, or None when it does not pass ``filters`` (or is not in the caller's
    workspace): what a live list needs to patch one row it already shows."""
    conn = ctx.db.reader()
    where, params = search_store.filter_where(actor.workspace_id, filters, actor.user_id)
    rows = store.list_page(conn, f"{where} AND c.id = ?", [*params, conversation_id], sort="updated_at",
                           descending=True, after=None, limit=1)
    return list_items(conn, actor, rows)[0] if rows else None


def pagination(page: int, limit: int, total: int) -> dict[str, Any]:
    """The PRD pagination object; ``total`` is what was counted, at most ``TOTAL_CAP`` (then ``total_capped``)."""
    shown = min(total, TOTAL_CAP)
    return {"page": page, "limit": limit, "total": shown, "total_pages": max(1, math.ceil(shown / limit)),
            "total_capped": total > TOTAL_CAP}


def list_items(conn: apsw.Connection, actor: Actor, rows: list[Row]) -> list[dict[str, Any]]:
    """List rows as the API shows them: last message preview and the caller's unread flag."""
    ids = [row["id"] for row in rows]
    last = store.last_messages(conn, ids)
    unread = search_store.unread(conn, actor.user_id, ids)
    return [{**list_item(row, last.get(row["id"])), "unread": row["id"] in unread} for row in rows]


def list_item(row: Row, last: Row | None) -> dict[str, Any]:
    preview = None
    if last is not None:
        content = last["content"]
        preview = {"content": content if len(content) <= PREVIEW_CHARS else content[:PREVIEW_CHARS - 1] + "…",
                   "sender_type": last["sender_type"], "timestamp": last["created_at"]}
    return {"id": row["id"], "chatbot_id": row["chatbot_id"], "customer": _customer(row), "status": row["status"],
            "assigned_agent": _agent(row), "message_count": row["message_count"], "last_message": preview,
            "created_at": row["created_at"], "updated_at": row["updated_at"], "tags": row["tags"],
            "satisfaction_rating": row["satisfaction_rating"], "context": context_of(row["context"])}


def _customer(row: Row) -> dict[str, Any] | None:
    if row["customer_id"] is None:
        return None
    return {"id": row["customer_id"], "name": row["customer_name"], "email": row["customer_email"],
            "avatar_url": None, "metadata": row["customer_metadata"]}


def _agent(row: Row) -> dict[str, Any] | None:
    if row["assigned_agent_id"] is None:
        return None
    return {"id": row["assigned_agent_id"], "name": row["agent_name"], "email": row["agent_email"]}


def context_of(stored: dict[str, Any]) -> dict[str, Any]:
    """The PRD's four context fields (device and browser read from the user agent when not stored), then
    whatever else the widget recorded."""
    agent = str(stored.get("user_agent") or "")
    return {"page_url": stored.get("page_url"), "referrer": stored.get("referrer"),
            "device": stored.get("device") or (device_of(agent) if agent else None),
            "browser": stored.get("browser") or (browser_of(agent) if agent else None),
            **{k: v for k, v in stored.items() if k not in ("page_url", "referrer", "device", "browser")}}


def device_of(user_agent: str) -> str:
    if re.search(r"iPad|Tablet", user_agent):
        return "tablet"
    return "mobile" if re.search(r"Mobi|Android|iPhone", user_agent) else "desktop"


# Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari".
_BROWSERS = (("Edge", r"Edg/(\d+)"), ("Opera", r"OPR/(\d+)"), ("Firefox", r"Firefox/(\d+)"),
             ("Chrome", r"Chrome/(\d+)"), ("Safari", r"Version/(\d+).*Safari"))


def browser_of(user_agent: str) -> str | None:
    for name, pattern in _BROWSERS:
        found = re.search(pattern, user_agent)
        if found:
            return f"{name} {found.group(1)}"
    return None


# --- one conversation in full ---------------------------------------------------------------------------------
def get_conversation(ctx: Context, actor: Actor, conversation_id: str) -> dict[str, Any]:
    conn = ctx.db.reader()
    row = store.details(conn, actor.workspace_id, conversation_id)
    if row is None:
        raise AppError("not_found", "Conversation not found.")
    customer = store.get_customer(conn, actor.workspace_id, row["customer_id"]) if row["customer_id"] else None
    bot = conn.execute("SELECT name FROM chatbots WHERE id = ?", (row["chatbot_id"],)).fetchone()
    agent = conn.execute("SELECT id, display_name, email FROM users WHERE id = ?",
                         (row["assigned_agent_id"],)).fetchone() if row["assigned_agent_id"] else None
    messages = store.all_messages(conn, conversation_id)
    return {
        "id": row["id"], "chatbot_id": row["chatbot_id"],
        "customer": customer and {"id": customer["id"], "name": customer["name"], "email": customer["email"],
                                  "avatar_url": None, "metadata": customer["metadata"]},
        "status": row["status"],
        "assigned_agent": agent and {"id": agent["id"], "name": agent["display_name"], "email": agent["email"]},
        "messages": [_message(m, row, customer, bot) for m in messages],
        "internal_notes": notes.notes_of(conn, actor.workspace_id, conversation_id),
        "events": [_event(e) for e in store.events(conn, conversation_id)],
        "tags": row["tags"],
        "satisfaction_rating": None if row["satisfaction_rating"] is None else {
            "score": row["satisfaction_rating"], "comment": row["satisfaction_comment"],
            "rated_at": row["satisfaction_rated_at"]},
        "metadata": {"total_response_time_seconds": _duration(row), "ai_messages": row["ai_message_count"],
                     "agent_messages": row["agent_message_count"],
                     "customer_messages": row["customer_message_count"]},
        "context": context_of(row["context"]),
        "resolution_note": row["resolution_note"], "resolved_by": row["resolved_by"],
        "created_at": row["created_at"], "updated_at": row["updated_at"], "resolved_at": row["resolved_at"],
    }


def _message(message: Row, conversation: Row, customer: Row | None, bot: Row | None) -> dict[str, Any]:
    kind = message["sender_type"]
    sender_id = {"bot": conversation["chatbot_id"], "customer": conversation["customer_id"]}.get(
        kind, message["sender_id"])
    name = message["sender_name"] or {"bot": bot and bot["name"], "customer": customer and customer["name"]}.get(kind)
    meta: dict[str, Any] = {}
    if kind == "bot":
        ai = message["ai_metadata"] or {}
        meta = {"confidence_score": ai.get("confidence"),
                "sources": [{"title": s.get("title"), "url": s.get("url")} for s in ai.get("sources", [])],
                "processing_time_ms": ai.get("processing_time_ms"), "provider": ai.get("provider"),
                "outcome": ai.get("outcome")}
    return {"id": message["id"], "content": message["content"], "sender": {"type": kind, "id": sender_id, "name": name},
            "timestamp": message["created_at"], "metadata": meta, "attachments": message["attachments"],
            "feedback": message["feedback"]}


def _event(event: Row) -> dict[str, Any]:
    """``{type, timestamp, by, …event data}``: the PRD's shape, with the stored data flattened in."""
    data = {k: v for k, v in event["event_data"].items() if k not in ("type", "timestamp", "id", "by")}
    return {"id": event["id"], "type": event["event_type"], "timestamp": event["created_at"],
            "by": {"type": event["triggered_by_type"], "id": event["triggered_by_id"]}, **data}


def _duration(row: Row) -> int | None:
    """Seconds from the first to the last message (or the resolution), like the PRD's example."""
    if row["total_duration_seconds"] is not None:
        return int(row["total_duration_seconds"])
    end = row["resolved_at"] or row["last_message_at"]
    if end is None:
        return None
    return max(0, round((_parse(end) - _parse(row["created_at"])).total_seconds()))


def _parse(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
