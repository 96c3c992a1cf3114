"""The plain float32 copy of chunk vectors (migration 7) stays in step with the vec0 tables, and the faster
keyword/vector paths return what the plain filtered queries return."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chatsupport.retrieval import search as hybrid
from chatsupport.retrieval.evaluation import new_chatbot
from chatsupport.store import knowledge_index as index
from chatsupport.store.db import Database, connect
from chatsupport.store.migrations import MIGRATIONS, migrate

DIM = 384
rng = np.random.default_rng(1)


def unit_vectors(n: int) -> np.ndarray:
    v = rng.normal(0, 1, (n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture()
def db(tmp_path: Path) -> Database:
    migrate(tmp_path / "t.db")
    database = Database(tmp_path / "t.db")
    yield database
    database.close()


def add(db: Database, bot: str, texts: list[str], vecs: np.ndarray) -> str:
    doc = db.write(lambda c: index.add_document(c, bot, title="doc"))
    chunks = [{"title": "doc", "content": t, "position": i} for i, t in enumerate(texts)]
    db.write(lambda c: index.replace_chunks(c, bot, chunks, [v.tobytes() for v in vecs], document_id=doc))
    return doc


def assert_in_step(db: Database) -> None:
    vec0 = {r["chunk_rowid"]: r["embedding"] for r in db.query("SELECT chunk_rowid, embedding FROM "
                                                                 "knowledge_chunk_vectors")}
    plain = {r["chunk_rowid"]: r["embedding"] for r in db.query("SELECT chunk_rowid, embedding FROM "
                                                                  "knowledge_chunk_floats")}
    chunks = {r["rowid"] for r in db.query("SELECT rowid FROM knowledge_chunks")}
    bits = {r["chunk_rowid"] for r in db.query("SELECT chunk_rowid FROM knowledge_chunk_bits")}
    assert plain == vec0 and set(plain) == chunks == bits


def test_plain_copy_follows_insert_replace_reindex_and_delete(db: Database) -> None:
    bot = new_chatbot(db, "a")
    doc = add(db, bot, ["one", "two", "three"], unit_vectors(3))
    assert_in_step(db)
    new = unit_vectors(2)
    db.write(lambda c: index.replace_chunks(c, bot, [{"content": "x", "position": 0}, {"content": "y", "position": 1}],
                                            [v.tobytes() for v in new], document_id=doc))
    assert_in_step(db)
    rowids = [r["rowid"] for r in db.query("SELECT rowid FROM knowledge_chunks ORDER BY rowid")]
    assert index.float_vectors(db.reader(), rowids) == dict(zip(rowids, [v.tobytes() for v in new]))
    again = unit_vectors(2)
    db.write(lambda c: index.replace_vectors(c, [(r, bot, v.tobytes()) for r, v in zip(rowids, again)]))
    assert_in_step(db)
    assert index.float_vectors(db.reader(), rowids)[rowids[1]] == again[1].tobytes()
    db.write(lambda c: index.delete_chunks(c, document_id=doc))
    assert_in_step(db)
    assert db.query_one("SELECT count(*) AS n FROM knowledge_chunk_floats")["n"] == 0


def test_migration_7_copies_vectors_that_already_exist(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                 " applied_at TEXT NOT NULL DEFAULT 'x')")
    for migration in MIGRATIONS[:6]:
        conn.execute(migration.sql)
        conn.execute("INSERT INTO schema_migrations(version, name) VALUES (?, ?)", (migration.version, migration.name))
    blob = unit_vectors(1)[0].tobytes()
    conn.execute("INSERT INTO knowledge_chunk_vectors(chunk_rowid, chatbot_id, embedding) VALUES (7, 'bot', ?)",
                 (blob,))
    conn.close()
    assert [m.version for m in migrate(path)] == [m.version for m in MIGRATIONS[6:]]  # 7 and any later
    conn = connect(path)
    assert conn.execute("SELECT chunk_rowid, chatbot_id, embedding FROM knowledge_chunk_floats").fetchall() == [
        {"chunk_rowid": 7, "chatbot_id": "bot", "embedding": blob}]
    conn.close()


def test_float_vectors_reads_more_ids_than_one_statement_binds(db: Database) -> None:
    bot = new_chatbot(db, "a")
    vecs = unit_vectors(index.MAX_PARAMS + 5)
    add(db, bot, [f"t{i}" for i in range(len(vecs))], vecs)
    rowids = [r["rowid"] for r in db.query("SELECT rowid FROM knowledge_chunks")]
    assert len(index.float_vectors(db.reader(), rowids)) == len(rowids)


@pytest.mark.parametrize("small", [20000, 0])
def test_keyword_paths_match_the_filtered_join(db: Database, monkeypatch: pytest.MonkeyPatch, small: int) -> None:
    monkeypatch.setattr(index, "SMALL_PARTITION", small)
    mine, other = new_chatbot(db, "mine"), new_chatbot(db, "other")
    # "alpha" in many of the other bot's chunks (and ranked higher: shorter texts) forces the over-fetch fallback
    add(db, other, ["alpha"] * 40, unit_vectors(40))
    add(db, mine, [f"alpha beta gamma filler {i} " + "word " * i for i in range(30)], unit_vectors(30))
    for match, limit in (('"alpha"', 5), ('"alpha"', 50), ('"beta" OR "alpha"', 3), ('"nothing"', 5)):
        expected = [(r["rowid"], r["score"]) for r in db.query(
            f"SELECT c.rowid AS rowid, -bm25(knowledge_chunks_fts, {index._WEIGHTS}) AS score"
            " FROM knowledge_chunks_fts JOIN knowledge_chunks c ON c.rowid = knowledge_chunks_fts.rowid"
            " WHERE knowledge_chunks_fts MATCH ? AND c.chatbot_id = ? ORDER BY score DESC LIMIT ?",
            (match, mine, limit))]
        got = [(r["rowid"], r["score"]) for r in index.keyword_search(db.reader(), mine, match, limit)]
        assert got == expected


@pytest.mark.parametrize("exact_max", [20000, 0])
def test_both_vector_paths_find_the_nearest_chunk_in_the_chatbot(db: Database, monkeypatch: pytest.MonkeyPatch,
                                                                  exact_max: int) -> None:
    monkeypatch.setattr(hybrid, "EXACT_SEARCH_MAX", exact_max)
    mine, other = new_chatbot(db, "mine"), new_chatbot(db, "other")
    vecs = unit_vectors(50)
    add(db, other, ["x"] * 50, vecs)  # the same vectors in another chatbot must never be returned
    add(db, mine, [f"y{i}" for i in range(50)], vecs)
    ours = [r["rowid"] for r in db.query("SELECT rowid FROM knowledge_chunks WHERE chatbot_id = ? ORDER BY rowid",
                                         (mine,))]
    scores = hybrid.vector_scores(db, mine, vecs[17], limit=5, also=[ours[3]])
    assert set(scores) <= set(ours) and ours[3] in scores
    assert max(scores, key=scores.get) == ours[17] and scores[ours[17]] == pytest.approx(1.0, abs=1e-5)
