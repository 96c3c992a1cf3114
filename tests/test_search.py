"""Hybrid search over a real SQLite file with the real model: relevance, chatbot scoping, hostile input, deletes."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator

import pytest

from chatsupport.ingest.chunking import Chunker, chunk_document
from chatsupport.ingest.markdown_clean import clean_markdown
from chatsupport.retrieval import indexing
from chatsupport.retrieval.evaluation import new_chatbot
from chatsupport.retrieval.search import MODES, search
from chatsupport.store import knowledge_index
from chatsupport.store.db import Database, connect
from chatsupport.store.migrations import MIGRATIONS, migrate

PAGES_A = {
    "billing": "# Billing\n\nAll subscriptions renew on the 1st of each month. We prorate the first month.\n\n"
               "## Invoices\n\nDownload past invoices from the billing settings page.",
    "rate-limits": "# Rate limits\n\nWhen you exceed the API quota you receive HTTP 429 Too Many Requests. "
                   "Wait for the window to reset or upgrade to PRO for higher limits.",
    "ssh": "# SSH keys\n\nAdd a public SSH key to your account settings, then push with git over ssh.",
}
PAGES_B = {
    "zebra": "# Zebra care\n\nZebras in our sanctuary eat hay twice a day; visitors may not feed them.",
}
HOSTILE = ['"', "'", '"unbalanced', "NEAR(a b)", "a AND", "OR OR OR", "*", "title:secret", "(((", "-", "^x",
           "'; DROP TABLE knowledge_chunks; --", "1=1 OR 1=1", "", "   ", "\x00", "🙂🙂", "a" * 5000,
           "SELECT * FROM users", "{}[]<>", "content: MATCH 'x'", "é ü ß 中文"]


@pytest.fixture
def index(tmp_path: Path, embedder) -> Iterator[tuple[Database, str, str, dict[str, str]]]:  # noqa: ANN001
    path = tmp_path / "kb.db"
    migrate(path)
    db = Database(path)
    bot_a, bot_b = new_chatbot(db, "a"), new_chatbot(db, "b")
    docs = {}
    for bot, pages in ((bot_a, PAGES_A), (bot_b, PAGES_B)):
        for name, text in pages.items():
            docs[name] = add_page(db, embedder, bot, name, text)
    try:
        yield db, bot_a, bot_b, docs
    finally:
        db.close()


def add_page(db: Database, embedder, bot: str, name: str, text: str) -> str:  # noqa: ANN001
    doc = clean_markdown(text, name)
    chunks = chunk_document(Chunker(embedder.count_tokens), doc.title, doc.text)
    document_id = db.write(lambda conn: knowledge_index.add_document(conn, bot, title=doc.title, filename=name))
    indexing.index_source(db, embedder, bot, chunks, document_id=document_id)
    return document_id


@pytest.mark.parametrize("mode", MODES)
def test_finds_the_right_page_in_every_mode(index, embedder, mode: str) -> None:  # noqa: ANN001
    db, bot_a, _, docs = index
    hits = search(db, embedder, bot_a, "why was I charged again after subscribing, renewal date", 3, mode)
    assert hits and hits[0].source_id == docs["billing"]
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(0.0 <= h.score <= 1.0 for h in hits) and hits == sorted(hits, key=lambda h: -h.score)
    assert len({h.source_id for h in hits}) == len(hits)  # collapsed per source
    assert hits[0].title == "Billing" and hits[0].source_type == "document"


def test_hybrid_uses_exact_terms_and_meaning(index, embedder) -> None:  # noqa: ANN001
    db, bot_a, _, docs = index
    assert search(db, embedder, bot_a, "getting 429 errors", 1)[0].source_id == docs["rate-limits"]
    assert search(db, embedder, bot_a, "how do I upload my key to push code", 1)[0].source_id == docs["ssh"]


def test_a_chatbot_never_sees_another_chatbots_chunks(index, embedder) -> None:  # noqa: ANN001
    db, bot_a, bot_b, docs = index
    for mode in MODES:
        assert docs["zebra"] not in {h.source_id for h in search(db, embedder, bot_a, "zebra hay feeding", 10, mode)}
        assert {h.source_id for h in search(db, embedder, bot_b, "billing invoices", 10, mode)} <= {docs["zebra"]}
    assert search(db, embedder, "no-such-bot", "billing", 5) == []


def test_hostile_queries_do_not_crash(index, embedder) -> None:  # noqa: ANN001
    db, bot_a, _, _ = index
    for query in HOSTILE:
        for mode in MODES:
            hits = search(db, embedder, bot_a, query, 5, mode)
            assert all(0.0 <= h.score <= 1.0 for h in hits)
    assert search(db, embedder, bot_a, "", 5, "keyword") == []
    assert db.query_one("SELECT count(*) AS n FROM knowledge_chunks")["n"] > 0


def test_delete_removes_chunks_text_index_and_vectors(index, embedder) -> None:  # noqa: ANN001
    db, bot_a, _, docs = index
    rowids = [r["rowid"] for r in db.query("SELECT rowid FROM knowledge_chunks WHERE document_id = ?",
                                           (docs["rate-limits"],))]
    assert rowids
    assert indexing.delete_source(db, document_id=docs["rate-limits"]) == len(rowids)
    marks = ",".join("?" * len(rowids))
    for table in ("knowledge_chunk_vectors", "knowledge_chunk_bits"):
        assert db.query(f"SELECT chunk_rowid FROM {table} WHERE chunk_rowid IN ({marks})", rowids) == []
    assert db.query("SELECT rowid FROM knowledge_chunks_fts WHERE knowledge_chunks_fts MATCH '\"429\"'") == []
    for mode in MODES:
        assert docs["rate-limits"] not in {h.source_id for h in search(db, embedder, bot_a, "429 errors", 5, mode)}


def test_reindexing_a_document_replaces_its_chunks(index, embedder) -> None:  # noqa: ANN001
    db, bot_a, _, docs = index
    doc = clean_markdown("# SSH keys\n\nSSH is disabled; use HTTPS tokens instead.", "ssh")
    chunks = chunk_document(Chunker(embedder.count_tokens), doc.title, doc.text)
    indexing.index_source(db, embedder, bot_a, chunks, document_id=docs["ssh"])
    rows = db.query("SELECT content FROM knowledge_chunks WHERE document_id = ?", (docs["ssh"],))
    assert [r["content"] for r in rows] == ["SSH is disabled; use HTTPS tokens instead."]
    counts = [db.query_one(f"SELECT count(*) AS n FROM {t}")["n"] for t in
              ("knowledge_chunks", "knowledge_chunk_vectors", "knowledge_chunk_bits")]
    assert len(set(counts)) == 1


def test_faqs_are_first_class_and_boosted(index, embedder) -> None:  # noqa: ANN001
    db, bot_a, _, _ = index
    faq_id = str(uuid.uuid4())
    question, answer = "Can I pause my subscription?", "Cancel any time; there is no pause option."
    db.write(lambda conn: conn.execute("INSERT INTO knowledge_faqs(id, chatbot_id, question, answer)"
                                       " VALUES (?, ?, ?, ?)", (faq_id, bot_a, question, answer)))
    chunks = chunk_document(Chunker(embedder.count_tokens), question, answer)
    indexing.index_source(db, embedder, bot_a, chunks, faq_id=faq_id)
    top = search(db, embedder, bot_a, "put my plan on hold for a while", 3)[0]
    assert (top.source_type, top.source_id) == ("faq", faq_id)


def test_migration_3_quantises_vectors_that_already_exist(tmp_path: Path, embedder) -> None:  # noqa: ANN001
    path = tmp_path / "old.db"
    conn = connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                 " applied_at TEXT NOT NULL DEFAULT 'x')")
    for migration in MIGRATIONS[:2]:
        conn.execute(migration.sql)
        conn.execute("INSERT INTO schema_migrations(version, name) VALUES (?, ?)", (migration.version, migration.name))
    conn.execute("INSERT INTO knowledge_chunk_vectors(chunk_rowid, chatbot_id, embedding) VALUES (7, 'bot', ?)",
                 (embedder.encode(["hello"])[0].tobytes(),))
    conn.close()
    assert [m.version for m in migrate(path)][0] == 3
    conn = connect(path)
    assert conn.execute("SELECT chunk_rowid, chatbot_id FROM knowledge_chunk_bits").fetchall() == [
        {"chunk_rowid": 7, "chatbot_id": "bot"}]
    conn.close()
