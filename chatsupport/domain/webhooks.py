"""Outgoing webhooks: which URL hears which events, their signing secrets, and the delivery log.

A receiver checks ``X-ChatSupport-Signature: sha256=<hex>``, the HMAC-SHA256 of the raw request body under the
webhook's secret. Secrets are generated here (never chosen by a person), stored encrypted with the instance secret
and shown to owners and admins on request. Deliveries are retried with growing pauses (``RETRY_FACTORS`` times the
``WEBHOOK_RETRY_BASE`` setting); every try is in the log with its response code, error and duration.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from chatsupport.domain.audit import Actor, record
from chatsupport.domain.auth import Context
from chatsupport.domain.events import EVENTS
from chatsupport.domain.integrations import check_hook_url, post_json
from chatsupport.errors import AppError
from chatsupport.llm.secrets import KeyUnreadable, decrypt_key, encrypt_key
from chatsupport.net.errors import OutboundError
from chatsupport.store import webhooks as store
from chatsupport.store.db import Database, Row

MAX_WEBHOOKS = 20
MAX_DESCRIPTION = 200
# A failed delivery is tried again after base x 1, 6, 30, 180 and 720 (10 s … 2 h with the default base of 10 s).
RETRY_FACTORS = (1, 6, 30, 180, 720)
MAX_ATTEMPTS = 1 + len(RETRY_FACTORS)
PAYLOAD_DAYS = 30   # payload bodies are kept this long (a redelivery needs them), then emptied
LOG_DAYS = 90       # the log rows themselves


def _invalid(field: str, message: str) -> AppError:
    return AppError("validation_error", details=[{"field": field, "message": message}])


def _scope(webhook_id: str) -> str:
    return f"webhook:{webhook_id}"


def exists(ctx: Context, actor: Actor, webhook_id: str) -> bool:
    return store.get(ctx.db.reader(), actor.workspace_id, webhook_id) is not None


def _out(row: Row) -> dict[str, Any]:
    return {key: row[key] for key in ("id", "url", "description", "events", "enabled", "created_at", "updated_at")} | \
        {"last_delivery_status": row.get("last_status")}


def listing(ctx: Context, actor: Actor) -> dict[str, Any]:
    return {"data": [_out(row) for row in store.listing(ctx.db.reader(), actor.workspace_id)],
            "events": list(EVENTS)}


def _events(events: list[str]) -> list[str]:
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        raise _invalid("events", f"Choose one or more of: {', '.join(EVENTS)}.")
    return [e for e in EVENTS if e in events]  # the canonical order, without duplicates


def _description(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_DESCRIPTION:
        raise _invalid("description", f"At most {MAX_DESCRIPTION} characters.")
    return text


def create(ctx: Context, actor: Actor, *, url: str, events: list[str], description: str = "",
           enabled: bool = True) -> dict[str, Any]:
    """The answer carries the secret; the console shows it once and offers "reveal" later."""
    url = check_hook_url(ctx, url, "url")
    chosen, text = _events(events), _description(description)
    webhook_id, secret = str(uuid.uuid4()), "whsec_" + secrets.token_urlsafe(32)

    def write(conn: Any) -> Row:
        if len(store.listing(conn, actor.workspace_id)) >= MAX_WEBHOOKS:
            raise AppError("conflict", f"A workspace has at most {MAX_WEBHOOKS} webhooks.")
        row = store.create(conn, webhook_id=webhook_id, workspace_id=actor.workspace_id, url=url, description=text,
                           events=chosen, enabled=enabled, user_id=actor.user_id,
                           secret_enc=encrypt_key(ctx.secret_key, actor.workspace_id, _scope(webhook_id), secret))
        record(conn, "webhook.created", actor=actor, resource_type="webhook", resource_id=webhook_id,
               changes={"url": url, "events": chosen, "enabled": enabled})
        return row

    return {**_out(ctx.db.write(write)), "secret": secret}


def get(ctx: Context, actor: Actor, webhook_id: str) -> dict[str, Any]:
    row = store.get(ctx.db.reader(), actor.workspace_id, webhook_id)
    if row is None:
        raise AppError("not_found", "Webhook not found.")
    return _out(row)


def update(ctx: Context, actor: Actor, webhook_id: str, *, url: str | None = None, events: list[str] | None = None,
           description: str | None = None, enabled: bool | None = None) -> dict[str, Any]:
    """Only the fields given change."""
    changes: dict[str, Any] = {}
    if url is not None:
        changes["url"] = check_hook_url(ctx, url, "url")
    if events is not None:
        changes["events"] = _events(events)
    if description is not None:
        changes["description"] = _description(description)
    if enabled is not None:
        changes["enabled"] = enabled

    def write(conn: Any) -> Row:
        before = store.get(conn, actor.workspace_id, webhook_id)
        if before is None:
            raise AppError("not_found", "Webhook not found.")
        if changes:
            store.update(conn, actor.workspace_id, webhook_id, changes)
            record(conn, "webhook.updated", actor=actor, resource_type="webhook", resource_id=webhook_id,
                   changes={"before": {k: before[k] for k in changes}, "after": changes})
        return store.get(conn, actor.workspace_id, webhook_id)  # type: ignore[return-value]

    return _out(ctx.db.write(write))


def delete(ctx: Context, actor: Actor, webhook_id: str) -> None:
    def write(conn: Any) -> None:
        if not store.delete(conn, actor.workspace_id, webhook_id):
            raise AppError("not_found", "Webhook not found.")
        record(conn, "webhook.deleted", actor=actor, resource_type="webhook", resource_id=webhook_id)

    ctx.db.write(write)


def reveal_secret(ctx: Context, actor: Actor, webhook_id: str) -> dict[str, Any]:
    """Audited: the secret lets anyone forge deliveries to this receiver."""
    blob = store.secret_blob(ctx.db.reader(), actor.workspace_id, webhook_id)
    if blob is None:
        raise AppError("not_found", "Webhook not found.")
    try:
        secret = decrypt_key(ctx.secret_key, actor.workspace_id, _scope(webhook_id), blob)
    except KeyUnreadable as exc:
        raise AppError("conflict", "The secret was stored under another instance secret; delete this webhook "
                                   "and create it again.") from exc
    ctx.db.write(lambda conn: record(conn, "webhook.secret_revealed", actor=actor, resource_type="webhook",
                                     resource_id=webhook_id))
    return {"secret": secret}


def deliveries(ctx: Context, actor: Actor, webhook_id: str, page: int, limit: int) -> dict[str, Any]:
    if not 1 <= limit <= 200 or page < 1:
        raise _invalid("limit" if page >= 1 else "page", "limit is 1-200 and page starts at 1")
    rows, total = store.attempts(ctx.db.reader(), actor.workspace_id, webhook_id, limit, (page - 1) * limit)
    data = [{"delivery_id": r["delivery_id"], "event": r["event"], "attempt": r["attempt"],
             "status": r["outcome"] or r["delivery_status"], "delivery_status": r["delivery_status"],
             "response_code": r["response_code"], "error": r["error"], "duration_ms": r["duration_ms"],
             "created_at": r["created_at"], "redeliverable": r["has_payload"]} for r in rows]
    return {"data": data, "pagination": {"page": page, "limit": limit, "total": total}}


def redeliver(ctx: Context, actor: Actor, webhook_id: str, delivery_id: str) -> dict[str, Any]:
    """The same body (same ``delivery_id``, so a receiver can tell it is a repeat) is sent again from now."""

    def write(conn: Any) -> None:
        row = store.workspace_delivery(conn, actor.workspace_id, webhook_id, delivery_id)
        if row is None:
            raise AppError("not_found", "Delivery not found.")
        if row["payload"] is None:
            raise AppError("conflict", f"The body of this delivery was deleted after {PAYLOAD_DAYS} days.")
        if row["status"] in ("pending", "retrying"):
            raise AppError("conflict", "This delivery is still being attempted.")
        store.set_status(conn, delivery_id, "pending")
        record(conn, "webhook.redelivered", actor=actor, resource_type="webhook", resource_id=webhook_id,
               metadata={"delivery_id": delivery_id})

    ctx.db.write(write)
    return {"delivery_id": delivery_id, "status": "pending"}


# --- sending (the job) ------------------------------------------------------------------------------------------
def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Attempt:
    number: int
    succeeded: bool
    retry_in: float | None  # seconds until the next try, None when there is none


def attempt_delivery(db: Database, settings: Any, secret_key: str, delivery_id: str) -> Attempt | None:
    """One try of a pending delivery; None when there is nothing to do (already settled, webhook gone)."""
    row = store.delivery(db.reader(), delivery_id)
    if row is None or row["status"] not in ("pending", "retrying"):
        return None
    if not row["enabled"] or row["payload"] is None:
        db.write(lambda conn: store.set_status(conn, delivery_id, "failed"))
        return None
    code, error, duration = _send(settings, secret_key, row)
    succeeded = code is not None and 200 <= code < 300
    final = succeeded or row["attempts"] + 1 >= MAX_ATTEMPTS
    status = "succeeded" if succeeded else "failed" if final else "retrying"
    number = db.write(lambda conn: store.record_attempt(
        conn, delivery_id, outcome="succeeded" if succeeded else "failed", status=status, response_code=code,
        error=error, duration_ms=duration))
    retry_in = None if final else settings.WEBHOOK_RETRY_BASE * RETRY_FACTORS[number - 1]
    return Attempt(number, succeeded, retry_in)


def _send(settings: Any, secret_key: str, row: Row) -> tuple[int | None, str | None, int]:
    """(response code, error, duration in ms) of one POST through the SSRF guard."""
    try:
        secret = decrypt_key(secret_key, row["workspace_id"], _scope(row["webhook_id"]), row["secret_enc"])
    except KeyUnreadable:
        return None, "The webhook secret cannot be read with this instance secret; recreate the webhook.", 0
    content = row["payload"].encode()
    headers = {"X-ChatSupport-Event": row["event"], "X-ChatSupport-Delivery": row["id"],
               "X-ChatSupport-Signature": signature(secret, content)}
    started = time.monotonic()
    try:
        response = post_json(settings, row["url"], content, headers)
    except OutboundError as exc:
        return None, str(exc)[:500], _ms_since(started)
    error = None if 200 <= response.status < 300 else f"HTTP {response.status}"
    return response.status, error, _ms_since(started)


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
