"""Website sources (``knowledge_urls``) and their pages (``knowledge_url_pages``), in plain SQL.

A page row lives across crawls: ``crawl_id`` says which run last reached it, and ``queued`` rows of the current
run are the breadth-first frontier (ordered by depth, then discovery ``seq``). Each indexed page owns one
``knowledge_documents`` row (source_type ``url``) whose chunks come and go with it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import apsw

from chatsupport.store import knowledge_index
from chatsupport.store.db import Row
from chatsupport.store.instance_state import utc_now

SOURCE_COLUMNS = ("u.id, u.chatbot_id, u.url, u.domain, u.settings, u.status, u.pages_found, u.pages_processed,"
                  " u.pages_skipped, u.pages_failed, u.error_code, u.error_message, u.last_crawl_at,"
                  " u.next_crawl_at, u.crawl_id, u.crawl_started_at, u.heartbeat_at, u.resume_count, u.created_by,"
                  " u.created_at, u.updated_at")
SCOPED = f"SELECT {SOURCE_COLUMNS} FROM knowledge_urls u JOIN chatbots b ON b.id = u.chatbot_id AND b.workspace_id = ?"
PAGE_COLUMNS = ("id, source_id, url, canonical_url, crawl_id, depth, seq, status, reason, http_status, title,"
                " document_id, etag, last_modified, content_hash, links, error_message, fetched_at, created_at, updated_at")
PROCESSED = ("indexed", "unchanged")


def _decode(row: Row | None) -> Row | None:
    if row is not None:
        row["settings"] = json.loads(row["settings"])
    return row


# --- sources ----------------------------------------------------------------------------------------------
def insert_source(conn: apsw.Connection, source: dict[str, Any]) -> None:
    conn.execute("INSERT INTO knowledge_urls(id, chatbot_id, url, domain, settings, status, crawl_id, next_crawl_at,"
                 " created_by, created_at, updated_at) VALUES (:id, :chatbot_id, :url, :domain, :settings, 'pending',"
                 " :crawl_id, :next_crawl_at, :created_by, :created_at, :created_at)",
                 {**source, "settings": json.dumps(source["settings"])})


def get_source(conn: apsw.Connection, workspace_id: str, source_id: str) -> Row | None:
    return _decode(conn.execute(f"{SCOPED} WHERE u.id = ?", (workspace_id, source_id)).fetchone())


def source_by_id(conn: apsw.Connection, source_id: str) -> Row | None:
    """Unscoped, for background jobs that carry only the id."""
    return _decode(conn.execute(f"SELECT {SOURCE_COLUMNS} FROM knowledge_urls u WHERE u.id = ?",
                                (source_id,)).fetchone())


def list_sources(conn: apsw.Connection, workspace_id: str, chatbot_id: str | None, limit: int,
                 offset: int) -> tuple[list[Row], int]:
    where, params = ("WHERE u.chatbot_id = ?", (workspace_id, chatbot_id)) if chatbot_id else ("", (workspace_id,))
    total = conn.execute(f"SELECT count(*) AS n FROM ({SCOPED} {where})", params).fetchone()["n"]
    rows = conn.execute(f"{SCOPED} {where} ORDER BY u.created_at DESC, u.id LIMIT ? OFFSET ?",
                        (*params, limit, offset))
    return [_decode(r) for r in rows], total  # type: ignore[misc]


def update_source(conn: apsw.Connection, source_id: str, **fields: Any) -> None:
    fields["updated_at"] = utc_now()
    assignments = ", ".join(f"{name} = :{name}" for name in fields)
    conn.execute(f"UPDATE knowledge_urls SET {assignments} WHERE id = :id", {**fields, "id": source_id})


def sources_due(conn: apsw.Connection, now: str) -> list[Row]:
    """Finished sources whose scheduled re-crawl time has come."""
    return [_decode(r) for r in conn.execute(  # type: ignore[misc]
        f"SELECT {SOURCE_COLUMNS} FROM knowledge_urls u WHERE u.status IN ('completed','failed')"
        " AND u.next_crawl_at IS NOT NULL AND u.next_crawl_at <= ?", (now,))]


def sources_stalled(conn: apsw.Connection, before: str) -> list[Row]:
    """Crawls with no sign of life since ``before`` (the worker died or the job was lost)."""
    return [_decode(r) for r in conn.execute(  # type: ignore[misc]
        f"SELECT {SOURCE_COLUMNS} FROM knowledge_urls u WHERE u.status IN ('pending','crawling')"
        " AND coalesce(u.heartbeat_at, u.updated_at) < ?", (before,))]


def delete_source(conn: apsw.Connection, source_id: str) -> int:
    """The source, its pages, and every page's document with its chunks, FTS rows and vectors."""
    removed = 0
    for page in conn.execute("SELECT id, document_id FROM knowledge_url_pages WHERE source_id = ?"
                             " AND document_id IS NOT NULL", (source_id,)).fetchall():
        delete_document(conn, page["document_id"])
        removed += 1
    conn.execute("DELETE FROM knowledge_urls WHERE id = ?", (source_id,))
    return removed


# --- pages --------------------------------------------------------------------------------------------------
def discover(conn: apsw.Connection, source_id: str, crawl_id: str, url: str, depth: int,
             status: str = "queued", reason: str | None = None) -> bool:
    """Add ``url`` to this crawl (new row, or a row a previous crawl left); False if this crawl already has it."""
    row = conn.execute("SELECT id, crawl_id FROM knowledge_url_pages WHERE source_id = ? AND url = ?",
                       (source_id, url)).fetchone()
    if row is not None and row["crawl_id"] == crawl_id:
        return False
    seq = conn.execute("SELECT coalesce(max(seq), 0) + 1 AS n FROM knowledge_url_pages WHERE source_id = ?",
                       (source_id,)).fetchone()["n"]
    if row is None:
        conn.execute("INSERT INTO knowledge_url_pages(id, source_id, url, crawl_id, depth, seq, status, reason)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (str(uuid.uuid4()), source_id, url, crawl_id, depth, seq, status, reason))
    else:
        conn.execute("UPDATE knowledge_url_pages SET crawl_id = ?, depth = ?, seq = ?, status = ?, reason = ?,"
                     " error_message = NULL, updated_at = ? WHERE id = ?",
                     (crawl_id, depth, seq, status, reason, utc_now(), row["id"]))
    return True


def next_queued(conn: apsw.Connection, source_id: str, crawl_id: str) -> Row | None:
    return conn.execute(f"SELECT {PAGE_COLUMNS} FROM knowledge_url_pages WHERE source_id = ? AND crawl_id = ?"
                        " AND status = 'queued' ORDER BY depth, seq LIMIT 1", (source_id, crawl_id)).fetchone()


def page(conn: apsw.Connection, page_id: str) -> Row | None:
    return conn.execute(f"SELECT {PAGE_COLUMNS} FROM knowledge_url_pages WHERE id = ?", (page_id,)).fetchone()


def page_by_url(conn: apsw.Connection, source_id: str, url: str) -> Row | None:
    return conn.execute(f"SELECT {PAGE_COLUMNS} FROM knowledge_url_pages WHERE source_id = ? AND url = ?",
                        (source_id, url)).fetchone()


def update_page(conn: apsw.Connection, page_id: str, **fields: Any) -> None:
    fields["updated_at"] = utc_now()
    assignments = ", ".join(f"{name} = :{name}" for name in fields)
    conn.execute(f"UPDATE knowledge_url_pages SET {assignments} WHERE id = :id", {**fields, "id": page_id})


def processed_twin(conn: apsw.Connection, source_id: str, crawl_id: str, page_id: str, *,
                   canonical_url: str | None = None, content_hash: str | None = None) -> Row | None:
    """Another page of this crawl already indexed under the same canonical URL or with the same content."""
    column, value = ("canonical_url", canonical_url) if canonical_url is not None else ("content_hash", content_hash)
    return conn.execute(f"SELECT {PAGE_COLUMNS} FROM knowledge_url_pages WHERE source_id = ? AND crawl_id = ?"
                        f" AND id != ? AND status IN ('indexed','unchanged') AND {column} = ? LIMIT 1",
                        (source_id, crawl_id, page_id, value)).fetchone()


def counts(conn: apsw.Connection, source_id: str, crawl_id: str) -> dict[str, int]:
    rows = conn.execute("SELECT status, count(*) AS n FROM knowledge_url_pages WHERE source_id = ? AND crawl_id = ?"
                        " GROUP BY status", (source_id, crawl_id))
    return {r["status"]: r["n"] for r in rows}


def fetched_count(conn: apsw.Connection, source_id: str, crawl_id: str) -> int:
    """Pages this crawl has fetched (whatever came of them): what ``max_pages`` limits."""
    return conn.execute("SELECT count(*) AS n FROM knowledge_url_pages WHERE source_id = ? AND crawl_id = ?"
                        " AND fetched_at IS NOT NULL AND fetched_at >= coalesce((SELECT crawl_started_at FROM"
                        " knowledge_urls WHERE id = ?), '')", (source_id, crawl_id, source_id)).fetchone()["n"]


def crawl_size(conn: apsw.Connection, source_id: str, crawl_id: str) -> int:
    return conn.execute("SELECT count(*) AS n FROM knowledge_url_pages WHERE source_id = ? AND crawl_id = ?",
                        (source_id, crawl_id)).fetchone()["n"]


def leftovers(conn: apsw.Connection, source_id: str, crawl_id: str) -> list[Row]:
    """Pages the finished crawl did not reach (gone from the site) or left queued (beyond ``max_pages``)."""
    return list(conn.execute(f"SELECT {PAGE_COLUMNS} FROM knowledge_url_pages WHERE source_id = ?"
                             " AND (crawl_id != ? OR status = 'queued')", (source_id, crawl_id)))


def delete_page(conn: apsw.Connection, page_id: str) -> None:
    row = page(conn, page_id)
    if row is not None and row["document_id"]:
        delete_document(conn, row["document_id"])
    conn.execute("DELETE FROM knowledge_url_pages WHERE id = ?", (page_id,))


def list_pages(conn: apsw.Connection, source_id: str, crawl_id: str | None, status: str | None, limit: int,
               offset: int) -> tuple[list[Row], int]:
    where = "WHERE p.source_id = ? AND p.crawl_id IS ?" + (" AND p.status = ?" if status else "")
    params: tuple[Any, ...] = (source_id, crawl_id, status) if status else (source_id, crawl_id)
    total = conn.execute(f"SELECT count(*) AS n FROM knowledge_url_pages p {where}", params).fetchone()["n"]
    rows = conn.execute(
        f"SELECT p.{PAGE_COLUMNS.replace(', ', ', p.')}, d.chunk_count AS chunk_count FROM knowledge_url_pages p"
        f" LEFT JOIN knowledge_documents d ON d.id = p.document_id {where} ORDER BY p.depth, p.seq"
        " LIMIT ? OFFSET ?", (*params, limit, offset))
    return list(rows), total


# --- page documents -------------------------------------------------------------------------------------------
def save_document(conn: apsw.Connection, doc: dict[str, Any]) -> None:
    """Insert or refresh the ``knowledge_documents`` row of one crawled page (completed: chunks come with it)."""
    conn.execute(
        "INSERT INTO knowledge_documents(id, chatbot_id, source_type, title, source_url, file_size_bytes, mime_type,"
        " content_hash, status, progress, text_length, metadata, processing_started_at, processing_completed_at)"
        " VALUES (:id, :chatbot_id, 'url', :title, :source_url, :size, 'text/html', :content_hash, 'completed', 100,"
        " :text_length, :metadata, :now, :now) ON CONFLICT(id) DO UPDATE SET title = excluded.title,"
        " source_url = excluded.source_url, file_size_bytes = excluded.file_size_bytes,"
        " content_hash = excluded.content_hash, text_length = excluded.text_length, metadata = excluded.metadata,"
        " processing_completed_at = excluded.processing_completed_at, updated_at = excluded.processing_completed_at",
        {**doc, "metadata": json.dumps(doc["metadata"]), "now": utc_now()})


def delete_document(conn: apsw.Connection, document_id: str) -> None:
    knowledge_index.delete_chunks(conn, document_id=document_id)
    conn.execute("DELETE FROM knowledge_documents WHERE id = ? AND source_type = 'url'", (document_id,))


def chunk_total(conn: apsw.Connection, source_id: str) -> int:
    return conn.execute("SELECT coalesce(sum(d.chunk_count), 0) AS n FROM knowledge_url_pages p JOIN"
                        " knowledge_documents d ON d.id = p.document_id WHERE p.source_id = ?",
                        (source_id,)).fetchone()["n"]
