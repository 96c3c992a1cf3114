"""``/api/v1/knowledge-base/urls`` (PRD §5.4.2): website sources and their crawls.

The crawl job is queued here, after the domain call committed, so it never looks for a row that is not there
yet. Ids are plain strings: a malformed id is "not found" like another workspace's.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.params import Parameter

from chatsupport.domain import sites
from chatsupport.tasks.crawl import crawl_site
from chatsupport.web.api.knowledge_schemas import CrawledPageList, UrlSourceOut, UrlSourcePage
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.permissions import requires

Page = Annotated[int, Parameter(ge=1, default=1)]
Limit = Annotated[int, Parameter(ge=1, le=200, default=50)]


async def _queue(source: dict[str, Any]) -> None:
    await asyncio.to_thread(crawl_site, source["id"], source["crawl_job_id"])


@post("/api/v1/knowledge-base/urls", status_code=201, **requires("knowledge.upload"))
async def add_url(request: Request[Any, Any, Any], data: sites.UrlSourceCreate) -> UrlSourceOut:
    """Crawl a site breadth-first. ``crawl_settings``: max_pages (50), max_depth (3), include_patterns and
    exclude_patterns (globs on the path, e.g. ``/docs/*``), follow_external_links (false), respect_robots_txt
    (true), delay_seconds (0.25; none for allow-listed hosts), timeout_seconds (10), max_page_bytes (5 MB).
    ``schedule``: daily|weekly|monthly|none or ``{"frequency", "day_of_week", "time"}`` (UTC).
    Private, loopback and metadata addresses → 422 ``url_not_allowed`` unless in the outbound allow-list."""
    source = await asyncio.to_thread(sites.create, services_of(request), actor_of(request), data)
    await _queue(source)
    return msgspec.convert(source, UrlSourceOut)


@get("/api/v1/knowledge-base/urls", **requires("knowledge.view"))
async def list_urls(request: Request[Any, Any, Any], chatbot_id: str | None = None, page: Page = 1,
                    limit: Limit = 50) -> UrlSourcePage:
    found = await asyncio.to_thread(sites.search, services_of(request), actor_of(request), chatbot_id, page, limit)
    return msgspec.convert(found, UrlSourcePage)


@get("/api/v1/knowledge-base/urls/{source_id:str}", **requires("knowledge.view"))
async def get_url(request: Request[Any, Any, Any], source_id: str) -> UrlSourceOut:
    """``status`` pending|crawling|completed|failed with pages_found, pages_processed (indexed or unchanged),
    pages_skipped (robots, duplicates, filters), pages_failed, error_code and error_message."""
    source = await asyncio.to_thread(sites.get, services_of(request), actor_of(request), source_id)
    return msgspec.convert(source, UrlSourceOut)


@get("/api/v1/knowledge-base/urls/{source_id:str}/pages", **requires("knowledge.view"))
async def list_pages(request: Request[Any, Any, Any], source_id: str, status: str | None = None, page: Page = 1,
                     limit: Limit = 50) -> CrawledPageList:
    """Pages of the latest crawl: status queued|indexed|unchanged|skipped|failed and the reason."""
    found = await asyncio.to_thread(sites.pages, services_of(request), actor_of(request), source_id, status, page,
                                    limit)
    return msgspec.convert(found, CrawledPageList)


@post("/api/v1/knowledge-base/urls/{source_id:str}/recrawl", status_code=202, **requires("knowledge.upload"))
async def recrawl_url(request: Request[Any, Any, Any], source_id: str) -> UrlSourceOut:
    """Crawl again now (unchanged pages are not re-embedded). A crawl already under way is left running."""
    source, queued = await asyncio.to_thread(sites.recrawl, services_of(request), actor_of(request), source_id)
    if queued:
        await _queue(source)
    return msgspec.convert(source, UrlSourceOut)


@post("/api/v1/knowledge-base/urls/{source_id:str}/retry", status_code=202, **requires("knowledge.upload"))
async def retry_url(request: Request[Any, Any, Any], source_id: str) -> UrlSourceOut:
    """A failed crawl only (409 ``conflict`` otherwise)."""
    source, queued = await asyncio.to_thread(sites.recrawl, services_of(request), actor_of(request), source_id,
                                             True)
    if queued:
        await _queue(source)
    return msgspec.convert(source, UrlSourceOut)


@delete("/api/v1/knowledge-base/urls/{source_id:str}", status_code=204, **requires("knowledge.upload"))
async def delete_url(request: Request[Any, Any, Any], source_id: str) -> None:
    """The source with every page's document, chunks, vectors and text-index rows, in one transaction."""
    await asyncio.to_thread(sites.delete, services_of(request), actor_of(request), source_id)


ROUTES = [add_url, list_urls, get_url, list_pages, recrawl_url, retry_url, delete_url]
