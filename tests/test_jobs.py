"""Background jobs: Huey's consumer runs inside the server process and executes real tasks on the real database."""

from __future__ import annotations

import os
import time
import uuid

from litestar.testing import TestClient

from chatsupport.store.instance_state import utc_now
from chatsupport.tasks.housekeeping import ORPHAN_GRACE_SECONDS, housekeep, housekeeping, periodic_housekeeping
from chatsupport.tasks.queue import huey


def _seed_expired_token(client: TestClient) -> None:
    def seed(conn) -> None:  # type: ignore[no-untyped-def]
        conn.execute("INSERT INTO workspaces(id, name, slug) VALUES ('w1', 'Acme', 'acme')")
        conn.execute("INSERT INTO users(id, workspace_id, email) VALUES ('u1', 'w1', 'a@example.com')")
        for token, expires in (("old", "2000-01-01T00:00:00.000Z"), ("live", "2999-01-01T00:00:00.000Z")):
            conn.execute("INSERT INTO refresh_tokens(id, user_id, family_id, token_hash, expires_at) "
                         "VALUES (?, 'u1', 'f', ?, ?)", (str(uuid.uuid4()), token, expires))

    client.app.state.services.db.write(seed)


def test_housekeeping_runs_in_process_on_the_real_database(client: TestClient) -> None:
    services = client.app.state.services
    assert services.consumer is not None, "the consumer runs inside the server process by default"
    assert services.settings.data.queue.exists(), "the queue keeps its own SQLite file in the data dir"
    _seed_expired_token(client)
    before = utc_now()

    result = housekeeping()  # enqueued; a consumer thread picks it up
    outcome = result.get(blocking=True, timeout=30)

    # (the periodic run may have beaten us to the expired token when the clock sits on a 10-minute mark)
    assert set(outcome) == {"expired_refresh_tokens", "expired_invitations", "old_notifications",
                            "orphaned_attachment_files"}
    hashes = [r["token_hash"] for r in services.db.query("SELECT token_hash FROM refresh_tokens")]
    assert hashes == ["live"]
    heartbeat = services.db.query_one("SELECT value FROM instance_state WHERE key='housekeeping_last_run'")
    assert heartbeat["value"] >= before
    # idempotent: a second run removes nothing more
    assert housekeeping().get(blocking=True, timeout=30) == {"expired_refresh_tokens": 0, "expired_invitations": 0,
                                                              "old_notifications": 0,
                                                              "orphaned_attachment_files": 0}


def test_housekeeping_deletes_attachment_files_no_row_names(client: TestClient) -> None:
    """A deleted conversation's attachment rows cascade away; their files go at the next housekeeping, after an
    hour's grace (an upload renames its file into place before inserting the row)."""
    services = client.app.state.services
    folder = services.settings.data.uploads / "attachments"
    folder.mkdir(parents=True, exist_ok=True)
    _seed_expired_token(client)
    services.db.write(lambda conn: conn.execute(
        "INSERT INTO chatbots(id, workspace_id, name, public_key, identity_secret)"
        " VALUES ('b1', 'w1', 'Bot', 'pk_1', 's')"))
    services.db.write(lambda conn: conn.execute(
        "INSERT INTO attachments(id, workspace_id, chatbot_id, visitor_id, filename, content_type, size, sha256)"
        " VALUES ('kept', 'w1', 'b1', 'v1', 'a.png', 'image/png', 3, 'x')"))
    hour_ago = time.time() - ORPHAN_GRACE_SECONDS - 60
    for name, stamp in (("kept", hour_ago), ("orphan", hour_ago), ("crashed.part", hour_ago),
                        ("just-uploaded", time.time())):
        (folder / name).write_bytes(b"abc")
        os.utime(folder / name, (stamp, stamp))

    assert housekeep(services.db, folder)["orphaned_attachment_files"] == 2
    assert sorted(p.name for p in folder.iterdir()) == ["just-uploaded", "kept"]
    assert housekeep(services.db, folder)["orphaned_attachment_files"] == 0


def test_housekeeping_is_scheduled_periodically() -> None:
    periodic = [task for task in huey._registry._periodic_tasks]  # noqa: SLF001 - no public listing
    assert periodic_housekeeping.task_class in periodic


def test_consumer_stops_with_the_app(settings) -> None:  # type: ignore[no-untyped-def]
    from chatsupport.app import create_app

    with TestClient(create_app(settings)) as client:
        consumer = client.app.state.services.consumer
        threads = [t for _, t in consumer.worker_threads]
        assert all(t.is_alive() for t in threads)
    assert not any(t.is_alive() for t in threads)
