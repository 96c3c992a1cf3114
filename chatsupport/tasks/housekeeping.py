"""Periodic upkeep: drop what has expired (tokens, invitations, old notifications, bulk exports), checkpoint the
WAL, leave a heartbeat the operator can see, and run the conversation lifecycle's timers
(``domain.conversation_lifecycle``)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import apsw
from huey import crontab

from chatsupport.domain import conversation_lifecycle as lifecycle
from chatsupport.domain import exports
from chatsupport.store import collaboration, instance_state
from chatsupport.store.db import Database
from chatsupport.tasks.queue import huey
from chatsupport.tasks.runtime import current

NOW = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"
# An upload renames its file into place before it inserts the row: younger files may be on their way.
ORPHAN_GRACE_SECONDS = 3600
# The bell keeps a month of read notifications; unread ones nobody opened in three months are noise by then.
READ_NOTIFICATION_DAYS = 30
UNREAD_NOTIFICATION_DAYS = 90
INVITATION_KEEP_DAYS = 30


def sweep_attachment_files(db: Database, folder: Path, now: float) -> int:
    """Delete attachment files that no row names any more: their conversation was deleted (the row cascades
    away, the file does not), or an upload died half-way (``.part``). Returns how many were removed."""
    if not folder.is_dir():
        return 0
    old = [path for path in folder.iterdir() if path.is_file() and now - path.stat().st_mtime > ORPHAN_GRACE_SECONDS]
    removed = 0
    for start in range(0, len(old), 500):
        batch = old[start:start + 500]
        names = [path.name for path in batch]
        known = {row["id"] for row in db.query(
            f"SELECT id FROM attachments WHERE id IN ({','.join('?' * len(names))})", names)}
        for path in batch:
            if path.name not in known:
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def housekeep(db: Database, attachments: Path | None = None) -> dict[str, int]:
    """Idempotent: running it twice in a row changes nothing the second time but the heartbeat.
    ``attachments``: the folder of widget attachment files, swept for orphans."""

    def clean(conn: apsw.Connection) -> dict[str, int]:
        conn.execute(f"DELETE FROM refresh_tokens WHERE expires_at < {NOW}")
        tokens = conn.changes()
        # an expired invitation stays listed (to renew) for a month, then goes
        conn.execute("DELETE FROM invitations WHERE accepted_at IS NULL"
                     f" AND expires_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-{INVITATION_KEEP_DAYS} days')")
        invitations = conn.changes()
        notifications = collaboration.prune_notifications(conn, READ_NOTIFICATION_DAYS, UNREAD_NOTIFICATION_DAYS)
        instance_state.put(conn, "housekeeping_last_run", instance_state.utc_now())
        return {"expired_refresh_tokens": tokens, "expired_invitations": invitations,
                "old_notifications": notifications}

    removed = db.write(clean)
    removed["orphaned_attachment_files"] = sweep_attachment_files(db, attachments, time.time()) if attachments else 0
    db.reader().execute("PRAGMA wal_checkpoint(PASSIVE)")
    return removed


def _attachments_folder() -> Path:
    return current().settings.data.uploads / "attachments"


@huey.task()
def housekeeping() -> dict[str, int]:
    """On demand (the result is kept, unlike a periodic task's)."""
    return housekeep(current().db, _attachments_folder())


@huey.periodic_task(crontab(minute="*/10"))
def periodic_housekeeping() -> None:
    housekeep(current().db, _attachments_folder())


@huey.periodic_task(crontab(minute="*/10"))
def expire_exports() -> dict[str, int]:
    """Bulk exports are kept seven days; a job whose process died mid-way is marked failed."""
    runtime = current()
    return exports.remove_expired(runtime.db, runtime.settings.data.exports, datetime.now(timezone.utc))


# Once a minute: a one-minute grain on a five-minute (default) inactivity timeout and a ten-minute agent timeout.
@huey.periodic_task(crontab(minute="*"))
def conversation_timeouts() -> dict[str, int]:
    db, now = current().db, datetime.now(timezone.utc)
    return {"abandoned": lifecycle.abandon_inactive(db, now), "released": lifecycle.release_silent_agents(db, now)}


@huey.periodic_task(crontab(minute="17", hour="3"))
def archive_conversations() -> int:
    runtime = current()
    return lifecycle.archive_old(runtime.db, datetime.now(timezone.utc), runtime.settings.ARCHIVE_AFTER_DAYS)
