"""Periodic upkeep: drop what has expired, checkpoint the WAL, and leave a heartbeat the operator can see."""

from __future__ import annotations

from huey import crontab

from chatsupport.store import instance_state
from chatsupport.tasks.queue import huey
from chatsupport.tasks.runtime import current


@huey.periodic_task(crontab(minute="*/10"))
def housekeeping() -> dict[str, int]:
    """Idempotent: running it twice in a row changes nothing the second time but the heartbeat."""
    db = current().db

    def clean(conn) -> dict[str, int]:  # type: ignore[no-untyped-def]
        now = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"
        conn.execute(f"DELETE FROM refresh_tokens WHERE expires_at < {now}")
        tokens = conn.changes()
        conn.execute(f"DELETE FROM invitations WHERE accepted_at IS NULL AND expires_at < {now}")
        invitations = conn.changes()
        instance_state.put(conn, "housekeeping_last_run", instance_state.utc_now())
        return {"expired_refresh_tokens": tokens, "expired_invitations": invitations}

    removed = db.write(clean)
    db.reader().execute("PRAGMA wal_checkpoint(PASSIVE)")
    return removed
