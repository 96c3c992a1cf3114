"""Benchmark: ingestion embedding speed against the raw model on the same chunks.

Usage: PYTHONPATH=. .venv/bin/python bench/ingest_speed.py [CORPUS_DIR] [--limit 600] [--torch]
Chunks the corpus once, then in one process: (1) raw ``encode(chunks, batch_size=32)`` of the ONNX model,
(2) the ingestion path of ``chatsupport eval retrieval`` — embed + write every document (chunks, FTS, float and
bit vectors) into a fresh database, and optionally (3) sentence-transformers (torch) on the same texts.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from chatsupport.ingest.chunking import Chunker
from chatsupport.retrieval import indexing
from chatsupport.retrieval.embedder import Embedder, bundled_model_path
from chatsupport.retrieval.evaluation import corpus_files, file_chunks, new_chatbot
from chatsupport.store import knowledge_index
from chatsupport.store.db import Database
from chatsupport.store.migrations import migrate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="?", default="/work/shared/corpora/B-huggingface-hub-docs")
    parser.add_argument("--limit", type=int, default=600, help="chunks to time (0: all)")
    parser.add_argument("--torch", action="store_true", help="also time sentence-transformers")
    parser.add_argument("--model-cache", default="data/model-cache")
    args = parser.parse_args()
    embedder = Embedder(cache_dir=Path(args.model_cache).resolve())
    chunker = Chunker(embedder.count_tokens)
    docs = []
    for path in corpus_files(Path(args.corpus)):
        loaded = file_chunks(path, chunker)
        if loaded:
            docs.append((path.name, loaded[0], loaded[1]))
    chunks = [c for _, _, cs in docs for c in cs]
    if args.limit:
        kept, total = [], 0
        for doc in docs:
            if total >= args.limit:
                break
            kept.append(doc)
            total += len(doc[2])
        docs, chunks = kept, [c for _, _, cs in kept for c in cs]
    texts = [c.embed_text for c in chunks]
    tokens = embedder.count_tokens(texts)
    print(f"{len(texts)} chunks, mean {sum(tokens) / len(tokens):.0f} word pieces")
    embedder.encode(texts[:32])

    started = time.perf_counter()
    embedder.encode(texts, batch_size=32)
    raw = len(texts) / (time.perf_counter() - started)

    with tempfile.TemporaryDirectory() as tmp:
        migrate(Path(tmp) / "i.db")
        db = Database(Path(tmp) / "i.db", synchronous="NORMAL")
        bot = new_chatbot(db)
        started = time.perf_counter()
        vectors = indexing.embed(embedder, chunks)
        offset = 0
        for name, title, doc_chunks in docs:
            doc_id = db.write(lambda conn: knowledge_index.add_document(conn, bot, title=title, filename=name))
            indexing.write_chunks(db, embedder, bot, doc_chunks, vectors[offset:offset + len(doc_chunks)],
                                  document_id=doc_id)
            offset += len(doc_chunks)
        ingest = len(texts) / (time.perf_counter() - started)
        db.close()
    print(f"{'raw ONNX encode(batch_size=32)':<36} {raw:>7.1f} chunks/s")
    print(f"{'ingestion (embed + index)':<36} {ingest:>7.1f} chunks/s  ({ingest / raw:.0%} of raw)")
    if args.torch:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(bundled_model_path()), device="cpu")
        model.encode(texts[:32])
        started = time.perf_counter()
        model.encode(texts, batch_size=32)
        print(f"{'raw sentence-transformers (torch)':<36} {len(texts) / (time.perf_counter() - started):>7.1f} "
              "chunks/s")


if __name__ == "__main__":
    main()
