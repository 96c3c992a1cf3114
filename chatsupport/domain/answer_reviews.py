"""The learning loop (PRD §4.4 Story 4.3): staff review the AI's answers, mark them correct or incorrect, and turn
a wrong one into an FAQ that future answers use.

The queue lists bot messages newest first with the customer question each replied to. Reasons pick what needs a
look: ``low_confidence`` (under the chatbot's own hand-over threshold; a declined answer counts as 0),
``thumbs_down`` (the customer said it did not help), ``escalated`` (the answer handed the conversation over),
``unreviewed`` and ``all``. A correction goes through ``faqs.create``, so it is indexed exactly like any FAQ, and
the review is marked ``corrected`` in the same transaction.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import apsw

from chatsupport.domain import faqs
from chatsupport.domain.audit import Actor, record
from chatsupport.domain.auth import Context
from chatsupport.domain.chatbot_schema import DEFAULTS
from chatsupport.domain.conversation_filters import from_query
from chatsupport.domain.knowledge import require_chatbot
from chatsupport.errors import AppError
from chatsupport.ingest import pipeline
from chatsupport.store import answer_reviews as store
from chatsupport.store.db import Row

REASONS = tuple(store.REASONS)
VERDICTS = ("correct", "incorrect")
NOTE_LIMIT = 2000
DEFAULT_THRESHOLD = float(DEFAULTS["ai_settings"]["escalation_triggers"]["low_confidence_threshold"])
HANDED_OVER = ("escalated", "agent_handling")


def _invalid(field: str, message: str) -> AppError:
    return AppError("validation_error", details=[{"field": field, "message": message}])


def _web_url(url: Any) -> str | None:
    """Only http(s) links reach a page: a source's URL came from a crawled page or an upload's metadata."""
    return url if isinstance(url, str) and url.lower().startswith(("http://", "https://")) else None


def present(row: Row) -> dict[str, Any]:
    meta = row["ai_metadata"]
    confidence = meta.get("confidence")
    threshold = float(row["threshold"])
    review = None if row["verdict"] is None else {
        "verdict": row["verdict"], "note": row["note"], "faq_id": row["faq_id"], "reviewed_by": row["reviewed_by"],
        "reviewed_at": row["reviewed_at"]}
    return {"message_id": row["id"], "chatbot_id": row["chatbot_id"], "chatbot_name": row["chatbot_name"],
            "conversation_id": row["conversation_id"], "question": row["question"], "answer": row["answer"],
            "confidence": confidence, "threshold": threshold,
            "below_threshold": confidence is not None and confidence < threshold,
            "sources": [{"source_type": s.get("source_type"), "source_id": s.get("source_id"),
                         "title": s.get("title") or "", "url": _web_url(s.get("url")), "score": s.get("score")}
                        for s in meta.get("sources") or []],
            "provider": meta.get("provider"), "outcome": meta.get("outcome"),
            "escalation_reason": meta.get("escalation_reason"), "feedback": row["feedback"],
            "created_at": row["created_at"], "conversation_status": row["conversation_status"],
            "conversation_escalated": row["conversation_status"] in HANDED_OVER
            or row["conversation_escalation_reason"] is not None,
            "review": review}


# --- the queue ----------------------------------------------------------------------------------------------
def encode_cursor(row: Row) -> str:
    raw = json.dumps([row["created_at"], row["id"]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        created_at, message_id = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
        if not (isinstance(created_at, str) and isinstance(message_id, str)):
            raise ValueError
    except (ValueError, TypeError, binascii.Error):
        raise _invalid("cursor", "Not a cursor from this list; start again without it.") from None
    return created_at, message_id


def scope(ctx: Context, actor: Actor, chatbot_id: str | None = None, start: str | None = None,
          end: str | None = None) -> store.Scope:
    """Which answers, checked: another workspace's chatbot is "not found"; dates as the conversation filters
    read them (ISO date or date-time; a bare end date is the whole day)."""
    if chatbot_id:
        require_chatbot(ctx.db.reader(), actor, chatbot_id)
    dates = from_query({"start": start, "end": end}).date_range
    return store.Scope(actor.workspace_id, DEFAULT_THRESHOLD, chatbot_id or None,
                       dates.start if dates else None, dates.end if dates else None)


def queue(ctx: Context, actor: Actor, where: store.Scope, reason: str = "all", cursor: str | None = None,
          limit: int = 20) -> dict[str, Any]:
    """One page newest first, ``next_cursor`` for the next, and how many answers each reason holds."""
    if reason not in REASONS:
        raise _invalid("reason", f"One of {', '.join(REASONS)}.")
    conn = ctx.db.reader()
    rows = store.queue(conn, where, reason, limit + 1, decode_cursor(cursor) if cursor else None)
    more = len(rows) > limit
    return {"data": [present(r) for r in rows[:limit]], "next_cursor": encode_cursor(rows[limit - 1]) if more else None,
            "counts": store.counts(conn, where)}


# --- one answer ---------------------------------------------------------------------------------------------
def _require(conn: apsw.Connection, actor: Actor, message_id: str) -> Row:
    row = store.get(conn, actor.workspace_id, message_id, DEFAULT_THRESHOLD)
    if row is None:
        raise AppError("not_found", "No such answer.")
    return row


def exists(ctx: Context, actor: Actor, message_id: str) -> bool:
    return store.get(ctx.db.reader(), actor.workspace_id, message_id, DEFAULT_THRESHOLD) is not None


def get(ctx: Context, actor: Actor, message_id: str) -> dict[str, Any]:
    return present(_require(ctx.db.reader(), actor, message_id))


def judge(ctx: Context, actor: Actor, message_id: str, verdict: str, note: str | None = None) -> dict[str, Any]:
    """Record ``correct`` or ``incorrect`` (a later verdict replaces an earlier one; a note not given is kept)."""
    if verdict not in VERDICTS:
        raise _invalid("verdict", f"One of {', '.join(VERDICTS)}.")
    note = (note or "").strip() or None
    if note is not None and len(note) > NOTE_LIMIT:
        raise _invalid("note", f"At most {NOTE_LIMIT} characters.")

    def write(conn: apsw.Connection) -> Row:
        answer = _require(conn, actor, message_id)
        store.save(conn, message_id=message_id, workspace_id=actor.workspace_id, chatbot_id=answer["chatbot_id"],
                   verdict=verdict, note=note, reviewed_by=actor.user_id)
        record(conn, "answer.reviewed", actor=actor, resource_type="message", resource_id=message_id,
               metadata={"verdict": verdict})
        return _require(conn, actor, message_id)

    return present(ctx.db.write(write))


def correct(ctx: Context, actor: Actor, encoder: pipeline.Encoder, message_id: str, question: Any,
            answer: Any) -> dict[str, Any]:
    """Save a better answer as an FAQ of the answer's chatbot and mark the review ``corrected``, linked to it.
    The FAQ remembers the message it corrects (``metadata.corrects_message_id``)."""
    chatbot_id = _require(ctx.db.reader(), actor, message_id)["chatbot_id"]

    def link(conn: apsw.Connection, faq_id: str) -> None:
        _require(conn, actor, message_id)  # deleted meanwhile: nothing is saved
        store.save(conn, message_id=message_id, workspace_id=actor.workspace_id, chatbot_id=chatbot_id,
                   verdict="corrected", faq_id=faq_id, reviewed_by=actor.user_id)
        record(conn, "answer.corrected", actor=actor, resource_type="message", resource_id=message_id,
               metadata={"faq_id": faq_id})

    faq = faqs.create(ctx, actor, encoder, chatbot_id,
                      {"question": question, "answer": answer, "metadata": {"corrects_message_id": message_id}},
                      also=link)
    return {"review": get(ctx, actor, message_id), "faq": faq}
