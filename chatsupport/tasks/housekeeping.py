"""Periodic upkeep: drop what has expired, checkpoint the WAL, leave a heartbeat the operator can see, and run the
conversation lifecycle's timers (``domain.conversation_lifecycle``)."""

from __future__ import annotations

from datetime import datetime, timezone

import apsw
from huey import crontab

from chatsupport.domain import conversation_lifecycle as lifecycle
from chatsupport.store import instance_state
from chatsupport.store.db import Database
from chatsupport.tasks.queue import huey
from chatsupport.tasks.runtime import current

NOW = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"


def housekeep(db: Database) -> dict[str, int]:
    """Idempotent: running it twice in a row changes nothing the second time but the heartbeat."""

    def clean(conn: apsw.Connection) -> dict[str, int]:
        conn.execute(f"DELETE FROM refresh_tokens WHERE expires_at < {NOW}")
        tokens = conn.changes()
        conn.execute(f"DELETE FROM invitations WHERE accepted_at IS NULL AND expires_at < {NOW}")
        invitations = conn.changes()
        instance_state.put(conn, "housekeeping_last_run", instance_state.utc_now())
        return {"expired_refresh_tokens": tokens, "expired_invitations": invitations}

    removed = db.write(clean)
    db.reader().execute("PRAGMA wal_checkpoint(PASSIVE)")
    return removed


@huey.task()
def housekeeping() -> dict[str, int]:
    """On demand (the result is kept, unlike a periodic task's)."""
    return housekeep(current().db)


@huey.periodic_task(crontab(minute="*/10"))
def periodic_housekeeping() -> None:
    housekeep(current().db)


# Once a minute: a one-minute grain on a five-minute (default) inactivity timeout and a ten-minute agent timeout.
@huey.periodic_task(crontab(minute="*"))
def conversation_timeouts() -> dict[str, int]:
    db, now = current().db, datetime.now(timezone.utc)
    return {"abandoned": lifecycle.abandon_inactive(db, now), "released": lifecycle.release_silent_agents(db, now)}


@huey.periodic_task(crontab(minute="17", hour="3"))
def archive_conversations() -> int:
    runtime = current()
    return lifecycle.archive_old(runtime.db, datetime.now(timezone.utc), runtime.settings.ARCHIVE_AFTER_DAYS)
