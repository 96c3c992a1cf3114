"""The instance as its operator sees it: versions, disk use, models, backups.

Instance operations (download a backup of every workspace, with the instance secret) belong to the owners of the
instance's first workspace, the one made at setup. With open sign-up every new workspace has an owner too; those
owners manage their workspace, not the machine.
"""

from __future__ import annotations

import shutil
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from chatsupport import __version__
from chatsupport.config import Settings
from chatsupport.domain.audit import Actor
from chatsupport.domain.backups import BackupInfo, last_backup, list_backups
from chatsupport.domain.doctor import STALE_BACKUP_HOURS
from chatsupport.errors import AppError
from chatsupport.llm.providers.local import resolve_model
from chatsupport.retrieval.embedder import Embedder, resolve_model_path
from chatsupport.store.db import Database
from chatsupport.store.migrations import LATEST_VERSION, current_version


# Workspaces are never deleted, so once there is a first workspace it stays the first: read it once per database.
_first_workspace: weakref.WeakKeyDictionary[Database, str] = weakref.WeakKeyDictionary()


def _first_workspace_id(db: Database) -> str | None:
    if db not in _first_workspace:
        row = db.reader().execute("SELECT id FROM workspaces ORDER BY created_at, rowid LIMIT 1").fetchone()
        if row is None:
            return None
        _first_workspace[db] = row["id"]
    return _first_workspace[db]


def is_instance_owner(db: Database, actor: Actor) -> bool:
    """Asked by every settings page's tabs while rendering (on the event loop): after the first answer, no I/O."""
    return actor.role == "owner" and _first_workspace_id(db) == actor.workspace_id


def require_instance_owner(db: Database, actor: Actor) -> None:
    if not is_instance_owner(db, actor):
        raise AppError("forbidden", "Only the owners of the instance's first workspace manage the instance.")


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def disk_usage(settings: Settings) -> dict[str, int]:
    layout = settings.data
    database = sum(_size(Path(str(layout.database) + suffix)) for suffix in ("", "-wal", "-shm"))
    parts = {"database": database, "uploads": _size(layout.uploads), "backups": _size(layout.backups),
             "exports": _size(layout.exports)}
    parts["total"] = _size(layout.root)
    parts["free"] = shutil.disk_usage(layout.root).free
    return parts


@dataclass(frozen=True)
class BackupStatus:
    last: BackupInfo | None
    age_hours: float | None
    stale: bool
    archives: list[BackupInfo]


def backup_status(settings: Settings, now: datetime | None = None) -> BackupStatus:
    last = last_backup(settings)
    age = last.age_seconds(now) if last else None
    hours = None if age is None else age / 3600
    archives = sorted(list_backups(settings), key=lambda info: (info.created_at, info.path.name), reverse=True)
    return BackupStatus(last, hours, hours is None or hours > STALE_BACKUP_HOURS, archives)


def _embedder_label(settings: Settings) -> str:
    """Without loading the model (asking a not-yet-loaded embedder its name would load it)."""
    path = resolve_model_path(settings.EMBEDDING_MODEL)
    return path.name if path else (settings.EMBEDDING_MODEL or "all-MiniLM-L6-v2 (bundled)")


def overview(db: Database, settings: Settings, embedder: Embedder) -> dict[str, Any]:
    model = resolve_model(settings)
    return {
        "version": __version__,
        "schema_version": current_version(db.reader()),
        "latest_schema": LATEST_VERSION,
        "data_dir": str(settings.data.root),
        "usage": disk_usage(settings),
        "embedder": {"name": embedder.name if embedder.state == "ready" else _embedder_label(settings),
                     "state": embedder.state, "backend": embedder.backend, "error": embedder.error},
        "llm": model.name if model else None,
        "backups": backup_status(settings, datetime.now(timezone.utc)),
        "schedule": {"enabled": settings.BACKUP_ENABLED, "hour": settings.BACKUP_HOUR, "keep": settings.BACKUP_KEEP,
                     "encrypted": bool(settings.BACKUP_PASSPHRASE_FILE)},
    }
