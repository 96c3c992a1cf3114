"""Bulk export jobs (PRD §5.6.3): one job per export, queued by the API once the export's row is committed."""

from __future__ import annotations

from chatsupport.domain import exports
from chatsupport.tasks.queue import huey
from chatsupport.tasks.runtime import current


@huey.task()
def export_conversations(export_id: str) -> None:
    """Returns nothing on purpose: Huey keeps a non-None result until someone reads it, and nobody does."""
    runtime = current()
    exports.run(runtime.db, runtime.settings.data.exports, export_id)
