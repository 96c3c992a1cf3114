"""The SQLite store: migrations from empty, extensions, the single writer, FTS5 and vec0 together."""

from __future__ import annotations

import struct
import threading
from pathlib import Path

import apsw
import pytest

from chatsupport.store.db import Database, StoreError, connect
from chatsupport.store.migrations import LATEST_VERSION, current_version, migrate, pending

TABLES = {"workspaces", "users", "chatbots", "chatbot_versions", "knowledge_documents", "knowledge_urls",
          "knowledge_faqs", "knowledge_chunks", "knowledge_chunks_fts", "knowledge_chunk_vectors", "customers",
          "conversations", "messages", "conversation_events", "internal_notes", "integrations", "audit_logs",
          "invitations", "refresh_tokens", "api_keys", "instance_state", "schema_migrations"}


@pytest.fixture
def db(tmp_path: Path):
    path = tmp_path / "cs.db"
    migrate(path)
    database = Database(path)
    yield database
    database.close()


def test_migrations_from_empty_create_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "cs.db"
    applied = migrate(path)
    assert [m.version for m in applied] == list(range(1, LATEST_VERSION + 1))
    conn = connect(path)
    names = {r["name"] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table')")}
    assert TABLES <= names
    assert current_version(conn) == LATEST_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()["journal_mode"] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()["foreign_keys"] == 1
    assert migrate(path) == []  # idempotent
    conn.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cs.db"
    migrate(path)
    conn = connect(path)
    conn.execute("INSERT INTO schema_migrations(version, name) VALUES (999, 'from the future')")
    with pytest.raises(StoreError, match="newer"):
        pending(conn)
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        migrate(path)


def test_capabilities_include_fts5_and_sqlite_vec(db: Database) -> None:
    assert db.capabilities["fts5"] is True
    assert db.capabilities["sqlite_vec"].startswith("v")


def test_writes_from_many_threads_are_serialized(db: Database) -> None:
    db.execute_write("INSERT INTO instance_state(key, value) VALUES ('counter', '0')")

    def bump(conn: apsw.Connection) -> None:
        value = int(conn.execute("SELECT value FROM instance_state WHERE key='counter'").fetchone()["value"])
        conn.execute("UPDATE instance_state SET value = ? WHERE key='counter'", (str(value + 1),))

    threads = [threading.Thread(target=lambda: [db.write(bump) for _ in range(50)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert db.query_one("SELECT value FROM instance_state WHERE key='counter'")["value"] == "400"


def test_readers_of_ended_threads_are_closed(db: Database) -> None:
    """Worker threads come and go; their read connections must not pile up."""
    def read() -> None:
        assert db.query_one("SELECT 1 AS one")["one"] == 1

    first = threading.Thread(target=read)
    first.start()
    first.join()
    assert db.memory()["connections"] == 2  # the writer and that thread's reader
    for _ in range(5):
        worker = threading.Thread(target=read)
        worker.start()
        worker.join()
    assert db.memory()["connections"] == 2  # each new reader closed the ended thread's one
    read()
    stats = db.memory()
    assert stats["connections"] == 2 and stats["page_cache_bytes"] > 0


def test_a_failed_write_rolls_back_entirely(db: Database) -> None:
    def half_then_fail(conn: apsw.Connection) -> None:
        conn.execute("INSERT INTO instance_state(key, value) VALUES ('half', 'x')")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        db.write(half_then_fail)
    assert db.query_one("SELECT * FROM instance_state WHERE key='half'") is None
    db.execute_write("INSERT INTO instance_state(key, value) VALUES ('after', 'y')")  # writer still alive
    assert db.query_one("SELECT value FROM instance_state WHERE key='after'")["value"] == "y"


def test_sql_looking_input_is_stored_literally(db: Database) -> None:
    nasty = "x'); DROP TABLE users; --"
    db.execute_write("INSERT INTO instance_state(key, value) VALUES (?, ?)", ("k", nasty))
    assert db.query_one("SELECT value FROM instance_state WHERE key='k'")["value"] == nasty
    assert db.query_one("SELECT count(*) AS n FROM users")["n"] == 0


def _vector(*head: float) -> bytes:
    values = list(head) + [0.0] * (384 - len(head))
    return struct.pack("384f", *values)


def test_chunks_are_searchable_by_text_and_vector_and_deleted_from_both(db: Database) -> None:
    def seed(conn: apsw.Connection) -> None:
        conn.execute("INSERT INTO workspaces(id, name, slug) VALUES ('w', 'W', 'w')")
        for bot in ("b1", "b2"):
            conn.execute("INSERT INTO chatbots(id, workspace_id, name, public_key, identity_secret) "
                         "VALUES (?, 'w', ?, ?, 's')", (bot, bot, "pk-" + bot))
        rows = [(1, "c1", "b1", "Refunds are issued within 14 days", _vector(1.0)),
                (2, "c2", "b1", "Invoices live under billing settings", _vector(0.0, 1.0)),
                (3, "c3", "b2", "Refunds for bot two", _vector(1.0))]
        for rowid, cid, bot, text, vec in rows:
            conn.execute("INSERT INTO knowledge_chunks(rowid, id, chatbot_id, position, content) "
                         "VALUES (?, ?, ?, 0, ?)", (rowid, cid, bot, text))
            conn.execute("INSERT INTO knowledge_chunk_vectors(chunk_rowid, chatbot_id, embedding) VALUES (?, ?, ?)",
                         (rowid, bot, vec))

    db.write(seed)
    fts = db.query("SELECT rowid FROM knowledge_chunks_fts WHERE knowledge_chunks_fts MATCH 'refund'")
    assert sorted(r["rowid"] for r in fts) == [1, 3]
    knn = db.query("SELECT chunk_rowid, distance FROM knowledge_chunk_vectors "
                   "WHERE embedding MATCH ? AND k = 5 AND chatbot_id = 'b1' ORDER BY distance", (_vector(1.0),))
    assert [r["chunk_rowid"] for r in knn] == [1, 2]  # partitioned: bot two's chunk never appears
    db.execute_write("DELETE FROM knowledge_chunks WHERE rowid = 1")
    assert db.query("SELECT rowid FROM knowledge_chunks_fts WHERE knowledge_chunks_fts MATCH 'refund'") == [{"rowid": 3}]
    assert db.query_one("SELECT count(*) AS n FROM knowledge_chunk_vectors WHERE chunk_rowid = 1")["n"] == 0
