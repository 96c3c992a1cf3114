"""Start and stop what a running ChatSupport process owns: data-dir lock, database, embedder, job consumer.

``serve`` starts all of it; ``worker`` starts the database and the consumer only. Start-up fails fast, with the
missing piece named, when the data dir, SQLite extensions or schema are unusable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from chatsupport.config import Settings, ensure_secret_key
from chatsupport.domain.backups import backup_before_migrating
from chatsupport.retrieval.embedder import Embedder, shared_embedder
from chatsupport.store.db import Database
from chatsupport.store.lock import DataDirLock
from chatsupport.store.migrations import migrate
from chatsupport.tasks import queue as task_queue
from chatsupport.tasks import runtime

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    db: Database
    secret_key: str
    embedder: Embedder
    lock: DataDirLock | None = None
    consumer: Any = None
    started: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.consumer is not None:
            self.consumer.stop(graceful=True)
            self.consumer = None
        runtime.unbind()
        self.db.close()
        if self.lock is not None:
            self.lock.release()


def requeue_interrupted_jobs(db: Database) -> None:
    """Jobs a killed process left half-way go back in the queue. Only the process that runs the consumer does
    this: a server next to a separate worker must not re-queue what that worker is doing right now."""
    from chatsupport.tasks.ingest import recover_interrupted_ingestion

    recover_interrupted_ingestion(db)


def start_services(settings: Settings, *, run_worker: bool | None = None, hold_lock: bool = True,
                   load_embedder: bool = True) -> Services:
    layout = settings.data
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.uploads.mkdir(exist_ok=True)
    lock = DataDirLock(layout.server_lock).acquire() if hold_lock else None
    try:
        secret = ensure_secret_key(settings)
        applied = migrate(layout.database, before=backup_before_migrating(settings, log.info))
        for migration in applied:
            log.info("applied migration %04d %s", migration.version, migration.name)
        db = Database(layout.database)
    except BaseException:
        if lock:
            lock.release()
        raise
    embedder = shared_embedder(settings.EMBEDDING_MODEL, settings.model_cache_path, settings.models_path)
    if load_embedder:
        embedder.start_loading()
    services = Services(settings=settings, db=db, secret_key=secret, embedder=embedder, lock=lock)
    runtime.bind(db, settings)
    task_queue.use_queue_file(layout.queue)
    if settings.RUN_WORKER if run_worker is None else run_worker:
        requeue_interrupted_jobs(db)
        services.consumer = task_queue.start_in_process(settings.WORKER_THREADS)
    return services
