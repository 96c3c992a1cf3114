"""``/api/v1/conversations`` (PRD §5.3.3): the agent's list and view, and take over, reply, return to the AI,
resolve.

Every action on an unknown id answers 404 before its body is looked at: the ``conversation_found`` guard runs
after the permission guard and before Litestar decodes the body. Ids are plain strings: a malformed id is "not
found" like another workspace's.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get, post
from litestar.params import Parameter

from chatsupport import live
from chatsupport.domain import agent_conversations as actions
from chatsupport.domain import conversation_views as views
from chatsupport.domain.conversation_filters import from_query
from chatsupport.web.api.conversation_schemas import ConversationOut, ConversationPage, ReplyRequest, \
    ReplyResponse, ResolveRequest, ResolveResponse, ReturnResponse, TakeoverRequest, TakeoverResponse
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.permissions import found, requires, requires_found

Limit = Annotated[int, Parameter(ge=1, le=100, default=20)]
Page = Annotated[int, Parameter(ge=1, default=1)]
ITEM = "/api/v1/conversations/{conversation_id:str}"


conversation_found = found("conversation_id", actions.exists, "Conversation not found.")


def acts(permission: str) -> dict[str, Any]:
    """``requires(permission)``, then 404 for an unknown conversation, then the body."""
    return requires_found(permission, conversation_found)


@get("/api/v1/conversations", **requires("conversation.view"))
async def list_conversations(
        request: Request[Any, Any, Any],
        status: Annotated[str | None, Parameter(max_length=200, description=(
            "One status or several, comma-separated. Default: every status but archived."))] = None,
        chatbot_id: Annotated[str | None, Parameter(max_length=100)] = None,
        assigned_agent: Annotated[str | None, Parameter(max_length=100, description=(
            'A user id, "unassigned", or "me".'))] = None,
        tags: Annotated[str | None, Parameter(max_length=1000, description=(
            "Comma-separated; the conversation carries every one (case-insensitive)."))] = None,
        date_field: Literal["created_at", "updated_at", "resolved_at"] | None = None,
        start: Annotated[str | None, Parameter(max_length=40, description="ISO-8601 date or date-time")] = None,
        end: Annotated[str | None, Parameter(max_length=40, description="inclusive; a bare date = whole day")] = None,
        rating_min: Annotated[str | None, Parameter(max_length=10)] = None,
        rating_max: Annotated[str | None, Parameter(max_length=10)] = None,
        customer_email: Annotated[str | None, Parameter(max_length=254)] = None,
        has_notes: Annotated[str | None, Parameter(max_length=10, description="true or false")] = None,
        filter_id: Annotated[str | None, Parameter(max_length=100, description=(
            "One of the caller's saved filters; the other parameters are applied on top."))] = None,
        sort: Literal["-updated_at", "-created_at", "updated_at", "created_at"] = "-updated_at",
        cursor: Annotated[str | None, Parameter(max_length=500, description=(
            "next_cursor of the previous page; overrides page."))] = None,
        page: Page = 1, limit: Limit = 20) -> ConversationPage:
    """Newest first by default. Follow ``next_cursor`` to page at any depth; ``page`` reads the first 10,000 by
    offset. ``pagination.total`` and each of ``counts`` (per status, for the same filters minus status) stop
    counting at 10,000 (``total_capped`` / ``counts_capped``). ``unread`` is per caller."""
    filters = from_query({"status": status, "chatbot_id": chatbot_id, "assigned_agent": assigned_agent,
                          "tags": tags, "date_field": date_field, "start": start, "end": end,
                          "rating_min": rating_min, "rating_max": rating_max, "customer_email": customer_email,
                          "has_notes": has_notes})
    result = await asyncio.to_thread(views.list_conversations, services_of(request), actor_of(request),
                                     filters=filters, filter_id=filter_id, sort=sort, cursor=cursor, page=page,
                                     limit=limit)
    return msgspec.convert(result, ConversationPage)


@get(ITEM, **requires("conversation.view"))
async def get_conversation(request: Request[Any, Any, Any], conversation_id: str) -> ConversationOut:
    """Messages, internal notes and the event timeline, oldest first."""
    result = await asyncio.to_thread(views.get_conversation, services_of(request), actor_of(request),
                                     conversation_id)
    return msgspec.convert(result, ConversationOut)


@post(f"{ITEM}/takeover", status_code=200, **acts("conversation.respond"))
async def takeover(request: Request[Any, Any, Any], conversation_id: str, data: TakeoverRequest) -> TakeoverResponse:
    """``agent_id`` defaults to the caller (owners and admins may name another agent); ``message`` is sent to
    the customer as that agent. 409 ``already_taken`` when someone else holds it; taking over one's own
    conversation again is a no-op. An AI answer still streaming is cancelled."""
    result = await asyncio.to_thread(actions.takeover, services_of(request), actor_of(request), conversation_id,
                                     data.agent_id, data.message)
    live.cancel_answer(conversation_id)  # on the event loop, where answers run
    return msgspec.convert(result, TakeoverResponse)


@post(f"{ITEM}/messages", status_code=201, **acts("conversation.respond"))
async def reply(request: Request[Any, Any, Any], conversation_id: str, data: ReplyRequest) -> ReplyResponse:
    """The agent's reply (1-4,000 characters). On a conversation nobody holds it takes the conversation over
    first; on another agent's, 409 ``already_taken``."""
    result = await asyncio.to_thread(actions.reply, services_of(request), actor_of(request), conversation_id,
                                     data.content)
    live.cancel_answer(conversation_id)
    return msgspec.convert(result, ReplyResponse)


@post(f"{ITEM}/return-to-ai", status_code=200, **acts("conversation.respond"))
async def return_to_ai(request: Request[Any, Any, Any], conversation_id: str) -> ReturnResponse:
    """agent_handling → active; nobody holds the conversation any more and the AI answers again."""
    result = await asyncio.to_thread(actions.return_to_ai, services_of(request), actor_of(request), conversation_id)
    return msgspec.convert(result, ReturnResponse)


@post(f"{ITEM}/resolve", status_code=200, **acts("conversation.respond"))
async def resolve(request: Request[Any, Any, Any], conversation_id: str,
                  data: ResolveRequest | None = None) -> ResolveResponse:
    """Stores the note and adds the tags; the customer is asked to rate the conversation."""
    body = data or ResolveRequest()
    result = await asyncio.to_thread(actions.resolve, services_of(request), actor_of(request), conversation_id,
                                     body.resolution_note, body.tags)
    return msgspec.convert(result, ResolveResponse)


ROUTES = [list_conversations, get_conversation, takeover, reply, return_to_ai, resolve]
