"""The console's website sources for one chatbot: add a site with its main crawl settings, watch each crawl's
progress live (htmx polls the list while anything is pending or crawling), see a source's pages, re-crawl, retry a
failed crawl, and delete with a confirmation.

Same shape as the knowledge page: an htmx request gets the fragment it swaps, a plain form post the whole page.
Delete asks first: with JavaScript, htmx's ``hx-confirm`` dialog; without it, the button leads to a confirmation
page whose form does the delete. Crawl jobs are queued here after the domain call committed, as the API does.
"""

from __future__ import annotations

import asyncio
from typing import Any, Mapping

import msgspec
from litestar import Request, Response, get, post

from chatsupport.domain import sites
from chatsupport.domain.permissions import allowed
from chatsupport.errors import AppError
from chatsupport.tasks.crawl import crawl_site
from chatsupport.web.auth import actor_of, csrf_token, services_of
from chatsupport.web.console.common import checked_form, is_htmx, redirect, render, words
from chatsupport.web.console.knowledge import console_bot
from chatsupport.web.permissions import console_requires

PAGE = {"include_in_schema": False}
BASE = "/chatbots/{chatbot_id:str}/knowledge/sites"
SOURCE = BASE + "/{source_id:str}"
ACTIVE = ("pending", "crawling")
PAGES_PER_SCREEN = 50
SCHEDULES = ("none", "daily", "weekly", "monthly")
NOTICES = {"deleted": "Site deleted, with its pages."}
FIELD_HINTS = {"url": "Enter the full address, starting with http:// or https://.",
               "max_pages": "A whole number from 1 to 5000.", "max_depth": "A whole number from 0 to 20.",
               "include_patterns": "At most 50 patterns, each up to 300 characters.",
               "exclude_patterns": "At most 50 patterns, each up to 300 characters.",
               "schedule": "Never, daily, weekly or monthly."}


def _base(bot: Mapping[str, Any]) -> str:
    return f"/chatbots/{bot['id']}/knowledge/sites"


async def _source(request: Request[Any, Any, Any], bot: Mapping[str, Any], source_id: str) -> dict[str, Any]:
    source = await asyncio.to_thread(sites.get, services_of(request), actor_of(request), source_id)
    if source["chatbot_id"] != bot["id"]:
        raise AppError("not_found", "No such URL source.")
    return source


async def _context(request: Request[Any, Any, Any], bot: dict[str, Any], **extra: Any) -> dict[str, Any]:
    services, actor = services_of(request), actor_of(request)
    listed = await asyncio.to_thread(sites.search, services, actor, bot["id"], 1, 200)
    return {"bot": bot, "sources": listed["data"], "polling": any(s["status"] in ACTIVE for s in listed["data"]),
            "can_edit": allowed(actor.role, "knowledge.upload"), "csrf": csrf_token(request), "tab": "sites",
            "knowledge_base": f"/chatbots/{bot['id']}/knowledge", "base": _base(bot), "schedules": SCHEDULES,
            **extra}


async def _respond(request: Request[Any, Any, Any], bot: dict[str, Any], **extra: Any) -> Response[Any]:
    template = "knowledge/_sites.html" if is_htmx(request) else "knowledge/sites.html"
    return render(request, template, await _context(request, bot, **extra))


def crawl_request(bot_id: str, form: Mapping[str, Any]) -> sites.UrlSourceCreate:
    """The add-site form as the API's request; numbers and patterns are checked by the same struct."""
    def lines(name: str) -> list[str]:
        return [line.strip() for line in str(form.get(name) or "").splitlines() if line.strip()]

    def number(name: str, default: int) -> int | str:
        raw = str(form.get(name) or "").strip()
        try:
            return int(raw) if raw else default
        except ValueError:
            return raw  # the struct refuses it, with the field's name

    body = {"chatbot_id": bot_id, "url": str(form.get("url") or "").strip(),
            "crawl_settings": {"max_pages": number("max_pages", 50), "max_depth": number("max_depth", 3),
                               "include_patterns": lines("include_patterns"),
                               "exclude_patterns": lines("exclude_patterns"),
                               "follow_external_links": bool(form.get("follow_external_links"))},
            "schedule": str(form.get("schedule") or "none")}
    try:
        return msgspec.convert(body, sites.UrlSourceCreate)
    except msgspec.ValidationError as exc:
        field = _field(str(exc))
        raise AppError("validation_error", details=[{"field": field,
                                                     "message": FIELD_HINTS.get(field, str(exc))}]) from None


def _field(message: str) -> str:
    """``Expected `int` >= 1 - at `$.crawl_settings.max_pages``` → ``max_pages``."""
    path = message.rpartition("`$.")[2].rstrip("`")
    return path.rpartition(".")[2].split("[")[0] or "form"


@get(BASE, **PAGE, **console_requires("knowledge.view"))
async def sites_page(request: Request[Any, Any, Any], chatbot_id: str, notice: str = "") -> Response[Any]:
    bot = await console_bot(request, chatbot_id)
    return render(request, "knowledge/sites.html", await _context(request, bot, notice=NOTICES.get(notice)))


@get(BASE + "/list", **PAGE, **console_requires("knowledge.view"))
async def sites_fragment(request: Request[Any, Any, Any], chatbot_id: str) -> Response[Any]:
    """Polled by htmx every two seconds while a crawl is pending or running."""
    bot = await console_bot(request, chatbot_id)
    return render(request, "knowledge/_sites.html", await _context(request, bot))


@post(BASE, status_code=200, **PAGE, **console_requires("knowledge.upload"))
async def add_site(request: Request[Any, Any, Any], chatbot_id: str) -> Response[Any]:
    bot = await console_bot(request, chatbot_id)
    form = await checked_form(request)
    try:
        new = crawl_request(bot["id"], form)
        source = await asyncio.to_thread(sites.create, services_of(request), actor_of(request), new)
    except AppError as exc:
        if exc.code not in ("validation_error", "url_not_allowed"):
            raise
        fields = {d["field"]: d["message"] for d in exc.details if isinstance(d, dict) and "field" in d} \
            if isinstance(exc.details, list) else {}
        context = await _context(request, bot, add_error=words(exc), field_errors=fields, form=form)
        if is_htmx(request):  # the errors belong next to the form, not in the list the form normally updates
            return render(request, "knowledge/_site_form.html", context,  # htmx swaps only 2xx answers
                          headers={"HX-Retarget": "#site-form", "HX-Reswap": "outerHTML"})
        return render(request, "knowledge/sites.html", context, status=422)
    await asyncio.to_thread(crawl_site, source["id"], source["crawl_job_id"])
    return await _respond(request, bot, notice=f"Crawling {source['url']}. Progress shows below.")


@post(SOURCE + "/recrawl", status_code=200, **PAGE, **console_requires("knowledge.upload"))
async def recrawl_site(request: Request[Any, Any, Any], chatbot_id: str, source_id: str) -> Response[Any]:
    return await _recrawl(request, chatbot_id, source_id, only_failed=False)


@post(SOURCE + "/retry", status_code=200, **PAGE, **console_requires("knowledge.upload"))
async def retry_site(request: Request[Any, Any, Any], chatbot_id: str, source_id: str) -> Response[Any]:
    return await _recrawl(request, chatbot_id, source_id, only_failed=True)


async def _recrawl(request: Request[Any, Any, Any], chatbot_id: str, source_id: str,
                   only_failed: bool) -> Response[Any]:
    bot = await console_bot(request, chatbot_id)
    await _source(request, bot, source_id)
    await checked_form(request)
    try:
        source, queued = await asyncio.to_thread(sites.recrawl, services_of(request), actor_of(request), source_id,
                                                 only_failed)
    except AppError as exc:
        if exc.code != "conflict":
            raise
        return await _respond(request, bot, list_error=exc.message)
    if queued:
        await asyncio.to_thread(crawl_site, source["id"], source["crawl_job_id"])
        return await _respond(request, bot, notice=f"Crawling {source['url']} again.")
    return await _respond(request, bot, notice=f"{source['url']} is already being crawled.")


@get(SOURCE + "/delete", **PAGE, **console_requires("knowledge.upload"))
async def confirm_delete(request: Request[Any, Any, Any], chatbot_id: str, source_id: str) -> Response[Any]:
    """The confirmation a browser without JavaScript gets (htmx asks with a dialog instead)."""
    bot = await console_bot(request, chatbot_id)
    source = await _source(request, bot, source_id)
    return render(request, "knowledge/site_delete.html", await _context(request, bot, source=source))


@post(SOURCE + "/delete", status_code=200, **PAGE, **console_requires("knowledge.upload"))
async def delete_site(request: Request[Any, Any, Any], chatbot_id: str, source_id: str) -> Response[Any]:
    bot = await console_bot(request, chatbot_id)
    source = await _source(request, bot, source_id)
    await checked_form(request)
    await asyncio.to_thread(sites.delete, services_of(request), actor_of(request), source_id)
    if is_htmx(request):
        return await _respond(request, bot, notice=f"Deleted {source['url']} and its pages.")
    return redirect(f"{_base(bot)}?notice=deleted")  # type: ignore[return-value]


@get(SOURCE, **PAGE, **console_requires("knowledge.view"))
async def site_pages(request: Request[Any, Any, Any], chatbot_id: str, source_id: str, status: str = "",
                     page: int = 1) -> Response[Any]:
    """One source: its crawl's counters and settings, and the pages it reached (filter by status, 50 a screen).
    htmx polls the fragment while the crawl runs."""
    bot = await console_bot(request, chatbot_id)
    source = await _source(request, bot, source_id)
    wanted = status if status in sites.PAGE_STATUSES else None
    listed = await asyncio.to_thread(sites.pages, services_of(request), actor_of(request), source_id, wanted,
                                     max(page, 1), PAGES_PER_SCREEN)
    context = await _context(request, bot, source=source, pages=listed["data"], pagination=listed["pagination"],
                             status=wanted or "", statuses=sites.PAGE_STATUSES,
                             polling=source["status"] in ACTIVE)
    template = "knowledge/_site_pages.html" if is_htmx(request) else "knowledge/site.html"
    return render(request, template, context)


ROUTES = [sites_page, sites_fragment, add_site, recrawl_site, retry_site, confirm_delete, delete_site, site_pages]
