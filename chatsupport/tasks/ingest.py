"""Ingestion jobs: a document's file → extract → chunk → embed in batches → one transaction that swaps its chunks;
and FAQ indexing after a CSV import.

Idempotent and resumable: a run first *claims* the document (a new attempt number), keeps everything in memory
until the final swap, and commits nothing if its attempt is no longer current. A process killed half-way leaves
the document in ``processing`` with its old chunks (or none) intact; ``recover_interrupted_ingestion`` runs at
start-up and puts it back in the queue.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from chatsupport import metrics
from chatsupport.domain import events, faqs, knowledge
from chatsupport.ingest import pipeline
from chatsupport.ingest.extract import ExtractionError, extract
from chatsupport.retrieval.embedder import Embedder, shared_embedder
from chatsupport.store.db import Database, Row
from chatsupport.tasks.queue import huey
from chatsupport.tasks.runtime import Runtime, current

log = logging.getLogger(__name__)

KIND_BY_MIME = {"application/pdf": "pdf", "text/html": "html", "text/plain": "text", "text/markdown": "markdown",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx"}
# progress: extraction up to 15, chunking to 20, embedding 20 → 95, the swap 100
EMBED_FROM, EMBED_TO = 20.0, 95.0


def embedder_for(rt: Runtime) -> Embedder:
    """The process's one embedder (the server's, when the consumer runs inside it)."""
    s = rt.settings
    return shared_embedder(s.EMBEDDING_MODEL, s.model_cache_path, s.models_path)


def ingest(db: Database, embedder: Embedder, document_id: str) -> str:
    """Run one document through the pipeline; returns its final status (or ``skipped``)."""
    doc = knowledge.claim(db, document_id)
    if doc is None:
        return "skipped"
    attempt = doc["attempt"]
    try:
        status = _run(db, embedder, doc, attempt)
    except ExtractionError as exc:
        knowledge.fail(db, document_id, attempt, exc.code, exc.message)
        status = "failed"
    except Exception:  # noqa: BLE001 - the owner sees a retryable failure; the log keeps the details
        log.exception("ingestion of document %s failed", document_id)
        knowledge.fail(db, document_id, attempt, "embedding_failed",
                       "The document could not be indexed because of an internal error. Retry it.")
        status = "failed"
    if status != "superseded":  # a newer upload of the document reports for itself
        events.document_processed(db, document_id)
    metrics.DOCUMENTS.inc(status)
    return status


def _run(db: Database, embedder: Embedder, doc: Row, attempt: int) -> str:
    doc_id = doc["id"]
    fallback = doc["metadata"].get("title") or Path(doc["original_filename"] or "").stem or "Untitled"
    extracted = extract(Path(doc["stored_path"]), KIND_BY_MIME.get(doc["mime_type"], ""), fallback)
    if doc["metadata"].get("title"):
        extracted.title = doc["metadata"]["title"]
    knowledge.report(db, doc_id, attempt, "chunking", 15)
    chunks = pipeline.chunk_pages(pipeline.chunker_for(embedder), extracted)
    if not chunks:
        raise ExtractionError("no_text", "No text was found in the file.")
    knowledge.report(db, doc_id, attempt, "embedding", EMBED_FROM)

    def progress(done: int, total: int) -> None:
        knowledge.report(db, doc_id, attempt, "embedding", EMBED_FROM + (EMBED_TO - EMBED_FROM) * done / total)

    vectors = pipeline.embed(embedder, [c.embed_text for c in chunks], progress)
    stats = {"page_count": extracted.page_count, "text_length": extracted.text_length, "title": extracted.title}
    done = knowledge.complete(db, doc_id, attempt, pipeline.chunk_rows(chunks), vectors, stats,
                              (embedder.name, embedder.dimension))
    if done:
        metrics.CHUNKS.inc(amount=len(chunks))
    return "completed" if done else "superseded"


@huey.task()
def ingest_document(document_id: str) -> str:
    rt = current()
    return ingest(rt.db, embedder_for(rt), document_id)


@huey.task()
def index_faqs(faq_ids: Sequence[str]) -> int:
    """Embed and index FAQs created in bulk (a CSV import), in batches."""
    rt = current()
    return faqs.index_by_ids(rt.db, embedder_for(rt), list(faq_ids))


def recover_interrupted_ingestion(db: Database) -> list[str]:
    """Start-up: documents a dead process left half-way go back in the queue (or fail for a manual retry)."""
    requeued = knowledge.interrupted(db)
    for document_id in requeued:
        ingest_document(document_id)
    if requeued:
        log.info("re-queued %d interrupted document(s)", len(requeued))
    return requeued
