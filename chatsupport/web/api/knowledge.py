"""``/api/v1/knowledge-base`` (PRD §5.4.1, §5.4.3, §5.4.4): documents, FAQs and "Test your bot".

Uploads are streamed (``web.uploads``) under a body cap raised for these routes only; everything else keeps
the app's small JSON limit. Jobs are enqueued here, after the domain call committed, so a job never looks for a
row that is not there yet.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, delete, get, patch, post, put
from litestar.params import Parameter
from msgspec import UNSET, Meta, Struct, UnsetType

from chatsupport.domain import faqs, knowledge
from chatsupport.errors import AppError
from chatsupport.tasks.ingest import index_faqs, ingest_document
from chatsupport.web import uploads
from chatsupport.web.api.knowledge_schemas import DocumentOut, DocumentPage, FaqImportReport, FaqOut, FaqPage, \
    KnowledgeTestResult
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.permissions import requires

DOCUMENT_KINDS = {"pdf", "docx", "text", "markdown", "html"}
UPLOAD = {"request_max_body_size": uploads.MAX_REQUEST_BYTES}
Page = Annotated[int, Parameter(ge=1, default=1)]
Limit = Annotated[int, Parameter(ge=1, le=200, default=50)]
Short = Annotated[str, Meta(max_length=100)]


class FaqCreate(Struct):
    chatbot_id: Annotated[str, Meta(max_length=100)]
    question: str
    answer: str
    category: str | None = None
    tags: list[str] = []
    priority: Literal["high", "medium", "low"] = "medium"
    status: Literal["active", "inactive", "draft"] = "active"
    metadata: dict[str, Any] = {}


class FaqUpdate(Struct):
    question: str | UnsetType = UNSET
    answer: str | UnsetType = UNSET
    category: str | None | UnsetType = UNSET
    tags: list[str] | UnsetType = UNSET
    priority: Literal["high", "medium", "low"] | UnsetType = UNSET
    status: Literal["active", "inactive", "draft"] | UnsetType = UNSET
    metadata: dict[str, Any] | UnsetType = UNSET


class KnowledgeTest(Struct):
    chatbot_id: Annotated[str, Meta(max_length=100)]
    query: Annotated[str, Meta(min_length=1, max_length=2000)]
    top_k: Annotated[int, Meta(ge=1, le=50)] = 5


def _metadata_field(raw: str | None) -> dict[str, str]:
    try:
        value = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        raise AppError("validation_error", details=[{"field": "metadata", "message": "Not valid JSON."}]) from None
    return knowledge.parse_metadata(value)


async def accept_upload(request: Request[Any, Any, Any], chatbot_id: str | None = None,
                        replaces: str | None = None) -> dict[str, Any]:
    """Stream the file in, record the document, queue its ingestion. Shared with the console's uploader."""
    services, actor = services_of(request), actor_of(request)
    upload = await uploads.receive(request, services.settings.data.uploads / ".incoming", DOCUMENT_KINDS)
    try:
        fields = upload.fields
        bot_id = chatbot_id or fields.get("chatbot_id", "").strip()
        if not bot_id:
            raise AppError("validation_error", details=[{"field": "chatbot_id", "message": "Required."}])
        new = knowledge.NewDocument(
            chatbot_id=bot_id, temp_path=upload.path, filename=upload.filename or f"upload.{upload.kind}",
            kind=upload.kind, size=upload.size, sha256=upload.sha256, metadata=_metadata_field(fields.get("metadata")),
            replaces_document_id=replaces or fields.get("replace_document_id", "").strip() or None)
        doc = await asyncio.to_thread(knowledge.create, services, actor, new)
    finally:
        upload.discard()  # moved into place on success; removed on any failure
    await asyncio.to_thread(ingest_document, doc["id"])
    return doc


# --- documents ----------------------------------------------------------------------------------------------
@post("/api/v1/knowledge-base/documents", status_code=201, **UPLOAD, **requires("knowledge.upload"))
async def upload_document(request: Request[Any, Any, Any]) -> DocumentOut:
    """multipart/form-data: ``file``, ``chatbot_id``, optional ``metadata`` (JSON: title, category, language,
    version) and ``replace_document_id`` (re-upload: the old document keeps serving until this one is ready).
    Limits: PDF 50 MB, DOCX 25 MB, TXT/Markdown/HTML 10 MB → 413 ``too_large``; the type is read from the
    content → 415 ``unsupported_type``."""
    return msgspec.convert(await accept_upload(request), DocumentOut)


@put("/api/v1/knowledge-base/documents/{document_id:str}", status_code=201, **UPLOAD,
     **requires("knowledge.upload"))
async def replace_document(request: Request[Any, Any, Any], document_id: str) -> DocumentOut:
    """Re-upload: a new document (returned) that replaces this one atomically once it is indexed."""
    old = await asyncio.to_thread(knowledge.get, services_of(request), actor_of(request), document_id)
    return msgspec.convert(await accept_upload(request, chatbot_id=old["chatbot_id"], replaces=old["id"]),
                           DocumentOut)


@get("/api/v1/knowledge-base/documents", **requires("knowledge.view"))
async def list_documents(request: Request[Any, Any, Any], chatbot_id: Short, page: Page = 1,
                         limit: Limit = 50) -> DocumentPage:
    return msgspec.convert(await asyncio.to_thread(knowledge.search, services_of(request), actor_of(request),
                                                   chatbot_id, page, limit), DocumentPage)


@get("/api/v1/knowledge-base/documents/{document_id:str}", **requires("knowledge.view"))
async def get_document(request: Request[Any, Any, Any], document_id: str) -> DocumentOut:
    """``status`` pending|processing|completed|failed, ``stage`` extracting|chunking|embedding, ``progress``."""
    doc = await asyncio.to_thread(knowledge.get, services_of(request), actor_of(request), document_id)
    return msgspec.convert(doc, DocumentOut)


@post("/api/v1/knowledge-base/documents/{document_id:str}/retry", status_code=200,
      **requires("knowledge.upload"))
async def retry_document(request: Request[Any, Any, Any], document_id: str) -> DocumentOut:
    doc = await asyncio.to_thread(knowledge.retry, services_of(request), actor_of(request), document_id)
    await asyncio.to_thread(ingest_document, doc["id"])
    return msgspec.convert(doc, DocumentOut)


@delete("/api/v1/knowledge-base/documents/{document_id:str}", status_code=204, **requires("knowledge.upload"))
async def delete_document(request: Request[Any, Any, Any], document_id: str) -> None:
    await asyncio.to_thread(knowledge.delete, services_of(request), actor_of(request), document_id)


# --- FAQs ---------------------------------------------------------------------------------------------------
@post("/api/v1/knowledge-base/faqs", status_code=201, **requires("knowledge.upload"))
async def create_faq(request: Request[Any, Any, Any], data: FaqCreate) -> FaqOut:
    services = services_of(request)
    fields = msgspec.to_builtins(data)
    chatbot_id = fields.pop("chatbot_id")
    faq = await asyncio.to_thread(faqs.create, services, actor_of(request), services.embedder, chatbot_id, fields)
    return msgspec.convert(faq, FaqOut)


@get("/api/v1/knowledge-base/faqs", **requires("knowledge.view"))
async def list_faqs(request: Request[Any, Any, Any], chatbot_id: Short, page: Page = 1,
                    limit: Limit = 50) -> FaqPage:
    found = await asyncio.to_thread(faqs.search, services_of(request), actor_of(request), chatbot_id, page, limit)
    return msgspec.convert(found, FaqPage)


@post("/api/v1/knowledge-base/faqs/import", status_code=200, request_max_body_size=uploads.MAX_REQUEST_BYTES,
      **requires("knowledge.upload"))
async def import_faqs(request: Request[Any, Any, Any]) -> FaqImportReport:
    """multipart/form-data: ``file`` (CSV with a header row: question,answer,category,tags — max 5 MB),
    ``chatbot_id``, optional ``overwrite_existing`` (true: a duplicate question updates that FAQ). Row numbers
    in ``errors`` count the header as row 1. Imported FAQs are embedded by a background job."""
    services, actor = services_of(request), actor_of(request)
    upload = await uploads.receive(request, services.settings.data.uploads / ".incoming", {"csv"})
    try:
        data = await asyncio.to_thread(upload.path.read_bytes)
    finally:
        upload.discard()
    overwrite = upload.fields.get("overwrite_existing", "").strip().lower() in {"1", "true", "yes", "on"}
    report, ids = await asyncio.to_thread(faqs.import_csv, services, actor, upload.fields.get("chatbot_id", ""),
                                          data, overwrite)
    if ids:
        await asyncio.to_thread(index_faqs, ids)
    return msgspec.convert(report, FaqImportReport)


@get("/api/v1/knowledge-base/faqs/{faq_id:str}", **requires("knowledge.view"))
async def get_faq(request: Request[Any, Any, Any], faq_id: str) -> FaqOut:
    return msgspec.convert(await asyncio.to_thread(faqs.get, services_of(request), actor_of(request), faq_id),
                           FaqOut)


@patch("/api/v1/knowledge-base/faqs/{faq_id:str}", **requires("knowledge.upload"))
async def update_faq(request: Request[Any, Any, Any], faq_id: str, data: FaqUpdate) -> FaqOut:
    services = services_of(request)
    changes = msgspec.to_builtins(data)
    faq = await asyncio.to_thread(faqs.update, services, actor_of(request), services.embedder, faq_id, changes)
    return msgspec.convert(faq, FaqOut)


@delete("/api/v1/knowledge-base/faqs/{faq_id:str}", status_code=204, **requires("knowledge.upload"))
async def delete_faq(request: Request[Any, Any, Any], faq_id: str) -> None:
    await asyncio.to_thread(faqs.delete, services_of(request), actor_of(request), faq_id)


# --- test your bot ------------------------------------------------------------------------------------------
@post("/api/v1/knowledge-base/test", status_code=200, **requires("knowledge.view"))
async def test_knowledge(request: Request[Any, Any, Any], data: KnowledgeTest) -> KnowledgeTestResult:
    """The passages the bot would answer from: rank, score 0..1, source_type document|url|faq, source_id,
    content, metadata (filename and page for files; url and title for crawled pages; category and tags for
    FAQs)."""
    services = services_of(request)
    result = await asyncio.to_thread(knowledge.test_query, services, actor_of(request), services.embedder,
                                     data.chatbot_id, data.query, data.top_k)
    return msgspec.convert(result, KnowledgeTestResult)


ROUTES = [upload_document, list_documents, get_document, replace_document, retry_document, delete_document,
          create_faq, list_faqs, import_faqs, get_faq, update_faq, delete_faq, test_knowledge]
