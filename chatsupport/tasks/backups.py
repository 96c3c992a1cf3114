"""Backups as jobs: the daily scheduled one (checked every ten minutes, so a missed hour catches up) and the
console's "Back up now", whose progress is kept in ``instance_state`` under ``backup_job`` for the page to poll.

A running job records the process that runs it; when that process is gone (the server was killed or
restarted) the job reads as interrupted at once, so the console can start another. A job that never got a
worker reads as interrupted after ``STALE_AFTER`` without progress.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import apsw
from huey import crontab

from chatsupport.domain.backups import make_instance_backup, run_scheduled_backup
from chatsupport.errors import AppError
from chatsupport.store import instance_state
from chatsupport.store.db import Database
from chatsupport.tasks.queue import huey
from chatsupport.tasks.runtime import current

log = logging.getLogger(__name__)
JOB_KEY = "backup_job"
STALE_AFTER = timedelta(minutes=30)
ACTIVE = ("queued", "running")


def _read(conn: apsw.Connection) -> dict[str, Any] | None:
    raw = instance_state.get(conn, JOB_KEY)
    return json.loads(raw) if raw else None


def _started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, /proc/PID/stat field 22), or None if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_mark(pid: int | None = None) -> str:
    """A process as "pid:start": a pid alone may belong to another process after a crash."""
    pid = pid or os.getpid()
    return f"{pid}:{_started(pid)}"


def _gone(mark: str) -> bool:
    pid, _, started = mark.partition(":")
    return _started(int(pid)) != started


def job_state(db: Database, now: datetime | None = None) -> dict[str, Any] | None:
    """The last "Back up now" job: state (queued/running/done/failed/interrupted), message, path, times."""
    state = _read(db.reader())
    if state and state["state"] in ACTIVE:
        updated = datetime.fromisoformat(state["updated_at"].replace("Z", "+00:00"))
        runner_gone = state["state"] == "running" and bool(state.get("runner")) and _gone(state["runner"])
        if runner_gone or (now or datetime.now(timezone.utc)) - updated > STALE_AFTER:
            state = {**state, "state": "interrupted", "message": "The backup stopped (the server was restarted)."}
    return state


def _save(db: Database, **fields: Any) -> None:
    def write(conn: apsw.Connection) -> None:
        state = {**(_read(conn) or {}), **fields, "updated_at": instance_state.utc_now()}
        instance_state.put(conn, JOB_KEY, json.dumps(state))

    db.write(write)


def request_backup(db: Database, requested_by: str) -> dict[str, Any]:
    """Queue a backup unless one is queued or running; raise AppError(backup_running) if so."""
    current_state = job_state(db)
    if current_state and current_state["state"] in ACTIVE:
        raise AppError("backup_running", "A backup is already running; wait for it to finish.")
    now = instance_state.utc_now()
    fresh = {"state": "queued", "message": "Waiting for a worker…", "requested_by": requested_by,
             "requested_at": now, "path": None, "size": None, "error": None, "finished_at": None}
    db.write(lambda conn: instance_state.put(conn, JOB_KEY, json.dumps({**fresh, "updated_at": now})))
    back_up_now()
    return fresh


@huey.task()
def back_up_now() -> None:
    runtime = current()
    db = runtime.db
    _save(db, state="running", message="Starting…", runner=process_mark())
    try:
        path = make_instance_backup(runtime.settings, "manual",
                                    progress=lambda message: _save(db, message=message.capitalize()))
    except AppError as exc:
        _save(db, state="failed", message="The backup failed.", error=exc.message,
              finished_at=instance_state.utc_now())
        return
    except Exception as exc:  # a full disk, a permission problem: shown to the owner, logged with its trace
        log.exception("backup job failed")
        _save(db, state="failed", message="The backup failed.", error=str(exc), finished_at=instance_state.utc_now())
        return
    _save(db, state="done", message="Backup complete.", path=path.name, size=path.stat().st_size,
          finished_at=instance_state.utc_now())


@huey.periodic_task(crontab(minute="*/10"))
def scheduled_backup() -> str | None:
    """Makes the day's backup once BACKUP_HOUR has passed (no-op otherwise); returns the archive's name."""
    settings = current().settings
    try:
        path = run_scheduled_backup(settings, datetime.now(timezone.utc))
    except AppError as exc:
        if exc.code == "backup_running":
            return None  # "Back up now" is writing one; the next check makes the scheduled one
        raise
    if path:
        log.info("scheduled backup written: %s", path)
    return path.name if path else None
