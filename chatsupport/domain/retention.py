"""Retention (PRD §6.5): a workspace may have closed conversations anonymised or deleted N days after their last
activity (``updated_at``). Off by default. The daily job works in batches of ``BATCH`` conversations, one short
write transaction each, oldest first, within a time budget (the next run carries on). A customer left with no
conversation (deleting) or none un-anonymised (anonymising) is erased the same way as on request."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import apsw

from chatsupport.domain.audit import Actor, record
from chatsupport.domain.auth import Context, iso, now_utc
from chatsupport.domain.customer_data import erase_batch, finish_customer, remove_files, secure_write
from chatsupport.errors import AppError
from chatsupport.store import customer_data as store
from chatsupport.store.db import Database

ACTIONS = ("off", "anonymize", "delete")
MAX_DAYS = 3650
BATCH = 200


def _invalid(field: str, message: str) -> AppError:
    return AppError("validation_error", details=[{"field": field, "message": message}])


def view(ctx: Context, actor: Actor) -> dict[str, Any]:
    row = store.policy(ctx.db.reader(), actor.workspace_id)
    if row is None:
        return {"action": "off", "after_days": None, "updated_at": None, "last_run_at": None,
                "last_run_conversations": 0}
    return {key: row[key] for key in ("action", "after_days", "updated_at", "last_run_at",
                                      "last_run_conversations")}


def update(ctx: Context, actor: Actor, action: str, after_days: Any) -> dict[str, Any]:
    """``after_days`` is required unless the action is ``off`` (then it is kept, so switching back on is easy)."""
    if action not in ACTIONS:
        raise _invalid("action", "off, anonymize or delete.")
    days = _days(after_days, required=action != "off")
    before = view(ctx, actor)

    def write(conn: apsw.Connection) -> None:
        store.set_policy(conn, actor.workspace_id, action, days, actor.user_id, iso(now_utc()))
        record(conn, "retention.updated", actor=actor, resource_type="workspace", resource_id=actor.workspace_id,
               changes={"before": {"action": before["action"], "after_days": before["after_days"]},
                        "after": {"action": action, "after_days": days}})

    ctx.db.write(write)
    return view(ctx, actor)


def _days(value: Any, required: bool) -> int | None:
    if value in (None, ""):
        if required:
            raise _invalid("after_days", "Say after how many days (1-3650).")
        return None
    try:
        days = int(value)
    except (TypeError, ValueError):
        raise _invalid("after_days", "A whole number of days (1-3650).") from None
    if isinstance(value, bool) or not 1 <= days <= MAX_DAYS:
        raise _invalid("after_days", "A whole number of days (1-3650).")
    return days


def apply(db: Database, attachments: Path, now: datetime, budget_seconds: float = 300.0,
          batch: int = BATCH) -> dict[str, int]:
    """Apply every workspace's policy; returns conversations handled per workspace id. Idempotent."""
    started, done = time.monotonic(), {}
    for policy in store.active_policies(db.reader()):
        cutoff = iso(now - timedelta(days=policy["after_days"]))
        done[policy["workspace_id"]] = _apply_one(db, attachments, policy["workspace_id"], policy["action"], cutoff,
                                                  batch, lambda: time.monotonic() - started >= budget_seconds)
    return done


def _apply_one(db: Database, attachments: Path, workspace_id: str, action: str, cutoff: str, batch: int,
               out_of_time: Callable[[], bool]) -> int:
    touched: Counter[str] = Counter()
    while not out_of_time():
        ids = store.expired_conversations(db.reader(), workspace_id, action, cutoff, batch)
        if not ids:
            break
        counts, files = secure_write(db, lambda conn, b=ids: _batch(conn, workspace_id, b, action))
        touched.update(counts)
        remove_files(attachments, files)

    def finish(conn: apsw.Connection) -> None:
        store.record_run(conn, workspace_id, touched["conversations"], iso(now_utc()))
        if touched["conversations"]:
            record(conn, "retention.applied", workspace_id=workspace_id, resource_type="workspace",
                   resource_id=workspace_id, metadata={"action": action, "cutoff": cutoff, **touched})

    db.write(finish)
    if touched["conversations"]:
        db.write(store.purge_search_index)
    return touched["conversations"]


def _batch(conn: apsw.Connection, workspace_id: str, ids: list[str], action: str) -> tuple[Counter[str], list[str]]:
    customers = store.customers_of(conn, workspace_id, ids)
    touched, files = erase_batch(conn, workspace_id, ids, action)
    now = iso(now_utc())
    for customer_id in store.abandoned_customers(conn, workspace_id, customers, anonymized=action == "anonymize"):
        counts, more = finish_customer(conn, workspace_id, customer_id, action, now)
        touched.update(counts)
        touched["customers"] += 1
        files += more
    return touched, files
