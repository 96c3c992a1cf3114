"""Periodic upkeep: drop what has expired, checkpoint the WAL, and leave a heartbeat the operator can see."""

from __future__ import annotations

import apsw
from huey import crontab

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
