"""Privacy jobs: the daily retention run and whole-workspace exports."""

from __future__ import annotations

from datetime import datetime, timezone

from huey import crontab

from chatsupport.domain import retention, workspace_export
from chatsupport.tasks.queue import huey
from chatsupport.tasks.runtime import current


@huey.periodic_task(crontab(minute="41", hour="2"))
def apply_retention() -> dict[str, int]:
    """Daily, at a quiet hour; a backlog bigger than the time budget carries over to the next day."""
    runtime = current()
    return retention.apply(runtime.db, runtime.settings.data.uploads / "attachments", datetime.now(timezone.utc))


@huey.task()
def export_workspace(export_id: str) -> None:
    """Returns nothing: Huey would keep a result nobody reads."""
    runtime = current()
    workspace_export.run(runtime.db, runtime.settings.data.exports, export_id)
