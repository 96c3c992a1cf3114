"""Knowledge documents: accept an upload, show its progress, retry, delete, replace — and the ingestion job's
state transitions, each one transaction.

Re-upload is a new document row that names the one it ``replaces``: the old document keeps answering until the
new chunks are committed, and the same transaction then removes the old one. If the new file fails, the old one
simply stays. Every run of the job has an ``attempt`` number; a run whose number is no longer current (the
document was retried, or deleted) commits nothing.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import apsw

from chatsupport.domain.audit import Actor, pagination, record
from chatsupport.domain.auth import Context
from chatsupport.errors import AppError
from chatsupport.ingest.extract import EXTENSIONS, MIME_TYPES
from chatsupport.retrieval import search as retrieval
from chatsupport.store import chatbots as bot_store
from chatsupport.store import knowledge as store
from chatsupport.store import knowledge_index as index
from chatsupport.store.db import Database, Row
from chatsupport.store.instance_state import utc_now

METADATA_FIELDS = ("title", "category", "language", "version")
MAX_RECOVERY_ATTEMPTS = 3


@dataclass
class NewDocument:
    """An upload already streamed to a temporary file (by the web layer) and sniffed."""

    chatbot_id: str
    temp_path: Path
    filename: str
    kind: str
    size: int
    sha256: str
    metadata: dict[str, Any]
    replaces_document_id: str | None = None


def parse_metadata(raw: Any) -> dict[str, str]:
    """The optional ``metadata`` object: title, category, language and version, each a short string."""
    if raw in (None, "", {}):
        return {}
    if not isinstance(raw, dict):
        raise AppError("validation_error", details=[{"field": "metadata", "message": "Must be a JSON object."}])
    problems = [{"field": f"metadata.{key}", "message": "Unknown field."} for key in raw if key not in METADATA_FIELDS]
    problems += [{"field": f"metadata.{key}", "message": "Must be a string of at most 200 characters."}
                 for key, value in raw.items() if key in METADATA_FIELDS
                 and (not isinstance(value, str) or len(value) > 200)]
    if problems:
        raise AppError("validation_error", details=problems)
    return {key: value.strip() for key, value in raw.items() if value.strip()}


def present(doc: Row) -> dict[str, Any]:
    return {"id": doc["id"], "chatbot_id": doc["chatbot_id"], "title": doc["title"],
            "filename": doc["original_filename"], "size_bytes": doc["file_size_bytes"],
            "mime_type": doc["mime_type"], "status": doc["status"], "stage": doc["stage"],
            "progress": int(doc["progress"] or 0), "error_code": doc["error_code"],
            "error_message": doc["error_message"], "chunk_count": doc["chunk_count"],
            "page_count": doc["page_count"], "text_length": doc["text_length"], "metadata": doc["metadata"],
            "replaces_document_id": doc["replaces_document_id"], "created_at": doc["created_at"],
            "updated_at": doc["updated_at"], "processing_started_at": doc["processing_started_at"],
            "processing_completed_at": doc["processing_completed_at"]}


def require_chatbot(conn: apsw.Connection, actor: Actor, chatbot_id: str, writable: bool = False) -> Row:
    bot = bot_store.get(conn, actor.workspace_id, chatbot_id) if chatbot_id else None
    if bot is None:
        raise AppError("not_found", "No such chatbot.")
    if writable and bot["status"] == "archived":
        raise AppError("conflict", "The chatbot is archived; restore it first.")
    return bot


def require_document(conn: apsw.Connection, actor: Actor, document_id: str) -> Row:
    doc = store.get_document(conn, actor.workspace_id, document_id)
    if doc is None or doc["source_type"] != "file":
        raise AppError("not_found", "No such document.")
    return doc


def stored_path(ctx: Context, chatbot_id: str, document_id: str, kind: str) -> Path:
    return ctx.settings.data.uploads / chatbot_id / f"{document_id}.{EXTENSIONS[kind]}"


def create(ctx: Context, actor: Actor, new: NewDocument) -> dict[str, Any]:
    """Check the bot (and the replaced document), move the file into place and record the document, pending."""
    doc_id = str(uuid.uuid4())
    final = stored_path(ctx, new.chatbot_id, doc_id, new.kind)
    title = new.metadata.get("title") or Path(new.filename).stem or "Untitled"

    def write(conn: apsw.Connection) -> Row:
        require_chatbot(conn, actor, new.chatbot_id, writable=True)
        if new.replaces_document_id:
            old = require_document(conn, actor, new.replaces_document_id)
            if old["chatbot_id"] != new.chatbot_id:
                raise AppError("validation_error", details=[{"field": "replace_document_id",
                                                             "message": "The document belongs to another chatbot."}])
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(new.temp_path, final)
        store.insert_document(conn, {
            "id": doc_id, "chatbot_id": new.chatbot_id, "title": title[:300], "original_filename": new.filename,
            "stored_path": str(final), "file_size_bytes": new.size, "mime_type": MIME_TYPES[new.kind],
            "content_hash": new.sha256, "metadata": new.metadata, "uploaded_by": actor.user_id,
            "replaces_document_id": new.replaces_document_id})
        record(conn, "knowledge.document_uploaded", actor=actor, resource_type="knowledge_document",
               resource_id=doc_id, metadata={"filename": new.filename, "size_bytes": new.size,
                                             "replaces": new.replaces_document_id})
        return store.document_by_id(conn, doc_id)  # type: ignore[return-value]

    try:
        return present(ctx.db.write(write))
    except BaseException:
        final.unlink(missing_ok=True)
        new.temp_path.unlink(missing_ok=True)
        raise


def get(ctx: Context, actor: Actor, document_id: str) -> dict[str, Any]:
    return present(require_document(ctx.db.reader(), actor, document_id))


def search(ctx: Context, actor: Actor, chatbot_id: str, page: int = 1, limit: int = 50) -> dict[str, Any]:
    conn = ctx.db.reader()
    require_chatbot(conn, actor, chatbot_id)
    rows, total = store.list_documents(conn, actor.workspace_id, chatbot_id, limit, (page - 1) * limit)
    return {"data": [present(r) for r in rows], "pagination": pagination(page, limit, total)}


def retry(ctx: Context, actor: Actor, document_id: str) -> dict[str, Any]:
    """Back to pending (the web layer enqueues the job); only a failed document can be retried."""
    def write(conn: apsw.Connection) -> Row:
        doc = require_document(conn, actor, document_id)
        if doc["status"] != "failed":
            raise AppError("conflict", f"Only a failed document can be retried; this one is {doc['status']}.")
        store.update_document(conn, doc["id"], status="pending", stage=None, progress=0, error_code=None,
                              error_message=None)
        record(conn, "knowledge.document_retried", actor=actor, resource_type="knowledge_document",
               resource_id=doc["id"])
        return store.document_by_id(conn, doc["id"])  # type: ignore[return-value]

    return present(ctx.db.write(write))


def delete(ctx: Context, actor: Actor, document_id: str) -> None:
    """Chunks, their FTS rows and vectors, and the row go in one transaction; the file after it commits."""
    def write(conn: apsw.Connection) -> str | None:
        doc = require_document(conn, actor, document_id)
        index.delete_chunks(conn, document_id=doc["id"])
        store.delete_document(conn, doc["id"])
        record(conn, "knowledge.document_deleted", actor=actor, resource_type="knowledge_document",
               resource_id=doc["id"], metadata={"filename": doc["original_filename"]})
        return doc["stored_path"]

    remove_file(ctx.db.write(write))


def remove_file(path: str | None) -> None:
    if path:
        Path(path).unlink(missing_ok=True)


# --- the ingestion job's transitions ------------------------------------------------------------------------
def claim(db: Database, document_id: str) -> Row | None:
    """Start a run: the document (with its new attempt number), or None when there is nothing to do."""
    def write(conn: apsw.Connection) -> Row | None:
        doc = store.document_by_id(conn, document_id)
        if doc is None or doc["status"] not in ("pending", "processing"):
            return None
        store.update_document(conn, document_id, status="processing", stage="extracting", progress=2,
                              attempt=doc["attempt"] + 1, processing_started_at=utc_now(), error_code=None,
                              error_message=None)
        return store.document_by_id(conn, document_id)

    return db.write(write)


def _current(conn: apsw.Connection, document_id: str, attempt: int) -> Row | None:
    doc = store.document_by_id(conn, document_id)
    return doc if doc and doc["status"] == "processing" and doc["attempt"] == attempt else None


def report(db: Database, document_id: str, attempt: int, stage: str, progress: float) -> None:
    def write(conn: apsw.Connection) -> None:
        if _current(conn, document_id, attempt):
            store.update_document(conn, document_id, stage=stage, progress=round(progress, 1))

    db.write(write)


def fail(db: Database, document_id: str, attempt: int, code: str, message: str) -> None:
    def write(conn: apsw.Connection) -> None:
        if _current(conn, document_id, attempt):
            store.update_document(conn, document_id, status="failed", stage=None, error_code=code,
                                  error_message=message, processing_completed_at=utc_now())

    db.write(write)


def complete(db: Database, document_id: str, attempt: int, chunks: Sequence[dict[str, Any]],
             vectors: Sequence[bytes], stats: dict[str, Any], model: tuple[str, int]) -> bool:
    """The swap: new chunks in, the replaced document out, status completed — all or nothing."""
    def write(conn: apsw.Connection) -> tuple[bool, str | None]:
        doc = _current(conn, document_id, attempt)
        if doc is None:
            return False, None
        if index.recorded_model(conn) is None:
            index.record_model(conn, *model)
        count = index.replace_chunks(conn, doc["chatbot_id"], chunks, vectors, document_id=document_id)
        store.update_document(conn, document_id, status="completed", stage=None, progress=100, chunk_count=count,
                              processing_completed_at=utc_now(), **stats)
        return True, _drop_replaced(conn, doc)

    done, old_file = db.write(write)
    remove_file(old_file)
    return done


def _drop_replaced(conn: apsw.Connection, doc: Row) -> str | None:
    old = store.document_by_id(conn, doc["replaces_document_id"]) if doc["replaces_document_id"] else None
    store.update_document(conn, doc["id"], replaces_document_id=None)
    if old is None or old["chatbot_id"] != doc["chatbot_id"]:
        return None
    index.delete_chunks(conn, document_id=old["id"])
    store.delete_document(conn, old["id"])
    return old["stored_path"]


def interrupted(db: Database) -> list[str]:
    """Documents a dead process left in ``processing``: back to pending to run again (their chunks were never
    half-written: the swap is one transaction), or failed-for-retry after repeated interruptions."""
    def write(conn: apsw.Connection) -> list[str]:
        requeue = []
        for doc in store.documents_in_status(conn, ("processing",)):
            if doc["attempt"] >= MAX_RECOVERY_ATTEMPTS:
                store.update_document(conn, doc["id"], status="failed", stage=None, error_code="interrupted",
                                      error_message="Processing was interrupted several times. Retry the "
                                                    "document, or split it into smaller files.")
            else:
                store.update_document(conn, doc["id"], status="pending", stage=None, progress=0)
                requeue.append(doc["id"])
        return requeue

    return db.write(write)


# --- "Test your bot" ----------------------------------------------------------------------------------------
def test_query(ctx: Context, actor: Actor, embedder: Any, chatbot_id: str, query: str,
               top_k: int = 5) -> dict[str, Any]:
    """PRD §5.4.4: the ranked passages the bot would answer from, with 0..1 scores and where they come from."""
    conn = ctx.db.reader()
    require_chatbot(conn, actor, chatbot_id)
    hits = retrieval.search(ctx.db, embedder, chatbot_id, query, top_k=top_k)
    results = [_result(conn, actor, hit) for hit in hits]
    return {"query": query, "results": results, "suggested_answer": None,
            "confidence_score": results[0]["score"] if results else 0.0}


def _result(conn: apsw.Connection, actor: Actor, hit: Any) -> dict[str, Any]:
    body = {"rank": hit.rank, "score": hit.score, "source_type": hit.source_type, "source_id": hit.source_id,
            "content": hit.content}
    if hit.source_type == "faq":
        faq = store.get_faq(conn, actor.workspace_id, hit.source_id) or {}
        body["content"] = f"{hit.title}\n{hit.content}" if hit.title else hit.content
        body["metadata"] = {"question": faq.get("question", hit.title), "category": faq.get("category"),
                            "tags": faq.get("tags", [])}
        return body
    doc = store.get_document(conn, actor.workspace_id, hit.source_id) or {}
    if doc.get("source_type") == "url" or hit.url:
        body["source_type"] = "url"
        body["metadata"] = {"url": hit.url or doc.get("source_url"), "title": hit.title or doc.get("title")}
        return body
    metadata: dict[str, Any] = {"filename": doc.get("original_filename"), "title": hit.title}
    if hit.heading:
        metadata["section"] = hit.heading
    if hit.page_number is not None or doc.get("mime_type") == "application/pdf":
        metadata["page"] = hit.page_number
    body["metadata"] = metadata
    return body
