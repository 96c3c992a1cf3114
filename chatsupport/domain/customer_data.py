"""A customer's data on request (PRD §6.5): everything held about them as JSON, and erasure by anonymising or
deleting. The retention job (``domain.retention``) erases old conversations with the same batch functions.

"Customer id" is a ``customers.id`` of the workspace: the row a widget visitor (by their visitor id) or a
signed-in user of the host site (by its user id, ``external_id``) is known by. One person may have several rows
(one per browser before they identified); ``find_by_email`` lists them all.

Anonymise keeps every row, count and rating, and removes what points at a person: the customer's name, e-mail,
phone, company, custom fields, visitor and external ids; in free text (messages, notes, event data, notification
texts, review notes, CSAT comments) the values the customer is known by and every e-mail, phone, card number and
IBAN (``llm.privacy.mask``); query strings and fragments of page URLs and the browser's user agent. Attachments
(files cannot be masked) and webhook payloads go. Delete removes the conversations with everything attached, the
customer row, their files and webhook deliveries. Either way the search index follows (triggers), the analytics
of the touched 15-minute buckets are recomputed in the same transaction, and audit entries about a deleted
customer lose its id. The search index is then rewritten (``store.purge_search_index``) so no word of them
stays in its pages, and freed pages are zeroed (``secure_delete``). Copies outside the database are not
reached: backups, bulk export files (kept seven days) and mail already sent.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar
from urllib.parse import urlsplit, urlunsplit

import apsw

from chatsupport.domain import analytics
from chatsupport.domain.audit import Actor, record
from chatsupport.domain.auth import Context, iso, now_utc
from chatsupport.errors import AppError
from chatsupport.llm.privacy import mask
from chatsupport.store import customer_data as store
from chatsupport.store.db import Database, Row

MODES = ("anonymize", "delete")
# Conversations per write transaction: a customer with thousands of them never holds the writer for long.
BATCH = 100
URL_KEYS = ("page_url", "referrer")
DROPPED_CONTEXT = ("user_agent",)
NAME_PART_MIN = 3
T = TypeVar("T")


# --- finding ----------------------------------------------------------------------------------------------------
def exists(ctx: Context, actor: Actor, customer_id: str) -> bool:
    return store.customer(ctx.db.reader(), actor.workspace_id, customer_id) is not None


def find_by_email(ctx: Context, actor: Actor, email: str) -> list[dict[str, Any]]:
    email = email.strip()
    if not email or "@" not in email or len(email) > 254:
        raise AppError("validation_error", details=[{"field": "email", "message": "Enter an e-mail address."}])
    return [_profile(row) | {"conversations": row["conversations"]}
            for row in store.by_email(ctx.db.reader(), actor.workspace_id, email)]


def _profile(row: Row) -> dict[str, Any]:
    return {key: row[key] for key in ("id", "name", "email", "phone", "company", "visitor_id", "external_id",
                                      "custom_fields", "metadata", "first_seen_at", "last_seen_at", "created_at",
                                      "anonymized_at")}


# --- export -----------------------------------------------------------------------------------------------------
def export(ctx: Context, actor: Actor, customer_id: str) -> dict[str, Any]:
    """Everything held about one customer, as one JSON document. Audited."""
    conn = ctx.db.reader()
    row = store.customer(conn, actor.workspace_id, customer_id)
    if row is None:
        raise AppError("not_found", "Customer not found.")
    ids = store.conversation_ids(conn, actor.workspace_id, customer_id)
    by_conversation: dict[str, dict[str, Any]] = {}
    for conversation in store.conversations(conn, actor.workspace_id, ids):
        by_conversation[conversation["id"]] = {**conversation, "messages": [], "notes": [], "events": []}
    for key, rows in (("messages", store.messages(conn, ids)), ("notes", store.notes(conn, ids)),
                      ("events", store.events(conn, ids))):
        for item in rows:
            by_conversation[item.pop("conversation_id")][key].append(item)
    files = [{**item, "download_path": f"/api/v1/attachments/{item['id']}"}
             for item in store.attachments(conn, actor.workspace_id, ids, row["visitor_id"])]
    document = {
        "customer": _profile(row), "exported_at": iso(now_utc()),
        "conversations": list(by_conversation.values()), "attachments": files,
        "csat": [{"conversation_id": c["id"], "rating": c["satisfaction_rating"],
                  "comment": c["satisfaction_comment"], "rated_at": c["satisfaction_rated_at"]}
                 for c in by_conversation.values() if c["satisfaction_rating"] is not None],
        "message_feedback": [{"message_id": m["id"], "feedback": m["feedback"]}
                             for c in by_conversation.values() for m in c["messages"] if m["feedback"]],
        "answer_reviews": store.answer_reviews(conn, actor.workspace_id, ids),
        "webhook_deliveries": store.webhook_deliveries(conn, actor.workspace_id, customer_id),
        "audit_entries": store.audit_entries(conn, actor.workspace_id, customer_id, ids),
        # widget_sightings keeps (chatbot, site origin) pairs only: nothing there is about a visitor
    }
    ctx.db.write(lambda w: record(w, "customer.exported", actor=actor, resource_type="customer",
                                  resource_id=customer_id, metadata={"conversations": len(ids)}))
    return document


# --- scrubbing free text ----------------------------------------------------------------------------------------
def known_patterns(customer: Row | dict[str, Any]) -> list[tuple[re.Pattern[str], str]]:
    """What the customer is known by, as (pattern, placeholder): whole values anywhere, and each part of the name
    as a whole word ("John" in "Thanks John!")."""
    found: list[tuple[str, str, bool]] = []
    for key, label in (("email", "[email]"), ("phone", "[phone]"), ("external_id", "[customer id]"),
                       ("company", "[company]"), ("name", "[name]")):
        if customer.get(key):
            found.append((str(customer[key]), label, False))
    for value in (customer.get("custom_fields") or {}).values():
        if isinstance(value, str):
            found.append((value, "[customer data]", False))
    for part in re.split(r"\s+", str(customer.get("name") or "")):
        found.append((part, "[name]", True))
    patterns = []
    for value, label, word in sorted(found, key=lambda item: -len(item[0])):
        if len(value.strip()) >= NAME_PART_MIN:
            escaped = re.escape(value.strip())
            patterns.append((re.compile(rf"\b{escaped}\b" if word else escaped, re.IGNORECASE), label))
    return patterns


def scrub(text: str | None, known: Sequence[tuple[re.Pattern[str], str]]) -> str | None:
    if text is None:
        return None
    for pattern, label in known:
        text = pattern.sub(label, text)
    return mask(text)


def _scrub_value(value: Any, known: Sequence[tuple[re.Pattern[str], str]]) -> Any:
    if isinstance(value, str):
        return scrub(value, known)
    if isinstance(value, list):
        return [_scrub_value(item, known) for item in value]
    if isinstance(value, dict):
        return {key: _scrub_value(item, known) for key, item in value.items()}
    return value


def _bare_url(url: Any) -> Any:
    if not isinstance(url, str):
        return url
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def clean_context(context: dict[str, Any], known: Sequence[tuple[re.Pattern[str], str]]) -> dict[str, Any]:
    kept = {key: value for key, value in context.items() if key not in DROPPED_CONTEXT}
    kept = {key: _bare_url(value) if key in URL_KEYS else value for key, value in kept.items()}
    return _scrub_value(kept, known)


# --- the batch operations (shared with retention) ---------------------------------------------------------------
def _buckets(rows: Sequence[Row]) -> set[tuple[str, str]]:
    return {(row["chatbot_id"], analytics.bucket_of(analytics.parse_stamp(row["created_at"]))) for row in rows}


def _recompute(conn: apsw.Connection, workspace_id: str, buckets: set[tuple[str, str]]) -> int:
    for chatbot_id, bucket in buckets:
        analytics.recompute(conn, workspace_id, chatbot_id, bucket, analytics.next_bucket(bucket))
    return len(buckets)


def _anonymize_texts(conn: apsw.Connection, conversation_id: str,
                     known: Sequence[tuple[re.Pattern[str], str]]) -> Counter[str]:
    """Only rows whose text changes are written (each write re-indexes the row for search)."""
    touched: Counter[str] = Counter()
    texts = store.texts(conn, conversation_id)
    for message in texts["messages"]:
        content = scrub(message["content"], known) or ""
        name = None if message["sender_type"] == "customer" else message["sender_name"]
        if content != message["content"] or name != message["sender_name"]:
            store.set_message(conn, message["id"], content, name)
            touched["messages"] += 1
    for note in texts["internal_notes"]:
        if (content := scrub(note["content"], known) or "") != note["content"]:
            store.set_note(conn, note["id"], content)
            touched["notes"] += 1
    for event in texts["conversation_events"]:
        data = json.loads(event["event_data"])
        if (cleaned := _scrub_value(data, known)) != data:
            store.set_event(conn, event["id"], cleaned)
            touched["events"] += 1
    for item in texts["notifications"]:
        title, body = scrub(item["title"], known) or "", scrub(item["body"], known) or ""
        if (title, body) != (item["title"], item["body"]):
            store.set_notification(conn, item["id"], title, body)
            touched["notifications"] += 1
    for review in texts["answer_reviews"]:
        if (note := scrub(review["note"], known) or "") != review["note"]:
            store.set_review_note(conn, review["id"], note)
            touched["answer_reviews"] += 1
    return touched


def anonymize_conversations(conn: apsw.Connection, workspace_id: str, ids: Sequence[str],
                            now: str) -> tuple[Counter[str], list[str]]:
    """Anonymise these conversations (each with what its own customer is known by); returns the counts and the
    ids of attachment files to remove once committed."""
    rows = store.conversation_customers(conn, workspace_id, ids)
    touched: Counter[str] = Counter()
    for row in rows:
        known = known_patterns(row)
        touched.update(_anonymize_texts(conn, row["id"], known))
        store.set_conversation(conn, workspace_id, row["id"], clean_context(row["context"], known),
                               scrub(row["satisfaction_comment"], known), scrub(row["resolution_note"], known), now)
    files = store.take_attachments(conn, workspace_id, [row["id"] for row in rows])
    touched.update(conversations=len(rows), attachments=len(files),
                   analytics_buckets=_recompute(conn, workspace_id, _buckets(rows)))
    return touched, files


def delete_conversations(conn: apsw.Connection, workspace_id: str,
                         ids: Sequence[str]) -> tuple[Counter[str], list[str]]:
    rows = store.conversation_customers(conn, workspace_id, ids)
    files = store.take_attachments(conn, workspace_id, [row["id"] for row in rows])
    touched = Counter(store.delete_conversations(conn, workspace_id, [row["id"] for row in rows]))
    touched.update(attachments=len(files), analytics_buckets=_recompute(conn, workspace_id, _buckets(rows)))
    return touched, files


def erase_batch(conn: apsw.Connection, workspace_id: str, ids: Sequence[str],
                mode: str) -> tuple[Counter[str], list[str]]:
    if mode == "anonymize":
        return anonymize_conversations(conn, workspace_id, ids, iso(now_utc()))
    return delete_conversations(conn, workspace_id, ids)


def finish_customer(conn: apsw.Connection, workspace_id: str, customer_id: str, mode: str,
                    now: str) -> tuple[Counter[str], list[str]]:
    """The customer's own rows, once their conversations are done: unsent uploads, webhook deliveries, the
    customer row itself and (deleting) the id in audit entries about them."""
    visitor_id = store.customer_visitor(conn, workspace_id, customer_id)
    files = store.take_attachments(conn, workspace_id, [], visitor_id) if visitor_id else []
    touched: Counter[str] = Counter(attachments=len(files))
    if mode == "anonymize":
        touched["webhook_deliveries"] = store.clear_webhook_payloads(conn, workspace_id, customer_id)
        store.anonymize_customer(conn, workspace_id, customer_id, now)
    else:
        touched["webhook_deliveries"] = store.delete_webhook_deliveries(conn, workspace_id, customer_id)
        touched["audit_entries"] = store.redact_audit(conn, workspace_id, customer_id)
        store.delete_customer(conn, workspace_id, customer_id)
    return touched, files


def remove_files(folder: Path, attachment_ids: Sequence[str]) -> None:
    """After the commit: a crash in between leaves orphan files, which housekeeping sweeps."""
    for attachment_id in attachment_ids:
        (folder / attachment_id).unlink(missing_ok=True)


def _chunks(ids: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def secure_write(db: Database, fn: Callable[[apsw.Connection], T]) -> T:
    """A write with SQLite's secure_delete on, so freed pages are zeroed rather than left readable in the file."""
    def run(conn: apsw.Connection) -> T:
        conn.execute("PRAGMA secure_delete=ON")
        try:
            return fn(conn)
        finally:
            conn.execute("PRAGMA secure_delete=OFF")

    return db.write(run)


# --- erasure on request -----------------------------------------------------------------------------------------
def erase(ctx: Context, actor: Actor, customer_id: str, mode: str) -> dict[str, Any]:
    """Anonymise or delete one customer, in batches of ``BATCH`` conversations per transaction (repeatable: a
    second call finishes what an interrupted one started). Returns what was touched."""
    if mode not in MODES:
        raise AppError("validation_error", details=[{"field": "mode", "message": "anonymize or delete."}])
    workspace_id, folder = actor.workspace_id, ctx.settings.data.uploads / "attachments"
    if store.customer(ctx.db.reader(), workspace_id, customer_id) is None:
        raise AppError("not_found", "Customer not found.")
    ids = store.conversation_ids(ctx.db.reader(), workspace_id, customer_id)
    touched: Counter[str] = Counter()
    for batch in _chunks(ids, BATCH):
        counts, files = secure_write(ctx.db, lambda conn, b=batch: erase_batch(conn, workspace_id, b, mode))
        touched.update(counts)
        remove_files(folder, files)

    def finish(conn: apsw.Connection) -> tuple[Counter[str], list[str]]:
        counts, files = finish_customer(conn, workspace_id, customer_id, mode, iso(now_utc()))
        summary = _summary(mode, touched + counts)
        record(conn, f"customer.{'anonymized' if mode == 'anonymize' else 'deleted'}", actor=actor,
               resource_type="customer", resource_id=customer_id if mode == "anonymize" else None,
               metadata={**summary, "customer_ref": reference(customer_id)})
        return counts, files

    counts, files = secure_write(ctx.db, finish)
    remove_files(folder, files)
    ctx.db.write(store.purge_search_index)
    return {"customer_id": customer_id, **_summary(mode, touched + counts)}


def reference(customer_id: str) -> str:
    """What the audit trail keeps of an erased customer: whoever still holds the id can match it, nobody can
    read it back."""
    return hashlib.sha256(customer_id.encode()).hexdigest()[:16]


def _summary(mode: str, touched: Counter[str]) -> dict[str, Any]:
    keys = ("conversations", "messages", "notes", "events", "notifications", "answer_reviews", "attachments",
            "analytics_buckets", "webhook_deliveries", "audit_entries")
    return {"mode": mode, "touched": {key: touched.get(key, 0) for key in keys}}
