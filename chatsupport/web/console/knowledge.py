"""The console's knowledge page for one chatbot: documents (drag-and-drop upload with per-file progress, live
status by htmx polling, retry, delete), FAQs (list, add, CSV import) and "Test your bot".

Files go straight to the API upload route from ``static/knowledge.js`` (XHR, for upload progress); everything
else posts here. An htmx request gets the fragment it swaps; a plain form post gets the whole page.
Scope before CSRF: another workspace's ids are "not found" whatever the token says; nothing changes without it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get, post

from chatsupport.domain import faqs, knowledge
from chatsupport.domain.permissions import allowed
from chatsupport.errors import AppError
from chatsupport.tasks.ingest import index_faqs, ingest_document
from chatsupport.web.auth import actor_of, csrf_token, services_of
from chatsupport.web.console.common import checked_form, is_htmx, render, words
from chatsupport.web.permissions import console_requires

PAGE = {"include_in_schema": False}
BASE = "/chatbots/{chatbot_id:str}/knowledge"
FAQ_IMPORT_MAX = 6 * 1024 * 1024
ACTIVE = ("pending", "processing")


async def console_bot(request: Request[Any, Any, Any], chatbot_id: str) -> dict[str, Any]:
    services, actor = services_of(request), actor_of(request)
    return await asyncio.to_thread(lambda: knowledge.require_chatbot(services.db.reader(), actor, chatbot_id))


async def _document(request: Request[Any, Any, Any], chatbot_id: str, document_id: str) -> dict[str, Any]:
    doc = await asyncio.to_thread(knowledge.get, services_of(request), actor_of(request), document_id)
    if doc["chatbot_id"] != chatbot_id:
        raise AppError("not_found", "No such document.")
    return doc


async def _context(request: Request[Any, Any, Any], bot: dict[str, Any], **extra: Any) -> dict[str, Any]:
    services, actor = services_of(request), actor_of(request)
    docs = await asyncio.to_thread(knowledge.search, services, actor, bot["id"], 1, 200)
    faq_list = await asyncio.to_thread(faqs.search, services, actor, bot["id"], 1, 200)
    return {"bot": bot, "documents": docs["data"], "faqs": faq_list["data"],
            "polling": any(d["status"] in ACTIVE for d in docs["data"]),
            "can_edit": allowed(actor.role, "knowledge.upload"), "csrf": csrf_token(request),
            "base": f"/chatbots/{bot['id']}/knowledge", "tab": "documents", **extra}


async def _respond(request: Request[Any, Any, Any], bot: dict[str, Any], fragment: str,
                   **extra: Any) -> Response[Any]:
    """htmx swaps the fragment; a plain form post (no JavaScript) gets the whole page with the same news."""
    template = f"knowledge/{fragment}" if is_htmx(request) else "knowledge/page.html"
    return render(request, template, await _context(request, bot, **extra))


@get(BASE, **PAGE, **console_requires("knowledge.view"))
async def knowledge_page(request: Request[Any, Any, Any], chatbot_id: str, faq_question: str = "") -> Response[Any]:
    """``?faq_question=`` opens the FAQ form with that question filled in (the knowledge-gaps page links here)."""
    bot = await console_bot(request, chatbot_id)
    prefill = {"faq_form": {"question": faq_question.strip()[:500]}} if faq_question.strip() else {}
    return render(request, "knowledge/page.html", await _context(request, bot, **prefill))


@get(BASE + "/documents", **PAGE, **console_requires("knowledge.view"))
async def documents_fragment(request: Request[Any, Any, Any], chatbot_id: str) -> Response[Any]:
    """Polled by htmx every two seconds while anything is pending or processing."""
    bot = await console_bot(request, chatbot_id)
    return render(request, "knowledge/_documents.html", await _context(request, bot))


@post(BASE + "/documents/{document_id:str}/retry", status_code=200, **PAGE, **console_requires("knowledge.upload"))
async def retry_document(request: Request[Any, Any, Any], chatbot_id: str, document_id: str) -> Response[Any]:
    bot = await console_bot(request, chatbot_id)
    await _document(request, chatbot_id, document_id)
    await checked_form(request)
    doc = await asyncio.to_thread(knowledge.retry, services_of(request), actor_of(request), document_id)
    await asyncio.to_thread(ingest_document, doc["id"])
    return await _respond(request, bot, "_documents.html")


@post(BASE + "/documents/{document_id:str}/delete", status_code=200, **PAGE,
      **console_requires("knowledge.upload"))
async def delete_document(request: Request[Any, Any, Any], chatbot_id: str, document_id: str) -> Response[Any]:
    bot = await console_bot(request, chatbot_id)
    doc = await _document(request, chatbot_id, document_id)
    await checked_form(request)
    await asyncio.to_thread(knowledge.delete, services_of(request), actor_of(request), document_id)
    return await _respond(request, bot, "_documents.html", notice=f"Deleted {doc['filename']}.")


@post(BASE + "/faqs", status_code=200, **PAGE, **console_requires("knowledge.upload"))
async def add_faq(request: Request[Any, Any, Any], chatbot_id: str) -> Response[Any]:
    bot = await console_bot(request, chatbot_id)
    form = await checked_form(request)
    services = services_of(request)
    fields = {"question": form.get("question", ""), "answer": form.get("answer", ""),
              "category": form.get("category") or None,
              "tags": [t.strip() for t in str(form.get("tags") or "").split(",") if t.strip()]}
    try:
        await asyncio.to_thread(faqs.create, services, actor_of(request), services.embedder, bot["id"], fields)
    except AppError as exc:
        if exc.code not in ("validation_error", "already_exists"):
            raise
        return await _respond(request, bot, "_faqs.html", faq_error=words(exc), faq_form=fields)
    return await _respond(request, bot, "_faqs.html", faq_notice="FAQ added.")


@post(BASE + "/faqs/import", status_code=200, request_max_body_size=FAQ_IMPORT_MAX, **PAGE,
      **console_requires("knowledge.upload"))
async def import_faqs(request: Request[Any, Any, Any], chatbot_id: str) -> Response[Any]:
    """Small files only (5 MB), so the form is read whole here; the API route streams."""
    bot = await console_bot(request, chatbot_id)
    form = await checked_form(request)
    upload = form.get("file")
    if upload is None or not hasattr(upload, "read"):
        return await _respond(request, bot, "_faqs.html", faq_error="Choose a CSV file to import.")
    data = await upload.read()
    try:
        report, ids = await asyncio.to_thread(faqs.import_csv, services_of(request), actor_of(request), bot["id"],
                                              data, bool(form.get("overwrite_existing")))
    except AppError as exc:
        return await _respond(request, bot, "_faqs.html", faq_error=words(exc))
    if ids:
        await asyncio.to_thread(index_faqs, ids)
    return await _respond(request, bot, "_faqs.html", report=report)


@post(BASE + "/faqs/{faq_id:str}/delete", status_code=200, **PAGE, **console_requires("knowledge.upload"))
async def delete_faq(request: Request[Any, Any, Any], chatbot_id: str, faq_id: str) -> Response[Any]:
    bot = await console_bot(request, chatbot_id)
    faq = await asyncio.to_thread(faqs.get, services_of(request), actor_of(request), faq_id)
    if faq["chatbot_id"] != bot["id"]:
        raise AppError("not_found", "No such FAQ.")
    await checked_form(request)
    await asyncio.to_thread(faqs.delete, services_of(request), actor_of(request), faq_id)
    return await _respond(request, bot, "_faqs.html", faq_notice="FAQ deleted.")


@get(BASE + "/test", **PAGE, **console_requires("knowledge.view"))
async def test_bot(request: Request[Any, Any, Any], chatbot_id: str, q: str = "") -> Response[Any]:
    """A search changes nothing, so it is a GET (no CSRF token, and the URL can be shared)."""
    bot = await console_bot(request, chatbot_id)
    query = q.strip()[:2000]
    if not query:
        return await _respond(request, bot, "_test_results.html", test_error="Type a question to test.")
    services = services_of(request)
    answer = await asyncio.to_thread(knowledge.test_query, services, actor_of(request), services.embedder,
                                     bot["id"], query, 5)
    return await _respond(request, bot, "_test_results.html", answer=answer, query=query)


ROUTES = [knowledge_page, documents_fragment, retry_document, delete_document, add_faq, import_faqs, delete_faq,
          test_bot]
