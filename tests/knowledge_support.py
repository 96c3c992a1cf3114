"""Helpers for the knowledge-base tests: an instance with the real job consumer and embedder, real files made
here (PyMuPDF writes PDFs, python-docx writes DOCX), and polling until a document settles."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pymupdf
from litestar.testing import TestClient

from accounts_support import account_settings
from chatsupport.config import Settings
from chatsupport.retrieval.embedder import DEFAULT_CACHE

DOCS = "/api/v1/knowledge-base/documents"
FAQS = "/api/v1/knowledge-base/faqs"


def kb_settings(data_dir: Path) -> Settings:
    """The consumer runs in-process; the ONNX export of the model is shared between runs (made once)."""
    return account_settings(data_dir, RUN_WORKER="true", MODEL_CACHE_DIR=str(DEFAULT_CACHE))


def pdf_bytes(pages: list[str], header: str = "ACME Handbook - Internal", password: str | None = None) -> bytes:
    """One section heading and its body per page, a running header and a "Page n of N" footer on every page."""
    doc = pymupdf.open()
    for number, body in enumerate(pages, start=1):
        page = doc.new_page()
        page.insert_text((72, 40), header, fontsize=9)
        heading, _, text = body.partition("\n")
        page.insert_text((72, 110), heading, fontsize=18)
        page.insert_textbox(pymupdf.Rect(72, 130, 520, 700), text, fontsize=11)
        page.insert_text((260, 815), f"Page {number} of {len(pages)}", fontsize=9)
    out = io.BytesIO()
    if password:
        doc.save(out, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw=password, owner_pw=password + "!")
    else:
        doc.save(out)
    return out.getvalue()


def blank_pdf(pages: int = 2) -> bytes:
    """What a scan without OCR looks like to a text extractor: pages with a drawing and no text."""
    doc = pymupdf.open()
    for _ in range(pages):
        page = doc.new_page()
        page.draw_rect(pymupdf.Rect(50, 50, 500, 700), color=(0, 0, 0), fill=(0.9, 0.9, 0.9))
    return doc.tobytes()


def docx_bytes(title: str, sections: list[tuple[str, str]]) -> bytes:
    import docx

    document = docx.Document()
    document.add_heading(title, level=0)
    for heading, text in sections:
        document.add_heading(heading, level=1)
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def upload(client: TestClient, headers: dict[str, str], chatbot_id: str, name: str, content: bytes,
           metadata: dict[str, Any] | None = None, **fields: str) -> Any:
    data = {"chatbot_id": chatbot_id, **fields}
    if metadata is not None:
        data["metadata"] = json.dumps(metadata)
    return client.post(DOCS, files={"file": (name, content, "application/octet-stream")}, data=data,
                       headers=headers)


def wait_settled(client: TestClient, headers: dict[str, str], document_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = client.get(f"{DOCS}/{document_id}", headers=headers).json()
        if doc["status"] in ("completed", "failed"):
            return doc
        time.sleep(0.1)
    raise TimeoutError(f"document {document_id} still {doc['status']} after {timeout}s")


def wait_until(predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError("condition not met")


def index_counts(client: TestClient, document_id: str) -> dict[str, int]:
    """Chunks of a document and the FTS entries (its shadow table: the external-content table itself would just
    read the chunks) and both vector rows that point at them."""
    db = client.app.state.services.db
    rowids = [r["rowid"] for r in db.query("SELECT rowid FROM knowledge_chunks WHERE document_id = ?",
                                           (document_id,))]
    marks = ",".join("?" * len(rowids)) or "NULL"
    count = lambda sql: db.query_one(sql.format(marks=marks), rowids)["n"]  # noqa: E731
    return {"chunks": len(rowids),
            "fts": count("SELECT count(*) AS n FROM knowledge_chunks_fts_docsize WHERE id IN ({marks})"),
            "vectors": count("SELECT count(*) AS n FROM knowledge_chunk_vectors WHERE chunk_rowid IN ({marks})"),
            "bits": count("SELECT count(*) AS n FROM knowledge_chunk_bits WHERE chunk_rowid IN ({marks})")}


def total_index_rows(client: TestClient) -> dict[str, int]:
    db = client.app.state.services.db
    return {t: db.query_one(f"SELECT count(*) AS n FROM {t}")["n"]
            for t in ("knowledge_chunks", "knowledge_chunk_vectors", "knowledge_chunk_bits")} | {
        "fts": db.query_one("SELECT count(*) AS n FROM knowledge_chunks_fts_docsize")["n"]}
