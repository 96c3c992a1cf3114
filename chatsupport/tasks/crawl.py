"""Website crawl jobs: one crawl run per job, scheduled re-crawls and the recovery of stalled crawls.

A job carries ``(source id, crawl id)`` and does nothing unless that crawl is still the source's current run, so
enqueueing one twice is harmless.
"""

from __future__ import annotations

import logging

from huey import crontab

from chatsupport.domain import site_crawl, sites
from chatsupport.tasks.ingest import embedder_for
from chatsupport.tasks.queue import huey
from chatsupport.tasks.runtime import current

log = logging.getLogger(__name__)


@huey.task()
def crawl_site(source_id: str, crawl_id: str) -> None:
    """Returns nothing on purpose: Huey keeps a non-None result until someone reads it, and nobody does."""
    rt = current()
    outcome = site_crawl.run(rt.db, embedder_for(rt), rt.settings.OUTBOUND_ALLOWLIST, source_id, crawl_id)
    log.info("crawl %s of URL source %s: %s", crawl_id, source_id, outcome)


def start_scheduled_crawls() -> int:
    """Queue the re-crawls that are due and resume crawls a dead worker left; returns how many were queued."""
    db = current().db
    runs = sites.start_due(db) + site_crawl.resume_stalled(db)
    for source_id, crawl_id in runs:
        crawl_site(source_id, crawl_id)
    if runs:
        log.info("queued %d crawl(s): scheduled or resumed", len(runs))
    return len(runs)


@huey.periodic_task(crontab(minute="*"))
def periodic_crawls() -> None:
    start_scheduled_crawls()
