"""The Huey object. It imports nothing from the app so that any module may define tasks on it.

Huey keeps its own SQLite file (Python's ``sqlite3``; the main database is APSW's alone). The file is chosen at
start-up by ``use_queue_file`` because the data dir is a setting; until then the queue lives in memory.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from huey import SqliteHuey, signals
from huey.api import Task
from huey.consumer import Consumer

from chatsupport import metrics

huey = SqliteHuey("chatsupport", filename=":memory:", utc=True)
_started: dict[str, float] = {}  # task id → when a worker picked it up


@huey.signal(signals.SIGNAL_EXECUTING, signals.SIGNAL_COMPLETE, signals.SIGNAL_ERROR)
def _time_jobs(signal: str, task: Task, *_: Any) -> None:
    """Job counts and run times per task name (the metrics module is a leaf: this still imports nothing app-wide)."""
    if signal == signals.SIGNAL_EXECUTING:
        _started[task.id] = time.perf_counter()
        return
    started = _started.pop(task.id, None)
    metrics.JOBS.inc(task.name, "completed" if signal == signals.SIGNAL_COMPLETE else "failed")
    if started is not None:
        metrics.JOB_DURATION.observe(task.name, seconds=time.perf_counter() - started)


def use_queue_file(path: Path) -> None:
    """Point the queue at its file in the data dir (created with Huey's tables on first use)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    huey.storage.close()
    huey.storage_kwargs["filename"] = str(path)
    huey.storage = huey.create_storage()


class InProcessConsumer(Consumer):
    """A consumer that leaves signal handling to uvicorn: the stock one would take over SIGTERM and SIGINT."""

    def _set_signal_handlers(self) -> None:
        return None


def start_in_process(workers: int) -> InProcessConsumer:
    """Start worker threads and the periodic scheduler inside this process; poll at most every 0.5 s."""
    consumer = InProcessConsumer(
        huey, workers=workers, worker_type="thread", periodic=True, initial_delay=0.05, max_delay=0.5,
        check_worker_health=False,
    )
    consumer.start()
    return consumer
