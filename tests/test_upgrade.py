"""Upgrading from the first schema with data in it: a database built by migration 1 alone (users, a chatbot, a
document with chunks and vectors, a conversation with messages, an uploaded file) is reported by ``doctor``,
backed up automatically before ``chatsupport migrate`` changes it, migrated to the latest schema, and served by
the app: sign-in, chatbots, documents, retrieval and conversations all work on the old rows. The pre-migration
archive is the way back: restored elsewhere, it is schema 1 again and the server's start migrates it (backing it
up first) as well."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np

from accounts_support import PASSWORD, bearer, login, open_client
from chatsupport.domain.passwords import hash_password
from chatsupport.retrieval.embedder import DEFAULT_CACHE, shared_embedder
from chatsupport.store.db import connect
from chatsupport.store.migrations import LATEST_VERSION, MIGRATIONS, current_version
from conftest import run_cli
from knowledge_support import DOCS, kb_settings

CHUNKS = ["Returns: unused kettles can be returned within 30 days for a full refund.",
          "Shipping: orders leave our warehouse within two working days."]
ID = {name: str(uuid.uuid4()) for name in ("ws", "owner", "agent", "bot", "doc", "customer", "conv", "m1", "m2")}


def build_schema_one(data: Path) -> None:
    """What a ChatSupport of the first release left on disk, written with that release's schema only."""
    (data / "uploads" / ID["bot"]).mkdir(parents=True)
    stored = data / "uploads" / ID["bot"] / f"{ID['doc']}.txt"
    stored.write_text("\n\n".join(CHUNKS))
    embedder = shared_embedder("", DEFAULT_CACHE, data.parent / "models")
    vectors = embedder.encode(CHUNKS)
    conn = connect(data / "chatsupport.db")
    try:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                     " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))")
        conn.execute("BEGIN")
        conn.execute(MIGRATIONS[0].sql)
        conn.execute("INSERT INTO schema_migrations(version, name) VALUES (1, ?)", (MIGRATIONS[0].name,))
        pw = hash_password(PASSWORD, 1024)
        conn.execute("INSERT INTO workspaces(id, name, slug) VALUES (?, 'Legacy Co', 'legacy-co')", (ID["ws"],))
        for key, email, role in (("owner", "owner@legacy.example", "owner"),
                                 ("agent", "agent@legacy.example", "agent")):
            conn.execute("INSERT INTO users(id, workspace_id, email, password_hash, email_verified, display_name, role)"
                         " VALUES (?, ?, ?, ?, 1, ?, ?)", (ID[key], ID["ws"], email, pw, key.title(), role))
        conn.execute("INSERT INTO chatbots(id, workspace_id, name, public_key, identity_secret, created_by)"
                     " VALUES (?, ?, 'Legacy Bot', 'pk_legacy0001', 'sec_legacy', ?)",
                     (ID["bot"], ID["ws"], ID["owner"]))
        conn.execute("INSERT INTO knowledge_documents(id, chatbot_id, title, original_filename, stored_path,"
                     " file_size_bytes, mime_type, status, progress, chunk_count, uploaded_by)"
                     " VALUES (?, ?, 'Policies', 'policies.txt', ?, ?, 'text/plain', 'completed', 1, 2, ?)",
                     (ID["doc"], ID["bot"], str(stored), stored.stat().st_size, ID["owner"]))
        for position, (text, vector) in enumerate(zip(CHUNKS, vectors)):
            conn.execute("INSERT INTO knowledge_chunks(id, chatbot_id, document_id, position, title, content)"
                         " VALUES (?, ?, ?, ?, 'Policies', ?)",
                         (str(uuid.uuid4()), ID["bot"], ID["doc"], position, text))
            conn.execute("INSERT INTO knowledge_chunk_vectors(chunk_rowid, chatbot_id, embedding)"
                         " VALUES (last_insert_rowid(), ?, ?)", (ID["bot"], np.asarray(vector, np.float32).tobytes()))
        conn.execute("INSERT INTO customers(id, workspace_id, visitor_id, name, email) VALUES (?, ?, 'v_old', "
                     "'Jane Legacy', 'jane@example.com')", (ID["customer"], ID["ws"]))
        conn.execute("INSERT INTO conversations(id, workspace_id, chatbot_id, customer_id, status, message_count,"
                     " customer_message_count, ai_message_count, context, last_message_at) VALUES (?, ?, ?, ?,"
                     " 'escalated', 2, 1, 1, ?, strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
                     (ID["conv"], ID["ws"], ID["bot"], ID["customer"],
                      json.dumps({"page_url": "https://legacy.example/"})))
        for key, sender, text in (("m1", "customer", "Can I return my kettle?"),
                                  ("m2", "bot", "Yes, within 30 days.")):
            conn.execute("INSERT INTO messages(id, conversation_id, sender_type, content) VALUES (?, ?, ?, ?)",
                         (ID[key], ID["conv"], sender, text))
        conn.execute("COMMIT")
    finally:
        conn.close()


def schema_of(database: Path) -> int:
    conn = connect(database)
    try:
        return current_version(conn)
    finally:
        conn.close()


def assert_served(data: Path) -> None:
    with open_client(kb_settings(data)) as client:
        owner = bearer(login(client, "owner@legacy.example"))
        assert bearer(login(client, "agent@legacy.example"))
        bots = client.get("/api/v1/chatbots", headers=owner).json()["data"]
        assert [(bot["id"], bot["name"]) for bot in bots] == [(ID["bot"], "Legacy Bot")]
        docs = client.get(DOCS, params={"chatbot_id": ID["bot"]}, headers=owner).json()["data"]
        assert [(doc["id"], doc["status"]) for doc in docs] == [(ID["doc"], "completed")]
        hits = client.post("/api/v1/knowledge-base/test", headers=owner,
                           json={"chatbot_id": ID["bot"], "query": "can I get a refund for a kettle", "top_k": 2})
        assert hits.status_code == 200, hits.text
        assert hits.json()["results"][0]["content"].startswith("Returns:")  # vectors and FTS from schema 1 serve
        shown = client.get(f"/api/v1/conversations/{ID['conv']}", headers=owner)
        assert shown.status_code == 200, shown.text
        assert "Can I return my kettle?" in shown.text and "Jane Legacy" in shown.text
        listed = client.get("/api/v1/conversations", headers=owner)
        assert listed.status_code == 200 and ID["conv"] in listed.text


def test_schema_one_with_data_upgrades_to_the_latest_and_serves_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    build_schema_one(data)

    doctor = run_cli(data, "doctor")
    assert "[warn] schema: version 1; pending migrations: 0002" in doctor.stdout, doctor.stdout
    assert f"{LATEST_VERSION:04d}" in doctor.stdout

    migrated = run_cli(data, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    applied = [line.split()[1] for line in migrated.stdout.splitlines() if line.startswith("applied")]
    assert applied == [f"{m.version:04d}" for m in MIGRATIONS[1:]]
    assert schema_of(data / "chatsupport.db") == LATEST_VERSION
    [archive] = (data / "backups").glob("*.tar.gz")
    assert archive.name.endswith(f"-pre-migration-v1-to-v{LATEST_VERSION}.tar.gz")
    assert "pre-migration backup" in migrated.stderr
    [listed] = run_cli(data, "backup", "--list").stdout.splitlines()
    assert listed.split("\t")[3:] == ["schema 1", "plain", "pre-migration"]
    assert "up to date" in run_cli(data, "doctor").stdout
    nothing = run_cli(data, "migrate")
    assert "nothing to do" in nothing.stdout and len(list((data / "backups").glob("*"))) == 1

    assert_served(data)

    # the way back: the kept archive restores schema 1, and a server start on it migrates (after its own backup)
    elsewhere = tmp_path / "elsewhere"
    restored = run_cli(elsewhere, "restore", str(archive))
    assert restored.returncode == 0, restored.stderr
    assert schema_of(elsewhere / "chatsupport.db") == 1
    assert_served(elsewhere)
    assert schema_of(elsewhere / "chatsupport.db") == LATEST_VERSION
    assert len(list((elsewhere / "backups").glob("*-pre-migration-v1-to-v*.tar.gz"))) == 1


def test_a_new_data_dir_is_created_without_a_pre_migration_backup(tmp_path: Path) -> None:
    created = run_cli(tmp_path / "data", "migrate")
    assert created.returncode == 0, created.stderr
    assert not (tmp_path / "data" / "backups").exists()
