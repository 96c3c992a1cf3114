"""Chunks → vectors → the index, one transaction per source, refusing to mix vectors of two models.

Embedding is the slow part, so callers with many sources embed everything in one ``embed`` call (the model sorts
by length and runs full batches across documents) and then write source by source.
"""

from __future__ import annotations

from typing import Any, Sequence

import apsw
import numpy as np

from chatsupport.ingest.chunking import Chunk, compose
from chatsupport.store import knowledge_index as index
from chatsupport.store.db import Database

VECTOR_COLUMN_DIMENSIONS = 384  # the vec0 tables are declared float[384] / bit[384]


class ModelMismatchError(RuntimeError):
    """The index holds vectors of another model; ``chatsupport reindex`` must rebuild them first."""


def check_model(conn: apsw.Connection, name: str, dimension: int) -> None:
    """Record the model on first use; refuse a different one (its vectors are not comparable)."""
    if dimension != VECTOR_COLUMN_DIMENSIONS:
        raise ModelMismatchError(f"model {name} gives {dimension} dimensions; the index stores "
                                 f"{VECTOR_COLUMN_DIMENSIONS}")
    recorded = index.recorded_model(conn)
    if recorded is None:
        index.record_model(conn, name, dimension)
    elif recorded != (name, dimension):
        raise ModelMismatchError(f"the index was built with {recorded[0]} ({recorded[1]} dimensions), not {name};"
                                 " run `chatsupport reindex`")


def embed(embedder: Any, chunks: Sequence[Chunk], batch_size: int = 32) -> np.ndarray:
    return embed_texts(embedder, [c.embed_text for c in chunks], batch_size)


def chunk_row(chunk: Chunk) -> dict[str, Any]:
    return {"title": chunk.title, "heading": chunk.heading, "content": chunk.content, "position": chunk.position,
            "token_count": chunk.token_count, "page_number": chunk.page_number, "url": chunk.url}


def write_chunks(db: Database, embedder: Any, chatbot_id: str, chunks: Sequence[Chunk], vectors: np.ndarray, *,
                 document_id: str | None = None, faq_id: str | None = None) -> int:
    """Replace one source's chunks and vectors atomically (old ones serve until this commits)."""
    name, dimension = embedder.name, embedder.dimension
    blobs = [np.asarray(v, dtype=np.float32).tobytes() for v in vectors]
    rows = [chunk_row(c) for c in chunks]

    def write(conn: apsw.Connection) -> int:
        check_model(conn, name, dimension)
        count = index.replace_chunks(conn, chatbot_id, rows, blobs, document_id=document_id, faq_id=faq_id)
        if document_id is not None:
            index.set_chunk_count(conn, document_id, count)
        return count

    return db.write(write)


def index_source(db: Database, embedder: Any, chatbot_id: str, chunks: Sequence[Chunk], *,
                 document_id: str | None = None, faq_id: str | None = None) -> int:
    return write_chunks(db, embedder, chatbot_id, chunks, embed(embedder, chunks),
                        document_id=document_id, faq_id=faq_id)


def delete_source(db: Database, *, document_id: str | None = None, faq_id: str | None = None) -> int:
    """Chunks, FTS entries and vectors of one source go in one transaction."""
    return db.write(lambda conn: index.delete_chunks(conn, document_id=document_id, faq_id=faq_id))


def reindex(db: Database, embedder: Any, progress: Any = None, batch: int = 256) -> int:
    """Re-embed every chunk with ``embedder`` (after a model change) and record the new model; returns the count.

    Each batch commits on its own so a long run shows progress and a crash loses at most one batch; the model is
    recorded only at the end, so an interrupted run still refuses ingestion until ``reindex`` completes.
    """
    if embedder.dimension != VECTOR_COLUMN_DIMENSIONS:
        raise ModelMismatchError(f"model {embedder.name} gives {embedder.dimension} dimensions; the index stores "
                                 f"{VECTOR_COLUMN_DIMENSIONS}")
    rows = index.chunk_texts(db.reader())
    for start in range(0, len(rows), batch):
        part = rows[start:start + batch]
        vectors = embed_texts(embedder, [compose(r["title"], r["heading"], r["content"]) for r in part])
        items = [(r["rowid"], r["chatbot_id"], np.asarray(v, dtype=np.float32).tobytes())
                 for r, v in zip(part, vectors)]
        db.write(lambda conn, items=items: index.replace_vectors(conn, items))
        if progress:
            progress(start + len(part), len(rows))
    db.write(lambda conn: index.record_model(conn, embedder.name, embedder.dimension))
    return len(rows)


def embed_texts(embedder: Any, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    return embedder.encode(list(texts), batch_size=batch_size)
