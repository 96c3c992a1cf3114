"""The knowledge index in SQL: chunk rows, their FTS5 entries and their vectors, always changed together.

Four structures point at ``knowledge_chunks.rowid``: ``knowledge_chunks_fts`` (external content, kept by
triggers), ``knowledge_chunk_vectors`` (float32, cosine, for exact KNN), ``knowledge_chunk_bits`` (1 bit per
dimension, for the coarse search at scale) and ``knowledge_chunk_floats`` (the same float32 bytes in an ordinary
table, so re-scoring fetches many vectors with one indexed ``IN``). Deleting a chunk row removes all of them
through triggers. vec0 has no INSERT OR REPLACE, so replacing a source is delete-then-insert inside the caller's
transaction (``db.write``): readers see the old chunks until the new ones are committed. Vectors arrive as
float32 bytes; this module never sees numpy.
"""

from __future__ import annotations

import uuid
from typing import Any, Iterable, Sequence

import apsw

from chatsupport.store import instance_state
from chatsupport.store.db import Row

CHUNK_FIELDS = ("id", "chatbot_id", "document_id", "faq_id", "position", "title", "heading", "content",
                "page_number", "url", "token_count")
# bm25 column weights (title, heading, content): a word in the page title or heading path says more about what
# the passage is about than the same word in running text.
BM25_WEIGHTS = (4.0, 2.0, 1.0)
_WEIGHTS = ", ".join(str(w) for w in BM25_WEIGHTS)
# FTS5 rows read per wanted keyword hit before falling back to the chatbot-filtered query (see keyword_search).
KEYWORD_OVERFETCH = 4
# A chatbot with at most this many chunks is "small": its rowid set is cheap to build (≈0.5 ms at 10k, 5 ms at
# 100k), so keyword search filters by it directly.
SMALL_PARTITION = 20000
MODEL_KEY, DIMENSION_KEY = "embedding_model", "embedding_dimension"
# Bound parameters per statement stay well under SQLite's default limit (32,766).
MAX_PARAMS = 900


def replace_chunks(conn: apsw.Connection, chatbot_id: str, chunks: Sequence[dict[str, Any]],
                   vectors: Sequence[bytes], *, document_id: str | None = None, faq_id: str | None = None) -> int:
    """Swap every chunk of one document or FAQ for ``chunks`` (with their float32 vectors); returns the count."""
    if (document_id is None) == (faq_id is None):
        raise ValueError("exactly one of document_id and faq_id")
    if len(chunks) != len(vectors):
        raise ValueError("one vector per chunk")
    delete_chunks(conn, document_id=document_id, faq_id=faq_id)
    for chunk, vector in zip(chunks, vectors):
        row = {name: chunk.get(name) for name in CHUNK_FIELDS}
        row.update(id=chunk.get("id") or str(uuid.uuid4()), chatbot_id=chatbot_id, document_id=document_id,
                   faq_id=faq_id, title=row["title"] or "", heading=row["heading"] or "")
        conn.execute(f"INSERT INTO knowledge_chunks({', '.join(CHUNK_FIELDS)}) "
                     f"VALUES ({', '.join(':' + n for n in CHUNK_FIELDS)})", row)
        _insert_vectors(conn, conn.last_insert_rowid(), chatbot_id, vector)
    return len(chunks)


def _insert_vectors(conn: apsw.Connection, rowid: int, chatbot_id: str, vector: bytes) -> None:
    """The chunk's vector into all three vector tables (float vec0, bit vec0, plain float copy)."""
    conn.execute("INSERT INTO knowledge_chunk_vectors(chunk_rowid, chatbot_id, embedding) VALUES (?, ?, ?)",
                 (rowid, chatbot_id, vector))
    conn.execute("INSERT INTO knowledge_chunk_bits(chunk_rowid, chatbot_id, embedding)"
                 " VALUES (?, ?, vec_quantize_binary(?))", (rowid, chatbot_id, vector))
    conn.execute("INSERT OR REPLACE INTO knowledge_chunk_floats(chunk_rowid, chatbot_id, embedding)"
                 " VALUES (?, ?, ?)", (rowid, chatbot_id, vector))


def delete_chunks(conn: apsw.Connection, *, document_id: str | None = None, faq_id: str | None = None) -> int:
    """Triggers remove the FTS entries and all three vector rows of every deleted chunk."""
    column, value = ("document_id", document_id) if document_id is not None else ("faq_id", faq_id)
    conn.execute(f"DELETE FROM knowledge_chunks WHERE {column} = ?", (value,))
    return conn.changes()


def keyword_search(conn: apsw.Connection, chatbot_id: str, match: str, limit: int) -> list[Row]:
    """(rowid, score) best first; score is -bm25 so bigger is better. ``match`` must come from the query builder.

    The FTS5 index is shared by all chatbots; joining every match (thousands for an OR of common words) to its
    chunk row for the chatbot filter cost two thirds of the query. A small chatbot's rowids are instead read from
    the covering chatbot index into a set that FTS5 matches are probed against. For a large chatbot that set is
    itself costly, so the index's own best ``KEYWORD_OVERFETCH * limit`` are read first: the result is exact
    whenever they hold ``limit`` of this chatbot's chunks (a lower-ranked row cannot beat them) or are every match;
    only otherwise does the set query run."""
    if not match:
        return []
    if not partition_larger_than(conn, chatbot_id, SMALL_PARTITION):
        return _keyword_in_chatbot(conn, chatbot_id, match, limit)
    top = _keyword_top(conn, match, limit * KEYWORD_OVERFETCH)
    mine = _of_chatbot(conn, chatbot_id, [r["rowid"] for r in top])
    hits = [r for r in top if r["rowid"] in mine][:limit]
    if len(hits) >= limit or len(top) < limit * KEYWORD_OVERFETCH:
        return hits
    return _keyword_in_chatbot(conn, chatbot_id, match, limit)


def _keyword_top(conn: apsw.Connection, match: str, limit: int) -> list[Row]:
    return list(conn.execute(
        f"SELECT rowid, -bm25(knowledge_chunks_fts, {_WEIGHTS}) AS score FROM knowledge_chunks_fts"
        " WHERE knowledge_chunks_fts MATCH ? ORDER BY score DESC LIMIT ?", (match, limit)))


def _of_chatbot(conn: apsw.Connection, chatbot_id: str, rowids: Sequence[int]) -> set[int]:
    marks = ", ".join("?" for _ in rowids)
    rows = conn.execute(f"SELECT rowid FROM knowledge_chunks WHERE chatbot_id = ? AND rowid IN ({marks})",
                        (chatbot_id, *rowids))
    return {r["rowid"] for r in rows}


def _keyword_in_chatbot(conn: apsw.Connection, chatbot_id: str, match: str, limit: int) -> list[Row]:
    # "+rowid" keeps the constraint out of FTS5's rowid lookup, so SQLite probes a set (with a bloom filter).
    return list(conn.execute(
        f"SELECT rowid, -bm25(knowledge_chunks_fts, {_WEIGHTS}) AS score FROM knowledge_chunks_fts"
        " WHERE knowledge_chunks_fts MATCH ? AND +rowid IN (SELECT rowid FROM knowledge_chunks WHERE chatbot_id = ?)"
        " ORDER BY score DESC LIMIT ?", (match, chatbot_id, limit)))


def coarse_vector_search(conn: apsw.Connection, chatbot_id: str, query: bytes, limit: int) -> list[int]:
    """Rowids nearest by Hamming distance of the sign bits, within one chatbot's partition."""
    rows = conn.execute(
        "SELECT chunk_rowid FROM knowledge_chunk_bits WHERE embedding MATCH vec_quantize_binary(?)"
        " AND chatbot_id = ? AND k = ? ORDER BY distance", (query, chatbot_id, limit))
    return [r["chunk_rowid"] for r in rows]


def float_vectors(conn: apsw.Connection, rowids: Iterable[int]) -> dict[int, bytes]:
    """Float32 vectors of the given chunks (for re-scoring candidates exactly), from the plain copy: one statement
    of rowid lookups, where vec0 would scan its partition for an ``IN`` list."""
    ids = list(rowids)
    out: dict[int, bytes] = {}
    for start in range(0, len(ids), MAX_PARAMS):
        part = ids[start:start + MAX_PARAMS]
        marks = ", ".join("?" for _ in part)
        rows = conn.execute(f"SELECT chunk_rowid, embedding FROM knowledge_chunk_floats"
                            f" WHERE chunk_rowid IN ({marks})", part)
        out.update((r["chunk_rowid"], r["embedding"]) for r in rows)
    return out


def partition_larger_than(conn: apsw.Connection, chatbot_id: str, size: int) -> bool:
    """Whether the chatbot has more than ``size`` chunks; reads at most size + 1 index entries, not the whole
    partition, so asking costs the same at 100k chunks as at 10k."""
    return conn.execute("SELECT count(*) AS n FROM (SELECT 1 FROM knowledge_chunks WHERE chatbot_id = ? LIMIT ?)",
                        (chatbot_id, size + 1)).fetchone()["n"] > size


def exact_vector_search(conn: apsw.Connection, chatbot_id: str, query: bytes, limit: int) -> list[Row]:
    """(rowid, distance) by brute-force cosine over the float vectors: the reference the benchmark compares to."""
    return list(conn.execute(
        "SELECT chunk_rowid AS rowid, distance FROM knowledge_chunk_vectors WHERE embedding MATCH ?"
        " AND chatbot_id = ? AND k = ? ORDER BY distance", (query, chatbot_id, limit)))


def chunks_by_rowid(conn: apsw.Connection, rowids: Sequence[int]) -> dict[int, Row]:
    if not rowids:
        return {}
    marks = ", ".join("?" for _ in rowids)
    rows = conn.execute(f"SELECT rowid AS rowid, {', '.join(CHUNK_FIELDS)} FROM knowledge_chunks"
                        f" WHERE rowid IN ({marks})", tuple(rowids))
    return {r["rowid"]: r for r in rows}


def count_chunks(conn: apsw.Connection, chatbot_id: str | None = None) -> int:
    if chatbot_id is None:
        return conn.execute("SELECT count(*) AS n FROM knowledge_chunks").fetchone()["n"]
    return conn.execute("SELECT count(*) AS n FROM knowledge_chunks WHERE chatbot_id = ?",
                        (chatbot_id,)).fetchone()["n"]


def recorded_model(conn: apsw.Connection) -> tuple[str, int] | None:
    name, dim = instance_state.get(conn, MODEL_KEY), instance_state.get(conn, DIMENSION_KEY)
    return (name, int(dim)) if name is not None and dim is not None else None


def record_model(conn: apsw.Connection, name: str, dimension: int) -> None:
    instance_state.put(conn, MODEL_KEY, name)
    instance_state.put(conn, DIMENSION_KEY, str(dimension))


def add_document(conn: apsw.Connection, chatbot_id: str, *, title: str, filename: str | None = None,
                 source_type: str = "file", source_url: str | None = None) -> str:
    """A completed document row for sources indexed directly (evaluation, tests, pasted text)."""
    document_id = str(uuid.uuid4())
    conn.execute("INSERT INTO knowledge_documents(id, chatbot_id, source_type, title, original_filename, source_url,"
                 " status, progress) VALUES (?, ?, ?, ?, ?, ?, 'completed', 100)",
                 (document_id, chatbot_id, source_type, title, filename, source_url))
    return document_id


def set_chunk_count(conn: apsw.Connection, document_id: str, count: int) -> None:
    conn.execute("UPDATE knowledge_documents SET chunk_count = ? WHERE id = ?", (count, document_id))


def chunk_texts(conn: apsw.Connection) -> list[Row]:
    """Every chunk's rowid, chatbot and indexed text, grouped by chatbot (vec0 inserts are cheapest that way)."""
    return list(conn.execute("SELECT rowid, chatbot_id, title, heading, content FROM knowledge_chunks "
                             "ORDER BY chatbot_id, rowid"))


def replace_vectors(conn: apsw.Connection, items: Sequence[tuple[int, str, bytes]]) -> None:
    """New vectors for existing chunks (vec0 has no INSERT OR REPLACE: delete, then insert; the plain copy is
    replaced in place)."""
    for rowid, chatbot_id, vector in items:
        conn.execute("DELETE FROM knowledge_chunk_vectors WHERE chunk_rowid = ?", (rowid,))
        conn.execute("DELETE FROM knowledge_chunk_bits WHERE chunk_rowid = ?", (rowid,))
        _insert_vectors(conn, rowid, chatbot_id, vector)
