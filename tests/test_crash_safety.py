"""Crash safety: the real server (and the real ``chatsupport backup``) SIGKILLed at seeded random moments with work
in flight, then restarted on the same data dir. A few kills per scenario here; bench/crash_soak.py runs 20.

- widget burst: every message the server acknowledged is in the database after the restart, and once the widget
  resends what was never acknowledged (same client ids), every message is there exactly once;
- ingestion: at the kill and after the restart no document shows chunks it does not own by its status, vectors and
  the FTS index agree with the chunks, no chunk is duplicated, and the document ends completed (resumed, or
  failed for retry and then retried);
- backup (``chatsupport backup`` killed, and the server killed during the console's "Back up now"): the previous
  archive still verifies, nothing partial is listed, and whatever is listed verifies.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Iterator

import pytest

from crash_support import Instance, backup_run, cli, fill_uploads, ingest_run, server_backup_run, widget_run


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    box = Instance(tmp_path_factory.mktemp("crash") / "data")
    try:
        yield box
    finally:
        box.server.stop()


@pytest.mark.parametrize("seed", [11, 12])
def test_acknowledged_widget_messages_survive_a_sigkill(instance: Instance, seed: int) -> None:
    run = widget_run(instance, random.Random(seed))
    assert run.sent > 8, run  # the burst had started: more than the first message of each visitor went out
    assert run.lost == [], f"acknowledged or resent messages missing after the kill at {run.kill_after:.2f}s"
    assert run.duplicated == [], "a resent message was stored twice"


@pytest.mark.parametrize("seed", [21, 22])
def test_ingestion_killed_half_way_never_shows_a_half_indexed_document(instance: Instance, seed: int) -> None:
    instance.login()
    run = ingest_run(instance, random.Random(seed))
    assert run.status_at_kill == "processing", run
    assert run.problems == [], run
    assert run.final_status == "completed", run


def test_a_killed_backup_leaves_the_previous_archive_intact_and_nothing_partial_listed(instance: Instance) -> None:
    fill_uploads(instance.data_dir, 16, seed=31)
    began = time.monotonic()
    first = cli(instance.data_dir, "backup")
    assert first.returncode == 0, first.stderr
    previous = Path(first.stdout.strip())
    typical = time.monotonic() - began
    rng = random.Random(31)
    runs = [backup_run(instance, rng, previous, typical) for _ in range(2)]
    runs.append(server_backup_run(instance, rng, previous, typical))  # "Back up now", the server killed
    assert [run.problems for run in runs] == [[], [], []], runs
    assert not all(run.completed for run in runs), "no kill landed while an archive was being written"
