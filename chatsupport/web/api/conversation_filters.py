"""Saved filters and conversation search (PRD §5.3.4): ``/api/v1/conversation-filters`` and
``POST /api/v1/conversations/search``. Anyone who may view conversations may search them and keep filters; a
saved filter is its owner's alone (another user's id is "not found")."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Request, delete, get, post

from chatsupport.domain import conversation_search, saved_filters
from chatsupport.domain.conversation_filters import parse_filters
from chatsupport.web.api.conversation_schemas import FiltersIn, SavedFilterList, SavedFilterOut, \
    SavedFilterRequest, SearchRequest, SearchResponse, SearchSort
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.permissions import requires


def _plain(filters: FiltersIn | None) -> dict[str, Any]:
    """The JSON spelling ``parse_filters`` reads (the schema already checked types and bounds)."""
    return msgspec.to_builtins(filters) if filters is not None else {}


@post("/api/v1/conversations/search", status_code=200, **requires("conversation.view"))
async def search_conversations(request: Request[Any, Any, Any], data: SearchRequest) -> SearchResponse:
    """Full text over messages, internal notes and customer name/e-mail, narrowed by ``filters`` (and/or a saved
    ``filter_id``). Each item carries ``matches``: HTML snippets, text escaped, matched words in ``<mark>``.
    ``aggregations.by_status`` counts every status for the same query and filters minus status; ``by_agent`` and
    ``avg_satisfaction`` describe the results. Past the newest 2,000 matching messages the results are those
    conversations and ``pagination.total_capped`` is true."""
    sort = data.sort or SearchSort()
    result = await asyncio.to_thread(
        conversation_search.search, services_of(request), actor_of(request), data.query,
        parse_filters(_plain(data.filters)), filter_id=data.filter_id, sort_field=sort.field, order=sort.order,
        page=data.page, limit=data.limit)
    return msgspec.convert(result, SearchResponse)


@get("/api/v1/conversation-filters", **requires("conversation.view"))
async def list_saved_filters(request: Request[Any, Any, Any]) -> SavedFilterList:
    """The caller's saved filters, by name."""
    result = await asyncio.to_thread(saved_filters.list_mine, services_of(request), actor_of(request))
    return msgspec.convert(result, SavedFilterList)


@post("/api/v1/conversation-filters", status_code=201, **requires("conversation.view"))
async def create_saved_filter(request: Request[Any, Any, Any], data: SavedFilterRequest) -> SavedFilterOut:
    """409 ``already_exists`` when the caller already has a filter of that name (case-insensitive). Saving one
    with ``is_default`` clears the flag on the caller's previous default."""
    result = await asyncio.to_thread(saved_filters.create, services_of(request), actor_of(request), data.name,
                                     _plain(data.filters), data.is_default)
    return msgspec.convert(result, SavedFilterOut)


@delete("/api/v1/conversation-filters/{filter_id:str}", status_code=204, **requires("conversation.view"))
async def delete_saved_filter(request: Request[Any, Any, Any], filter_id: str) -> None:
    await asyncio.to_thread(saved_filters.delete, services_of(request), actor_of(request), filter_id)


ROUTES = [search_conversations, list_saved_filters, create_saved_filter, delete_saved_filter]
