"""Knowledge documents and FAQs in SQL. Every read is scoped by workspace through the chatbot it belongs to, so
another workspace's id simply finds nothing. The chunks themselves live in ``knowledge_index``."""

from __future__ import annotations

import json
from typing import Any, Iterable

import apsw

from chatsupport.store.db import Row
from chatsupport.store.instance_state import utc_now

DOC_COLUMNS = ("d.id, d.chatbot_id, d.source_type, d.title, d.original_filename, d.stored_path, d.file_size_bytes,"
               " d.mime_type, d.content_hash, d.status, d.stage, d.progress, d.error_code, d.error_message,"
               " d.page_count, d.text_length, d.chunk_count, d.metadata, d.uploaded_by, d.replaces_document_id,"
               " d.attempt, d.processing_started_at, d.processing_completed_at, d.created_at, d.updated_at")
FAQ_COLUMNS = ("f.id, f.chatbot_id, f.question, f.answer, f.category, f.tags, f.priority, f.status, f.metadata,"
               " f.usage_count, f.created_by, f.created_at, f.updated_at,"
               " EXISTS (SELECT 1 FROM knowledge_chunks c WHERE c.faq_id = f.id) AS embedding_generated")
SCOPE = "JOIN chatbots b ON b.id = {alias}.chatbot_id AND b.workspace_id = ?"


def _decode(row: Row | None, *fields: str) -> Row | None:
    if row is not None:
        for name in fields:
            row[name] = json.loads(row[name])
    return row


# --- documents ----------------------------------------------------------------------------------------------
def insert_document(conn: apsw.Connection, doc: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO knowledge_documents(id, chatbot_id, source_type, title, original_filename, stored_path,"
        " file_size_bytes, mime_type, content_hash, status, metadata, uploaded_by, replaces_document_id,"
        " created_at, updated_at) VALUES (:id, :chatbot_id, 'file', :title, :original_filename, :stored_path,"
        " :file_size_bytes, :mime_type, :content_hash, 'pending', :metadata, :uploaded_by, :replaces_document_id,"
        " :now, :now)", {**doc, "metadata": json.dumps(doc["metadata"]), "now": utc_now()})


def get_document(conn: apsw.Connection, workspace_id: str, document_id: str) -> Row | None:
    row = conn.execute(f"SELECT {DOC_COLUMNS} FROM knowledge_documents d {SCOPE.format(alias='d')}"
                       " WHERE d.id = ?", (workspace_id, document_id)).fetchone()
    return _decode(row, "metadata")


def document_by_id(conn: apsw.Connection, document_id: str) -> Row | None:
    """Unscoped: for the ingestion job, which acts for nobody in particular."""
    row = conn.execute(f"SELECT {DOC_COLUMNS} FROM knowledge_documents d WHERE d.id = ?", (document_id,)).fetchone()
    return _decode(row, "metadata")


def list_documents(conn: apsw.Connection, workspace_id: str, chatbot_id: str, limit: int,
                   offset: int) -> tuple[list[Row], int]:
    where = f"FROM knowledge_documents d {SCOPE.format(alias='d')} WHERE d.chatbot_id = ? AND d.source_type = 'file'"
    total = conn.execute(f"SELECT count(*) AS n {where}", (workspace_id, chatbot_id)).fetchone()["n"]
    rows = conn.execute(f"SELECT {DOC_COLUMNS} {where} ORDER BY d.created_at DESC, d.id LIMIT ? OFFSET ?",
                        (workspace_id, chatbot_id, limit, offset))
    return [_decode(r, "metadata") for r in rows], total  # type: ignore[misc]


def update_document(conn: apsw.Connection, document_id: str, **fields: Any) -> None:
    fields["updated_at"] = utc_now()
    assignments = ", ".join(f"{name} = :{name}" for name in fields)
    conn.execute(f"UPDATE knowledge_documents SET {assignments} WHERE id = :id", {**fields, "id": document_id})


def delete_document(conn: apsw.Connection, document_id: str) -> None:
    conn.execute("DELETE FROM knowledge_documents WHERE id = ?", (document_id,))


def documents_in_status(conn: apsw.Connection, statuses: Iterable[str]) -> list[Row]:
    marks = ", ".join("?" for _ in statuses)
    return list(conn.execute(f"SELECT id, status, attempt FROM knowledge_documents WHERE source_type = 'file'"
                             f" AND status IN ({marks})", tuple(statuses)))


def replacements_of(conn: apsw.Connection, document_id: str) -> list[Row]:
    return list(conn.execute("SELECT id, stored_path FROM knowledge_documents WHERE replaces_document_id = ?",
                             (document_id,)))


# --- FAQs ---------------------------------------------------------------------------------------------------
def insert_faq(conn: apsw.Connection, faq: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO knowledge_faqs(id, chatbot_id, question, answer, category, tags, priority, status, metadata,"
        " created_by, created_at, updated_at) VALUES (:id, :chatbot_id, :question, :answer, :category, :tags,"
        " :priority, :status, :metadata, :created_by, :now, :now)",
        {**faq, "tags": json.dumps(faq["tags"]), "metadata": json.dumps(faq["metadata"]), "now": utc_now()})


def update_faq(conn: apsw.Connection, faq: dict[str, Any]) -> None:
    conn.execute(
        "UPDATE knowledge_faqs SET question = :question, answer = :answer, category = :category, tags = :tags,"
        " priority = :priority, status = :status, metadata = :metadata, updated_at = :now WHERE id = :id",
        {**faq, "tags": json.dumps(faq["tags"]), "metadata": json.dumps(faq["metadata"]), "now": utc_now()})


def get_faq(conn: apsw.Connection, workspace_id: str, faq_id: str) -> Row | None:
    row = conn.execute(f"SELECT {FAQ_COLUMNS} FROM knowledge_faqs f {SCOPE.format(alias='f')} WHERE f.id = ?",
                       (workspace_id, faq_id)).fetchone()
    return _decode(row, "tags", "metadata")


def faqs_by_ids(conn: apsw.Connection, faq_ids: Iterable[str]) -> list[Row]:
    ids = list(faq_ids)
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    rows = conn.execute(f"SELECT {FAQ_COLUMNS} FROM knowledge_faqs f WHERE f.id IN ({marks})", tuple(ids))
    return [_decode(r, "tags", "metadata") for r in rows]  # type: ignore[misc]


def list_faqs(conn: apsw.Connection, workspace_id: str, chatbot_id: str, limit: int,
              offset: int) -> tuple[list[Row], int]:
    where = f"FROM knowledge_faqs f {SCOPE.format(alias='f')} WHERE f.chatbot_id = ?"
    total = conn.execute(f"SELECT count(*) AS n {where}", (workspace_id, chatbot_id)).fetchone()["n"]
    rows = conn.execute(f"SELECT {FAQ_COLUMNS} {where} ORDER BY f.created_at DESC, f.id LIMIT ? OFFSET ?",
                        (workspace_id, chatbot_id, limit, offset))
    return [_decode(r, "tags", "metadata") for r in rows], total  # type: ignore[misc]


def faq_questions(conn: apsw.Connection, chatbot_id: str) -> dict[str, str]:
    """Normalised question → FAQ id, for duplicate detection."""
    rows = conn.execute("SELECT id, question FROM knowledge_faqs WHERE chatbot_id = ?", (chatbot_id,))
    return {normalise_question(r["question"]): r["id"] for r in rows}


def normalise_question(question: str) -> str:
    return " ".join("".join(ch for ch in question.lower() if ch.isalnum() or ch.isspace()).split())


def delete_faq(conn: apsw.Connection, faq_id: str) -> None:
    conn.execute("DELETE FROM knowledge_chunks WHERE faq_id = ?", (faq_id,))
    conn.execute("DELETE FROM knowledge_faqs WHERE id = ?", (faq_id,))
